//! The fault matrix's smoke, run by the default peer run (and so by CI): one cell per peer from
//! `fault_matrix_rollouts` (a connection reset between the operator and the API server, a
//! half-open connection to Prometheus mid-analysis, a reset at the broker's deployment record) and
//! the rows only this module has, a kube-apiserver restart and an etcd restart mid-analysis on a
//! private control plane of the test's own (its own start.sh cluster, pod CIDR 127.0.11.0/24), so
//! the run's shared cluster never blinks. The same checks as every cell of the matrix; the whole
//! matrix is `tests/cluster/fault-matrix.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fault_matrix_rollouts::{
    api_server_rows, broker_rows, cell, prepare, print_row, prometheus_rows, version, At, Fault,
};
use crate::support::cluster::TestEnv;
use crate::support::scenario::{Options, Scenario};

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn api_server_connection_reset_mid_analysis() {
    api_server_rows("fms-api-reset", &[Fault::Reset]).await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn prometheus_half_open_mid_analysis() {
    prometheus_rows("fms-prom-half-open", &[Fault::HalfOpen]).await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn broker_reset_at_the_deployment_record() {
    broker_rows("fms-broker-reset", &[(Fault::Reset, At::Record)]).await;
}

/// A control plane of this test's own (tests/cluster/start.sh with its own folder, pod CIDR and
/// Service CIDR), whose kube-apiserver and etcd the test may restart without disturbing the
/// run's shared cluster. Stopped (stop.sh, by the pids it recorded) when dropped.
struct PrivateCluster {
    dir: PathBuf,
    env: TestEnv,
    restarted: Vec<Child>,
}

impl PrivateCluster {
    fn start(shared: &TestEnv) -> PrivateCluster {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let demo_app = shared.bin("DEMO_APP_BIN");
        let bins = demo_app
            .parent()
            .expect("the binaries' folder")
            .to_path_buf();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "tollgate-private-cluster-{}-{nanos:x}",
            std::process::id()
        ));
        let out = Command::new("bash")
            .arg(repo.join("tests/cluster/start.sh"))
            .env("TOLLGATE_CLUSTER_DIR", &dir)
            .env("TOLLGATE_POD_CIDR", "127.0.11.0/24")
            .env("TOLLGATE_SERVICE_CIDR", "127.0.112.0/20")
            .env("TOLLGATE_POD_RUNNER", bins.join("pod-runner"))
            .env("DEMO_APP_BIN", &demo_app)
            .env("LOAD_GEN_BIN", shared.bin("LOAD_GEN_BIN"))
            .env("TOLLGATE_MAX_LIFETIME", "1800")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run start.sh");
        assert!(
            out.status.success(),
            "the private control plane did not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let file = text.lines().last().expect("start.sh prints its env file");
        PrivateCluster {
            dir,
            env: TestEnv::from_file(PathBuf::from(file.trim())),
            restarted: Vec::new(),
        }
    }

    /// Stop `name` (SIGTERM, as a rolling restart would; SIGKILL when it has not exited 10 s
    /// later, as a crash would) and start it again with the same command line, at once. Returns
    /// how long it took to stop.
    fn restart(&mut self, name: &str) -> Duration {
        let pids_file = self.dir.join("pids");
        let pids = std::fs::read_to_string(&pids_file).expect("the pids file");
        let pid: u32 = pids
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, n)| *n == name)
            .filter_map(|(p, _)| p.parse().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no {name} in {}", pids_file.display()));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("its command line");
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let signal = |sig: &str| {
            Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(signal("-TERM"), "kill -TERM {pid} ({name})");
        let start = Instant::now();
        let mut killed = false;
        while process_alive(pid) {
            if !killed && start.elapsed() > Duration::from_secs(10) {
                // It may have exited in between: then there is nothing to kill.
                let _ = signal("-KILL");
                killed = true;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} ({pid}) did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join(format!("logs/{name}.log")))
            .expect("its log");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("restart {name}: {e}"));
        // stop.sh kills what the pids file names: the new process instead of the old one.
        let updated: String = pids
            .lines()
            .map(|l| {
                if l == format!("{pid} {name}") {
                    format!("{} {name}\n", child.id())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&pids_file, updated).expect("update the pids file");
        self.restarted.push(child);
        start.elapsed()
    }
}

fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let _ = Command::new("bash")
            .arg(repo.join("tests/cluster/stop.sh"))
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for child in &mut self.restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The restarted component gets SIGTERM (SIGKILL 10 s later, as a crash) and is started again at
/// once with the same command line; the row's fault names how long it was down. A kube-apiserver
/// that has just started answers 403 for a moment (its RBAC caches are not synced while it already
/// serves): the operator must take that as the passing trouble it is.
#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn kube_apiserver_and_etcd_restarts_mid_analysis() {
    let shared = TestEnv::load();
    let cluster = Arc::new(Mutex::new(PrivateCluster::start(&shared)));
    let env = cluster.lock().unwrap().env.clone();
    let mut world = Scenario::start_with(
        "fm-restarts",
        Options {
            env: Some(env),
            ..Options::default()
        },
    )
    .await;
    prepare(&mut world).await;
    for (i, component) in ["kube-apiserver", "etcd"].into_iter().enumerate() {
        let down = Arc::new(Mutex::new(Duration::ZERO));
        let restart = {
            let cluster = cluster.clone();
            let down = down.clone();
            async move {
                let took =
                    tokio::task::spawn_blocking(move || cluster.lock().unwrap().restart(component))
                        .await
                        .expect("restart");
                *down.lock().unwrap() = took;
            }
        };
        let (outcome, recover) = cell(
            &world,
            None,
            &version(i),
            At::MidAnalysis,
            Duration::ZERO,
            restart,
            async {},
        )
        .await;
        let down = *down.lock().unwrap();
        let fault = format!(
            "{component} restart (stopped in {:.1} s)",
            down.as_secs_f64()
        );
        print_row(
            "API server",
            &fault,
            At::MidAnalysis.name(),
            &outcome,
            recover,
        );
    }
    // Not `end()`: a kube-apiserver that has just started answers 403 until its authorizer has
    // caught up, so the operator's log holds "forbidden" that says nothing about the chart's RBAC
    // (the other tests check that).
    let Scenario { operator, ns, .. } = world;
    drop(operator);
    ns.delete().await;
    drop(cluster);
}
