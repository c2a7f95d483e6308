//! The load generator (`load-gen`, tests/testbed) against the cluster's pods: a bounded run that
//! reports its JSON totals, or a background run over a rollout's pods (the replica ratio is the
//! traffic split) or through an HTTPRoute's weights, stopped when dropped.

use std::process::{Child, Command, Stdio};

use super::cluster::TestEnv;

/// Runs the load-gen binary (path from the env file) with these arguments; returns its JSON report.
pub fn run_load_gen(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env.bin("LOAD_GEN_BIN"))
        .args(args)
        .env("KUBECONFIG", env.kubeconfig())
        .output()
        .unwrap_or_else(|e| panic!("running load-gen: {e}"));
    assert!(
        out.status.success(),
        "load-gen failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "load-gen output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
/// Load over every ready pod of the rollout until dropped.
pub struct Load(Child);

impl Load {
    /// Load over every ready pod of the rollout (the replica ratio is the traffic split).
    pub fn start(env: &TestEnv, namespace: &str, rollout: &str, rate: u32, seconds: u32) -> Load {
        let selector = format!("tollgate.dev/rollout={rollout}");
        Load::spawn(
            env,
            &["--namespace", namespace, "--selector", &selector],
            rate,
            seconds,
        )
    }

    /// Load that follows the HTTPRoute's backend weights, as a gateway would.
    pub fn through_route(
        env: &TestEnv,
        namespace: &str,
        route: &str,
        rate: u32,
        seconds: u32,
    ) -> Load {
        Load::spawn(
            env,
            &["--namespace", namespace, "--http-route", route],
            rate,
            seconds,
        )
    }

    pub fn spawn(env: &TestEnv, targets: &[&str], rate: u32, seconds: u32) -> Load {
        let child = Command::new(env.bin("LOAD_GEN_BIN"))
            .args(targets)
            .args([
                "--rate",
                &rate.to_string(),
                "--duration-secs",
                &seconds.to_string(),
            ])
            .env("KUBECONFIG", env.kubeconfig())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start load-gen");
        Load(child)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
