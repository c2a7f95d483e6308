//! pact-stub-server, the Pact Broker stand-in: serves real contracts (the official client's,
//! `tests/fixtures/pact-broker/`, and tollgate's own, `tests/pacts/`), so a request that matches no
//! interaction gets a 404 and every answer is one a real broker gives.
//!
//! Two ways to run it, because it always binds 0.0.0.0:
//! - [`Stub`]: for tests whose client runs in the test's own thread. The thread moves into a
//!   private network namespace ([`isolate_network`]) where only loopback exists, and the stub is
//!   spawned from it.
//! - [`Broker`]: for tests whose client is another process that must stay in the host's network
//!   (the e2e operator). `tests/cluster/pact-stub.sh start` runs the stub in its own namespace and
//!   bridges one loopback port to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::free_port;

/// The official broker client's contract (see `tests/fixtures/pact-broker/SOURCE.md`).
pub const REFERENCE_CONTRACT: &str = "tests/fixtures/pact-broker/pact-broker-client-contract.json";
/// tollgate's own consumer contract, written by `broker_consumer_contract`.
pub const OWN_CONTRACT: &str = "tests/pacts/tollgate-Pact Broker.json";

pub fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The pact-stub-server binary from TOLLGATE_PACT_STUB_SERVER. Panics (fails the test) when it is
/// not set or not there: these tests must never pass without having run.
pub fn stub_binary() -> PathBuf {
    let Some(p) = std::env::var_os("TOLLGATE_PACT_STUB_SERVER") else {
        panic!(
            "TOLLGATE_PACT_STUB_SERVER is not set: this test needs pact-stub-server. Install it with \
             `tests/cluster/pact-stub.sh install` and export TOLLGATE_PACT_STUB_SERVER=<printed path>, \
             or run tests/run-all.sh"
        );
    };
    let p = PathBuf::from(p);
    assert!(
        p.is_file(),
        "TOLLGATE_PACT_STUB_SERVER={} is not a file",
        p.display()
    );
    p
}

thread_local! {
    static PRIVATE_NETNS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Move the calling thread (and so the processes it spawns and the sockets it opens) into a new
/// network namespace with only loopback up. pact-stub-server binds 0.0.0.0 with no option to
/// change it; in this namespace 0.0.0.0 is loopback only, so nothing is exposed beyond this test.
/// Fails the test when the namespace cannot be made (needs root or user namespaces).
pub fn isolate_network() {
    if PRIVATE_NETNS.with(|c| c.get()) {
        return;
    }
    // SAFETY: unshare only changes the calling thread's namespace membership.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "cannot make a private network namespace for pact-stub-server (it binds 0.0.0.0): {}",
        std::io::Error::last_os_error()
    );
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run `ip link set lo up`");
    assert!(
        status.success(),
        "`ip link set lo up` failed in the private namespace"
    );
    PRIVATE_NETNS.with(|c| c.set(true));
}

/// A running pact-stub-server, killed on drop. Its output goes to `log`, which a failing test
/// prints (set TOLLGATE_STUB_LOGLEVEL=debug for every request it matched or refused).
pub struct Stub {
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl Stub {
    /// Serve `files`, keeping only interactions whose provider state matches `state_regex`
    /// (pact-stub-server's `--provider-state`), when given.
    /// The calling thread moves into a private network namespace first (see [`isolate_network`]):
    /// run the client from the same thread (current-thread runtime, no spawn_blocking).
    pub fn start(files: &[&str], state_regex: Option<&str>) -> Stub {
        let bin = stub_binary();
        isolate_network();
        for attempt in 0..5 {
            let port = pick_port();
            let mut cmd = Command::new(&bin);
            let level = std::env::var("TOLLGATE_STUB_LOGLEVEL").unwrap_or_else(|_| "info".into());
            cmd.arg("--port")
                .arg(port.to_string())
                .arg("--loglevel")
                .arg(level);
            for f in files {
                let path = manifest_path(f);
                assert!(path.is_file(), "pact file {} is missing", path.display());
                cmd.arg("--file").arg(path);
            }
            if let Some(r) = state_regex {
                cmd.arg("--provider-state").arg(r);
            }
            let log = stub_log_path(port);
            let out = std::fs::File::create(&log).expect("pact-stub-server log file");
            let err = out.try_clone().expect("pact-stub-server log file");
            cmd.stdout(out).stderr(err);
            let mut child = cmd.spawn().expect("spawn pact-stub-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if listening(port) {
                    return Stub { port, child, log };
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("pact-stub-server did not come up on port {port} (attempt {attempt})");
        }
        panic!("pact-stub-server did not start");
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "pact-stub-server on port {} ({}):\n{text}",
                self.port,
                self.log.display()
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A log file of this test process's own for the stub on `port`.
fn stub_log_path(port: u16) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "pact-stub-server-{}-{port}.log",
        std::process::id()
    ))
}

/// Whether something listens on 127.0.0.1:`port`. A connection that the kernel made to itself
/// does not count: `port` comes from the ephemeral range, so a probe whose own source port happens
/// to be the same number completes a TCP simultaneous open with nothing listening, which once made
/// a test see "Connection refused" from a stub that had "just" been seen listening.
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port))
        .is_ok_and(|s| matches!((s.local_addr(), s.peer_addr()), (Ok(a), Ok(b)) if a != b))
}

fn pick_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
/// pact-stub-server serving tollgate's own consumer contract (tests/pacts/), on loopback.
pub struct Broker {
    child: Child,
    pub url: String,
}

impl Broker {
    pub async fn start() -> Broker {
        let port = free_port();
        let root = env!("CARGO_MANIFEST_DIR");
        let child = Command::new("bash")
            .arg(format!("{root}/tests/cluster/pact-stub.sh"))
            .args(["start", &port.to_string()])
            .arg(format!("{root}/tests/pacts/tollgate-Pact Broker.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pact-stub.sh");
        let url = format!("http://127.0.0.1:{port}");
        let broker = Broker { child, url };
        let start = std::time::Instant::now();
        while !tokio::task::spawn_blocking(move || listening(port))
            .await
            .unwrap_or(false)
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "pact-stub-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // SIGTERM lets the script stop the stub and its loopback bridge.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
