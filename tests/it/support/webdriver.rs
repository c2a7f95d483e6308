//! A WebDriver client for Debian's chromium through chromedriver: the W3C protocol as plain JSON
//! over loopback with reqwest (lighter than a WebDriver client crate or a Python venv, and all
//! the browser tests need). `tests/cluster/browser.sh` installs the browser.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::http;
use super::ports::free_port;

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver on a loopback port, ended when dropped.
pub struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn which(name: &str) -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!path.is_empty()).then_some(path)
}

impl Driver {
    pub async fn start() -> Driver {
        let chromedriver = which("chromedriver").expect(
            "chromedriver is missing: run tests/cluster/browser.sh (tests/run-all.sh does)",
        );
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let driver = Driver {
            child,
            base,
            session: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http()
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok();
            if let Some(r) = ready {
                let body: Value = r.json().await.unwrap_or_default();
                if body["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One WebDriver command; the response's `value`, failing the test on a WebDriver error.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = match &self.session {
            Some(s) => format!("{}/session/{s}{path}", self.base),
            None => format!("{}{path}", self.base),
        };
        let mut request = http()
            .request(method, &url)
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status();
        let body: Value = response.json().await.expect("WebDriver answers JSON");
        assert!(status.is_success(), "{url}: {status} {body}");
        body["value"].clone()
    }

    /// A session in a fresh profile; `javascript` off for pages that must read without it.
    pub async fn open_session(&mut self, profile: &std::path::Path, javascript: bool) {
        let chromium =
            which("chromium").expect("chromium is missing: run tests/cluster/browser.sh");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-default-apps", "--disable-sync",
                         format!("--user-data-dir={}", profile.display())],
                "prefs": {"profile.managed_default_content_settings.javascript":
                          if javascript { 1 } else { 2 }}
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"}
        }}});
        let value = self
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        self.session = Some(
            value["sessionId"]
                .as_str()
                .expect("a session id")
                .to_string(),
        );
    }

    pub async fn elements(&self, from: Option<&str>, css: &str) -> Vec<String> {
        let path = match from {
            Some(e) => format!("/element/{e}/elements"),
            None => "/elements".to_string(),
        };
        let found = self
            .call(
                reqwest::Method::POST,
                &path,
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .expect("a list of elements")
            .iter()
            .map(|e| e[ELEMENT].as_str().expect("element id").to_string())
            .collect()
    }

    pub async fn log(&self, kind: &str) -> Vec<Value> {
        let entries = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": kind})),
            )
            .await;
        entries.as_array().cloned().unwrap_or_default()
    }
}

impl Driver {
    /// Open `url` in the session.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Run `script` in the page; its return value.
    pub async fn execute(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Click an element.
    pub async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// An element's rendered text.
    pub async fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }
}

impl Driver {
    /// Save a PNG of the whole page at `path`: the window is made 1280 px wide and as tall as
    /// the page (at most 6000 px), so the picture is what a reader scrolls through.
    pub async fn screenshot(&self, path: &std::path::Path) {
        // Small first: the page's height is at least the window's.
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1280, "height": 600})),
        )
        .await;
        let height = self
            .execute("return Math.min(6000, Math.max(600, document.documentElement.scrollHeight));")
            .await
            .as_f64()
            .unwrap_or(900.0);
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1280, "height": height as i64 + 90})),
        )
        .await;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            png.as_str().expect("a base64 PNG"),
        )
        .expect("the screenshot decodes");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot directory");
        }
        std::fs::write(path, &bytes).expect("write the screenshot");
        println!("screenshot: {} ({} bytes)", path.display(), bytes.len());
    }

    /// Every request the browser sent since the performance log was last read: (URL, the
    /// document that made it).
    pub async fn requests(&self) -> Vec<(String, String)> {
        let mut requests = Vec::new();
        for entry in self.log("performance").await {
            let message: Value =
                serde_json::from_str(entry["message"].as_str().unwrap_or("{}")).unwrap_or_default();
            if message["message"]["method"] == json!("Network.requestWillBeSent") {
                let params = &message["message"]["params"];
                requests.push((
                    params["request"]["url"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    params["documentURL"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
        }
        requests
    }
}

/// Where browser tests save their screenshots: `$TOLLGATE_SCREENSHOT_DIR`, else
/// `target/tmp/screenshots` (Cargo's scratch directory for integration tests).
pub fn screenshot_dir() -> std::path::PathBuf {
    std::env::var_os("TOLLGATE_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"))
}
