//! Real demo-app processes for the fleet tests, one per "pod", each on its own 127.0.x.y address.
//! Processes are killed when the [`Fleet`] is dropped, also when a test fails.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo-app binary: `$TOLLGATE_DEMO_APP`, or `demo-app` next to the test executable's
/// target directory (`target/debug/deps/<test>` -> `target/debug/demo-app`). Panics (the test
/// fails, never passes vacuously) with the command to build it when it is missing.
pub fn demo_app_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TOLLGATE_DEMO_APP") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "TOLLGATE_DEMO_APP={} is not a file; build it with `cargo build -p demo-app`",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut candidates = Vec::new();
    for dir in exe.ancestors().skip(1).take(3) {
        candidates.push(dir.join("demo-app"));
    }
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "demo-app binary not found (looked at {candidates:?}); these tests need real demo-app \
         processes: run `cargo build -p demo-app` with the same CARGO_TARGET_DIR, or set \
         TOLLGATE_DEMO_APP=/path/to/demo-app"
    );
}

/// How one pod is started.
#[derive(Debug, Clone, Default)]
pub struct PodSpec {
    pub version: String,
    pub config: Vec<(String, String)>,
    pub fault: Option<String>,
    /// More demo-app flags (e.g. `--error-rate 1`).
    pub extra_args: Vec<String>,
}

impl PodSpec {
    pub fn new(version: &str, config: &[(&str, &str)]) -> Self {
        PodSpec {
            version: version.into(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fault: None,
            extra_args: Vec::new(),
        }
    }

    pub fn arg(mut self, flag: &str, value: &str) -> Self {
        self.extra_args.push(flag.into());
        self.extra_args.push(value.into());
        self
    }

    pub fn fault(mut self, fault: &str) -> Self {
        self.fault = Some(fault.into());
        self
    }
}

/// One running demo-app process.
pub struct Pod {
    pub name: String,
    pub ip: IpAddr,
    child: Child,
}

/// A set of demo-app processes sharing one port, on 127.0.<octet>.1, .2, ...
pub struct Fleet {
    pub octet: u8,
    pub port: u16,
    pub pods: Vec<Pod>,
    binary: PathBuf,
}

impl Fleet {
    /// A fleet on 127.0.`octet`.0/24 (give each test its own octet), on a port free right now.
    pub fn new(octet: u8) -> Fleet {
        let binary = demo_app_binary();
        let probe = TcpListener::bind((Ipv4Addr::new(127, 0, octet, 1), 0))
            .expect("bind a probe socket to find a free port");
        let port = probe.local_addr().expect("local_addr").port();
        drop(probe);
        Fleet {
            octet,
            port,
            pods: Vec::new(),
            binary,
        }
    }

    /// The address of host `host` (1..=254) of this fleet.
    pub fn ip(&self, host: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, self.octet, host))
    }

    /// Start a pod named `name` on host `host`, without waiting for it.
    pub fn spawn(&mut self, name: &str, host: u8, spec: &PodSpec) -> IpAddr {
        let ip = self.ip(host);
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--listen")
            .arg(SocketAddr::new(ip, self.port).to_string())
            .arg("--version")
            .arg(&spec.version)
            .env_remove("DEMO_CONFIG")
            .env_remove("DEMO_VERSION_FAULT")
            .env_remove("DEMO_DEPENDENCIES")
            .env_remove("DEMO_FLAGS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &spec.config {
            cmd.arg("--config").arg(format!("{k}={v}"));
        }
        if let Some(f) = &spec.fault {
            cmd.arg("--version-fault").arg(f);
        }
        cmd.args(&spec.extra_args);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.pods.push(Pod {
            name: name.into(),
            ip,
            child,
        });
        ip
    }

    /// Wait until every pod accepts connections; panics naming a pod that exited or never
    /// listened within 20 s.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for pod in &mut self.pods {
            let addr = SocketAddr::new(pod.ip, self.port);
            loop {
                if let Ok(Some(status)) = pod.child.try_wait() {
                    panic!("demo-app {} on {addr} exited early: {status}", pod.name);
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "demo-app {} did not listen on {addr} within 20 s",
                    pod.name
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for pod in &mut self.pods {
            let _ = pod.child.kill();
        }
        for pod in &mut self.pods {
            let _ = pod.child.wait();
        }
    }
}

/// `printf 'feature=blue\nreplicas=3\n' | sha256sum`: the hash demo-app reports for
/// `--config replicas=3 --config feature=blue` (README: sorted `k=v\n` lines, SHA-256, hex).
pub const BLUE_HASH: &str = "605079d5c69d87670484e2f1c5c6bd88208babd6f155a1874b57efaa92bff3f2";
/// `printf 'feature=green\nreplicas=3\n' | sha256sum`.
pub const GREEN_HASH: &str = "9d1b39af2790953d009230cf3e3c4daff7c9daa689ec0dd49fb36bc1baa5c98e";

pub const BLUE: &[(&str, &str)] = &[("replicas", "3"), ("feature", "blue")];
pub const GREEN: &[(&str, &str)] = &[("replicas", "3"), ("feature", "green")];
