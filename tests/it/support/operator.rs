//! The operator under test: a real `tollgate controller` process watching one namespace, run
//! under the Helm chart's ServiceAccount (so the real RBAC authorizer checks the chart's
//! permissions), with its log in a file, its admin server on a free loopback port, and its peak
//! memory recorded for the run's summary when it stops. Killed when dropped.

use std::process::{Child, Command, Stdio};

use super::cluster::TestEnv;
use super::http::http;
use super::ports::free_port;

/// The operator, killed when the test ends (also when it fails).
pub struct Operator {
    pub child: Child,
    pub log: std::path::PathBuf,
    pub admin: String,
}

impl Operator {
    pub fn start(env: &TestEnv, namespace: &str) -> Operator {
        Operator::start_with(env, namespace, "operator", &[])
    }

    pub fn start_args(env: &TestEnv, namespace: &str, extra: &[String]) -> Operator {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        Operator::start_with(env, namespace, "operator", &extra)
    }

    pub fn start_with(env: &TestEnv, namespace: &str, identity: &str, extra: &[&str]) -> Operator {
        let kubeconfig = env.chart_service_account_kubeconfig(namespace);
        Operator::start_with_kubeconfig(env, namespace, identity, &kubeconfig, extra)
    }

    /// As [`Operator::start_with`], with another kubeconfig (e.g. one that reaches the API
    /// server through a fault proxy).
    pub fn start_with_kubeconfig(
        _env: &TestEnv,
        namespace: &str,
        identity: &str,
        kubeconfig: &std::path::Path,
        extra: &[&str],
    ) -> Operator {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("tollgate-{identity}-{namespace}.log"));
        let file = std::fs::File::create(&log).expect("operator log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "controller",
                "--namespace",
                namespace,
                "--identity",
                identity,
                "--admin-addr",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            // The tests' brokers and Prometheus servers listen on loopback: allowed, as a
            // multi-tenant install allows its own peers' hosts.
            .args([
                "--allowed-broker-hosts=127.0.0.1,localhost",
                "--allowed-prometheus-hosts=127.0.0.1,localhost",
            ])
            .args(extra)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start tollgate controller");
        Operator {
            child,
            log,
            admin: format!("http://127.0.0.1:{port}"),
        }
    }

    /// What `/readyz` says (None while the admin server does not answer).
    pub async fn readyz(&self) -> Option<String> {
        let response = http()
            .get(format!("{}/readyz", self.admin))
            .send()
            .await
            .ok()?;
        response.text().await.ok()
    }

    /// Fails the test when the API server ever refused the operator: the chart's RBAC must be
    /// enough for everything it does.
    pub fn assert_never_forbidden(&self) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let refused: Vec<&str> = text
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("forbidden"))
            .take(5)
            .collect();
        assert!(
            refused.is_empty(),
            "the operator was refused under the chart's RBAC:\n{}",
            refused.join("\n")
        );
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // Its peak resident memory, for the run's summary (tests/cluster/run-peer-tests.sh).
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        let peak = status.ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        });
        if let (Some(kb), Ok(dir)) = (peak, std::env::var("TOLLGATE_TEST_ENV")) {
            let file = std::path::Path::new(&dir).with_file_name("operator-peaks.txt");
            let name = self.log.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
            {
                use std::io::Write;
                let _ = writeln!(f, "{name} - {kb}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
