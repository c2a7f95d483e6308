//! The gate's step over every (answer, dry run, budget) cell, the retries of one ask, and the
//! classification of broker outcomes.

use super::*;

fn answer(deployable: Option<Option<bool>>, reason: &str) -> Result<MatrixAnswer, BrokerError> {
    Ok(MatrixAnswer::summarised(deployable, reason))
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn policy() -> GatePolicy {
    GatePolicy {
        poll_interval: Duration::from_secs(10),
        unknown_budget: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(20),
            jitter: crate::util::retry::Jitter::None,
        },
        dry_run: false,
    }
}

fn transient(retry_after: Option<u64>) -> Result<MatrixAnswer, BrokerError> {
    Err(BrokerError::RateLimited {
        url: "u".into(),
        retry_after: retry_after.map(Duration::from_secs),
    })
}

fn not_found() -> Result<MatrixAnswer, BrokerError> {
    Err(BrokerError::NotFound {
        url: "u".into(),
        body: String::new(),
    })
}

type Case = (
    &'static str,
    Result<MatrixAnswer, BrokerError>,
    GateProgress,
    i64,
    ContractVerdict,
);

#[test]
fn table() {
    let p = policy();
    let fresh = GateProgress::default();
    let unknown_at_0 = GateProgress {
        unknown_since: Some(t(0)),
        asks: 1,
    };
    let wait = |s| ContractVerdict::Wait {
        after: Duration::from_secs(s),
    };
    let block = |kind| ContractVerdict::Block { kind };
    let cases: Vec<Case> = vec![
        (
            "true passes",
            answer(Some(Some(true)), "ok"),
            fresh.clone(),
            0,
            ContractVerdict::Pass,
        ),
        (
            "true passes after unknowns",
            answer(Some(Some(true)), "ok"),
            unknown_at_0.clone(),
            25,
            ContractVerdict::Pass,
        ),
        (
            "false blocks",
            answer(Some(Some(false)), "no"),
            fresh.clone(),
            0,
            block(BlockKind::NotDeployable),
        ),
        (
            "absent blocks",
            answer(None, "no such version"),
            fresh.clone(),
            0,
            block(BlockKind::NotDeployable),
        ),
        (
            "first null waits",
            answer(Some(None), "?"),
            fresh.clone(),
            0,
            wait(10),
        ),
        (
            "null within budget waits",
            answer(Some(None), "?"),
            unknown_at_0.clone(),
            10,
            wait(10),
        ),
        (
            "null near the end waits the rest",
            answer(Some(None), "?"),
            unknown_at_0.clone(),
            25,
            wait(5),
        ),
        (
            "null at the budget blocks",
            answer(Some(None), "?"),
            unknown_at_0.clone(),
            30,
            block(BlockKind::Unknown),
        ),
        (
            "unreachable waits like unknown",
            transient(None),
            fresh.clone(),
            0,
            wait(10),
        ),
        (
            "unreachable near the end waits the rest",
            transient(None),
            unknown_at_0.clone(),
            25,
            wait(5),
        ),
        (
            "unreachable at the budget blocks",
            transient(Some(7)),
            unknown_at_0.clone(),
            30,
            block(BlockKind::BrokerError),
        ),
        (
            "permanent blocks at once",
            not_found(),
            fresh.clone(),
            0,
            block(BlockKind::BrokerError),
        ),
        (
            "permanent blocks within the budget too",
            not_found(),
            unknown_at_0.clone(),
            5,
            block(BlockKind::BrokerError),
        ),
    ];
    for (name, outcome, progress, now, want) in cases {
        let d = decide(&outcome, &progress, t(now), &p);
        assert_eq!(d.verdict, want, "{name}: {}", d.reason);
        assert!(!d.reason.is_empty(), "{name}");
    }
}

#[test]
fn transient_failures_are_retried_with_backoff_within_one_ask() {
    let r = policy().retry;
    let cases = [
        ("transient 1 backs off", transient(None), 1, Some(1)),
        ("transient 2 backs off more", transient(None), 2, Some(2)),
        ("retry-after honoured", transient(Some(7)), 1, Some(7)),
        ("retry-after capped", transient(Some(700)), 1, Some(20)),
        ("transient gives up", transient(None), 3, None),
        ("permanent is not retried", not_found(), 1, None),
    ];
    for (name, outcome, failed, want) in cases {
        let e = outcome.unwrap_err();
        assert_eq!(
            retry_after_failure(&e, failed, &r),
            want.map(Duration::from_secs),
            "{name}"
        );
    }
}

/// Every (answer, dry run, budget) cell: the verdict is the real one; dry run only turns a
/// block into "proceed despite".
#[test]
fn every_answer_with_and_without_dry_run_within_and_past_the_budget() {
    use AnswerKind::*;
    use GateAction::*;
    let classified = |kind| ClassifiedAnswer {
        kind,
        reason: "r".into(),
        counts: None,
        error: None,
    };
    let within = GateProgress {
        unknown_since: Some(t(0)),
        asks: 1,
    };
    let wait = Wait(Duration::from_secs(10));
    // (answer, action without dry run within / past the budget)
    let cells = [
        (Deployable, Proceed, Proceed),
        (
            NotDeployable,
            Block(BlockKind::NotDeployable),
            Block(BlockKind::NotDeployable),
        ),
        (Unknown, wait, Block(BlockKind::Unknown)),
        (Unreachable, wait, Block(BlockKind::BrokerError)),
        (
            Refused,
            Block(BlockKind::BrokerError),
            Block(BlockKind::BrokerError),
        ),
    ];
    for (kind, within_budget, past_budget) in cells {
        for dry_run in [false, true] {
            let p = GatePolicy {
                dry_run,
                ..policy()
            };
            for (now, want) in [(5, within_budget), (30, past_budget)] {
                let s = step(&classified(kind), &within, t(now), &p);
                let want = match want {
                    Block(k) if dry_run => ProceedDespite(k),
                    other => other,
                };
                assert_eq!(s.action(), want, "{kind:?} dry_run={dry_run} at {now}s");
                // The verdict is the real one either way.
                let real = step(
                    &classified(kind),
                    &within,
                    t(now),
                    &GatePolicy {
                        dry_run: false,
                        ..policy()
                    },
                );
                assert_eq!(
                    s.verdict, real.verdict,
                    "{kind:?} dry_run={dry_run} at {now}s"
                );
                assert_eq!(s.progress, real.progress);
                assert_eq!(s.dry_run, dry_run);
            }
        }
    }
}

#[test]
fn dry_run_never_turns_no_into_pass_and_waits_as_without_it() {
    let p = GatePolicy {
        dry_run: true,
        ..policy()
    };
    let d = decide(
        &answer(Some(Some(false)), "no"),
        &GateProgress::default(),
        t(0),
        &p,
    );
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: BlockKind::NotDeployable
        }
    );
    assert!(d.dry_run);
    assert!(!d.passed());
    assert_eq!(
        d.action(),
        GateAction::ProceedDespite(BlockKind::NotDeployable)
    );
    let d = decide(&answer(Some(None), "?"), &GateProgress::default(), t(0), &p);
    assert_eq!(
        d.verdict,
        ContractVerdict::Wait {
            after: Duration::from_secs(10)
        }
    );
    let d = decide(
        &answer(Some(Some(true)), "ok"),
        &GateProgress::default(),
        t(0),
        &p,
    );
    assert_eq!(d.verdict, ContractVerdict::Pass);
}

#[test]
fn no_summary_blocks() {
    let d = decide(
        &Ok(MatrixAnswer {
            summary: None,
            matrix: vec![],
            notices: vec![],
        }),
        &GateProgress::default(),
        t(0),
        &policy(),
    );
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: BlockKind::BrokerError
        }
    );
}
#[test]
fn reasons_carry_the_brokers_words() {
    let d = decide(
        &answer(Some(Some(false)), "The verification for Bar failed"),
        &GateProgress::default(),
        t(0),
        &policy(),
    );
    assert!(
        d.reason.contains("The verification for Bar failed"),
        "{}",
        d.reason
    );
    let d = decide(
        &answer(Some(None), "no verified pact with Baz in production"),
        &GateProgress {
            unknown_since: Some(t(0)),
            ..Default::default()
        },
        t(31),
        &policy(),
    );
    assert!(
        d.reason.contains("no verified pact with Baz in production"),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("31s"), "{}", d.reason);
}
#[test]
fn unknown_progress_is_kept_and_reset() {
    let p = policy();
    let d1 = decide(&answer(Some(None), "?"), &GateProgress::default(), t(5), &p);
    assert_eq!(d1.progress.unknown_since, Some(t(5)));
    let d2 = decide(&answer(Some(None), "?"), &d1.progress, t(15), &p);
    assert_eq!(d2.progress.unknown_since, Some(t(5)));
    assert_eq!(d2.progress.asks, 2);
    let d3 = decide(&answer(Some(Some(true)), "ok"), &d2.progress, t(20), &p);
    assert_eq!(d3.progress.unknown_since, None);
}
#[test]
fn classify_five_ways() {
    let k = |o: &Result<MatrixAnswer, BrokerError>| classify(o).kind;
    assert_eq!(k(&answer(Some(Some(true)), "ok")), AnswerKind::Deployable);
    assert_eq!(
        k(&answer(Some(Some(false)), "no")),
        AnswerKind::NotDeployable
    );
    assert_eq!(
        k(&answer(None, "no such version")),
        AnswerKind::NotDeployable
    );
    assert_eq!(k(&answer(Some(None), "?")), AnswerKind::Unknown);
    assert_eq!(k(&transient(None)), AnswerKind::Unreachable);
    let refused = Err(BrokerError::Unauthorized {
        url: "u".into(),
        body: String::new(),
    });
    assert_eq!(k(&refused), AnswerKind::Refused);
    let c = classify(&answer(Some(None), "missing verification"));
    assert_eq!(c.reason, "missing verification");
    assert_eq!(c.counts.map(|c| c.unknown), Some(1));
}
#[test]
fn record_steps() {
    let r = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    let ok = RecordedDeployment {
        url: "u".into(),
        status: 201,
        uuid: None,
        application_instance: None,
    };
    assert!(matches!(
        decide_record(Ok(ok), 0, &r),
        RecordStep::Recorded { .. }
    ));
    let t = || {
        Err(BrokerError::Timeout {
            url: "u".into(),
            timeout: Duration::from_secs(1),
        })
    };
    assert!(matches!(
        decide_record(t(), 0, &r),
        RecordStep::Retry { attempts: 1, .. }
    ));
    assert!(matches!(
        decide_record(t(), 1, &r),
        RecordStep::Failed { attempts: 2, .. }
    ));
    let forbidden = Err(BrokerError::Forbidden {
        url: "u".into(),
        body: String::new(),
    });
    assert!(matches!(
        decide_record(forbidden, 0, &r),
        RecordStep::Failed { attempts: 1, .. }
    ));
}
#[test]
fn decision_serializes_for_status() {
    let d = decide(
        &answer(Some(None), "?"),
        &GateProgress::default(),
        t(0),
        &policy(),
    );
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["verdict"]["verdict"], "wait");
    assert_eq!(v["verdict"]["after"], 10.0);
    assert!(v["progress"]["unknownSince"].is_string());
}
