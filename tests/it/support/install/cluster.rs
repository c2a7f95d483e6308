//! A private control plane (tests/cluster/start.sh: etcd, kube-apiserver, controller-manager,
//! scheduler, kwok; no Prometheus, no pod runner), for a test that installs, upgrades and
//! uninstalls the cluster-wide Rollout CRD: on the run's shared cluster that would change the CRD
//! under every test running at the same time. Stopped (tests/cluster/stop.sh) when dropped.
//!
//! It reuses the run's pod and Service CIDRs: no process binds a pod or Service IP of this
//! cluster (there is no pod runner), so nothing can collide.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::repo;
use crate::support::cluster::TestEnv;

pub struct PrivateCluster {
    pub env: TestEnv,
    dir: PathBuf,
}

impl PrivateCluster {
    /// Starts one like the run's `shared` (same binaries and CIDRs), one fake node.
    pub fn start(shared: &TestEnv) -> PrivateCluster {
        let mut command = Command::new("bash");
        command
            .arg(repo().join("tests/cluster/start.sh"))
            .env("TOLLGATE_PROMETHEUS", "0")
            .env("TOLLGATE_NODES", "1")
            .env("TOLLGATE_POD_CIDR", shared.pod_cidr())
            .env("TOLLGATE_MAX_LIFETIME", "1800")
            .env_remove("TOLLGATE_POD_RUNNER")
            .env_remove("TOLLGATE_CLUSTER_DIR")
            .stderr(Stdio::inherit());
        let output = command.output().expect("run tests/cluster/start.sh");
        assert!(
            output.status.success(),
            "the private control plane did not start ({})",
            output.status
        );
        let file = PathBuf::from(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .last()
                .expect("start.sh prints its env file")
                .trim(),
        );
        let text = std::fs::read_to_string(&file).expect("the private cluster's env file");
        let vars = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let dir = file.parent().expect("cluster dir").to_path_buf();
        PrivateCluster {
            env: TestEnv { file, vars },
            dir,
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("tests/cluster/stop.sh"))
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
