//! A scripted HTTP server on 127.0.0.1 that plays a misbehaving Pact Broker (the i-th request gets
//! the i-th reply: statuses, delays, endless or reflected bodies), and broker clients and gate
//! policies with millisecond timeouts so the fault tests stay fast.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// A client for a well-behaved peer (pact-stub-server, the pact_consumer mock server): timeouts a
/// healthy process meets on a loaded two-core machine. Matching a request against the official
/// contract's 67 interactions took the stub 575 ms under load, so the fault tests' 500 ms budget
/// made these tests fail with `Timeout` whenever the machine was busy.
pub fn peer_broker(base_url: &str, credentials: Option<Credentials>) -> HttpBroker {
    let mut cfg = BrokerConfig::new(base_url, credentials).expect("config");
    cfg.connect_timeout = Duration::from_secs(10);
    cfg.request_timeout = Duration::from_secs(10);
    HttpBroker::new(cfg).expect("client")
}

/// A client with short timeouts so fault tests stay fast (only against the fault server).
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
