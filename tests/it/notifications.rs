//! Webhook notifications against a real HTTP server (axum on 127.0.0.1:0) that answers from a
//! script: retries on 5xx, 429 and timeouts, no retry on other 4xx, bounded time and queue,
//! and `notify()` returning at once. Backoffs and timeouts are made small through the
//! configuration; nothing here sleeps for seconds.
//!
//! The outbox tests at the end run a real operator on the local cluster (peer tests).
//!
//! Run with `--nocapture` to see the payloads as the server received them (docs/notifications.md
//! quotes them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;

use tollgate::crd::{
    AnalysisStatus, Decision, FleetStatus, GateVerdict, MetricStatus, MetricVerdict, Phase,
    Rollout, RolloutStatus,
};
use tollgate::rollout::decide::{decide, ContractAnswer, Observations};
use tollgate::runtime::metrics::Metrics;
use tollgate::runtime::notify::{
    Delivery, Notification, NotificationEvent, Notifier, NotifierConfig, WebhookFormat, WebhookUrl,
};
use tollgate::util::retry::Jitter;

use crate::support::capture::Captured;
use crate::support::dedup_webhook::{Arrival, DedupWebhook};
use crate::support::rollout_manifest::NAME;
use crate::support::scenario::{Options, Scenario};
use crate::support::scripted_webhook::{Answer, Received, Server};
use crate::support::wait::wait_until;

/// A notifier for `server` with small waits: `attempts` requests, `backoff` before the second.
fn make_notifier(
    server: &Server,
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
) -> (Notifier, Arc<Metrics>, NotifierConfig) {
    let mut config = NotifierConfig::new(WebhookUrl::parse(&server.url).unwrap());
    config.retry.max_attempts = attempts;
    config.retry.initial_backoff = backoff;
    // Exact waits, so the gaps below can be checked (the jitter's bounds are util::retry's).
    config.retry.jitter = Jitter::None;
    config.timeout = timeout;
    let metrics = Arc::new(Metrics::new());
    let n = Notifier::new(config.clone(), metrics.clone()).unwrap();
    (n, metrics, config)
}

fn with_config(config: NotifierConfig) -> (Notifier, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (Notifier::new(config, metrics.clone()).unwrap(), metrics)
}

// ---------------------------------------------------------------------------------------------
// Rollouts as the reconcile would have written them.

fn at(rfc3339: &str) -> Timestamp {
    rfc3339.parse().unwrap()
}

fn example() -> Rollout {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/rollout-replica-ratio.yaml"
    ))
    .unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// A Rollout of `name` in `namespace` at `version` (the rest from the replica-ratio example).
fn rollout(namespace: &str, name: &str, version: &str) -> Rollout {
    let mut r = example();
    r.metadata.namespace = Some(namespace.into());
    r.metadata.name = Some(name.into());
    r.spec.version = version.into();
    r
}

/// The demo's `payments` 2.0.0, rolled back to 1.0.0 by the analysis (message and evidence as
/// in the README's real run).
fn rolled_back() -> Notification {
    let when = at("2026-11-24T10:15:00Z");
    let reason = "canary worse than 1.000 x baseline with e-value 5.015e31 >= 50.000: canary \
                  574.667/3738.950 vs baseline 606.000/12043.745 errors; rate ratio 3.055 \
                  (bounds 2.117..4.482); e-value 5.015e31 (reject at 50.000), pass e-value 0.008 \
                  (at 20.000); dispersion 2.256";
    let mut rollout = rollout("demo", "payments", "2.0.0");
    rollout.status = Some(RolloutStatus {
        phase: Phase::RolledBack,
        observed_generation: Some(2),
        stable_version: Some("1.0.0".into()),
        rejected_version: Some("2.0.0".into()),
        reason: Some("AnalysisFailed".into()),
        message: Some(format!(
            "rolled back to 1.0.0: canary 2.0.0 regressed: errorRate: {reason}"
        )),
        fleet: Some(FleetStatus {
            verdict: GateVerdict::Passed,
            pods_checked: 5,
            pods_matching: 5,
            ..Default::default()
        }),
        analysis: Some(AnalysisStatus {
            verdict: MetricVerdict::Fail,
            looks: 8,
            metrics: vec![MetricStatus {
                name: "errorRate".into(),
                verdict: MetricVerdict::Fail,
                test: Some(
                    "sequential conditional-Poisson mixture SPRT on error counts (rate ratio)"
                        .into(),
                ),
                estimate: Some(3.055),
                lower: Some(2.117),
                upper: Some(4.482),
                e_value: Some(5.015e31),
                canary_samples: 3739,
                baseline_samples: 12044,
                reason: Some(reason.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        history: vec![Decision {
            at: when,
            phase: Phase::RolledBack,
            reason: "AnalysisFailed".into(),
            message: "rolled back".into(),
        }],
        ..Default::default()
    });
    Notification::for_event(&rollout, NotificationEvent::RolledBack, when).expect("a status")
}

/// The demo's `checkout` 2.0.0, promoted.
fn promoted() -> Notification {
    let when = at("2026-11-24T10:15:30Z");
    let mut rollout = rollout("demo", "checkout", "2.0.0");
    rollout.status = Some(RolloutStatus {
        phase: Phase::Succeeded,
        observed_generation: Some(2),
        stable_version: Some("2.0.0".into()),
        reason: Some("Promoted".into()),
        message: Some("2.0.0 is stable and every pod runs it".into()),
        fleet: Some(FleetStatus {
            verdict: GateVerdict::Passed,
            pods_checked: 4,
            pods_matching: 4,
            ..Default::default()
        }),
        analysis: Some(AnalysisStatus {
            verdict: MetricVerdict::Pass,
            looks: 12,
            metrics: vec![MetricStatus {
                name: "errorRate".into(),
                verdict: MetricVerdict::Pass,
                estimate: Some(0.981),
                lower: Some(0.803),
                upper: Some(1.197),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    });
    Notification::for_event(&rollout, NotificationEvent::Promoted, when).expect("a status")
}

/// checkout 2.4.0 (the example, with a contract gate) blocked by the broker: two passes of the
/// real `decide()` from a rollout whose stable version is 2.3.0 (start, then the answer).
fn blocked() -> Notification {
    let mut rollout = example();
    let stable = RolloutStatus {
        phase: Phase::Succeeded,
        stable_version: Some("2.3.0".into()),
        ..Default::default()
    };
    let start = Observations {
        generation: Some(7),
        ..Default::default()
    };
    let gate = decide(
        &rollout.spec,
        Some(&stable),
        &start,
        at("2026-11-24T08:59:55Z"),
    )
    .status;
    assert_eq!(gate.phase, Phase::ContractGate);
    let answer = Observations {
        generation: Some(7),
        contract: Some(ContractAnswer::NotDeployable {
            reason: "There is no verified pact between version 2.4.0 of checkout and the \
                     version of payments currently in production (1.9.0)"
                .into(),
            summary: None,
        }),
        ..Default::default()
    };
    let when = at("2026-11-24T09:00:00Z");
    let plan = decide(&rollout.spec, Some(&gate), &answer, when);
    assert_eq!(plan.status.phase, Phase::Blocked, "{:?}", plan.status);
    let event = plan.notify.expect("decide notifies the block");
    rollout.status = Some(plan.status);
    Notification::for_event(&rollout, event, when).expect("a status")
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("the webhook got JSON")
}

/// Print a body exactly as received, for the docs.
fn show(title: &str, body: &[u8]) {
    println!("--- {title} ---\n{}", String::from_utf8_lossy(body));
}

// ---------------------------------------------------------------------------------------------
// (a) 503, 503, 200.

#[tokio::test]
async fn two_503s_then_200_delivers_exactly_one_payload_in_three_attempts() {
    let server = Server::start(
        vec![Answer::Status(503, "busy"), Answer::Status(503, "busy")],
        Answer::Status(200, "ok"),
    )
    .await;
    let backoff = Duration::from_millis(40);
    let (notifier, metrics, _) = make_notifier(&server, 4, backoff, Duration::from_secs(2));
    let delivery = notifier
        .notify(rolled_back())
        .expect("queued")
        .await
        .unwrap();
    assert_eq!(delivery, Delivery::Delivered { attempts: 3 });

    let got = server.received();
    assert_eq!(got.len(), 3, "three requests, no fourth");
    let accepted: Vec<&Received> = got.iter().filter(|r| r.answered == Some(200)).collect();
    assert_eq!(accepted.len(), 1, "exactly one payload accepted");
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every retry sends the same body"
    );
    // Exponential backoff between the attempts: 40 ms, then 80 ms.
    assert!(
        got[1].at - got[0].at >= backoff,
        "{:?}",
        got[1].at - got[0].at
    );
    assert!(
        got[2].at - got[1].at >= backoff * 2,
        "{:?}",
        got[2].at - got[1].at
    );

    let body = json(&accepted[0].body);
    assert_eq!(
        accepted[0].content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(body["kind"], "tollgate.rollout");
    assert_eq!(body["event"], "RolledBack");
    assert_eq!(body["namespace"], "demo");
    assert_eq!(body["name"], "payments");
    assert_eq!(body["version"], "2.0.0");
    assert_eq!(body["stableVersion"], "1.0.0");
    assert_eq!(body["phase"], "RolledBack");
    assert_eq!(body["reason"], "AnalysisFailed");
    assert_eq!(body["time"], "2026-11-24T10:15:00Z");
    assert_eq!(
        body["evidence"]["analysis"]["metrics"][0]["verdict"],
        "Fail"
    );
    show("json, RolledBack", &accepted[0].body);

    let text = metrics.render();
    assert!(
        text.contains(r#"tollgate_notifications_total{event="RolledBack",outcome="delivered"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("tollgate_notification_attempts_total 3"),
        "{text}"
    );
    assert!(!text.contains(r#"outcome="failed""#), "{text}");
}

// ---------------------------------------------------------------------------------------------
// (b) 500 for ever.

#[tokio::test]
async fn always_500_gives_up_after_the_configured_attempts_and_notify_returns_at_once() {
    let server = Server::start(vec![], Answer::Status(500, "broken")).await;
    let backoff = Duration::from_millis(100);
    let (notifier, metrics, _) = make_notifier(&server, 3, backoff, Duration::from_secs(2));

    let start = Instant::now();
    let handle = notifier.notify(promoted()).expect("queued");
    let returned_after = start.elapsed();
    // The delivery needs at least 100 + 200 ms of backoff: had notify() waited for it, the
    // task would be finished by now.
    assert!(
        !handle.is_finished(),
        "notify() must not wait for the delivery"
    );
    assert!(
        returned_after < Duration::from_millis(250),
        "notify() took {returned_after:?}"
    );

    let delivery = handle.await.unwrap();
    let total = start.elapsed();
    match &delivery {
        Delivery::Failed { attempts: 3, error } => {
            assert!(error.contains("500"), "{error}");
            assert!(error.contains("broken"), "the body is quoted: {error}");
        }
        other => panic!("expected a failure after 3 attempts, got {other:?}"),
    }
    assert!(
        total >= backoff * 3,
        "waited 100 + 200 ms between attempts: {total:?}"
    );
    assert_eq!(
        server.received().len(),
        3,
        "exactly the configured attempts"
    );
    // Nothing comes after giving up.
    tokio::time::sleep(backoff * 5).await;
    assert_eq!(server.received().len(), 3);

    let text = metrics.render();
    assert!(
        text.contains(r#"tollgate_notifications_total{event="Promoted",outcome="failed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("tollgate_notification_attempts_total 3"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// (c) 400: no retry, and the log says why without the URL.

#[tokio::test(flavor = "current_thread")]
async fn a_400_is_not_retried_and_the_warning_says_why_without_the_url() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = Server::start(vec![], Answer::Status(400, "invalid_payload")).await;
    let (notifier, metrics, _) = make_notifier(
        &server,
        4,
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    let delivery = notifier
        .notify(rolled_back())
        .expect("queued")
        .await
        .unwrap();
    assert_eq!(
        delivery,
        Delivery::Refused {
            attempts: 1,
            status: 400,
            body: "invalid_payload".into()
        }
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.received().len(), 1, "a 400 is not retried");

    let text = metrics.render();
    assert!(
        text.contains(r#"tollgate_notifications_total{event="RolledBack",outcome="failed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("tollgate_notification_attempts_total 1"),
        "{text}"
    );

    let log = captured.text();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("not retried"), "{log}");
    assert!(log.contains("invalid_payload"), "{log}");
    assert!(log.contains("demo/payments"), "{log}");
    assert!(!log.contains("SECRETPATH"), "the URL is a secret: {log}");
}

// ---------------------------------------------------------------------------------------------
// (d) accepts, never answers.

#[tokio::test]
async fn a_webhook_that_never_answers_times_out_and_gives_up_within_the_bound() {
    let server = Server::start(vec![], Answer::Hang).await;
    let timeout = Duration::from_millis(300);
    let backoff = Duration::from_millis(50);
    let (notifier, metrics, _) = make_notifier(&server, 2, backoff, timeout);
    let start = Instant::now();
    let delivery = notifier.notify(promoted()).expect("queued").await.unwrap();
    let took = start.elapsed();
    match &delivery {
        Delivery::Failed { attempts: 2, error } => {
            assert!(error.contains("timed out after 300ms"), "{error}");
            assert!(!error.contains("SECRETPATH"), "{error}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(server.received().len(), 2);
    // Bounded: attempts x timeout + backoff, plus slack for a busy machine.
    assert!(took >= timeout * 2 + backoff, "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let text = metrics.render();
    assert!(
        text.contains(r#"tollgate_notifications_total{event="Promoted",outcome="failed"} 1"#),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// More: a full queue, Retry-After, Slack, draining on shutdown.

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_growing() {
    let server = Server::start(vec![], Answer::Hang).await;
    let mut config = NotifierConfig::new(WebhookUrl::parse(&server.url).unwrap());
    config.max_pending = 2;
    config.retry.max_attempts = 1;
    config.timeout = Duration::from_millis(300);
    let (notifier, metrics) = with_config(config);

    let first = notifier.notify(promoted()).expect("slot 1");
    let second = notifier.notify(rolled_back()).expect("slot 2");
    let start = Instant::now();
    assert!(notifier.notify(promoted()).is_none(), "third is dropped");
    assert!(start.elapsed() < Duration::from_millis(100));
    let text = metrics.render();
    assert!(
        text.contains(r#"tollgate_notifications_total{event="Promoted",outcome="dropped"} 1"#),
        "{text}"
    );

    // Once the two time out, there is room again.
    assert!(matches!(first.await.unwrap(), Delivery::Failed { .. }));
    assert!(matches!(second.await.unwrap(), Delivery::Failed { .. }));
    assert!(
        notifier.notify(promoted()).is_some(),
        "slots are given back"
    );
}

#[tokio::test]
async fn a_429_waits_for_retry_after_capped_by_the_configuration() {
    let server = Server::start(vec![Answer::RateLimited(30)], Answer::Status(200, "ok")).await;
    let mut config = NotifierConfig::new(WebhookUrl::parse(&server.url).unwrap());
    config.retry.initial_backoff = Duration::from_millis(5);
    config.retry.max_retry_after = Duration::from_millis(250);
    let (notifier, _) = with_config(config);
    let delivery = notifier.notify(promoted()).expect("queued").await.unwrap();
    assert_eq!(delivery, Delivery::Delivered { attempts: 2 });
    let got = server.received();
    let gap = got[1].at - got[0].at;
    // Retry-After: 30 (s), cut to the configured 250 ms; not the 5 ms backoff.
    assert!(gap >= Duration::from_millis(250), "{gap:?}");
    assert!(gap < Duration::from_secs(5), "{gap:?}");
}

#[tokio::test]
async fn slack_format_posts_text_and_blocks() {
    let server = Server::start(vec![], Answer::Status(200, "ok")).await;
    let mut config = NotifierConfig::new(WebhookUrl::parse(&server.url).unwrap());
    config.format = WebhookFormat::Slack;
    let (notifier, _) = with_config(config);
    for n in [promoted(), rolled_back(), blocked()] {
        let delivery = notifier.notify(n).expect("queued").await.unwrap();
        assert_eq!(delivery, Delivery::Delivered { attempts: 1 });
    }
    let got = server.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
    let promoted = json(&got[0].body);
    assert_eq!(
        promoted["text"],
        ":white_check_mark: checkout 2.0.0 promoted in demo"
    );
    assert!(promoted["blocks"].as_array().is_some_and(|b| !b.is_empty()));
    let rolled_back = json(&got[1].body);
    let text = rolled_back["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            ":rotating_light: payments 2.0.0 rolled back in demo: rolled back to 1.0.0"
        ),
        "{text}"
    );
    // Slack's text is short; the whole message is in a block.
    assert!(text.chars().count() < 400, "{text}");
    let blocked = json(&got[2].body);
    let text = blocked["text"].as_str().unwrap();
    assert!(
        text.starts_with(":no_entry: checkout 2.4.0 blocked in shop: can-i-deploy checkout 2.4.0 to production: no:"),
        "{text}"
    );
    show("slack, Promoted", &got[0].body);
    show("slack, RolledBack", &got[1].body);
    show("slack, Blocked", &got[2].body);
}

#[tokio::test]
async fn blocked_and_promoted_json_payloads_carry_their_evidence() {
    let server = Server::start(vec![], Answer::Status(204, "")).await;
    let (notifier, metrics) =
        with_config(NotifierConfig::new(WebhookUrl::parse(&server.url).unwrap()));
    for n in [blocked(), promoted()] {
        let delivery = notifier.notify(n).expect("queued").await.unwrap();
        assert_eq!(
            delivery,
            Delivery::Delivered { attempts: 1 },
            "any 2xx is delivered"
        );
    }
    let got = server.received();
    let blocked = json(&got[0].body);
    assert_eq!(blocked["event"], "Blocked");
    assert_eq!(blocked["phase"], "Blocked");
    assert_eq!(blocked["reason"], "NotDeployable");
    assert_eq!(
        (blocked["namespace"].as_str(), blocked["name"].as_str()),
        (Some("shop"), Some("checkout"))
    );
    assert_eq!(blocked["version"], "2.4.0");
    assert_eq!(blocked["stableVersion"], "2.3.0");
    assert_eq!(blocked["generation"], 7);
    let gate = &blocked["evidence"]["contractGate"];
    assert_eq!(gate["verdict"], "Blocked");
    assert_eq!(gate["deployable"], false);
    assert!(gate["reason"]
        .as_str()
        .unwrap()
        .starts_with("There is no verified pact"));
    let promoted = json(&got[1].body);
    assert_eq!(promoted["event"], "Promoted");
    assert_eq!(promoted["phase"], "Succeeded");
    assert_eq!(promoted["version"], "2.0.0");
    assert_eq!(promoted["evidence"]["analysis"]["verdict"], "Pass");
    show("json, Blocked", &got[0].body);
    show("json, Promoted", &got[1].body);
    let text = metrics.render();
    assert!(
        text.contains(r#"tollgate_notifications_total{event="Blocked",outcome="delivered"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn drain_waits_for_pending_deliveries_and_is_bounded() {
    let server = Server::start(vec![Answer::Status(503, "")], Answer::Status(200, "ok")).await;
    let (notifier, _, _) = make_notifier(
        &server,
        3,
        Duration::from_millis(100),
        Duration::from_secs(2),
    );
    drop(notifier.notify(promoted()).expect("queued")); // fire and forget
    assert!(
        notifier.drain(Duration::from_secs(5)).await,
        "idle after the retry"
    );
    assert_eq!(server.received().len(), 2);

    let hanging = Server::start(vec![], Answer::Hang).await;
    let (notifier, _, _) = make_notifier(&hanging, 1, Duration::ZERO, Duration::from_secs(30));
    drop(notifier.notify(promoted()).expect("queued"));
    let start = Instant::now();
    assert!(!notifier.drain(Duration::from_millis(200)).await);
    assert!(start.elapsed() < Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------------
// The controller's flags (only the ones that fail before any cluster is contacted).

fn controller(args: &[&str], env_url: Option<&str>) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.arg("controller")
        .args(args)
        .env_remove("TOLLGATE_WEBHOOK_URL");
    if let Some(url) = env_url {
        c.env("TOLLGATE_WEBHOOK_URL", url);
    }
    c.output().expect("tollgate runs")
}

#[test]
fn a_bad_webhook_url_stops_the_controller_at_startup_with_exit_3_and_no_secret() {
    for (args, env_url, says) in [
        (
            vec!["--webhook-url", "ftp://hooks.example.com/T0/SECRETPATH"],
            None,
            "must be http:// or https://",
        ),
        (
            vec![],
            Some("hooks.slack.com/services/T0/SECRETPATH"),
            "does not parse",
        ),
        (vec![], Some(""), "is empty"),
        (
            vec![
                "--webhook-url",
                "https://hooks.example.com/SECRETPATH",
                "--webhook-timeout",
                "0s",
            ],
            None,
            "--webhook-timeout",
        ),
    ] {
        let out = controller(&args, env_url);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?} {env_url:?}: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("SECRETPATH"), "{stderr}");
    }
}

#[test]
fn help_does_not_print_the_webhook_url_from_the_environment() {
    let out = controller(
        &["--help"],
        Some("https://hooks.slack.com/services/T0/SECRETPATH"),
    );
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--webhook-url"), "{help}");
    assert!(help.contains("TOLLGATE_WEBHOOK_URL"), "{help}");
    assert!(!help.contains("SECRETPATH"), "{help}");
}

// ---------------------------------------------------------------------------------------------
// The outbox on the local cluster: a real operator killed with SIGKILL while its POST is in
// flight.

/// The stored outbox of the scenario's Rollout.
async fn outbox(world: &Scenario) -> Option<tollgate::crd::NotificationsStatus> {
    let r = world.api.get(NAME).await.expect("read the rollout");
    r.status.and_then(|s| s.notifications)
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_notification_in_flight_when_the_operator_is_killed_arrives_after_the_restart_once_per_key(
) {
    // The receiver holds its answers: the operator's POST stays in flight.
    let hook = DedupWebhook::start(true).await;
    let mut world = Scenario::start_with(
        "notify-kill",
        Options {
            webhook: Some(hook.url.clone()),
            // One request outlives the hold: no in-process retry races the kill.
            operator_args: vec!["--webhook-timeout".into(), "300s".into()],
            ..Options::default()
        },
    )
    .await;
    // 1.0.0's first deployment is promoted (the scenario waited for it): its notification was
    // written to the outbox with the transition, and its POST is in flight.
    let first = hook.wait_arrival("Promoted").await;
    let key = first.header_key.clone().expect("an Idempotency-Key header");
    assert_eq!(
        first.body["idempotencyKey"],
        key.as_str(),
        "the key is in the body too"
    );
    assert_eq!(first.body["version"], "1.0.0");
    let pending = outbox(&world).await.expect("an outbox").pending;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        (pending[0].key.as_str(), pending[0].event.as_str()),
        (key.as_str(), "Promoted")
    );
    assert!(hook.processed_keys().is_empty(), "nothing answered yet");

    // SIGKILL with the POST in flight, then a fresh operator.
    let _ = world.operator.child.kill();
    let _ = world.operator.child.wait();
    hook.release();
    world.kill_and_restart_operator();

    // The restarted operator finds the entry and delivers it; the 2xx empties the outbox.
    wait_until(
        Duration::from_secs(60),
        "the outbox to empty after the restart",
        || async { outbox(&world).await.is_none().then_some(()) },
    )
    .await;
    let log = world.operator.log_tail();
    let arrivals = hook.arrivals();
    world.end().await;
    assert_eq!(hook.processed_keys(), vec![key.clone()], "{log}");
    let same: Vec<&Arrival> = arrivals
        .iter()
        .filter(|a| a.header_key.as_deref() == Some(key.as_str()))
        .collect();
    assert!(
        same.len() >= 2,
        "the POST cut by the kill was sent again with the same key: {arrivals:?}"
    );
    assert!(
        same.iter()
            .all(|a| a.body["idempotencyKey"] == key.as_str()),
        "{arrivals:?}"
    );
    assert_eq!(
        arrivals.len(),
        same.len(),
        "no other notification: {arrivals:?}"
    );
    assert!(
        hook.duplicates() < same.len(),
        "duplicates are only repeats of the key"
    );
    let processed = hook.processed(&key).unwrap();
    assert_eq!(
        (processed["event"].as_str(), processed["version"].as_str()),
        (Some("Promoted"), Some("1.0.0"))
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn each_team_s_destination_receives_only_its_own_rollouts() {
    let team_a = DedupWebhook::start(false).await;
    let team_b = DedupWebhook::start(false).await;
    let fallback = DedupWebhook::start(false).await;
    // The operators' destinations, each URL read from a file (as the chart mounts a Secret).
    let dir = std::env::temp_dir().join(format!("tollgate-destinations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("team-a-url"), format!("{}\n", team_a.url)).unwrap();
    std::fs::write(dir.join("team-b-url"), &team_b.url).unwrap();
    let file = dir.join("destinations.yaml");
    std::fs::write(
        &file,
        // Team A also asked for step events; team B keeps the default (outcomes only).
        "destinations:\n  - name: team-a\n    urlFile: team-a-url\n    events: [Promoted, RolledBack, Blocked, StepStarted]\n  - name: team-b\n    urlFile: team-b-url\n",
    )
    .unwrap();
    let options = |team: &str| Options {
        // The --webhook-url destination (`default`) is for Rollouts that name none.
        webhook: Some(fallback.url.clone()),
        operator_args: vec![format!("--notification-destinations={}", file.display())],
        annotations: vec![(
            "notifications.tollgate.dev/destinations".into(),
            team.into(),
        )],
        ..Options::default()
    };
    let (a, b) = tokio::join!(
        Scenario::start_with("notify-team-a", options("team-a")),
        Scenario::start_with("notify-team-b", options("team-b")),
    );
    let got_a = team_a.wait_arrival("Promoted").await;
    let got_b = team_b.wait_arrival("Promoted").await;
    // Team A rolls a healthy 2.0.0 through its steps: each step it starts is a StepStarted
    // notification on team A's destination alone.
    a.roll_to("2.0.0", 0.0, None).await;
    a.finished("2.0.0").await;
    // Both outboxes empty once acknowledged.
    for world in [&a, &b] {
        wait_until(Duration::from_secs(30), "the outbox to empty", || async {
            outbox(world).await.is_none().then_some(())
        })
        .await;
    }
    let (ns_a, ns_b) = (a.ns.name.clone(), b.ns.name.clone());
    a.end().await;
    b.end().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got_a.body["namespace"], ns_a.as_str());
    assert_eq!(got_b.body["namespace"], ns_b.as_str());
    let namespaces = |hook: &DedupWebhook| -> Vec<String> {
        hook.arrivals()
            .iter()
            .map(|a| a.body["namespace"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(
        namespaces(&team_a).iter().all(|n| *n == ns_a),
        "team A's destination got another team's rollout: {:?}",
        namespaces(&team_a)
    );
    assert!(
        namespaces(&team_b).iter().all(|n| *n == ns_b),
        "team B's destination got another team's rollout: {:?}",
        namespaces(&team_b)
    );
    let steps: Vec<Arrival> = team_a
        .arrivals()
        .into_iter()
        .filter(|x| x.body["event"] == "StepStarted")
        .collect();
    assert!(
        !steps.is_empty() && steps.iter().all(|x| x.body["version"] == "2.0.0"),
        "team A asked for step events of its 2.0.0 rollout: {:?}",
        team_a
            .arrivals()
            .iter()
            .map(|x| &x.body["event"])
            .collect::<Vec<_>>()
    );
    assert!(
        team_b
            .arrivals()
            .iter()
            .all(|x| x.body["event"] != "StepStarted"),
        "team B did not ask for step events"
    );
    assert!(
        fallback.arrivals().is_empty(),
        "a Rollout that names its destinations goes to no other: {:?}",
        namespaces(&fallback)
    );
}
