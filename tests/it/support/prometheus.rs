//! Real peers for the Prometheus provider's tests: a Debian `prometheus` (or, as the second
//! backend, a single-node Debian `victoria-metrics` with the same scrape configuration) started by
//! `tests/peers/prometheus.sh`, demo-app processes on loopback addresses, and a bounded load loop
//! that keeps its own counts. Every process is owned by a guard whose `Drop` stops it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tollgate::analysis::providers::prometheus::{PrometheusConfig, PrometheusProvider};

use super::ports::{free_port, free_port_on};

/// Scrape interval of the test Prometheus.
pub const SCRAPE: Duration = Duration::from_secs(1);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Prometheus binary, or a panic that says how to get it (never a vacuous pass).
pub fn prometheus_bin() -> PathBuf {
    let p = std::env::var_os("TOLLGATE_PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    assert!(
        p.is_file(),
        "peer missing: prometheus not found at {} (apt-get install -y prometheus, or set TOLLGATE_PROMETHEUS)",
        p.display()
    );
    p
}

/// The VictoriaMetrics binary, or a panic that says how to get it (never a vacuous pass).
pub fn victoria_metrics_bin() -> PathBuf {
    let p = std::env::var_os("TOLLGATE_VICTORIA_METRICS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/victoria-metrics"));
    assert!(
        p.is_file(),
        "peer missing: victoria-metrics not found at {} (bash tests/cluster/victoria-metrics.sh, \
         or set TOLLGATE_VICTORIA_METRICS)",
        p.display()
    );
    p
}

/// Which Prometheus-compatible server answers the provider's queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Debian's `prometheus`.
    Prometheus,
    /// Debian's `victoria-metrics`, single node, scraping with `-promscrape.config`.
    VictoriaMetrics,
}

impl Backend {
    /// The name `tests/peers/prometheus.sh` takes in `TOLLGATE_METRICS_BACKEND`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Prometheus => "prometheus",
            Backend::VictoriaMetrics => "victoria-metrics",
        }
    }
}

/// The demo-app binary: $TOLLGATE_DEMO_APP, else next to this test executable's folder
/// (target/debug/demo-app), or a panic that says how to build it.
pub fn demo_app_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TOLLGATE_DEMO_APP") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "peer missing: TOLLGATE_DEMO_APP={} is not a file",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/prometheus_live-HASH -> target/debug/demo-app
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("demo-app"))
        .collect();
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "peer missing: demo-app not found (looked at {candidates:?}); build it with `cargo build -p demo-app` \
         or set TOLLGATE_DEMO_APP"
    );
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary directory, removed by the owner.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("tollgate-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A running Prometheus; stopped (and its data removed) on drop.
pub struct Prometheus {
    pub dir: PathBuf,
    pub port: u16,
    pub tls: bool,
    pub backend: Backend,
}

impl Prometheus {
    pub fn start(tag: &str) -> Self {
        Self::start_in(temp_dir(tag), None)
    }

    /// Start `backend` (Prometheus, or VictoriaMetrics with the same scrape configuration).
    pub fn start_on(backend: Backend, tag: &str) -> Self {
        Self::launch(
            backend,
            temp_dir(&format!("{tag}-{}", backend.name())),
            None,
        )
    }

    /// Start in `dir` (made by [`temp_dir`]) with a web configuration file (TLS, basic auth).
    pub fn start_in(dir: PathBuf, web_config: Option<&Path>) -> Self {
        Self::launch(Backend::Prometheus, dir, web_config)
    }

    fn launch(backend: Backend, dir: PathBuf, web_config: Option<&Path>) -> Self {
        let (bin_var, bin) = match backend {
            Backend::Prometheus => ("TOLLGATE_PROMETHEUS", prometheus_bin()),
            Backend::VictoriaMetrics => ("TOLLGATE_VICTORIA_METRICS", victoria_metrics_bin()),
        };
        let port = free_port();
        let mut cmd = Command::new(repo_root().join("tests/peers/prometheus.sh"));
        cmd.arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .arg(format!("{}s", SCRAPE.as_secs()));
        if let Some(w) = web_config {
            cmd.arg(w);
        }
        let out = cmd
            .env(bin_var, &bin)
            .env("TOLLGATE_METRICS_BACKEND", backend.name())
            .env("TOLLGATE_OWNER_PID", std::process::id().to_string())
            .output()
            .expect("run tests/peers/prometheus.sh");
        assert!(
            out.status.success(),
            "{} did not start: {}{}",
            backend.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The script prints the pid once Prometheus is ready; stop() finds it in `dir`.
        let _pid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pid from the script");
        Self {
            dir,
            port,
            tls: web_config.is_some(),
            backend,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn provider(&self) -> PrometheusProvider {
        PrometheusProvider::new(
            PrometheusConfig {
                address: self.url(),
                timeout_ms: 5_000,
                ..Default::default()
            },
            None,
        )
        .expect("provider")
    }

    /// Write (atomically) the file_sd target list `name`.
    pub fn set_targets(&self, name: &str, groups: &[TargetGroup]) {
        let json: Vec<serde_json::Value> = groups
            .iter()
            .map(|g| serde_json::json!({"targets": g.targets, "labels": g.labels}))
            .collect();
        let tmp = self.dir.join(format!("targets/.{name}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&json).expect("json"))
            .expect("write targets");
        std::fs::rename(&tmp, self.dir.join(format!("targets/{name}.json")))
            .expect("rename targets");
    }

    /// Wait until `want` targets matching `selector` are up.
    pub async fn wait_up(&self, selector: &str, want: usize) {
        let p = self.provider();
        let expr = format!("count(up{{{selector}}} == 1)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            match p.instant_query(&expr, now_ms()).await {
                Ok(a) => {
                    let n = a
                        .series
                        .first()
                        .and_then(|s| s.points.first())
                        .map(|p| p.1)
                        .unwrap_or(0.0);
                    if n as usize >= want {
                        return;
                    }
                    last = format!("{n} up");
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "targets {selector} not up after 30s ({last}); log: {}",
            self.log_tail()
        );
    }

    pub fn log_tail(&self) -> String {
        let tail = std::fs::read_to_string(self.dir.join("prometheus.log"))
            .map(|s| s.lines().rev().take(10).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default();
        format!("({}) {tail}", self.backend.name())
    }

    /// Stop now (also done on drop).
    pub fn stop(&self) {
        let _ = Command::new(repo_root().join("tests/peers/prometheus.sh"))
            .arg("stop")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

pub fn group(targets: &[&DemoApp], namespace: &str, rollout: &str, track: &str) -> TargetGroup {
    TargetGroup {
        targets: targets.iter().map(|d| d.addr.clone()).collect(),
        labels: [
            ("namespace", namespace),
            ("rollout", rollout),
            ("track", track),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

/// A demo-app process on `addr`; killed on drop.
pub struct DemoApp {
    pub addr: String,
    args: Vec<String>,
    child: Option<Child>,
}

impl DemoApp {
    pub async fn start(ip: &str, version: &str, error_rate: f64) -> Self {
        Self::start_with(ip, version, error_rate, &[]).await
    }

    /// [`Self::start`] with more demo-app flags (`--payment-failure-rate 0.2`, say).
    pub async fn start_with(ip: &str, version: &str, error_rate: f64, extra: &[&str]) -> Self {
        let addr = format!("{ip}:{}", free_port_on(ip));
        let mut args = vec![
            "--listen".to_string(),
            addr.clone(),
            "--version".into(),
            version.into(),
            "--error-rate".into(),
            error_rate.to_string(),
            "--latency-ms".into(),
            "2".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut d = Self {
            addr,
            args,
            child: None,
        };
        d.spawn().await;
        d
    }

    async fn spawn(&mut self) {
        let child = Command::new(demo_app_bin())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn demo-app");
        self.child = Some(child);
        let client = reqwest_client();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(r) = client
                .get(format!("http://{}/healthz", self.addr))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("demo-app on {} not healthy after 10s", self.addr);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill and start again on the same address: its counters start from zero (a counter reset).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn reqwest_client() -> reqwest::Client {
    tollgate::util::http::client_builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

pub fn now_ms() -> Timestamp {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).expect("now")
}

/// One answered request: when it completed and its status (None = transport error).
#[derive(Debug, Clone, Copy)]
pub struct Done {
    pub at: Timestamp,
    pub status: Option<u16>,
}

/// What the load loop saw, per arm.
#[derive(Debug, Default, Clone)]
pub struct Log {
    pub by_arm: BTreeMap<String, Vec<Done>>,
}

/// Counts the load loop itself made for one arm over a time span.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct GenCounts {
    /// Answered with a status (the app counted them).
    pub answered: u64,
    /// Answered with 5xx.
    pub errors: u64,
    /// No answer (connection refused/reset): not counted by the app.
    pub transport_failures: u64,
}

impl Log {
    pub fn counts(&self, arm: &str, from: Timestamp, to: Timestamp) -> GenCounts {
        let mut c = GenCounts::default();
        for d in self.by_arm.get(arm).into_iter().flatten() {
            if d.at < from || d.at > to {
                continue;
            }
            match d.status {
                Some(s) => {
                    c.answered += 1;
                    if s >= 500 {
                        c.errors += 1;
                    }
                }
                None => c.transport_failures += 1,
            }
        }
        c
    }

    pub fn total(&self, arm: &str) -> GenCounts {
        self.counts(arm, Timestamp::MIN, Timestamp::MAX)
    }
}

/// Bounded load: each URL gets `rate` requests per second, one at a time, for `duration`.
pub async fn load(arms: &[(&str, Vec<String>)], rate: f64, duration: Duration) -> Log {
    let log = Arc::new(Mutex::new(Log::default()));
    let client = reqwest_client();
    let mut tasks = Vec::new();
    let period = Duration::from_secs_f64(1.0 / rate);
    for (arm, urls) in arms {
        log.lock()
            .expect("log")
            .by_arm
            .entry(arm.to_string())
            .or_default();
        for url in urls {
            let (arm, url, log, client) =
                (arm.to_string(), url.clone(), log.clone(), client.clone());
            tasks.push(tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let max = (rate * duration.as_secs_f64()).ceil() as u64 + 1;
                for _ in 0..max {
                    tick.tick().await;
                    if start.elapsed() >= duration {
                        break;
                    }
                    let status = match client.get(&url).send().await {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            // Read the body so the request is complete.
                            let _ = r.bytes().await;
                            Some(s)
                        }
                        Err(_) => None,
                    };
                    let done = Done {
                        at: Timestamp::now(),
                        status,
                    };
                    log.lock()
                        .expect("log")
                        .by_arm
                        .entry(arm.clone())
                        .or_default()
                        .push(done);
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("load task");
    }
    let log = log.lock().expect("log").clone();
    log
}
