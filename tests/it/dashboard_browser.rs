//! `tollgate dashboard` against the real cluster, in a real browser (Debian's chromium through
//! chromedriver, [`crate::support::webdriver`], JavaScript on): the list page shows the
//! Rollouts with their phases (one promoted, one rolled back); a change to the Rollout arrives over Server-Sent Events without a reload, on the list
//! and on the Rollout's own page (a rollout of 2.0.0 through to its rollback, with one plotted
//! point per look); the fleet table lists every pod with what it reported; with
//! `--allow-actions` the page's "pause" button sets `spec.paused` (read back from the API
//! server); without the flag no action is offered and a POST is refused, with it a POST without the page's CSRF token is
//! refused; a request with a foreign Host header (DNS rebinding) is refused; the browser logs no
//! console error (a script or style the Content Security Policy refused would be one) and sends
//! no request off 127.0.0.1. Screenshots of the list, the rolled-back Rollout's page and its
//! HTML report are saved under `$TOLLGATE_SCREENSHOT_DIR` or `target/tmp/screenshots` (printed).
//!
//! `tests/cluster/run-peer-tests.sh --test it -- --include-ignored dashboard_browser`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use tollgate::crd::{Phase, LABEL_ROLLOUT};

use crate::support::cli::tollgate;
use crate::support::http::http;
use crate::support::ports::free_port;
use crate::support::rollout_manifest::{self, NAME};
use crate::support::scenario::Scenario;
use crate::support::webdriver::{screenshot_dir, Driver};

/// A `tollgate dashboard` process, ended when dropped.
pub(crate) struct Dashboard {
    child: Child,
    pub(crate) base: String,
    port: u16,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dashboard {
    /// Start it and wait (bounded) for the line that says it serves.
    pub(crate) async fn start(kubeconfig: &str, ns: &str, allow_actions: bool) -> Dashboard {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command
            .args(["dashboard", "-n", ns, "--kubeconfig", kubeconfig])
            .args(["--port", &port.to_string()])
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if allow_actions {
            command.arg("--allow-actions");
        }
        let mut child = command.spawn().expect("start tollgate dashboard");
        let stdout = child.stdout.take().expect("stdout");
        let first = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await;
        let line = match first {
            Ok(Ok(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!("the dashboard did not start: {other:?}");
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        assert!(
            line.starts_with(&format!("tollgate dashboard: {base}/")),
            "{line}"
        );
        assert_eq!(line.contains("actions allowed"), allow_actions, "{line}");
        Dashboard { child, base, port }
    }
}

async fn set_paused(world: &Scenario, paused: bool) {
    world
        .api
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": paused}})),
        )
        .await
        .expect("patch spec.paused");
}

async fn paused(world: &Scenario) -> bool {
    world
        .api
        .get(NAME)
        .await
        .expect("read the Rollout")
        .spec
        .paused
}

/// The second Rollout of the test's namespace.
const OTHER: &str = "promoted";

/// The text of the list row's cells.
async fn row(driver: &Driver, ns: &str) -> Vec<String> {
    row_of(driver, ns, NAME).await
}

/// The text of a list row's cells.
async fn row_of(driver: &Driver, ns: &str, name: &str) -> Vec<String> {
    let cells = driver
        .elements(None, &format!("tr[id='r-{ns}/{name}'] td"))
        .await;
    let mut texts = Vec::new();
    for c in cells {
        texts.push(driver.text(&c).await);
    }
    texts
}

/// A fact of the Rollout page's summary table (the first table in `#live`), as shown now.
async fn fact(driver: &Driver, name: &str) -> String {
    let script = format!(
        "var t=document.querySelector('#live table');if(!t){{return null;}}\
         for(var i=0;i<t.rows.length;i++){{var r=t.rows[i];\
         if(r.cells.length>1&&r.cells[0].textContent==={}){{return r.cells[1].textContent;}}}}\
         return null;",
        json!(name)
    );
    driver
        .execute(&script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Wait (at most 240 s: a whole canary) until the page's fact satisfies `done`.
async fn wait_for_fact(driver: &Driver, name: &str, done: impl Fn(&str) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let value = fact(driver, name).await;
        if done(&value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the page's {name} is still {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every request the browser made went to the dashboard on 127.0.0.1, or never left the
/// machine (a `file://` report, `data:`, the browser's own `chrome://` and `about:` pages).
fn stays_local(requests: &[(String, String)]) {
    assert!(!requests.is_empty(), "the performance log records requests");
    let outside: Vec<&(String, String)> = requests
        .iter()
        .filter(|(u, _)| {
            ![
                "http://127.0.0.1:",
                "file://",
                "data:",
                "chrome://",
                "about:",
            ]
            .iter()
            .any(|p| u.starts_with(p))
        })
        .collect();
    assert!(outside.is_empty(), "requests left 127.0.0.1: {outside:?}");
}

fn no_console_errors(console: &[Value]) {
    let errors: Vec<&Value> = console
        .iter()
        .filter(|e| e["level"] == json!("SEVERE"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[tokio::test]
#[ignore = "needs the local cluster and chromium: run tests/run-all.sh"]
async fn the_dashboard_is_live_and_acts_only_when_allowed_from_its_own_pages() {
    let world = Scenario::with_stable_v1("dashboard").await;
    let ns = world.ns.name.clone();
    let kubeconfig = world.env.kubeconfig().display().to_string();
    let dir = std::env::temp_dir().join(format!("tollgate-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A second Rollout in the namespace (its own app label, one replica), promoted on its own
    // as a first deployment: the list shows a promoted and a rolled-back Rollout.
    let mut other = serde_json::to_value(rollout_manifest::rollout(
        OTHER,
        world.env.prometheus_url(),
        false,
    ))
    .unwrap();
    other["spec"]["replicas"] = json!(1);
    other["spec"]["selector"]["matchLabels"]["app"] = json!(OTHER);
    other["spec"]["template"]["metadata"]["labels"]["app"] = json!(OTHER);
    world
        .api
        .create(
            &PostParams::default(),
            &serde_json::from_value(other).unwrap(),
        )
        .await
        .expect("create the second Rollout");
    let mut driver = Driver::start().await;
    driver.open_session(&dir.join("profile"), true).await;

    // Read-only: the list shows the Rollout as the API server has it.
    let read_only = Dashboard::start(&kubeconfig, &ns, false).await;
    let loaded = Instant::now();
    driver.goto(&format!("{}/", read_only.base)).await;
    println!("list page loaded in {:?}", loaded.elapsed());
    let phase = format!(
        "{:?}",
        world.api.get(NAME).await.unwrap().status.unwrap().phase
    );
    let cells = row(&driver, &ns).await;
    assert_eq!(cells.get(1).map(String::as_str), Some(NAME), "{cells:?}");
    assert_eq!(cells.get(2), Some(&phase), "{cells:?}");
    assert_eq!(cells.get(5).map(String::as_str), Some("1.0.0"), "{cells:?}");
    assert_eq!(cells.get(7).map(String::as_str), Some("no"), "{cells:?}");

    // A change arrives live: mark the document, change the Rollout, see the cell change with
    // the mark still there (no reload).
    driver
        .execute("window.tollgateMark = 42; return null;")
        .await;
    let before = driver
        .execute("return Number(document.body.getAttribute('data-live') || '0');")
        .await;
    set_paused(&world, true).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let cells = row(&driver, &ns).await;
        if cells.get(7).map(String::as_str) == Some("yes") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change did not arrive within 30 s: {cells:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        driver.execute("return window.tollgateMark;").await,
        json!(42),
        "the page was not reloaded"
    );
    let after = driver
        .execute("return Number(document.body.getAttribute('data-live') || '0');")
        .await;
    assert!(
        after.as_f64() > before.as_f64(),
        "an SSE message was applied: {before} -> {after}"
    );

    // Read-only refuses a POST, whatever it carries, and the Rollout is untouched.
    set_paused(&world, false).await;
    let refused = http()
        .post(format!("{}/rollouts/{ns}/{NAME}/pause", read_only.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=00")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(!paused(&world).await, "a refused POST changed nothing");
    // A foreign Host (a DNS name rebound to 127.0.0.1) is refused, even for a GET.
    let rebound = http()
        .get(format!("{}/", read_only.base))
        .header("host", format!("evil.example:{}", read_only.port))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    assert!(!rebound.text().await.unwrap().contains(NAME));
    let own = http()
        .get(format!("{}/", read_only.base))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let csp = own
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");

    // The Rollout's page is live too: open it, mark it, roll out 2.0.0 with errors; the phase
    // changes on the page without a reload, through to the rollback, and the plots of the
    // rolled-back analysis have one point per look.
    let page_url = format!("{}/rollouts/{ns}/{NAME}", read_only.base);
    driver.goto(&page_url).await;
    driver
        .execute("window.tollgateMark = 43; return null;")
        .await;
    assert_eq!(fact(&driver, "phase").await, "Succeeded");
    assert!(
        driver.elements(None, "form, button").await.is_empty(),
        "a read-only dashboard offers no action"
    );
    world.roll_to("2.0.0", 0.15, None).await;
    wait_for_fact(
        &driver,
        "phase",
        |p| p != "Succeeded",
        "the rollout started",
    )
    .await;
    let status = world.finished("2.0.0").await;
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}");
    wait_for_fact(&driver, "phase", |p| p == "RolledBack", "the rollback").await;
    assert_eq!(
        driver.execute("return window.tollgateMark;").await,
        json!(43),
        "the Rollout page was not reloaded"
    );
    let looks = usize::try_from(status.analysis.as_ref().expect("analysis").looks).unwrap();
    let weight = driver.elements(None, "#live figure").await;
    assert!(weight.len() >= 4, "weight, error rate, estimate, e-values");
    let points = driver
        .call(
            reqwest::Method::GET,
            &format!("/element/{}/attribute/data-points", weight[0]),
            None,
        )
        .await;
    assert_eq!(
        points.as_str().and_then(|p| p.parse::<usize>().ok()),
        Some(looks),
        "the weight plot has one point per look"
    );
    let shots = screenshot_dir();
    driver
        .screenshot(&shots.join("dashboard-rollout-rolled-back.png"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let phase = world
            .api
            .get(OTHER)
            .await
            .ok()
            .and_then(|r| r.status)
            .map(|s| s.phase);
        if phase == Some(Phase::Succeeded) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{OTHER} was not promoted: {phase:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    driver.goto(&format!("{}/", read_only.base)).await;
    let cells = row(&driver, &ns).await;
    assert_eq!(
        cells.get(2).map(String::as_str),
        Some("RolledBack"),
        "{cells:?}"
    );
    let cells = row_of(&driver, &ns, OTHER).await;
    assert_eq!(
        cells.get(2).map(String::as_str),
        Some("Succeeded"),
        "{cells:?}"
    );
    assert_eq!(cells.get(5).map(String::as_str), Some("1.0.0"), "{cells:?}");
    driver.screenshot(&shots.join("dashboard-list.png")).await;
    // The HTML report of the same Rollout, as a file (it needs no server).
    let report = tollgate(
        &[
            "report",
            NAME,
            "-n",
            &ns,
            "-o",
            "html",
            "--kubeconfig",
            &kubeconfig,
        ],
        &[],
    );
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report_file = dir.join("report.html");
    std::fs::write(&report_file, &report.stdout).unwrap();
    driver
        .goto(&format!("file://{}", report_file.display()))
        .await;
    assert!(driver.elements(None, "figure").await.len() >= 4);
    driver
        .screenshot(&shots.join("report-rolled-back.png"))
        .await;

    // Leave the page before the server goes, so its event stream ends cleanly (a stream cut by
    // the server's exit would be logged as a network error).
    driver.goto("about:blank").await;
    no_console_errors(&driver.log("browser").await);
    stays_local(&driver.requests().await);
    drop(read_only);

    // With actions: a forged POST (no token) is refused; the page's own button pauses.
    let acting = Dashboard::start(&kubeconfig, &ns, true).await;
    let forged = http()
        .post(format!("{}/rollouts/{ns}/{NAME}/pause", acting.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("do=pause")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(!paused(&world).await, "a forged POST changed nothing");
    driver
        .goto(&format!("{}/rollouts/{ns}/{NAME}", acting.base))
        .await;
    let figures = driver.elements(None, "h2").await;
    assert!(!figures.is_empty(), "the Rollout page has its sections");
    // The fleet table lists every pod of the Rollout (after the rollback: the stable ones), the
    // passing ones too, with what each reported (status keeps only failing pods: the page asks
    // them as the fleet gate does).
    let pods: Api<Pod> = world.ns.api();
    let ours = pods
        .list(
            &ListParams::default()
                .labels(&format!("{LABEL_ROLLOUT}={NAME},tollgate.dev/track=stable")),
        )
        .await
        .expect("list the Rollout's pods");
    let mut expected: Vec<String> = ours.items.iter().map(|p| p.name_any()).collect();
    expected.sort();
    assert!(!expected.is_empty(), "the scenario runs pods");
    // The table arrives by the page's event stream (the page itself is not held up by pods).
    let deadline = Instant::now() + Duration::from_secs(30);
    while driver.elements(None, "#fleet-pods").await.is_empty() {
        assert!(Instant::now() < deadline, "no fleet table within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut listed = Vec::new();
    for row in driver.elements(None, "#fleet-pods tr").await.iter().skip(1) {
        let cells = driver.elements(Some(row), "td").await;
        let mut texts = Vec::new();
        for c in &cells {
            texts.push(driver.text(c).await);
        }
        assert_eq!(texts.len(), 5, "pod, track, version, config hash, verdict");
        assert_eq!(texts[1], "stable", "{texts:?}");
        assert_eq!(texts[2], "1.0.0", "{texts:?}");
        assert_ne!(texts[3], "-", "a reported config hash: {texts:?}");
        assert_eq!(texts[4], "matches", "{texts:?}");
        listed.push(texts[0].clone());
    }
    listed.sort();
    assert_eq!(listed, expected, "every pod of the Rollout is a row");
    let pause = driver.elements(None, "#do-pause").await;
    assert_eq!(pause.len(), 1, "one pause button");
    driver.click(&pause[0]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !paused(&world).await {
        assert!(
            Instant::now() < deadline,
            "pause did not reach the API server within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    no_console_errors(&driver.log("browser").await);
    stays_local(&driver.requests().await);
    driver.call(reqwest::Method::DELETE, "", None).await;
    drop(driver);
    drop(acting);
    world.end().await;
    let _ = std::fs::remove_dir_all(&dir);
}
