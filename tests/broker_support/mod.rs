//! Shared helpers of the broker tests: a scripted fault server on 127.0.0.1, a pact-stub-server
//! launcher, and a tracing capture.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use tollgate::gates::broker::{BrokerConfig, Credentials, GatePolicy, HttpBroker, RetryPolicy};
use tollgate::util::retry::Jitter;

/// What the fault server body is.
#[derive(Clone, Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    /// Junk without a Content-Length, until the client hangs up (or `max` bytes).
    Endless {
        max: usize,
    },
    /// The raw request (head and body) the server received, as a proxy that reflects it would.
    EchoRequest,
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/hal+json;charset=utf-8".into(),
            )],
            body: Body::Bytes(body.as_bytes().to_vec()),
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, content_type: &str, body: &[u8]) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Bytes(body.to_vec()),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn with_body(mut self, b: Body) -> Self {
        self.body = b;
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A real HTTP/1.1 server on 127.0.0.1:0 that answers the i-th request with the i-th reply (the
/// last one repeats), and records every request it received.
pub struct FaultServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultServer {
    pub async fn start(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let reply = replies[n.min(replies.len() - 1)].clone();
                n += 1;
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, reply, log).await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut sock: TcpStream,
    reply: Reply,
    log: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf).to_string();
    log.lock().unwrap().push(request.clone());
    tokio::time::sleep(reply.delay).await;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status)
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    match reply.body {
        Body::Bytes(b) => {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
            sock.write_all(out.as_bytes()).await?;
            sock.write_all(&b).await?;
        }
        Body::EchoRequest => {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", request.len()));
            sock.write_all(out.as_bytes()).await?;
            sock.write_all(request.as_bytes()).await?;
        }
        Body::Endless { max } => {
            out.push_str("\r\n");
            sock.write_all(out.as_bytes()).await?;
            let junk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < max {
                if sock.write_all(&junk).await.is_err() {
                    break;
                }
                sent += junk.len();
            }
        }
    }
    let _ = sock.shutdown().await;
    Ok(())
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr
}

/// A client with short timeouts so fault tests stay fast.
pub fn fast_broker(base_url: &str, credentials: Option<Credentials>) -> HttpBroker {
    let mut cfg = BrokerConfig::new(base_url, credentials).expect("config");
    cfg.connect_timeout = Duration::from_millis(500);
    cfg.request_timeout = Duration::from_millis(500);
    cfg.max_body_bytes = 64 * 1024;
    HttpBroker::new(cfg).expect("client")
}

/// A gate policy with millisecond waits.
pub fn fast_policy(max_attempts: u32) -> GatePolicy {
    GatePolicy {
        poll_interval: Duration::from_millis(20),
        unknown_budget: Duration::from_millis(100),
        retry: RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            max_retry_after: Duration::from_secs(2),
            // Exact waits keep the fault tests' timing assertions tight.
            jitter: Jitter::None,
        },
        dry_run: false,
    }
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// ---------- pact-stub-server ----------

pub const REFERENCE_CONTRACT: &str =
    "../shared/references/pact-broker/pact-broker-client-contract.json";
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

/// A running pact-stub-server, killed on drop.
pub struct Stub {
    pub port: u16,
    child: Child,
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
            cmd.arg("--port")
                .arg(port.to_string())
                .arg("--loglevel")
                .arg("warn");
            for f in files {
                let path = manifest_path(f);
                assert!(path.is_file(), "pact file {} is missing", path.display());
                cmd.arg("--file").arg(path);
            }
            if let Some(r) = state_regex {
                cmd.arg("--provider-state").arg(r);
            }
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = cmd.spawn().expect("spawn pact-stub-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Stub { port, child };
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
    }
}

fn pick_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// ---------- tollgate's own consumer contract: the calls, shared by the pact test and the stub test ----------

use tollgate::gates::broker::{
    decide, BlockKind as Kind, BrokerApi, BrokerError, CanIDeployRequest, DeploymentRecord,
    GateProgress, GateVerdict, Ignore,
};
use tollgate::util::secret::Secret;

pub fn cid(version: &str, environment: &str, ignore: &[&str]) -> CanIDeployRequest {
    CanIDeployRequest {
        pacticipant: "Foo".into(),
        version: version.into(),
        environment: environment.into(),
        ignore: ignore.iter().map(|s| Ignore::parse(s)).collect(),
    }
}

/// Exercise every interaction of `tests/pacts/tollgate-Pact Broker.json` against `base` (the
/// pact_consumer mock server, or pact-stub-server serving the committed file) and check what the
/// gate makes of each answer.
pub async fn exercise_own_contract(base: &str) {
    let broker = fast_broker(base, None);
    let policy = GatePolicy {
        unknown_budget: Duration::ZERO,
        ..fast_policy(1)
    };
    let now = jiff::Timestamp::now();
    let ask = |req: CanIDeployRequest| {
        let broker = broker.clone();
        async move { broker.matrix(&req.to_matrix_query()).await }
    };

    // deployable: true, environment-scoped
    let a = ask(cid("1.2.3", "production", &[])).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(d.verdict, GateVerdict::Pass, "{}", d.reason);
    let answer = a.expect("answer");
    assert_eq!(answer.matrix.len(), 1);
    assert_eq!(answer.matrix[0].consumer.name, "Bar");

    // deployable: false, with the broker's reason
    let a = ask(cid("1.2.4", "production", &[])).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(
        d.verdict,
        GateVerdict::Block {
            kind: Kind::NotDeployable
        },
        "{}",
        d.reason
    );
    assert!(d.reason.contains("failed"), "{}", d.reason);

    // deployable: null -> unknown (budget zero here: blocks as unknown at once)
    let a = ask(cid("1.2.5", "production", &[])).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(
        d.verdict,
        GateVerdict::Block {
            kind: Kind::Unknown
        },
        "{}",
        d.reason
    );
    assert_eq!(
        a.as_ref()
            .ok()
            .and_then(|x| x.summary.as_ref())
            .and_then(|s| s.unknown),
        Some(1)
    );

    // environment-scoped with an ignored integration
    let a = ask(cid("1.2.5", "production", &["Bar"])).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(d.verdict, GateVerdict::Pass, "{}", d.reason);
    assert_eq!(
        a.as_ref()
            .ok()
            .and_then(|x| x.summary.as_ref())
            .and_then(|s| s.ignored),
        Some(1)
    );

    // 400 with an errors object: an environment the broker does not know
    let e = ask(cid("1.2.3", "nowhere", &[])).await.expect_err("400");
    match &e {
        BrokerError::BadRequest { errors, .. } => {
            assert_eq!(
                errors,
                &vec!["environment: Environment with name 'nowhere' does not exist".to_string()]
            )
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }

    // 401 with an empty body
    let bad = fast_broker(
        base,
        Some(Credentials::Bearer(Secret::new("expired-token"))),
    );
    let e = bad
        .matrix(&cid("1.2.6", "production", &[]).to_matrix_query())
        .await
        .expect_err("401");
    assert!(
        matches!(e, BrokerError::Unauthorized { ref body, .. } if body.is_empty()),
        "{e:?}"
    );
    assert!(!e.to_string().contains("expired-token"));

    // record a deployment without an application instance (the official contract only has one with)
    let rec = broker
        .record_deployment(&DeploymentRecord {
            pacticipant: "Foo".into(),
            version: "1.2.3".into(),
            environment: "production".into(),
            application_instance: None,
        })
        .await
        .expect("recorded");
    assert_eq!(rec.status, 201);
    assert!(
        rec.url
            .ends_with("/deployed-versions/environment/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b"),
        "{}",
        rec.url
    );
    assert_eq!(
        rec.uuid.as_deref(),
        Some("0b4f0f5e-5c1a-4f55-b6f8-8d7f6f2f1c11")
    );
}
