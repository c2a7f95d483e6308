//! Template metrics judged: a counter pair is the error-rate test under another name, a
//! histogram the quantile test; alpha is split over built-in and template metrics together;
//! a template metric without data is undecided with the reason.

use super::*;
use crate::analysis::stats::latency::Histogram;

fn arms(ce: f64, be: f64, n: f64) -> JudgeWindow {
    JudgeWindow {
        baseline: ArmCounts {
            requests: Some(n),
            errors: Some(be),
            latency: None,
        },
        canary: ArmCounts {
            requests: Some(n),
            errors: Some(ce),
            latency: None,
        },
        canary_share: Some(0.5),
    }
}

fn pair(name: &str, weight: f64) -> TemplateMetricPolicy {
    TemplateMetricPolicy {
        name: name.into(),
        counter: Some(ErrorRatePolicy {
            weight,
            ..ErrorRatePolicy::default()
        }),
        quantiles: vec![],
    }
}

fn find<'a>(j: &'a Judgement, name: &str) -> &'a MetricJudgement {
    j.metrics
        .iter()
        .find(|m| m.metric == name)
        .unwrap_or_else(|| panic!("{name} in {:?}", j.metrics))
}

fn run(policy: &JudgePolicy, looks: &[(JudgeWindow, MetricWindows)]) -> (JudgeState, Judgement) {
    let mut st = JudgeState::default();
    let mut last = None;
    for (w, m) in looks {
        let (s, j) = update_with_metrics(&st, policy, w, m).expect("valid policy");
        st = s;
        last = Some(j);
    }
    (st, last.expect("a look"))
}

/// A regression of the team's metric alone (the error rate healthy) rolls back, and the
/// reason names that metric.
#[test]
fn a_counter_pair_regressing_alone_fails_and_the_reason_names_it() {
    let policy = JudgePolicy {
        latency: vec![],
        distribution: None,
        metrics: vec![pair("paymentFailures", 3.0)],
        ..JudgePolicy::default()
    };
    let looks: Vec<_> = (0..8)
        .map(|_| {
            let mut m = MetricWindows::new();
            m.insert("paymentFailures".into(), arms(40.0, 8.0, 400.0));
            (arms(5.0, 5.0, 1000.0), m)
        })
        .collect();
    let (st, j) = run(&policy, &looks);
    assert_eq!(j.verdict, JudgeVerdict::Fail, "{}", j.reason);
    assert!(j.reason.contains("paymentFailures"), "{}", j.reason);
    assert!(!j.reason.contains("errorRate"), "{}", j.reason);
    assert_eq!(find(&j, "paymentFailures").verdict, JudgeVerdict::Fail);
    assert_ne!(find(&j, "errorRate").verdict, JudgeVerdict::Fail);
    // its evidence is kept under its name, and survives a round trip through JSON
    assert!(st.metrics.contains_key("paymentFailures"));
    let back: JudgeState =
        serde_json::from_value(serde_json::to_value(&st).expect("json")).expect("state");
    assert_eq!(back, st);
}

/// The counter pair is the error-rate test: the same counts under the same settings and
/// weight give the same e-values, bounds and verdict.
#[test]
fn a_counter_pair_is_judged_exactly_as_the_error_rate() {
    let policy = JudgePolicy {
        latency: vec![],
        distribution: None,
        metrics: vec![pair("mine", 3.0)],
        ..JudgePolicy::default()
    };
    let looks: Vec<_> = [(9.0, 4.0), (7.0, 5.0), (12.0, 3.0), (8.0, 6.0), (15.0, 2.0)]
        .iter()
        .map(|(c, b)| {
            let w = arms(*c, *b, 700.0);
            let mut m = MetricWindows::new();
            m.insert("mine".into(), w.clone());
            (w, m)
        })
        .collect();
    let (_, j) = run(&policy, &looks);
    let (builtin, mine) = (find(&j, "errorRate"), find(&j, "mine"));
    assert_eq!(builtin.e_value, mine.e_value);
    assert_eq!(builtin.e_value_pass, mine.e_value_pass);
    assert_eq!((builtin.lower, builtin.upper), (mine.lower, mine.upper));
    assert_eq!(builtin.threshold, mine.threshold);
    assert_eq!(builtin.verdict, mine.verdict);
}

/// Weighted Bonferroni over every metric: the default built-ins weigh 3 (errorRate), 1 (p99)
/// and 1 (distribution); with a counter pair of weight 3 and a two-quantile histogram of
/// weight 2 they make 10, so the pair fails at 1/(alpha * 3/10) and each quantile at 1/(alpha * 1/10).
#[test]
fn alpha_is_split_over_built_in_and_template_metrics() {
    let hist = TemplateMetricPolicy {
        name: "checkout".into(),
        counter: None,
        quantiles: [0.9, 0.99]
            .iter()
            .map(|q| LatencyPolicy {
                quantile: *q,
                weight: 1.0,
                ..LatencyPolicy::default()
            })
            .collect(),
    };
    let policy = JudgePolicy {
        metrics: vec![pair("pay", 3.0), hist],
        ..JudgePolicy::default()
    };
    policy.validate().expect("valid");
    // nothing judged yet: only the built-ins report; judge one look to see all
    let before = evaluate(&JudgeState::default(), &policy).expect("evaluates");
    assert!(before.metrics.iter().all(|m| m.metric != "pay"));
    let h = Histogram {
        bounds: vec![0.1, 0.5, f64::INFINITY],
        cumulative: vec![50.0, 90.0, 100.0],
    };
    let w = JudgeWindow {
        baseline: ArmCounts {
            requests: Some(100.0),
            errors: Some(1.0),
            latency: Some(h.clone()),
        },
        canary: ArmCounts {
            requests: Some(100.0),
            errors: Some(1.0),
            latency: Some(h),
        },
        canary_share: Some(0.5),
    };
    let mut m = MetricWindows::new();
    m.insert("pay".into(), w.clone());
    m.insert("checkout".into(), w.clone());
    let (_, j) = update_with_metrics(&JudgeState::default(), &policy, &w, &m).expect("valid");
    let alpha = policy.alpha;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b;
    // the error-rate tests keep a tenth of their share for the fail-fast rule
    assert!(close(find(&j, "pay").threshold, 1.0 / (0.9 * alpha * 0.3)));
    assert!(close(
        find(&j, "errorRate").threshold,
        1.0 / (0.9 * alpha * 0.3)
    ));
    for q in ["checkoutP90", "checkoutP99"] {
        // a quantile with a watch bound halves its share between its two tests; no bound is
        // chosen at the first look, so no watch yet
        assert!(close(find(&j, q).threshold, 1.0 / (alpha * 0.1)), "{q}");
    }
    assert!(close(find(&j, "latencyP99").threshold, 1.0 / (alpha * 0.1)));
}

/// A histogram metric is the quantile test: the same windows under the same settings give the
/// built-in quantile's figures, under the metric's name.
#[test]
fn a_histogram_metric_is_judged_exactly_as_a_latency_quantile() {
    let lp = LatencyPolicy {
        quantile: 0.9,
        ..LatencyPolicy::default()
    };
    let policy = JudgePolicy {
        error_rate: None,
        latency: vec![lp.clone()],
        distribution: None,
        metrics: vec![TemplateMetricPolicy {
            name: "checkout".into(),
            counter: None,
            quantiles: vec![lp],
        }],
        ..JudgePolicy::default()
    };
    let hist = |slow: f64| {
        let body = [500.0, 300.0, 100.0 + slow, 50.0, 10.0];
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
    };
    let looks: Vec<_> = (0..8)
        .map(|i| {
            let w = JudgeWindow {
                baseline: ArmCounts {
                    requests: None,
                    errors: None,
                    latency: Some(hist(0.0)),
                },
                canary: ArmCounts {
                    requests: None,
                    errors: None,
                    latency: Some(hist(f64::from(i) * 20.0)),
                },
                canary_share: None,
            };
            let mut m = MetricWindows::new();
            m.insert("checkout".into(), w.clone());
            (w, m)
        })
        .collect();
    let (_, j) = run(&policy, &looks);
    let (builtin, mine) = (find(&j, "latencyP90"), find(&j, "checkoutP90"));
    assert_eq!(builtin.e_value, mine.e_value);
    assert_eq!((builtin.lower, builtin.upper), (mine.lower, mine.upper));
    assert_eq!(builtin.verdict, mine.verdict);
    assert_eq!(builtin.detail, mine.detail);
}

/// A look without a template metric's data adds nothing to it and says so; the verdict
/// waits for it.
#[test]
fn a_template_metric_without_data_is_undecided_with_the_reason() {
    let policy = JudgePolicy {
        latency: vec![],
        distribution: None,
        metrics: vec![pair("pay", 1.0)],
        ..JudgePolicy::default()
    };
    let (st, j) = run(&policy, &[(arms(1.0, 1.0, 1000.0), MetricWindows::new())]);
    let m = find(&j, "pay");
    assert_eq!(m.verdict, JudgeVerdict::Undecided);
    assert!(m.reason.contains("no data"), "{}", m.reason);
    assert_ne!(j.verdict, JudgeVerdict::Pass);
    assert_eq!(
        st.metrics["pay"].error_rate.as_ref().map(|s| s.windows),
        Some(0)
    );
}

#[test]
fn template_metric_policies_are_checked() {
    let base = JudgePolicy::default;
    let bad = [
        JudgePolicy {
            metrics: vec![pair("errorRate", 1.0)],
            ..base()
        },
        JudgePolicy {
            metrics: vec![pair("a", 1.0), pair("a", 2.0)],
            ..base()
        },
        JudgePolicy {
            metrics: vec![pair("a", 0.0)],
            ..base()
        },
        JudgePolicy {
            metrics: vec![TemplateMetricPolicy {
                name: "neither".into(),
                counter: None,
                quantiles: vec![],
            }],
            ..base()
        },
    ];
    for p in bad {
        assert!(p.validate().is_err(), "{:?}", p.metrics);
    }
    // only template metrics is a policy
    let only = JudgePolicy {
        error_rate: None,
        latency: vec![],
        distribution: None,
        metrics: vec![pair("a", 1.0)],
        ..base()
    };
    assert_eq!(only.validate(), Ok(()));
    assert_eq!(only.decision_points("a"), Some((1.0, 1.5)));
}
