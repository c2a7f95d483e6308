//! Payloads and URL checks (which transitions notify is `decide`'s). Deliveries against real HTTP servers are in
//! `tests/notifications.rs`.

use std::collections::BTreeSet;

use super::*;
use crate::crd::{
    AnalysisStatus, ContractGateStatus, Decision, FleetStatus, MetricStatus, PodFinding,
};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// `examples/rollout-replica-ratio.yaml` (checkout 2.4.0 in shop) with `status`.
fn rollout(status: RolloutStatus) -> Rollout {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/rollout-replica-ratio.yaml"
    ))
    .unwrap();
    let mut r: Rollout = serde_saphyr::from_str(&text).unwrap();
    r.status = Some(status);
    r
}

fn decision(phase: Phase, reason: &str, t: i64) -> Decision {
    Decision {
        at: at(t),
        phase,
        reason: reason.into(),
        message: format!("{reason} at {t}"),
    }
}

fn analyzing() -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Analyzing,
        stable_version: Some("2.3.0".into()),
        canary_version: Some("2.4.0".into()),
        history: vec![decision(Phase::Analyzing, "AnalysisStarted", 0)],
        ..Default::default()
    }
}

fn rolled_back() -> RolloutStatus {
    let mut s = analyzing();
    s.phase = Phase::RolledBack;
    s.canary_version = None;
    s.rejected_version = Some("2.4.0".into());
    s.reason = Some("AnalysisFailed".into());
    s.message = Some(
        "rolled back to 2.3.0: canary 2.4.0 regressed: error-rate ratio 3.1 [2.2, 4.4]".into(),
    );
    s.observed_generation = Some(3);
    s.analysis = Some(AnalysisStatus {
        verdict: MetricVerdict::Fail,
        looks: 7,
        metrics: vec![
            MetricStatus {
                name: "error-rate".into(),
                verdict: MetricVerdict::Fail,
                estimate: Some(3.1),
                lower: Some(2.2),
                upper: Some(4.4),
                reason: Some("rate ratio above tolerance 1.2".into()),
                ..Default::default()
            },
            MetricStatus {
                name: "latency-p99".into(),
                verdict: MetricVerdict::Pass,
                estimate: Some(f64::NAN),
                ..Default::default()
            },
        ],
        judge_state: Some(serde_json::json!({"big": "state"})),
        ..Default::default()
    });
    s.history
        .push(decision(Phase::RollingBack, "AnalysisFailed", 60));
    s.history
        .push(decision(Phase::RolledBack, "AnalysisFailed", 70));
    s
}

fn blocked() -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Blocked,
        stable_version: Some("2.3.0".into()),
        rejected_version: Some("2.4.0".into()),
        reason: Some("NotDeployable".into()),
        message: Some("can-i-deploy checkout 2.4.0 to production: no: payments 1.2 fails".into()),
        contract_gate: Some(ContractGateStatus {
            verdict: GateVerdict::Blocked,
            deployable: Some(false),
            reason: Some("payments 1.2 fails".into()),
            ..Default::default()
        }),
        history: vec![decision(Phase::Blocked, "NotDeployable", 10)],
        ..Default::default()
    }
}

fn promoted() -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Succeeded,
        stable_version: Some("2.4.0".into()),
        reason: Some("Promoted".into()),
        message: Some("2.4.0 is stable and every pod runs it".into()),
        history: vec![decision(Phase::Succeeded, "Promoted", 90)],
        ..Default::default()
    }
}

/// The notification `decide` asks for when it enters `status.phase` (whether it does is
/// `decide`'s: see `rollout::decide`'s notification table).
fn notification(status: RolloutStatus, at: Timestamp) -> Option<Notification> {
    let event = NotificationEvent::for_phase(status.phase)?;
    Notification::for_event(&rollout(status), event, at)
}

#[test]
fn the_version_is_the_one_blocked_rolled_back_or_promoted() {
    // Blocked for 2.4.0, then spec.version moved to 2.5.0 and it was blocked again: the
    // notification names 2.5.0.
    let mut again = blocked();
    again.rejected_version = Some("2.5.0".into());
    let n = notification(again, at(200)).unwrap();
    assert_eq!(
        (n.event, n.version.as_str()),
        (NotificationEvent::Blocked, "2.5.0")
    );
    let n = notification(promoted(), at(90)).unwrap();
    assert_eq!(
        (n.event, n.version.as_str()),
        (NotificationEvent::Promoted, "2.4.0")
    );
    assert!(notification(analyzing(), at(10)).is_none());
}

#[test]
fn json_payload_has_the_documented_fields() {
    let n = notification(rolled_back(), at(70)).unwrap();
    let v = n.payload(WebhookFormat::Json);
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "kind",
            "event",
            "namespace",
            "name",
            "version",
            "stableVersion",
            "phase",
            "reason",
            "message",
            "time",
            "generation",
            "evidence"
        ])
    );
    assert_eq!(v["kind"], "tollgate.rollout");
    assert_eq!(v["event"], "RolledBack");
    assert_eq!(v["namespace"], "shop");
    assert_eq!(v["name"], "checkout");
    assert_eq!(v["version"], "2.4.0");
    assert_eq!(v["stableVersion"], "2.3.0");
    assert_eq!(v["phase"], "RolledBack");
    assert_eq!(v["reason"], "AnalysisFailed");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("rolled back to 2.3.0: canary 2.4.0 regressed"));
    assert_eq!(v["time"], at(70).to_string());
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["generation"], 3);
    let analysis = &v["evidence"]["analysis"];
    assert_eq!(analysis["verdict"], "Fail");
    assert_eq!(analysis["looks"], 7);
    assert_eq!(analysis["metrics"][0]["name"], "error-rate");
    assert_eq!(analysis["metrics"][0]["verdict"], "Fail");
    assert_eq!(analysis["metrics"][0]["estimate"], 3.1);
    assert_eq!(analysis["metrics"][0]["lower"], 2.2);
    // NaN is left out rather than sent as something a receiver cannot parse.
    assert!(analysis["metrics"][1].get("estimate").is_none());
    // The judge's running state is not evidence and stays out.
    assert!(!v.to_string().contains("big"), "{v}");
    assert!(v["evidence"].get("contractGate").is_none());
    // The bytes posted are that object, in the documented field order.
    let body = String::from_utf8(n.body(WebhookFormat::Json).unwrap()).unwrap();
    assert!(
        body.starts_with(
            r#"{"kind":"tollgate.rollout","event":"RolledBack","namespace":"shop","name":"checkout","version":"2.4.0","stableVersion":"2.3.0","phase":"RolledBack","reason":"AnalysisFailed","#
        ),
        "{body}"
    );
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), v);
    let slack = n.body(WebhookFormat::Slack).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&slack).unwrap(),
        n.payload(WebhookFormat::Slack)
    );
}

#[test]
fn blocked_and_promoted_payloads_name_the_right_versions_and_evidence() {
    let n = notification(blocked(), at(10)).unwrap();
    let v = n.payload(WebhookFormat::Json);
    assert_eq!(v["event"], "Blocked");
    assert_eq!(v["version"], "2.4.0");
    assert_eq!(v["stableVersion"], "2.3.0");
    assert_eq!(v["evidence"]["contractGate"]["verdict"], "Blocked");
    assert_eq!(v["evidence"]["contractGate"]["deployable"], false);
    assert_eq!(
        v["evidence"]["contractGate"]["reason"],
        "payments 1.2 fails"
    );

    let n = notification(promoted(), at(90)).unwrap();
    let v = n.payload(WebhookFormat::Json);
    assert_eq!(
        (v["event"].as_str(), v["version"].as_str()),
        (Some("Promoted"), Some("2.4.0"))
    );
    assert_eq!(v["phase"], "Succeeded");
    assert!(v.get("generation").is_none());
}

#[test]
fn fleet_evidence_is_capped_but_counted() {
    let mut s = blocked();
    s.contract_gate = None;
    s.reason = Some("FleetCheckFailed".into());
    s.fleet = Some(FleetStatus {
        verdict: GateVerdict::Blocked,
        pods_checked: 30,
        pods_failing: 12,
        failing_pods: (0..12)
            .map(|i| PodFinding {
                pod: format!("checkout-canary-{i}"),
                problem: "VersionMismatch".into(),
                reported: Some("2.3.0".into()),
                expected: Some("2.4.0".into()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    let n = notification(s, at(10)).unwrap();
    let v = n.payload(WebhookFormat::Json);
    assert_eq!(v["evidence"]["fleet"]["podsFailing"], 12);
    assert_eq!(
        v["evidence"]["fleet"]["failingPods"]
            .as_array()
            .unwrap()
            .len(),
        MAX_PODS_IN_PAYLOAD
    );
    let lines = n.evidence_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0]
        .starts_with("fleet check: 12 of 30 pods failing: checkout-canary-0 (VersionMismatch)"));
}

#[test]
fn slack_payload_has_a_short_sentence_and_blocks() {
    let n = notification(promoted(), at(90)).unwrap();
    let v = n.payload(WebhookFormat::Slack);
    assert_eq!(
        v["text"],
        ":white_check_mark: checkout 2.4.0 promoted in shop"
    );
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "section");
    assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
    assert_eq!(blocks.last().unwrap()["type"], "context");
    assert!(v.get("kind").is_none(), "Slack gets its own shape: {v}");

    let n = notification(rolled_back(), at(70)).unwrap();
    let v = n.payload(WebhookFormat::Slack);
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            ":rotating_light: checkout 2.4.0 rolled back in shop: rolled back to 2.3.0"
        ),
        "{text}"
    );
    let all = v.to_string();
    assert!(
        all.contains("error-rate: Fail, estimate 3.100 [2.200, 4.400]"),
        "{all}"
    );
    // A passing metric is not news in a rollback message.
    assert!(!all.contains("latency-p99"), "{all}");

    let n = notification(blocked(), at(10)).unwrap();
    let v = n.payload(WebhookFormat::Slack);
    assert!(v["text"]
        .as_str()
        .unwrap()
        .starts_with(":no_entry: checkout 2.4.0 blocked in shop: can-i-deploy"));
    // The message quotes the broker already: no second copy.
    assert_eq!(n.evidence_lines(), Vec::<String>::new());
    let mut s = blocked();
    s.message = Some("blocked".into());
    let n = notification(s, at(10)).unwrap();
    let v = n.payload(WebhookFormat::Slack);
    assert!(
        v.to_string().contains("contract gate: payments 1.2 fails"),
        "{v}"
    );
}

#[test]
fn slack_text_escapes_its_control_characters_and_long_messages_are_cut() {
    let mut s = blocked();
    s.message = Some(format!("<!channel> a & b > c {}", "x".repeat(5000)));
    let n = notification(s, at(10)).unwrap();
    assert_eq!(n.message.chars().count(), MAX_MESSAGE_CHARS + 1);
    assert!(n.message.ends_with('…'));
    let v = n.payload(WebhookFormat::Slack);
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("&lt;!channel&gt; a &amp; b &gt; c"), "{text}");
    assert!(!v.to_string().contains("<!channel>"));
    for block in v["blocks"].as_array().unwrap() {
        if let Some(t) = block["text"]["text"].as_str() {
            assert!(
                t.chars().count() <= 3000,
                "Slack refuses longer section text"
            );
        }
    }
}

#[test]
fn webhook_urls_are_checked_and_never_shown_in_full() {
    let url = WebhookUrl::parse(" https://hooks.slack.com/services/T000/B000/XXXXSECRET ").unwrap();
    assert_eq!(url.redacted(), "https://hooks.slack.com/…");
    assert!(!format!("{url:?}").contains("SECRET"));
    assert!(!format!("{:?}", NotifierConfig::new(url.clone())).contains("SECRET"));
    assert_eq!(
        WebhookUrl::parse("http://127.0.0.1:9000/hook")
            .unwrap()
            .redacted(),
        "http://127.0.0.1:9000/…"
    );
    assert_eq!(WebhookUrl::parse("  "), Err(WebhookUrlError::Empty));
    assert_eq!(
        WebhookUrl::parse("ftp://example.com/x"),
        Err(WebhookUrlError::Scheme("ftp".into()))
    );
    assert!(matches!(
        WebhookUrl::parse("hooks.slack.com/services/T000/B000/XXXXSECRET"),
        Err(WebhookUrlError::Parse(_))
    ));
    let e = WebhookUrl::parse("hooks.slack.com/services/T000/B000/XXXXSECRET").unwrap_err();
    assert!(!e.to_string().contains("SECRET"), "{e}");
    assert!(WebhookUrl::parse("http://").is_err());
    assert!(WebhookUrl::parse("https://:443/x").is_err());
}

#[test]
fn retryable_statuses() {
    use reqwest::StatusCode;
    for s in [408, 429, 500, 502, 503, 504] {
        assert!(is_retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
    }
    for s in [200, 301, 302, 400, 401, 403, 404, 410, 413, 422] {
        assert!(
            !is_retryable_status(StatusCode::from_u16(s).unwrap()),
            "{s}"
        );
    }
}

#[test]
fn defaults_are_four_attempts_one_two_four_seconds_apart() {
    let c = NotifierConfig::new(WebhookUrl::parse("https://example.com/h").unwrap());
    assert_eq!(c.retry.max_attempts, 4);
    assert_eq!(c.timeout, Duration::from_secs(5));
    let waits: Vec<Duration> = (1..4).map(|n| c.retry.wait_before_retry(n, None)).collect();
    assert_eq!(
        waits,
        [1, 2, 4].map(Duration::from_secs).to_vec(),
        "waits after attempts 1, 2, 3"
    );
    assert_eq!(c.format, WebhookFormat::Json);
}

#[tokio::test]
async fn a_notification_to_an_unreachable_port_fails_and_is_counted() {
    // A port nothing listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = Arc::new(Metrics::new());
    let mut config =
        NotifierConfig::new(WebhookUrl::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap());
    config.retry.max_attempts = 2;
    config.retry.initial_backoff = Duration::from_millis(10);
    let notifier = Notifier::new(config, metrics.clone()).unwrap();
    let n = notification(blocked(), at(10)).unwrap();
    let delivery = notifier.notify(n).unwrap().await.unwrap();
    match &delivery {
        Delivery::Failed { attempts: 2, error } => {
            assert!(!error.contains("/hook"), "no URL in errors: {error}");
            assert!(error.to_lowercase().contains("connect"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let text = metrics.render();
    assert!(
        text.contains(r#"tollgate_notifications_total{event="Blocked",outcome="failed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("tollgate_notification_attempts_total 2"),
        "{text}"
    );
}
