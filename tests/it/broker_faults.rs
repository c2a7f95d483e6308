//! The contract gate against a real local HTTP server that misbehaves on purpose. None of these
//! faults may pass the gate, and each gives its own readable reason. No external binary needed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::broker::*;
use tollgate::gates::broker::{
    run_gate, BlockKind, BrokerApi, CanIDeployRequest, ContractVerdict, DeploymentRecord,
    GateDecision, GatePolicy,
};

const NO: &str = r#"{"summary":{"deployable":false,"reason":"The verification for the pact between Web and Api failed","success":0,"failed":1,"unknown":0},"matrix":[],"notices":[]}"#;
const YES: &str = r#"{"summary":{"deployable":true,"reason":"All required verification results are published and successful","success":1,"failed":0,"unknown":0},"matrix":[]}"#;
const UNKNOWN: &str = r#"{"summary":{"deployable":null,"reason":"There is no verified pact between version 1 of Web and a version of Api currently in production","success":0,"failed":0,"unknown":1}}"#;

fn request() -> CanIDeployRequest {
    CanIDeployRequest {
        pacticipant: "Web".into(),
        version: "1.0.0".into(),
        environment: "production".into(),
        ignore: vec![],
    }
}

async fn gate(base: &str, attempts: u32) -> GateDecision {
    let broker = fast_broker(base, None);
    run_gate(
        &broker,
        &request(),
        &fast_policy(attempts),
        tokio::time::sleep,
    )
    .await
}

/// The gate with no unknown budget: an unreachable broker blocks after one ask's retries (with a
/// budget it is asked again within it, as for an unknown answer).
async fn gate_without_budget(base: &str, attempts: u32) -> GateDecision {
    let broker = fast_broker(base, None);
    let policy = GatePolicy {
        unknown_budget: Duration::ZERO,
        ..fast_policy(attempts)
    };
    run_gate(&broker, &request(), &policy, tokio::time::sleep).await
}

fn blocked_by_error(d: &GateDecision) {
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: BlockKind::BrokerError
        },
        "{}",
        d.reason
    );
}

#[tokio::test]
async fn connection_refused_blocks() {
    let addr = closed_port().await;
    let d = gate(&format!("http://{addr}/"), 2).await;
    blocked_by_error(&d);
    assert_eq!(d.error.as_deref(), Some("ConnectError"));
    assert!(
        d.reason.contains("cannot connect to the Pact Broker"),
        "{}",
        d.reason
    );
    assert!(
        d.reason.contains("gave up after 2 attempts"),
        "{}",
        d.reason
    );
}

#[tokio::test]
async fn slower_than_the_timeout_blocks() {
    let server =
        FaultServer::start(vec![Reply::json(200, YES).delayed(Duration::from_secs(5))]).await;
    let started = Instant::now();
    let d = gate_without_budget(&server.base_url(), 2).await;
    blocked_by_error(&d);
    assert_eq!(d.error.as_deref(), Some("Timeout"));
    assert!(
        d.reason.contains("did not answer within 500ms"),
        "{}",
        d.reason
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout was not applied"
    );
    assert_eq!(server.requests().len(), 2, "a timeout is retried");
}

#[tokio::test]
async fn error_500_then_200_is_retried_and_the_answer_counts() {
    let server = FaultServer::start(vec![
        Reply::json(500, r#"{"error":"boom"}"#),
        Reply::json(200, NO),
    ])
    .await;
    let d = gate(&server.base_url(), 3).await;
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: BlockKind::NotDeployable
        }
    );
    assert!(
        d.reason
            .contains("The verification for the pact between Web and Api failed"),
        "{}",
        d.reason
    );
    assert_eq!(server.requests().len(), 2);

    // The same recovery with a yes passes: retries are real, not a disguised block.
    let server = FaultServer::start(vec![Reply::json(503, ""), Reply::json(200, YES)]).await;
    assert_eq!(
        gate(&server.base_url(), 3).await.verdict,
        ContractVerdict::Pass
    );
}

#[tokio::test]
async fn error_500_every_time_blocks() {
    let server =
        FaultServer::start(vec![Reply::json(500, r#"{"error":"database is down"}"#)]).await;
    let d = gate_without_budget(&server.base_url(), 3).await;
    blocked_by_error(&d);
    assert!(d.reason.contains("HTTP 500"), "{}", d.reason);
    assert!(d.reason.contains("database is down"), "{}", d.reason);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    let server = FaultServer::start(vec![
        Reply::json(429, "").header("Retry-After", "1"),
        Reply::json(200, NO),
    ])
    .await;
    let started = Instant::now();
    let d = gate(&server.base_url(), 3).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: BlockKind::NotDeployable
        }
    );

    let server = FaultServer::start(vec![Reply::json(429, "").header("Retry-After", "1")]).await;
    let d = gate(&server.base_url(), 2).await;
    blocked_by_error(&d);
    assert_eq!(d.error.as_deref(), Some("RateLimited"));
    assert!(
        d.reason.contains("rate limiting (HTTP 429)"),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("retry after 1s"), "{}", d.reason);
}

#[tokio::test]
async fn unknown_polls_then_blocks_as_unknown() {
    let server = FaultServer::start(vec![Reply::json(200, UNKNOWN)]).await;
    let d = gate(&server.base_url(), 3).await;
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: BlockKind::Unknown
        }
    );
    assert!(
        d.reason
            .contains("no verified pact between version 1 of Web"),
        "{}",
        d.reason
    );
    let asks = server.requests().len();
    // budget 100 ms at 20 ms intervals: asked again at least once, and a bounded number of times.
    assert!((2..=8).contains(&asks), "asked {asks} times");

    // Unknown, then yes: passes.
    let server = FaultServer::start(vec![Reply::json(200, UNKNOWN), Reply::json(200, YES)]).await;
    assert_eq!(
        gate(&server.base_url(), 3).await.verdict,
        ContractVerdict::Pass
    );
}

#[tokio::test]
async fn bodies_that_do_not_parse_block_each_with_its_own_reason() {
    let html = b"<!DOCTYPE html><html><head><title>Sign in - Corporate SSO</title></head><body>login</body></html>";
    let cases: Vec<(&str, Reply, &str, &str)> = vec![
        (
            "garbage JSON",
            Reply::json(200, r#"{"summary": {"deployable": tru"#),
            "InvalidJson",
            "is not valid JSON",
        ),
        (
            "HTML error page",
            Reply::raw(200, "text/html; charset=utf-8", html),
            "HtmlPage",
            "Sign in - Corporate SSO",
        ),
        (
            "empty body",
            Reply::json(200, ""),
            "EmptyBody",
            "empty body",
        ),
        (
            "huge body",
            Reply::raw(200, "application/json", b"").with_body(Body::Endless {
                max: 8 * 1024 * 1024,
            }),
            "BodyTooLarge",
            "larger than the 65536-byte cap",
        ),
        (
            "wrong shape",
            Reply::json(200, r#"{"summary":{"deployable":"yes"}}"#),
            "UnexpectedShape",
            "not in the expected shape",
        ),
        (
            "401 empty",
            Reply::raw(401, "text/plain", b""),
            "Unauthorized",
            "refused the credentials",
        ),
        (
            "400 errors",
            Reply::json(
                400,
                r#"{"errors":{"environment":["Environment with name 'production' does not exist"]}}"#,
            ),
            "BadRequest",
            "Environment with name 'production' does not exist",
        ),
        ("404", Reply::json(404, ""), "NotFound", "HTTP 404"),
        (
            "502 gateway page",
            Reply::raw(502, "text/html", b"<title>Bad Gateway</title>"),
            "HttpStatus",
            "HTTP 502",
        ),
    ];
    let mut codes = BTreeSet::new();
    let mut reasons = BTreeSet::new();
    for (name, reply, code, words) in cases {
        let server = FaultServer::start(vec![reply]).await;
        let d = gate(&server.base_url(), 2).await;
        assert!(!d.passed(), "{name} passed the gate");
        blocked_by_error(&d);
        assert_eq!(d.error.as_deref(), Some(code), "{name}: {}", d.reason);
        assert!(d.reason.contains(words), "{name}: {}", d.reason);
        let permanent = !matches!(code, "HttpStatus");
        if permanent {
            assert_eq!(
                server.requests().len(),
                1,
                "{name} is permanent and must not be retried"
            );
        }
        codes.insert(code);
        reasons.insert(d.reason.clone());
        eprintln!("{name}: {}", d.reason);
    }
    assert_eq!(codes.len(), 9, "every fault has its own code");
    assert_eq!(reasons.len(), 9, "every fault has its own reason");
}

#[tokio::test]
async fn huge_body_with_content_length_is_refused_without_reading() {
    let big = vec![b' '; 200 * 1024];
    let server = FaultServer::start(vec![Reply::raw(200, "application/json", &big)]).await;
    let d = gate(&server.base_url(), 1).await;
    assert_eq!(d.error.as_deref(), Some("BodyTooLarge"), "{}", d.reason);
}

#[tokio::test]
async fn matrix_request_has_the_official_query() {
    let server = FaultServer::start(vec![Reply::json(200, YES)]).await;
    let broker = fast_broker(&server.base_url(), None);
    let mut req = request();
    req.ignore = vec![tollgate::gates::broker::Ignore::parse("Legacy@2.0")];
    broker.matrix(&req.to_matrix_query()).await.expect("answer");
    let first = server.requests().remove(0);
    let line = first.lines().next().unwrap().to_string();
    assert!(line.starts_with("GET /matrix?"), "{line}");
    for part in [
        "q%5B%5D%5Bpacticipant%5D=Web",
        "q%5B%5D%5Bversion%5D=1.0.0",
        "latestby=cvp",
        "environment=production",
        "ignore%5B%5D%5Bpacticipant%5D=Legacy",
        "ignore%5B%5D%5Bversion%5D=2.0",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}

#[tokio::test]
async fn record_deployment_faults_are_reported_not_hidden() {
    // The index answers, then the version resource is an HTML page.
    let index = r#"{"_links":{"pb:pacticipant-version":{"href":"/pacticipants/{pacticipant}/versions/{version}"}}}"#;
    let server = FaultServer::start(vec![
        Reply::json(200, index),
        Reply::raw(200, "text/html", b"<html><title>Oops</title></html>"),
    ])
    .await;
    let broker = fast_broker(&server.base_url(), None);
    let rec = DeploymentRecord {
        pacticipant: "Web".into(),
        version: "1.0.0".into(),
        environment: "production".into(),
        application_instance: None,
    };
    let e = broker.record_deployment(&rec).await.unwrap_err();
    assert_eq!(e.code(), "HtmlPage", "{e}");

    // A link to another origin is not followed (credentials would go there).
    let evil = r#"{"_links":{"pb:pacticipant-version":{"href":"http://127.0.0.2:1/pacticipants/{pacticipant}/versions/{version}"}}}"#;
    let server = FaultServer::start(vec![Reply::json(200, evil)]).await;
    let broker = fast_broker(&server.base_url(), None);
    let e = broker.record_deployment(&rec).await.unwrap_err();
    assert_eq!(e.code(), "LinkOffOrigin", "{e}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn controller_step_retries_transient_then_classifies() {
    use tollgate::gates::broker::{ask_with_retries, classify, AnswerKind};
    let server = FaultServer::start(vec![
        Reply::json(503, ""),
        Reply::json(429, "").header("Retry-After", "0"),
        Reply::json(200, UNKNOWN),
    ])
    .await;
    let broker = fast_broker(&server.base_url(), None);
    let out = ask_with_retries(
        &broker,
        &request(),
        &fast_policy(3).retry,
        tokio::time::sleep,
    )
    .await;
    assert_eq!(classify(&out).kind, AnswerKind::Unknown);
    assert_eq!(server.requests().len(), 3);

    let addr = closed_port().await;
    let broker = fast_broker(&format!("http://{addr}/"), None);
    let out = ask_with_retries(
        &broker,
        &request(),
        &fast_policy(2).retry,
        tokio::time::sleep,
    )
    .await;
    let c = classify(&out);
    assert_eq!(c.kind, AnswerKind::Unreachable);
    assert_eq!(c.error.as_deref(), Some("ConnectError"));
}
