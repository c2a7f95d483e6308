//! The Prometheus provider against servers that misbehave on purpose: a tiny HTTP server on a tokio
//! `TcpListener` that answers what each test tells it to (garbage, errors, NaN, warnings, hangs, huge
//! bodies). No peer needed: these run in plain `cargo test`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tollgate::analysis::providers::prometheus::{PrometheusConfig, PrometheusProvider};
use tollgate::analysis::providers::{AnalysisTarget, MetricsProvider, ProviderError, Window};
use tollgate::util::credentials::Credentials;
use tollgate::util::secret::Secret;

/// What the fake server sends back.
#[derive(Clone)]
enum Reply {
    Http {
        status: u16,
        body: Vec<u8>,
        chunked: bool,
    },
    Raw(Vec<u8>),
    Close,
    Hang,
}

fn json(status: u16, body: &str) -> Reply {
    Reply::Http {
        status,
        body: body.as_bytes().to_vec(),
        chunked: false,
    }
}

/// The parsed request the server saw: path and query parameters, and headers (lowercase names).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    params: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct FakeServer {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler: Handler = Arc::new(handler);
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (handler, seen) = (handler.clone(), seen2.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut lines = head.lines();
                let target = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .unwrap_or("/")
                    .to_string();
                let url = reqwest::Url::parse(&format!("http://x{target}")).expect("url");
                let s = Seen {
                    path: url.path().to_string(),
                    params: url
                        .query_pairs()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    headers: lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect(),
                };
                seen.lock().expect("seen").push(s.clone());
                match handler(&s) {
                    Reply::Http {
                        status,
                        body,
                        chunked,
                    } => {
                        let mut out = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n");
                        if chunked {
                            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
                            let _ = sock.write_all(out.as_bytes()).await;
                            for part in body.chunks(64 * 1024) {
                                let _ = sock
                                    .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                                    .await;
                                let _ = sock.write_all(part).await;
                                let _ = sock.write_all(b"\r\n").await;
                            }
                            let _ = sock.write_all(b"0\r\n\r\n").await;
                        } else {
                            out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                            let _ = sock.write_all(out.as_bytes()).await;
                            let _ = sock.write_all(&body).await;
                        }
                        let _ = sock.shutdown().await;
                    }
                    Reply::Raw(bytes) => {
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                    }
                    Reply::Close => {}
                    Reply::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    FakeServer { addr, seen, task }
}

fn provider_for(
    server: &FakeServer,
    tweak: impl FnOnce(&mut PrometheusConfig),
    auth: Option<Credentials>,
) -> PrometheusProvider {
    let mut c = PrometheusConfig {
        address: format!("http://{}", server.addr),
        timeout_ms: 1_000,
        ..Default::default()
    };
    tweak(&mut c);
    PrometheusProvider::new(c, auth).expect("provider")
}

fn window() -> Window {
    let end: Timestamp = "2026-11-22T16:00:00Z".parse().expect("ts");
    Window::ending_at(end, Duration::from_secs(60)).expect("window")
}

fn target() -> AnalysisTarget {
    AnalysisTarget::new("shop", "checkout")
}

async fn fails_with(reply: Reply) -> ProviderError {
    let s = serve(move |_| reply.clone()).await;
    let p = provider_for(&s, |_| {}, None);
    p.window_counts(&target(), window())
        .await
        .expect_err("must fail")
}

fn vector(items: &[(&[(&str, &str)], &str)]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|(labels, v)| {
            let m: BTreeMap<&str, &str> = labels.iter().copied().collect();
            format!(
                r#"{{"metric":{},"value":[1795363200,"{v}"]}}"#,
                serde_json::to_string(&m).expect("json")
            )
        })
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        items.join(",")
    )
}

/// A fake Prometheus that answers each of the provider's five queries for the canary with data and
/// for the baseline with nothing.
fn fake_prometheus(seen: &Seen) -> Reply {
    let q = seen.params.get("query").cloned().unwrap_or_default();
    if !q.contains(r#"track="canary""#) {
        return json(200, &vector(&[]));
    }
    let body = if q.contains("_bucket") {
        vector(&[
            (&[("le", "0.1")], "80"),
            (&[("le", "+Inf")], "100"),
            (&[("le", "0.05")], "40"),
        ])
    } else if q.contains("code=~") {
        vector(&[(&[], "7")])
    } else if q.starts_with("count(") {
        vector(&[(&[], "4")])
    } else if q.starts_with("sum(count_over_time") {
        vector(&[(&[], "240")])
    } else {
        vector(&[(&[], "100.5")])
    };
    json(200, &body)
}

#[tokio::test]
async fn reads_counts_from_a_well_behaved_server() {
    let s = serve(fake_prometheus).await;
    let p = provider_for(&s, |_| {}, None);
    let c = p.window_counts(&target(), window()).await.expect("counts");
    let can = c.canary.expect("canary data");
    assert_eq!(can.requests, 100.5);
    assert_eq!(can.errors, 7.0);
    assert_eq!(
        can.buckets,
        vec![(0.05, 40.0), (0.1, 80.0), (f64::INFINITY, 100.0)]
    );
    assert_eq!((can.series, can.samples), (4, 240));
    assert_eq!(c.baseline, None, "empty answers are no data");
    assert_eq!(c.start, window().start());
    let seen = s.seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 10, "five queries per arm");
    for r in &seen {
        assert_eq!(r.path, "/api/v1/query");
        assert_eq!(
            r.params["time"], "1795363200.000",
            "evaluated at the window's end"
        );
        assert!(r.params["query"].contains("[60s]"), "{:?}", r.params);
        assert_eq!(r.params["timeout"], "900ms");
        assert!(!r.headers.contains_key("authorization"));
    }
}

#[tokio::test]
async fn range_queries_split_points_into_windows() {
    let s = serve(|seen: &Seen| {
        assert_eq!(seen.path, "/api/v1/query_range");
        let q = seen.params.get("query").cloned().unwrap_or_default();
        if !q.contains(r#"track="canary""#) || q.contains("code=~") || q.contains("_bucket") {
            return json(200, r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#);
        }
        // Windows end at 1795363200, +60, +120; the point at +120 is missing (no data) and one
        // point is off the grid (ignored).
        json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1795363200,"10"],[1795363260,"20"],[1795363290,"999"]]}]}}"#,
        )
    })
    .await;
    let p = provider_for(&s, |_| {}, None);
    let ws = p
        .consecutive_window_counts(&target(), window(), 3)
        .await
        .expect("range");
    assert_eq!(ws.len(), 3);
    assert_eq!(ws[0].canary.as_ref().map(|a| a.requests), Some(10.0));
    assert_eq!(ws[1].canary.as_ref().map(|a| a.requests), Some(20.0));
    assert_eq!(ws[2].canary, None);
    assert_eq!(ws[1].start, window().end());
    let seen = s.seen.lock().expect("seen").clone();
    let r = &seen[0];
    assert_eq!(r.params["start"], "1795363200.000");
    assert_eq!(r.params["end"], "1795363320.000");
    assert_eq!(r.params["step"], "60.000");
}

/// Sample times no real Prometheus sends (-1e300, 1e300, a stamp past the year 292 million)
/// through the range read the controller makes before an analysis's first look (the stable
/// track's history): windows without data, never an overflow (the debug build panicked).
#[tokio::test]
async fn absurd_sample_times_are_windows_without_data() {
    let s = serve(|seen: &Seen| {
        let q = seen.params.get("query").cloned().unwrap_or_default();
        if !q.contains(r#"track="canary""#) || q.contains("code=~") || q.contains("_bucket") {
            return json(200, r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#);
        }
        json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[-1e300,"10"],[1e300,"20"],[9.3e15,"5"],[1795363200,"7"]]}]}}"#,
        )
    })
    .await;
    let p = provider_for(&s, |_| {}, None);
    let ws = p
        .consecutive_window_counts(&target(), window(), 3)
        .await
        .expect("a read, not a panic");
    assert_eq!(ws.len(), 3);
    assert_eq!(ws[0].canary.as_ref().map(|a| a.requests), Some(7.0));
    assert_eq!(ws[1].canary, None);
    assert_eq!(ws[2].canary, None);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let p = PrometheusProvider::new(
        PrometheusConfig {
            address: format!("http://127.0.0.1:{port}"),
            ..Default::default()
        },
        None,
    )
    .expect("provider");
    let e = p
        .window_counts(&target(), window())
        .await
        .expect_err("refused");
    assert!(matches!(e, ProviderError::Unreachable(_)), "{e:?}");
    assert!(e.is_transient());
    assert!(
        !e.to_string().contains("query="),
        "no PromQL in the message: {e}"
    );
}

#[tokio::test]
async fn garbage_answers_are_typed_errors() {
    let e = fails_with(json(200, "<html><body>It works!</body></html>")).await;
    assert!(matches!(e, ProviderError::Malformed(_)), "{e:?}");
    assert!(e.is_transient());
    let e = fails_with(json(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}"#,
    ))
    .await;
    assert!(matches!(e, ProviderError::Malformed(_)), "{e:?}");
    let e = fails_with(Reply::Raw(
        b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02garbage".to_vec(),
    ))
    .await;
    assert!(matches!(e, ProviderError::Transport(_)), "{e:?}");
    assert!(e.is_transient());
    let e = fails_with(Reply::Close).await;
    assert!(matches!(e, ProviderError::Transport(_)), "{e:?}");
    let e = fails_with(json(
        200,
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
    ))
    .await;
    assert!(
        matches!(e, ProviderError::UnexpectedResultType { .. }),
        "{e:?}"
    );
    assert!(!e.is_transient());
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let started = std::time::Instant::now();
    let e = fails_with(Reply::Hang).await;
    assert!(matches!(e, ProviderError::Timeout(_)), "{e:?}");
    assert!(e.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn prometheus_errors_and_http_statuses() {
    let e = fails_with(json(
        400,
        r#"{"status":"error","errorType":"bad_data","error":"1:1: parse error"}"#,
    ))
    .await;
    assert!(
        matches!(&e, ProviderError::Query { error_type, .. } if error_type == "bad_data"),
        "{e:?}"
    );
    assert!(!e.is_transient());
    let e = fails_with(json(503, r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#)).await;
    assert!(
        matches!(&e, ProviderError::Query { error_type, .. } if error_type == "timeout"),
        "{e:?}"
    );
    assert!(e.is_transient());
    let e = fails_with(json(
        422,
        r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#,
    ))
    .await;
    assert!(!e.is_transient(), "{e:?}");
    let e = fails_with(json(503, "Service Unavailable")).await;
    assert!(
        matches!(e, ProviderError::Http { status: 503, .. }),
        "{e:?}"
    );
    assert!(e.is_transient());
    let e = fails_with(json(502, "<html>bad gateway</html>")).await;
    assert!(e.is_transient(), "{e:?}");
    let e = fails_with(json(404, "404 page not found")).await;
    assert!(
        matches!(e, ProviderError::Http { status: 404, .. }),
        "{e:?}"
    );
    assert!(!e.is_transient());
    // A 200 carrying status:error is an error too.
    let e = fails_with(json(
        200,
        r#"{"status":"error","errorType":"internal","error":"boom"}"#,
    ))
    .await;
    assert!(
        matches!(e, ProviderError::Query { .. }) && e.is_transient(),
        "{e:?}"
    );
}

#[tokio::test]
async fn nan_and_infinities_are_errors_not_numbers() {
    for v in ["NaN", "+Inf", "-Inf"] {
        let body = vector(&[(&[], v)]);
        let e = fails_with(json(200, &body)).await;
        assert!(matches!(e, ProviderError::NonFinite { .. }), "{v}: {e:?}");
        assert!(e.is_transient());
    }
}

#[tokio::test]
async fn warnings_fail_the_look_unless_accepted() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"5"]}]},"warnings":["partial response: 1 of 3 stores unavailable"]}"#;
    let e = fails_with(json(200, body)).await;
    assert!(
        matches!(&e, ProviderError::Warnings(w) if w[0].contains("partial")),
        "{e:?}"
    );
    assert!(e.is_transient());

    let s = serve(|seen: &Seen| match fake_prometheus(seen) {
        Reply::Http {
            status,
            body,
            chunked,
        } => {
            let mut v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            v["warnings"] = serde_json::json!(["partial response: 1 of 3 stores unavailable"]);
            Reply::Http {
                status,
                body: v.to_string().into_bytes(),
                chunked,
            }
        }
        other => other,
    })
    .await;
    let p = provider_for(&s, |c| c.accept_warnings = true, None);
    let c = p
        .window_counts(&target(), window())
        .await
        .expect("accepted");
    assert_eq!(
        c.warnings,
        vec!["partial response: 1 of 3 stores unavailable".to_string()]
    );
    assert_eq!(c.canary.expect("data").requests, 100.5);
}

#[tokio::test]
async fn large_answers_are_bounded() {
    let big = "x".repeat(2 << 20);
    for chunked in [false, true] {
        let s = serve({
            let big = big.clone();
            move |_| Reply::Http {
                status: 200,
                body: big.clone().into_bytes(),
                chunked,
            }
        })
        .await;
        let p = provider_for(&s, |c| c.max_body_bytes = 1 << 20, None);
        let e = p
            .window_counts(&target(), window())
            .await
            .expect_err("too large");
        assert!(
            matches!(e, ProviderError::TooLarge(_)),
            "chunked {chunked}: {e:?}"
        );
        assert!(!e.is_transient());
    }
    let many: Vec<(Vec<(&str, String)>, &str)> = (0..50)
        .map(|i| (vec![("pod", format!("p{i}"))], "1"))
        .collect();
    let items: Vec<String> = many
        .iter()
        .map(|(l, v)| format!(r#"{{"metric":{{"pod":"{}"}},"value":[1,"{v}"]}}"#, l[0].1))
        .collect();
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        items.join(",")
    );
    let s = serve(move |_| json(200, &body)).await;
    let p = provider_for(&s, |c| c.max_series = 20, None);
    let e = p
        .window_counts(&target(), window())
        .await
        .expect_err("too many series");
    assert!(matches!(e, ProviderError::TooLarge(_)), "{e:?}");
}

#[tokio::test]
async fn bearer_and_basic_auth_are_sent_and_never_shown() {
    let s = serve(
        |seen: &Seen| match seen.headers.get("authorization").map(String::as_str) {
            Some("Bearer t0ps3cret") | Some("Basic YWxpY2U6aHVudGVyMg==") => fake_prometheus(seen),
            _ => json(401, "Unauthorized"),
        },
    )
    .await;
    let bearer = provider_for(
        &s,
        |_| {},
        Some(Credentials::Bearer(Secret::new("t0ps3cret"))),
    );
    assert!(bearer
        .window_counts(&target(), window())
        .await
        .expect("bearer")
        .canary
        .is_some());
    let basic = provider_for(
        &s,
        |_| {},
        Some(Credentials::Basic {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        }),
    );
    assert!(basic
        .window_counts(&target(), window())
        .await
        .expect("basic")
        .canary
        .is_some());
    assert!(!format!("{bearer:?}{basic:?}").contains("t0ps3cret"));
    assert!(!format!("{basic:?}").contains("hunter2"));

    let wrong = provider_for(
        &s,
        |_| {},
        Some(Credentials::Bearer(Secret::new("wr0ng-t0ken"))),
    );
    let e = wrong
        .window_counts(&target(), window())
        .await
        .expect_err("401");
    assert!(
        matches!(e, ProviderError::Unauthorized { status: 401 }),
        "{e:?}"
    );
    assert!(!e.is_transient());
    assert!(!format!("{e}{e:?}").contains("wr0ng"));
}

#[tokio::test]
async fn hostile_names_reach_the_server_escaped() {
    let s = serve(fake_prometheus).await;
    let p = provider_for(&s, |_| {}, None);
    let hostile = "x\"} or vector(1) or m{a=\"\\";
    let t = AnalysisTarget::new("shop", hostile);
    let _ = p.window_counts(&t, window()).await;
    let seen = s.seen.lock().expect("seen").clone();
    for r in seen {
        let q = &r.params["query"];
        assert!(
            q.contains(r#"rollout="x\"} or vector(1) or m{a=\"\\""#),
            "{q}"
        );
    }
}

/// A server posing as Prometheus that answers every query as expensively as it can: even
/// requests get 8 MiB of well-formed series, streamed without a length; odd ones an answer just
/// under the body cap made of series with the most labels a series may have, long values each.
async fn expensive_server() -> FakeServer {
    let item = r#"{"metric":{"le":"0.005"},"value":[1765000000,"12.5"]},"#;
    let mut streamed = br#"{"status":"success","data":{"resultType":"vector","result":["#.to_vec();
    while streamed.len() < 8 << 20 {
        streamed.extend_from_slice(item.as_bytes());
    }
    streamed.extend_from_slice(br#"{"value":[1,"1"]}]}}"#);
    let value = "v".repeat(100);
    let labels: Vec<String> = (0..32).map(|i| format!(r#""l{i}":"{value}""#)).collect();
    let series = format!(r#"{{"metric":{{{}}},"value":[1,"1"]}}"#, labels.join(","));
    let mut items = Vec::new();
    while (items.len() + 1) * (series.len() + 1) < (1 << 20) - 200 {
        items.push(series.as_str());
    }
    let labelled = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        items.join(",")
    );
    assert!(labelled.len() < 1 << 20, "{}", labelled.len());
    let count = std::sync::atomic::AtomicUsize::new(0);
    serve(move |_| {
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stream = n.is_multiple_of(2);
        Reply::Http {
            status: 200,
            body: if stream {
                streamed.clone()
            } else {
                labelled.clone().into_bytes()
            },
            chunked: stream,
        }
    })
    .await
}

/// A `kB` figure from `tollgate bench-prometheus`'s output.
fn reported_kb(out: &str, field: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in:\n{out}"))
}

/// Sixteen looks at once (ten queries each), twice over, against a server answering 8 MiB or
/// as much as the cap lets through: the real provider in a real `tollgate` process keeps its
/// peak resident memory under 128 MiB (the chart's limit is 256 MiB), and no look has data.
/// Without the process's budget, 160 reads of up to 1 MiB each and their parsed series would
/// pass that bound.
#[tokio::test]
async fn sixteen_looks_at_eight_mib_answers_stay_under_128_mib() {
    let s = expensive_server().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["bench-prometheus", "--looks", "16", "--rounds", "2"])
        .arg(format!("--address=http://{}", s.addr))
        .output()
        .await
        .expect("run tollgate bench-prometheus");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak = reported_kb(&text, "VmHWM:");
    let before = reported_kb(&text, "VmRSS before:");
    println!(
        "{text}peak resident memory {peak} kB ({} MiB), {before} kB before the looks",
        peak / 1024
    );
    assert!(!text.contains("looks data:"), "{text}");
    assert!(text.contains("looks too large:"), "{text}");
    assert!(peak < 128 * 1024, "peak {peak} kB\n{text}");
    assert!(s.seen.lock().expect("seen").len() >= 16, "the looks asked");
}
