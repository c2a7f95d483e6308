//! Prometheus in the local cluster: instant queries against the run's Prometheus, and a Prometheus
//! of a test's own (same scrape configuration) for a test that kills and restarts it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cluster::TestEnv;
use super::http::http;
use super::ports::free_port;
use super::wait::wait_until;

impl TestEnv {
    /// A Prometheus of its own (same scrape configuration as the run's), for a test that stops
    /// and restarts it. Stopped when dropped.
    pub fn own_prometheus(&self, name: &str) -> OwnPrometheus {
        let dir = Path::new(self.var("TOLLGATE_CLUSTER_DIR"));
        let port = free_port();
        let mut p = OwnPrometheus {
            config: dir.join("prometheus/prometheus.yml"),
            data: dir.join(format!("prometheus-{name}")),
            log: dir.join(format!("logs/prometheus-{name}.log")),
            port,
            child: None,
        };
        p.start();
        p
    }
}

/// A Prometheus process owned by one test.
pub struct OwnPrometheus {
    config: PathBuf,
    data: PathBuf,
    log: PathBuf,
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnPrometheus {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it (again), on the same port and storage.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("prometheus log");
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", self.config.display()))
            .arg(format!("--storage.tsdb.path={}", self.data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--storage.tsdb.retention.time=2h")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        self.child = Some(child);
    }

    /// Stops it the hard way (SIGKILL), as a crashed backend would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits until it reports ready (`/-/ready`).
    pub async fn wait_ready(&self) {
        let url = format!("{}/-/ready", self.url());
        wait_until(Duration::from_secs(60), "own Prometheus ready", || {
            let url = url.clone();
            async move {
                let r = http().get(&url).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
    }
}

impl Drop for OwnPrometheus {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Instant query against Prometheus: (labels, value) per series. None when the query failed.
pub async fn prom_query(prom: &str, query: &str) -> Option<Vec<(BTreeMap<String, String>, f64)>> {
    let resp = http()
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = resp.json().await.ok()?;
    if body["status"] != "success" {
        return None;
    }
    let out = body["data"]["result"]
        .as_array()?
        .iter()
        .filter_map(|r| {
            let labels = r["metric"]
                .as_object()?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let v: f64 = r["value"][1].as_str()?.parse().ok()?;
            Some((labels, v))
        })
        .collect();
    Some(out)
}
