//! The judge's unit tests: verdicts on hand-made windows, state round trips, policy checks.

use super::*;
use crate::analysis::stats::latency::Histogram;

fn hist(body: [f64; 5]) -> Histogram {
    let mut cum = 0.0;
    Histogram {
        bounds: vec![0.1, 0.25, 0.5, 1.0, f64::INFINITY],
        cumulative: body
            .iter()
            .map(|x| {
                cum += x;
                cum
            })
            .collect(),
    }
}

fn win(ce: f64, be: f64, c_lat: [f64; 5], b_lat: [f64; 5]) -> JudgeWindow {
    JudgeWindow {
        baseline: ArmCounts {
            requests: Some(b_lat.iter().sum()),
            errors: Some(be),
            latency: Some(hist(b_lat)),
        },
        canary: ArmCounts {
            requests: Some(c_lat.iter().sum()),
            errors: Some(ce),
            latency: Some(hist(c_lat)),
        },
        canary_share: Some(0.5),
    }
}

const SAME: [f64; 5] = [600.0, 330.0, 60.0, 9.0, 1.0];
const SLOW: [f64; 5] = [450.0, 380.0, 130.0, 36.0, 4.0];

fn run(policy: &JudgePolicy, windows: &[JudgeWindow]) -> (JudgeState, Judgement) {
    let mut st = JudgeState::default();
    let mut last = None;
    for w in windows {
        let (s, j) = update(&st, policy, w).expect("valid policy");
        st = s;
        last = Some(j);
    }
    (st, last.expect("at least one window"))
}

fn metric<'a>(j: &'a Judgement, name: &str) -> &'a MetricJudgement {
    j.metrics
        .iter()
        .find(|m| m.metric == name)
        .expect("metric present")
}

#[test]
fn clear_error_regression_fails_with_an_explanation() {
    let p = JudgePolicy::default();
    let ws: Vec<JudgeWindow> = (0..6).map(|_| win(30.0, 10.0, SAME, SAME)).collect();
    let (_, j) = run(&p, &ws);
    assert_eq!(j.verdict, JudgeVerdict::Fail, "{j:?}");
    let m = metric(&j, "errorRate");
    assert_eq!(m.verdict, JudgeVerdict::Fail);
    assert!(m.e_value.unwrap_or(0.0) >= m.threshold);
    assert!((m.estimate.unwrap_or(0.0) - 3.0).abs() < 1e-9);
    assert!(m.lower.unwrap_or(0.0) > 1.0 && m.upper.unwrap_or(0.0) > 3.0);
    assert_eq!(m.samples.canary_events, Some(180.0));
    assert!(m.reason.contains("e-value") && m.test.contains("SPRT"));
    // the latency metrics of an identical latency stream do not fail
    assert_ne!(metric(&j, "latencyP99").verdict, JudgeVerdict::Fail);
    assert_ne!(
        metric(&j, "latencyDistribution").verdict,
        JudgeVerdict::Fail
    );
}

#[test]
fn latency_regression_fails_latency_metrics() {
    let p = JudgePolicy::default();
    let ws: Vec<JudgeWindow> = (0..8).map(|_| win(5.0, 5.0, SLOW, SAME)).collect();
    let (_, j) = run(&p, &ws);
    assert_eq!(j.verdict, JudgeVerdict::Fail);
    assert_eq!(
        metric(&j, "latencyDistribution").verdict,
        JudgeVerdict::Fail
    );
    let q = metric(&j, "latencyP99");
    assert_eq!(q.verdict, JudgeVerdict::Fail, "{q:?}");
    let d = q.detail.as_ref().expect("detail");
    assert_eq!(d.boundary, Some(0.5));
    assert!(d.canary_quantile > d.baseline_quantile, "{d:?}");
    assert!(q.estimate.unwrap_or(0.0) > 3.0, "{q:?}");
    assert!(d.difference_upper.unwrap_or(0.0) > 0.0, "{d:?}");
    assert!(d.difference_lower.unwrap_or(1.0) < d.difference_upper.unwrap_or(0.0));
    assert_ne!(metric(&j, "errorRate").verdict, JudgeVerdict::Fail);
}

#[test]
fn healthy_canary_passes_on_evidence() {
    let p = JudgePolicy::default();
    let ws: Vec<JudgeWindow> = (0..40).map(|_| win(10.0, 10.0, SAME, SAME)).collect();
    let (_, j) = run(&p, &ws);
    assert_eq!(j.verdict, JudgeVerdict::Pass, "{j:#?}");
    for m in &j.metrics {
        assert_eq!(m.verdict, JudgeVerdict::Pass, "{m:?}");
    }
}

#[test]
fn missing_nan_and_empty_data_are_inconclusive_never_fail_or_pass() {
    let p = JudgePolicy::default();
    let mut bad = Vec::new();
    let mut w = win(30.0, 10.0, SAME, SAME);
    w.canary.errors = Some(f64::NAN);
    w.canary.latency = None;
    bad.push(w);
    bad.push(JudgeWindow::default());
    let mut w = win(30.0, 10.0, SAME, SAME);
    w.canary.requests = Some(0.0);
    w.canary.errors = Some(0.0);
    w.canary.latency = Some(hist([0.0; 5]));
    bad.push(w);
    let mut w = win(30.0, 10.0, SAME, SAME);
    w.baseline.errors = Some(f64::INFINITY);
    w.baseline.latency = Some(Histogram {
        bounds: vec![0.1, 0.2],
        cumulative: vec![5.0, 1.0],
    });
    bad.push(w);
    let mut st = JudgeState::default();
    for _ in 0..20 {
        for w in &bad {
            let (s, j) = update(&st, &p, w).expect("valid policy");
            st = s;
            assert_eq!(j.verdict, JudgeVerdict::Undecided);
            for m in &j.metrics {
                assert_eq!(m.verdict, JudgeVerdict::Undecided, "{m:?}");
                assert!(m.reason.contains("no usable data"), "{}", m.reason);
            }
        }
    }
    // and the bad windows left no evidence behind
    assert_eq!(st.error_rate.as_ref().map(|e| e.windows), Some(0));
    // after a real regression, a NaN look is still Inconclusive
    let ws: Vec<JudgeWindow> = (0..6).map(|_| win(30.0, 10.0, SAME, SAME)).collect();
    let (st, j) = run(&p, &ws);
    assert_eq!(j.verdict, JudgeVerdict::Fail);
    let (_, j) = update(&st, &p, &bad[0]).expect("valid");
    assert_eq!(metric(&j, "errorRate").verdict, JudgeVerdict::Undecided);
}

#[test]
fn state_round_trips_through_json_and_resumes_identically() {
    let p = JudgePolicy::default();
    let ws: Vec<JudgeWindow> = (0..10)
        .map(|i| win(8.0 + (i % 3) as f64, 7.0, SAME, SAME))
        .collect();
    let (straight, j1) = run(&p, &ws);
    let mut st = JudgeState::default();
    let mut last = None;
    for w in &ws {
        let text = serde_json::to_string(&st).expect("serializes");
        let back: JudgeState = serde_json::from_str(&text).expect("deserializes");
        let (s, j) = update(&back, &p, w).expect("valid");
        st = s;
        last = Some(j);
    }
    assert_eq!(Some(j1), last);
    assert_eq!(straight.looks, st.looks);
    let size = serde_json::to_string(&st).map(|s| s.len()).unwrap_or(0);
    assert!(size < 16_000, "state is {size} bytes");
}

#[test]
fn minimum_data_rules_hold_back_early_verdicts() {
    let p = JudgePolicy {
        min_windows: 5,
        ..JudgePolicy::default()
    };
    let ws: Vec<JudgeWindow> = (0..4).map(|_| win(60.0, 5.0, SAME, SAME)).collect();
    let (_, j) = run(&p, &ws);
    assert_eq!(metric(&j, "errorRate").verdict, JudgeVerdict::Undecided);
    assert!(metric(&j, "errorRate").reason.contains("windows needed"));
}

fn err_win(c: f64, b: f64, requests: f64) -> JudgeWindow {
    let arm = |e: f64| ArmCounts {
        requests: Some(requests),
        errors: Some(e),
        latency: None,
    };
    JudgeWindow {
        baseline: arm(b),
        canary: arm(c),
        canary_share: Some(0.5),
    }
}

#[test]
fn prior_burst_variance_tempers_high_count_windows_but_not_a_clear_regression() {
    // ~100 errors per window, the canary 50% above the baseline three windows running, with
    // residuals that look Poisson: a burst in one arm (rate multipliers with a CV of 0.5 do
    // this often enough) or a regression; three windows cannot tell. The prior burst
    // variance tempers it; a Poisson prior fails it at the first allowed look.
    let ws = [
        err_win(70.0, 40.0, 3000.0),
        err_win(63.0, 37.0, 3000.0),
        err_win(68.0, 38.0, 3000.0),
    ];
    let poisson_prior = JudgePolicy {
        dispersion: DispersionPolicy {
            prior_burst_cv: 0.0,
            ..DispersionPolicy::default()
        },
        ..JudgePolicy::default()
    };
    let (_, j0) = run(&poisson_prior, &ws);
    let m0 = metric(&j0, "errorRate");
    assert_eq!(m0.verdict, JudgeVerdict::Fail, "{m0:?}");
    assert_eq!(m0.dispersion, Some(1.0));
    let (_, j) = run(&JudgePolicy::default(), &ws);
    let m = metric(&j, "errorRate");
    assert_eq!(m.verdict, JudgeVerdict::Undecided, "{m:?}");
    let high = m.dispersion.unwrap_or(0.0);
    assert!(high > 3.0, "{m:?}");
    // the prior alone does not trigger the overdispersion wait (it tempers), and a clear
    // regression at these counts still fails within two looks of the first allowed one
    // (without the baseline's history, the share's residuals give one degree of freedom per
    // window, so the prior's caution weighs more early on)
    assert!(!m.reason.contains("overdispersed"), "{}", m.reason);
    let x2 = [
        err_win(66.0, 28.0, 3000.0),
        err_win(55.0, 33.0, 3000.0),
        err_win(64.0, 27.0, 3000.0),
        err_win(61.0, 30.0, 3000.0),
        err_win(63.0, 29.0, 3000.0),
    ];
    let (_, j) = run(&JudgePolicy::default(), &x2);
    let m = metric(&j, "errorRate");
    assert_eq!(m.verdict, JudgeVerdict::Fail, "{m:?}");
    assert!(m.dispersion.unwrap_or(0.0) > 1.5, "{m:?}");
    // at a few errors per window the same prior hardly matters
    let low = [
        err_win(7.0, 2.0, 300.0),
        err_win(6.0, 3.0, 300.0),
        err_win(8.0, 2.0, 300.0),
    ];
    let (_, j) = run(&JudgePolicy::default(), &low);
    let (_, j0) = run(&poisson_prior, &low);
    let d = metric(&j, "errorRate").dispersion.unwrap_or(0.0);
    assert_eq!(metric(&j0, "errorRate").dispersion, Some(1.0));
    assert!(d < 1.25, "{d}");
}

fn history(counts: &[f64], requests: f64) -> Vec<ArmCounts> {
    counts
        .iter()
        .map(|&e| ArmCounts {
            requests: Some(requests),
            errors: Some(e),
            latency: None,
        })
        .collect()
}

#[test]
fn baseline_history_informs_the_dispersion_and_nothing_else() {
    // a few errors per window, the canary ahead eight windows running, residuals that look
    // Poisson: a regression, or a bursty service's luck; eight windows cannot tell
    let ws: Vec<JudgeWindow> = [
        (5.0, 2.0),
        (6.0, 1.0),
        (4.0, 2.0),
        (6.0, 2.0),
        (5.0, 1.0),
        (6.0, 1.0),
        (5.0, 1.0),
        (6.0, 2.0),
    ]
    .iter()
    .map(|&(c, b)| err_win(c, b, 300.0))
    .collect();
    let policy = JudgePolicy::default();
    // an hour of the stable version's windows (all the traffic: twice an arm's requests)
    let bursty: Vec<f64> = (0..120)
        .map(|i| [0.0, 14.0, 3.0, 11.0, 1.0, 9.0, 6.0, 2.0][i % 8])
        .collect();
    let steady: Vec<f64> = (0..120)
        .map(|i| [6.0, 5.0, 7.0, 6.0, 4.0, 6.0, 8.0, 5.0][i % 8])
        .collect();
    // every window after the first with an error is a term (a rate needs an event)
    let prime = |h: &[f64]| {
        let (st, n) =
            prime_history(&JudgeState::default(), &policy, &history(h, 600.0)).expect("policy");
        assert_eq!(n, if h[0] > 0.0 { 119 } else { 118 });
        st
    };
    let judge_from = |st: JudgeState| {
        let mut st = st;
        let mut last = None;
        for w in &ws {
            let (s, j) = update(&st, &policy, w).expect("policy");
            st = s;
            last = Some(j);
        }
        (st, last.expect("windows"))
    };
    let (plain_state, plain) = judge_from(JudgeState::default());
    let (bursty_state, with_bursty) = judge_from(prime(&bursty));
    let (steady_state, with_steady) = judge_from(prime(&steady));
    let (p, b, s) = (
        metric(&plain, "errorRate"),
        metric(&with_bursty, "errorRate"),
        metric(&with_steady, "errorRate"),
    );
    // without history, and with a steady one, this is a regression
    assert_eq!(p.verdict, JudgeVerdict::Fail, "{p:?}");
    assert_eq!(s.verdict, JudgeVerdict::Fail, "{s:?}");
    assert!(s.dispersion.unwrap_or(9.0) < 1.2, "{s:?}");
    // a bursty history says eight windows are not enough
    assert_ne!(b.verdict, JudgeVerdict::Fail, "{b:?}");
    assert!(b.dispersion.unwrap_or(0.0) > 2.0, "{b:?}");
    assert!(
        b.reason.contains("118 windows of baseline history"),
        "{}",
        b.reason
    );
    // the evidence about the ratio itself is the same: history only tempers it
    let (pe, be) = (
        plain_state.error_rate.expect("state"),
        bursty_state.error_rate.expect("state"),
    );
    assert_eq!(pe.loglik, be.loglik);
    assert_eq!(
        (pe.canary_events, pe.baseline_events, pe.windows),
        (be.canary_events, be.baseline_events, be.windows)
    );
    assert_eq!(b.estimate, p.estimate);
    assert_eq!(steady_state.error_rate.expect("state").history_windows, 119);
    // history comes before the analysis, once: after a window, or a second time, it is
    // ignored, so a replayed first look cannot count it twice
    let (after, n) = prime_history(
        &judged_without_history(&ws, &policy),
        &policy,
        &history(&bursty, 600.0),
    )
    .expect("policy");
    assert_eq!(n, 0);
    assert_eq!(after, judged_without_history(&ws, &policy));
    let once = prime(&bursty);
    let (twice, n) = prime_history(&once, &policy, &history(&bursty, 600.0)).expect("policy");
    assert_eq!((n, &twice), (0, &once));
    // a state that survives a restart keeps it
    let json = serde_json::to_string(&once).expect("serialize");
    let back: JudgeState = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, once);
}

/// The state after judging `ws` without history.
fn judged_without_history(ws: &[JudgeWindow], policy: &JudgePolicy) -> JudgeState {
    run(policy, ws).0
}

#[test]
fn non_critical_failure_blocks_promotion_but_does_not_roll_back() {
    let p = JudgePolicy {
        latency: vec![],
        distribution: Some(DistributionPolicy {
            critical: false,
            ..DistributionPolicy::default()
        }),
        ..JudgePolicy::default()
    };
    let ws: Vec<JudgeWindow> = (0..40).map(|_| win(10.0, 10.0, SLOW, SAME)).collect();
    let (_, j) = run(&p, &ws);
    assert_eq!(
        metric(&j, "latencyDistribution").verdict,
        JudgeVerdict::Fail
    );
    assert_eq!(j.verdict, JudgeVerdict::Undecided, "{}", j.reason);
}

#[test]
fn invalid_policies_are_refused() {
    let st = JudgeState::default();
    let w = JudgeWindow::default();
    let bad = [
        JudgePolicy {
            alpha: 0.0,
            ..JudgePolicy::default()
        },
        JudgePolicy {
            error_rate: Some(ErrorRatePolicy {
                tolerance: 2.0,
                pass_tolerance: 1.5,
                ..Default::default()
            }),
            ..JudgePolicy::default()
        },
        JudgePolicy {
            latency: vec![LatencyPolicy {
                quantile: 1.0,
                ..Default::default()
            }],
            ..JudgePolicy::default()
        },
        JudgePolicy {
            error_rate: None,
            latency: vec![],
            distribution: None,
            ..JudgePolicy::default()
        },
    ];
    for p in bad {
        assert!(update(&st, &p, &w).is_err(), "{p:?}");
    }
}

#[test]
fn changed_policy_resets_that_metric() {
    let p = JudgePolicy::default();
    let ws: Vec<JudgeWindow> = (0..6).map(|_| win(30.0, 10.0, SAME, SAME)).collect();
    let (st, _) = run(&p, &ws);
    let p2 = JudgePolicy {
        error_rate: Some(ErrorRatePolicy {
            tolerance: 1.2,
            ..Default::default()
        }),
        ..JudgePolicy::default()
    };
    let (st2, j) = update(&st, &p2, &ws[0]).expect("valid");
    assert_eq!(st2.error_rate.as_ref().map(|e| e.windows), Some(1));
    assert!(j.reason.contains("evidence reset"));
}

#[test]
fn evaluate_repeats_the_standing_without_new_data() {
    let p = JudgePolicy::default();
    let ws: Vec<JudgeWindow> = (0..6).map(|_| win(30.0, 10.0, SAME, SAME)).collect();
    let (st, j) = run(&p, &ws);
    let again = evaluate(&st, &p).expect("valid");
    assert_eq!(again.verdict, j.verdict);
    assert_eq!(
        metric(&again, "errorRate").e_value,
        metric(&j, "errorRate").e_value
    );
    assert!(evaluate(&st, &JudgePolicy { alpha: 2.0, ..p }).is_err());
}

#[test]
fn quantile_names() {
    assert_eq!(quantile_name(0.99), "latencyP99");
    assert_eq!(quantile_name(0.5), "latencyP50");
    assert_eq!(quantile_name(0.999), "latencyP99.9");
}

#[test]
fn absurd_counts_are_no_evidence_and_never_pass() {
    let p = JudgePolicy::default();
    // every canary request fails against a 1% baseline, at counts no service serves; and the
    // largest finite counts in both arms
    let all_failing = |n: f64| err_win(n, n / 100.0, n);
    for ws in [
        vec![all_failing(1e155); 6],
        vec![err_win(1e308, 1e308, 1e308); 6],
        vec![all_failing(2e12); 6],
    ] {
        let (st, j) = run(&p, &ws);
        assert_eq!(j.verdict, JudgeVerdict::Undecided, "{j:#?}");
        let m = metric(&j, "errorRate");
        assert_eq!(m.verdict, JudgeVerdict::Undecided, "{m:?}");
        assert!(m.reason.contains("not believable"), "{}", m.reason);
        assert_eq!(st.error_rate.as_ref().map(|e| e.windows), Some(0));
    }
    // just below the ceiling the same canary fails, with figures that agree with each other
    let (_, j) = run(&p, &vec![all_failing(1e11); 6]);
    let m = metric(&j, "errorRate");
    assert_eq!(m.verdict, JudgeVerdict::Fail, "{m:?}");
    assert!(m.estimate.is_some_and(f64::is_finite), "{m:?}");
    assert!(m.lower.is_some_and(|l| l > 1.0), "{m:?}");
    // and a histogram above the ceiling is no evidence for the latency metrics either
    let mut w = win(5.0, 5.0, SAME, SAME);
    w.canary.latency = Some(hist([3e12, 0.0, 0.0, 0.0, 0.0]));
    let (_, j) = update(&JudgeState::default(), &p, &w).expect("valid");
    for name in ["latencyP99", "latencyDistribution"] {
        assert!(
            metric(&j, name).reason.contains("not believable"),
            "{name}: {}",
            metric(&j, name).reason
        );
    }
}

#[test]
fn figures_that_contradict_each_other_carry_no_verdict() {
    let p = JudgePolicy::default();
    let good = super::ladder::Rungs {
        fresh: Ok(()),
        sound: Ok(()),
        decided: None,
        fail_now: None,
        windows: 10,
        hold: None,
        fail: false,
        pass: true,
        canary_requests: 1e4,
    };
    let words = super::ladder::Wording {
        kept_fail: "kept fail",
        kept_pass: "kept pass",
        fail: "fail".into(),
        pass: "pass".into(),
    };
    assert_eq!(
        super::ladder::climb(&p, good, &words, "ev").0,
        JudgeVerdict::Pass
    );
    for decided in [None, Some(JudgeVerdict::Pass), Some(JudgeVerdict::Fail)] {
        let bad = super::ladder::Rungs {
            fresh: Ok(()),
            sound: Err("estimate NaN".into()),
            decided,
            fail_now: None,
            windows: 10,
            hold: None,
            fail: true,
            pass: true,
            canary_requests: 1e4,
        };
        let (v, why) = super::ladder::climb(&p, bad, &words, "ev");
        assert_eq!(v, JudgeVerdict::Undecided);
        assert!(why.contains("estimate NaN"), "{why}");
    }
}

#[test]
fn a_canary_without_errors_passes_on_the_margin() {
    // no errors in either arm: the rate ratio can never be shown below 1.5, the margin can
    let p = JudgePolicy {
        latency: vec![],
        distribution: None,
        ..JudgePolicy::default()
    };
    let ws: Vec<JudgeWindow> = (0..12).map(|_| err_win(0.0, 0.0, 300.0)).collect();
    let mut st = JudgeState::default();
    let mut passed_at = None;
    for (i, w) in ws.iter().enumerate() {
        let (s, j) = update(&st, &p, w).expect("valid");
        st = s;
        if j.verdict == JudgeVerdict::Pass {
            passed_at = Some(i + 1);
            let m = metric(&j, "errorRate");
            assert!(
                m.reason.contains("at most 0.005 per request"),
                "{}",
                m.reason
            );
            // the deciding bound is reported, below the margin
            assert!(m.difference_upper.is_some_and(|d| d < 0.005), "{m:?}");
            assert_eq!(m.e_value_pass, Some(1.0));
            break;
        }
    }
    // the closed form: with no errors the canary's bound after N requests is
    // (ln(1/a) + ln(1 + N/100)) / N at a = alphaPass / 4 (half the rule's half), i.e. 0.0125
    let needed = (1..)
        .map(|w| f64::from(w) * 300.0)
        .find(|n| ((80.0f64).ln() + (1.0 + n / 100.0).ln()) / n < 0.005)
        .expect("some window");
    assert_eq!(passed_at, Some((needed / 300.0) as usize), "needs {needed}");
    // without the margin the same canary never passes
    let ratio_only = JudgePolicy {
        error_rate: Some(ErrorRatePolicy {
            pass_margin: None,
            ..ErrorRatePolicy::default()
        }),
        ..p.clone()
    };
    let (_, j) = run(&ratio_only, &ws);
    assert_eq!(j.verdict, JudgeVerdict::Undecided);
    // and a canary whose error rate is 1 point above the baseline's does not pass on it
    let worse: Vec<JudgeWindow> = (0..40).map(|_| err_win(4.0, 1.0, 300.0)).collect();
    let (_, j) = run(&p, &worse);
    assert_ne!(j.verdict, JudgeVerdict::Pass, "{j:#?}");
    let bad = JudgePolicy {
        error_rate: Some(ErrorRatePolicy {
            pass_margin: Some(0.0),
            ..ErrorRatePolicy::default()
        }),
        ..p
    };
    assert!(update(&JudgeState::default(), &bad, &ws[0]).is_err());
}

#[test]
fn a_broken_canary_fails_at_the_first_look() {
    // every canary request fails at 1 req/s against a 1% baseline: one 30-s window is enough
    let p = JudgePolicy::default();
    let w = err_win(30.0, 0.0, 30.0);
    let (_, j) = update(&JudgeState::default(), &p, &w).expect("valid");
    let m = metric(&j, "errorRate");
    assert_eq!(m.verdict, JudgeVerdict::Fail, "{m:?}");
    assert!(m.reason.contains("broken canary"), "{}", m.reason);
    assert_eq!(j.verdict, JudgeVerdict::Fail);
    // a doubled error rate is no broken canary: it waits for the minimum windows
    let (_, j) = update(&JudgeState::default(), &p, &err_win(6.0, 3.0, 300.0)).expect("valid");
    assert_eq!(metric(&j, "errorRate").verdict, JudgeVerdict::Undecided);
    // nor is a shared outage: both arms failing
    let (_, j) = update(&JudgeState::default(), &p, &err_win(30.0, 30.0, 30.0)).expect("valid");
    assert_ne!(metric(&j, "errorRate").verdict, JudgeVerdict::Fail);
}

#[test]
fn a_pass_is_revisited_at_every_look_and_a_failure_is_final() {
    use super::ladder::{climb, record, Rungs, Wording};
    let p = JudgePolicy::default();
    let words = Wording {
        kept_fail: "kept fail",
        kept_pass: "kept pass",
        fail: "fail".into(),
        pass: "pass".into(),
    };
    let rungs = |decided, fail_now: Option<&str>, windows, hold: Option<&str>, fail, pass| Rungs {
        fresh: Ok(()),
        sound: Ok(()),
        decided,
        fail_now: fail_now.map(String::from),
        windows,
        hold: hold.map(String::from),
        fail,
        pass,
        canary_requests: 1e4,
    };
    use JudgeVerdict::{Fail, Pass, Undecided};
    // (decided before, fail-fast, windows, hold, fail, pass) -> verdict, words it starts with
    #[rustfmt::skip]
    let cases = [
        (Some(Pass), None, 10, None, false, false, Pass, "kept pass"),
        (Some(Pass), None, 10, None, false, true, Pass, "kept pass"),
        (Some(Pass), None, 10, None, true, false, Fail, "fail (after an earlier pass"),
        (Some(Pass), None, 10, None, true, true, Fail, "fail (after an earlier pass"),
        (Some(Pass), Some("broken canary"), 10, None, false, false, Fail, "broken canary"),
        (Some(Pass), None, 10, Some("overdispersed"), true, false, Pass, "kept pass"),
        (Some(Pass), None, 1, None, true, false, Pass, "kept pass"),
        (Some(Fail), None, 10, None, false, true, Fail, "kept fail"),
        (Some(Fail), None, 10, None, false, false, Fail, "kept fail"),
        (None, None, 10, None, true, true, Fail, "fail:"),
        (None, None, 10, None, false, true, Pass, "pass:"),
        (None, None, 10, None, false, false, Undecided, "not enough evidence"),
        (None, None, 1, None, true, true, Undecided, "1 of 3 windows"),
        (None, None, 10, Some("overdispersed"), true, true, Undecided, "overdispersed"),
    ];
    for (decided, fail_now, windows, hold, fail, pass, want, words_start) in cases {
        let (v, why) = climb(
            &p,
            rungs(decided, fail_now, windows, hold, fail, pass),
            &words,
            "ev",
        );
        assert_eq!(
            v, want,
            "{decided:?} {fail_now:?} {windows} {hold:?} {fail} {pass}: {why}"
        );
        assert!(why.starts_with(words_start), "{why}");
    }
    // what is remembered: the first pass, then a failure over it; a failure stays
    let mut decided = None;
    for (verdict, after) in [
        (Undecided, None),
        (Pass, Some(Pass)),
        (Undecided, Some(Pass)),
        (Pass, Some(Pass)),
        (Fail, Some(Fail)),
        (Pass, Some(Fail)),
        (Undecided, Some(Fail)),
    ] {
        record(&mut decided, verdict);
        assert_eq!(decided, after, "after {verdict:?}");
    }
}

#[test]
fn a_regression_that_starts_after_the_pass_fails_the_metric() {
    // a healthy canary at a 1% error rate, 3000 requests per arm and window, until the error
    // rate passes; then the canary's errors triple (a regression that shows at a higher weight)
    let p = JudgePolicy {
        latency: vec![],
        distribution: None,
        ..JudgePolicy::default()
    };
    let mut st = JudgeState::default();
    let mut passed_at = None;
    for i in 0..200 {
        let (s, j) = update(&st, &p, &err_win(30.0, 30.0, 3000.0)).expect("valid");
        st = s;
        if j.verdict == JudgeVerdict::Pass {
            passed_at = Some(i);
            break;
        }
    }
    let passed_at = passed_at.expect("the healthy canary passes");
    let mut failed_after = None;
    for i in 0..60 {
        let (s, j) = update(&st, &p, &err_win(90.0, 30.0, 3000.0)).expect("valid");
        st = s;
        let m = metric(&j, "errorRate");
        if m.verdict == JudgeVerdict::Fail {
            assert!(m.reason.contains("after an earlier pass"), "{}", m.reason);
            assert_eq!(j.verdict, JudgeVerdict::Fail);
            failed_after = Some(i + 1);
            break;
        }
        assert_eq!(m.verdict, JudgeVerdict::Pass, "kept until it fails: {m:?}");
        assert!(m.reason.contains("passed earlier"), "{}", m.reason);
    }
    let failed_after = failed_after.expect("the late regression fails the metric");
    // once failed, healthy windows do not bring the pass back
    let (_, j) = update(&st, &p, &err_win(30.0, 30.0, 3000.0)).expect("valid");
    assert_eq!(metric(&j, "errorRate").verdict, JudgeVerdict::Fail);
    println!(
        "passed after {} windows; x3 errors failed it {failed_after} windows later",
        passed_at + 1
    );
}

#[test]
fn bounds_below_the_tolerance_on_a_fail_are_a_contradiction() {
    let p = JudgePolicy::default();
    // the look that decides (later looks keep the verdict and are not checked)
    let mut st = JudgeState::default();
    let mut decided = None;
    for _ in 0..6 {
        let (next, j) = update(&st, &p, &win(30.0, 10.0, SAME, SAME)).expect("valid policy");
        st = next;
        let m = metric(&j, "errorRate");
        if m.verdict == JudgeVerdict::Fail {
            decided = Some(m.clone());
            break;
        }
    }
    let mut m = decided.expect("the error rate fails within 6 looks");
    assert!(!m.reason.contains("earlier"), "{m:?}");
    assert!(!bounds_contradict(&p, &m), "{m:?}");
    // what the old two-sided confidence sequence could print beside a Fail
    m.lower = Some(0.951);
    assert!(bounds_contradict(&p, &m));
    m.verdict = JudgeVerdict::Pass;
    m.lower = Some(0.5);
    m.upper = Some(1.7);
    assert!(bounds_contradict(&p, &m));
}

#[test]
fn every_decision_reports_bounds_that_agree_with_it() {
    use crate::analysis::sim::{Generator, LatencyChange, Scenario};
    use rand::SeedableRng;

    let p = JudgePolicy::default();
    let scenario = |rps: f64, base_error: f64, error_mult: f64, latency: LatencyChange| Scenario {
        name: String::new(),
        rps,
        base_error,
        error_mult,
        median: 0.1,
        sigma: 0.5,
        latency,
        burst_cv: None,
        shared_shock: None,
        ..Scenario::default()
    };
    let cases = [
        scenario(10.0, 0.01, 1.0, LatencyChange::None),
        scenario(10.0, 0.01, 2.0, LatencyChange::None),
        scenario(10.0, 0.01, 3.0, LatencyChange::None),
        scenario(100.0, 0.001, 1.0, LatencyChange::None),
        scenario(100.0, 0.02, 0.5, LatencyChange::None),
        scenario(1.0, 0.5, 1.0, LatencyChange::None),
        scenario(10.0, 0.01, 1.0, LatencyChange::Whole(1.3)),
        scenario(30.0, 0.01, 1.0, LatencyChange::Tail(1.5)),
    ];
    let (mut fails, mut passes) = (0, 0);
    for (i, s) in cases.iter().enumerate() {
        let gen = Generator::new(s);
        for seed in 0..12u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1000 * i as u64 + seed);
            let mut st = JudgeState::default();
            for t in 0..80 {
                let (next, j) = update(&st, &p, &gen.window(&mut rng, t)).expect("policy");
                st = next;
                for m in &j.metrics {
                    assert!(!bounds_contradict(&p, m), "{m:?}");
                    match m.verdict {
                        JudgeVerdict::Fail => fails += 1,
                        JudgeVerdict::Pass => passes += 1,
                        JudgeVerdict::Undecided => {}
                    }
                }
                if j.verdict != JudgeVerdict::Undecided {
                    break;
                }
            }
        }
    }
    // the table above must exercise both kinds of decision, or it proves nothing
    assert!(
        fails >= 20 && passes >= 20,
        "fails {fails}, passes {passes}"
    );
}

/// Error-rate-only policy, so a test of the error rate is not held up by latency metrics.
fn errors_only() -> JudgePolicy {
    JudgePolicy {
        latency: vec![],
        distribution: None,
        ..JudgePolicy::default()
    }
}

#[test]
fn counts_that_jitter_together_in_both_arms_are_not_held_as_overdispersed() {
    // a healthy 5% error canary at half the traffic, whose two arms Prometheus scrapes at
    // slightly different moments: each window's counts in both arms are scaled by the same
    // factor (more or fewer seconds of traffic). The canary's share of the errors does not
    // move, so this is no evidence of bursts and must not hold the metric or temper it.
    let jitter: [f64; 10] = [1.0, 1.6, 0.5, 1.3, 0.7, 1.5, 0.6, 1.2, 0.9, 1.4];
    let ws: Vec<JudgeWindow> = jitter
        .iter()
        .enumerate()
        .map(|(i, f)| {
            // the share alternates slightly around a half, as binomial noise would
            let wobble = if i % 2 == 0 { 1.0 } else { -1.0 };
            let n = (40.0 * f).round();
            let c = (n / 2.0 + wobble).max(0.0);
            let arm = |e: f64| ArmCounts {
                requests: Some(n * 20.0),
                errors: Some(e),
                latency: None,
            };
            JudgeWindow {
                baseline: arm(n - c),
                canary: arm(c),
                canary_share: Some(0.5),
            }
        })
        .collect();
    let p = errors_only();
    // the same policy without the prior's caution: what the data alone say
    let p0 = JudgePolicy {
        dispersion: DispersionPolicy {
            prior_burst_cv: 0.0,
            ..DispersionPolicy::default()
        },
        ..errors_only()
    };
    for k in 3..=ws.len() {
        let (_, j) = run(&p, &ws[..k]);
        let m = metric(&j, "errorRate");
        assert!(!m.reason.contains("overdispersed"), "{k}: {}", m.reason);
        assert_ne!(m.verdict, JudgeVerdict::Fail, "{k}: {m:?}");
        let (_, j0) = run(&p0, &ws[..k]);
        assert_eq!(metric(&j0, "errorRate").dispersion, Some(1.0), "{k}");
    }
    // bursts in one arm still hold and temper: the same windows with the canary's errors
    // scaled by the factor alone
    let bursty: Vec<JudgeWindow> = jitter
        .iter()
        .map(|f| {
            let arm = |e: f64| ArmCounts {
                requests: Some(800.0),
                errors: Some(e),
                latency: None,
            };
            JudgeWindow {
                baseline: arm(20.0),
                canary: arm((20.0 * f * f).round()),
                canary_share: Some(0.5),
            }
        })
        .collect();
    let (_, j) = run(&p, &bursty[..5]);
    let m = metric(&j, "errorRate");
    assert!(m.reason.contains("overdispersed"), "{}", m.reason);
    assert!(m.dispersion.unwrap_or(0.0) > 2.0, "{m:?}");
}

#[test]
fn dispersion_memory_must_be_zero_or_at_least_one_window() {
    for bad in [0.5, -1.0, f64::NAN, f64::INFINITY] {
        let p = JudgePolicy {
            dispersion: DispersionPolicy {
                memory_windows: bad,
                ..DispersionPolicy::default()
            },
            ..JudgePolicy::default()
        };
        let e = p.validate().expect_err("invalid memory accepted");
        assert!(e.to_string().contains("dispersion.memoryWindows"), "{e}");
    }
    for good in [0.0, 1.0, 60.0] {
        let p = JudgePolicy {
            dispersion: DispersionPolicy {
                memory_windows: good,
                ..DispersionPolicy::default()
            },
            ..JudgePolicy::default()
        };
        assert!(p.validate().is_ok(), "{good}");
    }
}

#[test]
fn pass_rate_passes_a_canary_shown_below_the_objective_and_no_other() {
    // margin off, so the service-level rule is the only absolute one
    let slo = |rate: f64| JudgePolicy {
        error_rate: Some(ErrorRatePolicy {
            pass_margin: None,
            pass_rate: Some(rate),
            ..ErrorRatePolicy::default()
        }),
        ..errors_only()
    };
    // 0.2% errors in both arms at 300 requests per window: below an objective of 1%
    let ws: Vec<JudgeWindow> = (0..40)
        .map(|i| err_win(if i % 5 == 0 { 1.0 } else { 0.0 }, 0.0, 300.0))
        .collect();
    let p = slo(0.01);
    let mut passed_at = None;
    for k in 1..=ws.len() {
        let (_, j) = run(&p, &ws[..k]);
        if j.verdict == JudgeVerdict::Pass {
            passed_at = Some(k);
            let m = metric(&j, "errorRate");
            assert!(m.reason.contains("objective of 0.010"), "{}", m.reason);
            assert!(m.rate_upper.unwrap_or(1.0) < 0.01, "{m:?}");
            assert!(!bounds_contradict(&p, m), "{m:?}");
            break;
        }
    }
    assert!(passed_at.is_some_and(|k| k <= 20), "{passed_at:?}");
    // a canary at 1.3% is never shown below an objective of 1%, however long it runs (it
    // may pass on the ratio: its baseline is as bad)
    let p = slo(0.01);
    let mut st = JudgeState::default();
    for w in (0..120).map(|_| err_win(4.0, 4.0, 300.0)) {
        let (next, j) = update(&st, &p, &w).expect("policy");
        st = next;
        let m = metric(&j, "errorRate");
        assert!(m.rate_upper.unwrap_or(0.0) >= 0.01, "{m:?}");
        assert!(!m.reason.contains("objective of"), "{}", m.reason);
    }
    // an objective outside (0, 1) is refused, naming the field
    let bad = slo(1.5).validate().expect_err("accepted");
    assert!(bad.to_string().contains("passRate"), "{bad}");
}

#[test]
fn an_undecided_metric_says_how_many_more_requests_a_pass_needs() {
    let p = errors_only();
    // 1% errors in both arms, 300 requests per window: the margin rule can pass, later
    let ws: Vec<JudgeWindow> = (0..4).map(|_| err_win(3.0, 3.0, 300.0)).collect();
    let (_, j) = run(&p, &ws);
    let m = metric(&j, "errorRate");
    assert_eq!(m.verdict, JudgeVerdict::Undecided);
    let n = m.needs_requests.expect("a number");
    assert!(n > 300.0, "{m:?}");
    assert!(m.reason.contains("needs about"), "{}", m.reason);
    // and it is about right: the same rates for that many more requests pass
    let more = (n / 300.0).ceil() as usize + 1;
    let longer: Vec<JudgeWindow> = (0..4 + more).map(|_| err_win(3.0, 3.0, 300.0)).collect();
    let (_, j) = run(&p, &longer);
    assert_eq!(
        metric(&j, "errorRate").verdict,
        JudgeVerdict::Pass,
        "{j:#?}"
    );
    let (_, j) = run(&p, &longer[..4 + more / 2]);
    let m = metric(&j, "errorRate");
    assert_eq!(m.verdict, JudgeVerdict::Undecided);
    assert!(!m.cannot_pass, "{m:?}");
    // a canary two thirds of a point worse than its baseline cannot pass by the margin
    let worse: Vec<JudgeWindow> = (0..6).map(|_| err_win(5.0, 3.0, 300.0)).collect();
    let (_, j) = run(&p, &worse);
    let m = metric(&j, "errorRate");
    assert_eq!(m.needs_requests, None, "{m:?}");
    assert!(m.cannot_pass, "{m:?}");
    assert!(m.reason.contains("cannot pass"), "{}", m.reason);
}

/// A baseline whose p99 sits inside a coarse bucket: 3% of requests above 0.25 s, 0.3% above
/// 0.5 s (Prometheus' default buckets around a 0.3 s p99).
const COARSE: [f64; 5] = [600.0, 370.0, 27.0, 3.0, 0.0];
/// Its tail-only regression: the rate above 0.25 s rises 1.17-fold, above 0.5 s 3.3-fold.
const COARSE_TAIL: [f64; 5] = [600.0, 365.0, 25.0, 10.0, 0.0];

#[test]
fn coarse_buckets_pass_a_healthy_canary_on_the_pass_bound() {
    let p = JudgePolicy::default();
    let ws: Vec<JudgeWindow> = (0..40).map(|_| win(10.0, 10.0, COARSE, COARSE)).collect();
    let (st, j) = run(&p, &ws);
    let q = metric(&j, "latencyP99");
    // 0.5 s is nearer p99 but holds a tenth of the tail: the pass bound is 0.25 s
    assert_eq!(q.detail.as_ref().and_then(|d| d.boundary), Some(0.25));
    assert_eq!(st.latency[0].watch_boundary, Some(0.5));
    assert_eq!(q.verdict, JudgeVerdict::Pass, "{q:?}");
    assert!(!bounds_contradict(&p, q), "{q:?}");
}

#[test]
fn a_tail_regression_between_coarse_bounds_fails_on_the_watch_bound() {
    let p = JudgePolicy::default();
    let ws: Vec<JudgeWindow> = (0..12)
        .map(|_| win(10.0, 10.0, COARSE_TAIL, COARSE))
        .collect();
    let (st, j) = run(&p, &ws);
    let q = metric(&j, "latencyP99");
    assert_eq!(q.verdict, JudgeVerdict::Fail, "{q:?}");
    assert!(q.reason.contains("watch bound 0.500s"), "{}", q.reason);
    // the bounds reported are the watch test's: above the tolerance
    assert!(q.lower.unwrap_or(0.0) > 1.0, "{q:?}");
    assert!(!bounds_contradict(&p, q), "{q:?}");
    // the pass bound's own test alone had not shown it
    let main = &st.latency[0].test;
    let cfg = p.ratio_config(1.0, 1.5);
    let sum = main.summary(&cfg, &cfg.grid(), p.alpha / 4.0, p.alpha_pass);
    assert!(sum.e_value_fail < 4.0 / p.alpha, "{sum:?}");
}

fn guarded(max_rate: f64) -> JudgePolicy {
    JudgePolicy {
        error_rate: Some(ErrorRatePolicy {
            max_rate: Some(max_rate),
            ..ErrorRatePolicy::default()
        }),
        ..errors_only()
    }
}

#[test]
fn max_rate_fails_a_canary_above_it_even_when_the_baseline_is_as_bad() {
    // 8% errors in both arms at 300 requests per window: the comparison cannot fail it (the
    // baseline is as bad), the guard at 5% must
    let ws: Vec<JudgeWindow> = (0..30).map(|_| err_win(24.0, 24.0, 300.0)).collect();
    let p = guarded(0.05);
    let unguarded = errors_only();
    let (_, j) = run(&unguarded, &ws);
    assert_ne!(metric(&j, "errorRate").verdict, JudgeVerdict::Fail, "{j:?}");
    let mut failed_at = None;
    for k in 1..=ws.len() {
        let (_, j) = run(&p, &ws[..k]);
        // the comparison would pass it (ratio 1); above maxRate it may not
        assert_ne!(j.verdict, JudgeVerdict::Pass, "{j:?}");
        if j.verdict == JudgeVerdict::Fail {
            failed_at = Some(k);
            let m = metric(&j, "errorRate");
            assert!(m.max_rate_exceeded, "{m:?}");
            assert!(m.reason.contains("above maxRate 0.050"), "{}", m.reason);
            assert!(m.rate_lower.unwrap_or(0.0) > 0.05, "{m:?}");
            assert_eq!(m.max_rate, Some(0.05));
            // its ratio bounds straddle the tolerance; the guard's bound explains the failure
            assert!(!bounds_contradict(&p, m), "{m:?}");
            break;
        }
    }
    // at least the minimum windows, and soon after: 8% vs 5% is plain in a few thousand
    assert!(
        failed_at.is_some_and(|k| (3..=12).contains(&k)),
        "{failed_at:?}"
    );
    // a later look keeps the failure, not flagged as a new guard failure
    let (_, j) = run(&p, &ws);
    let m = metric(&j, "errorRate");
    assert_eq!(m.verdict, JudgeVerdict::Fail);
    assert!(m.reason.contains("failed earlier"), "{}", m.reason);
    assert!(!m.max_rate_exceeded);
}

#[test]
fn max_rate_does_not_fail_a_canary_below_it_however_long_it_runs() {
    // 4% in both arms (80% of a 5% maxRate), 500 looks of 300 requests: the lower bound stays
    // below maxRate, and the metric passes on the comparison instead
    let p = guarded(0.05);
    let mut st = JudgeState::default();
    let mut passed = false;
    for w in (0..500).map(|_| err_win(12.0, 12.0, 300.0)) {
        let (next, j) = update(&st, &p, &w).expect("policy");
        st = next;
        let m = metric(&j, "errorRate");
        assert_ne!(m.verdict, JudgeVerdict::Fail, "{m:?}");
        assert!(m.rate_lower.unwrap_or(1.0) < 0.05, "{m:?}");
        passed |= m.verdict == JudgeVerdict::Pass;
    }
    assert!(passed);
}

#[test]
fn max_rate_takes_half_of_the_metrics_rollback_alpha() {
    // the comparison's threshold doubles with a guard (its share halves)
    let ws: Vec<JudgeWindow> = (0..5).map(|_| err_win(3.0, 3.0, 300.0)).collect();
    let (_, plain) = run(&errors_only(), &ws);
    let (_, guard) = run(&guarded(0.05), &ws);
    let (t0, t1) = (
        metric(&plain, "errorRate").threshold,
        metric(&guard, "errorRate").threshold,
    );
    assert!((t1 / t0 - 2.0).abs() < 1e-9, "{t0} {t1}");
}

#[test]
fn max_rate_out_of_range_or_not_above_pass_rate_is_refused() {
    for bad in [0.0, 1.0, -0.1, f64::NAN] {
        let e = guarded(bad).validate().expect_err("accepted");
        assert!(e.to_string().contains("maxRate"), "{e}");
    }
    let both = |pass: f64, max: f64| JudgePolicy {
        error_rate: Some(ErrorRatePolicy {
            pass_rate: Some(pass),
            max_rate: Some(max),
            ..ErrorRatePolicy::default()
        }),
        ..errors_only()
    };
    let e = both(0.05, 0.05).validate().expect_err("accepted");
    assert!(
        e.to_string()
            .contains("passRate 0.05 must be below maxRate 0.05"),
        "{e}"
    );
    assert!(both(0.01, 0.05).validate().is_ok());
}

#[test]
fn pass_rate_promotes_a_service_with_no_errors_in_either_arm() {
    // the case: no errors anywhere, so the ratio can never be shown; with the margin
    // rule off, only passRate can pass it (an upper bound on the canary's rate below 1%)
    let p = JudgePolicy {
        error_rate: Some(ErrorRatePolicy {
            pass_margin: None,
            pass_rate: Some(0.01),
            ..ErrorRatePolicy::default()
        }),
        ..errors_only()
    };
    let ws: Vec<JudgeWindow> = (0..20).map(|_| err_win(0.0, 0.0, 300.0)).collect();
    let first = (1..=ws.len()).find_map(|k| {
        let (_, j) = run(&p, &ws[..k]);
        (j.verdict == JudgeVerdict::Pass).then(|| (k, metric(&j, "errorRate").clone()))
    });
    let (k, m) = first.expect("passes");
    // 0/N: the upper bound is (ln(1/alpha) + ln(1 + N/100)) / N, below 1% from 1,500 requests
    assert!(k <= 6, "{k}");
    assert!(m.reason.contains("objective of 0.010"), "{}", m.reason);
    // and without passRate it waits: the ratio has no events to decide on
    let none = JudgePolicy {
        error_rate: Some(ErrorRatePolicy {
            pass_margin: None,
            ..ErrorRatePolicy::default()
        }),
        ..errors_only()
    };
    let (_, j) = run(&none, &ws);
    assert_eq!(metric(&j, "errorRate").verdict, JudgeVerdict::Undecided);
}
