//! The Prometheus provider without a server: the queries it writes (default, configured,
//! escaped, templated), its configuration checks, how an answer's series become the two arms,
//! and the errors it types.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::http::unix_seconds;
use super::windows::ordered_key;
use super::*;

fn provider(config: PrometheusConfig) -> PrometheusProvider {
    PrometheusProvider::new(config, None).expect("valid config")
}

fn target() -> AnalysisTarget {
    AnalysisTarget::new("shop", "checkout")
}

#[test]
fn default_queries() {
    let p = provider(PrometheusConfig::default());
    let q: BTreeMap<_, _> = p
        .arm_queries(&target(), "canary", 60_000)
        .into_iter()
        .collect();
    let sel = r#"namespace="shop",rollout="checkout",track="canary""#;
    assert_eq!(
        q["requests"],
        format!("sum(increase(http_requests_total{{{sel}}}[60s]))")
    );
    assert_eq!(
        q["errors"],
        format!("sum(increase(http_requests_total{{{sel},code=~\"5..\"}}[60s]))")
    );
    assert_eq!(
        q["latency buckets"],
        format!("sum by (le) (increase(http_request_duration_seconds_bucket{{{sel}}}[60s]))")
    );
    assert_eq!(
        q["series count"],
        format!("count(count_over_time(http_requests_total{{{sel}}}[60s]))")
    );
    assert_eq!(
        q["samples count"],
        format!("sum(count_over_time(http_requests_total{{{sel}}}[60s]))")
    );
}

#[test]
fn configured_label_and_metric_names() {
    let p = provider(PrometheusConfig {
        labels: ArmLabels {
            namespace: "kube_ns".into(),
            rollout: "app".into(),
            track: "tollgate_dev_track".into(),
        },
        requests_metric: "requests_total".into(),
        code_label: "status".into(),
        error_codes: "5..|429".into(),
        ..Default::default()
    });
    let q: BTreeMap<_, _> = p
        .arm_queries(&target(), "baseline", 1_500)
        .into_iter()
        .collect();
    assert_eq!(
        q["errors"],
        r#"sum(increase(requests_total{kube_ns="shop",app="checkout",tollgate_dev_track="baseline",status=~"5..|429"}[1500ms]))"#
    );
}

#[test]
fn hostile_names_are_escaped_in_selectors() {
    let p = provider(PrometheusConfig::default());
    let t = AnalysisTarget::new("ns\"}", r#"a"} or vector(1) or m{x="\"#);
    let sel = p.selector(&t, "canary\n");
    assert_eq!(
        sel,
        r#"namespace="ns\"}",rollout="a\"} or vector(1) or m{x=\"\\",track="canary\n""#
    );
}

#[test]
fn user_templates() {
    let p = provider(PrometheusConfig {
        queries: QueryTemplates {
            requests: Some("sum(increase(my_total{ {{selector}} }[{{window}}]))".into()),
            errors: Some(r#"sum(increase(my_total{app="{{rollout}}",ns="{{namespace}}",t="{{track}}",ok="false"}[{{window}}]))"#.into()),
            ..Default::default()
        },
        ..Default::default()
    });
    let t = AnalysisTarget::new("shop", r#"we"ird"#);
    let q: BTreeMap<_, _> = p.arm_queries(&t, "canary", 30_000).into_iter().collect();
    assert_eq!(
        q["requests"],
        r#"sum(increase(my_total{ namespace="shop",rollout="we\"ird",track="canary" }[30s]))"#
    );
    assert_eq!(
        q["errors"],
        r#"sum(increase(my_total{app="we\"ird",ns="shop",t="canary",ok="false"}[30s]))"#
    );
}

#[test]
fn invalid_configurations_are_permanent_errors() {
    let bad = [
        PrometheusConfig {
            address: "ftp://x".into(),
            ..Default::default()
        },
        PrometheusConfig {
            address: "not a url".into(),
            ..Default::default()
        },
        PrometheusConfig {
            address: "http://u:p@host:9090".into(),
            ..Default::default()
        },
        PrometheusConfig {
            labels: ArmLabels {
                track: "tollgate.dev/track".into(),
                ..Default::default()
            },
            ..Default::default()
        },
        PrometheusConfig {
            requests_metric: "x{a=\"b\"}".into(),
            ..Default::default()
        },
        PrometheusConfig {
            code_label: "".into(),
            ..Default::default()
        },
        PrometheusConfig {
            queries: QueryTemplates {
                buckets: Some("m{{{selectr}}}".into()),
                ..Default::default()
            },
            ..Default::default()
        },
        PrometheusConfig {
            max_series: 0,
            ..Default::default()
        },
        PrometheusConfig {
            ca_pem: Some("not a pem".into()),
            ..Default::default()
        },
    ];
    for c in bad {
        let e = PrometheusProvider::new(c.clone(), None).expect_err(&format!("{c:?}"));
        assert!(matches!(e, ProviderError::Config(_)), "{e:?}");
        assert!(!e.is_transient());
        // Credentials in the URL are not echoed back.
        assert!(!e.to_string().contains("u:p"), "{e}");
    }
}

#[test]
fn address_path_prefix_is_kept() {
    let p = provider(PrometheusConfig {
        address: "https://h:1/prom".into(),
        ..Default::default()
    });
    assert_eq!(
        p.base.join("api/v1/query").unwrap().as_str(),
        "https://h:1/prom/api/v1/query"
    );
}

/// The Secret's rules are `util::credentials`' (shared with the broker); here: what the
/// provider keeps never prints, the basic-auth user name included.
#[test]
fn credentials_never_show_in_the_provider() {
    use crate::util::secret::Secret;
    for auth in [
        Credentials::Bearer(Secret::new("s3cr3t-token")),
        Credentials::Basic {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        },
    ] {
        let p = PrometheusProvider::new(PrometheusConfig::default(), Some(auth)).unwrap();
        let shown = format!("{p:?}");
        for s in ["s3cr3t", "alice", "hunter2"] {
            assert!(!shown.contains(s), "{shown}");
        }
    }
}

fn pts(values: &[f64]) -> Vec<(BTreeMap<String, String>, f64)> {
    values.iter().map(|v| (BTreeMap::new(), *v)).collect()
}

fn buckets(values: &[(&str, f64)]) -> Vec<(BTreeMap<String, String>, f64)> {
    values
        .iter()
        .map(|(le, v)| {
            let mut m = BTreeMap::new();
            m.insert("le".to_string(), le.to_string());
            (m, *v)
        })
        .collect()
}

#[test]
fn arm_assembly() {
    let w = arm_window(
        Arm::Canary,
        &[
            pts(&[100.0, 20.5]),
            pts(&[3.0]),
            buckets(&[("+Inf", 120.0), ("0.1", 50.0), ("0.05", 51.0), ("1", 119.0)]),
            pts(&[4.0]),
            pts(&[40.0]),
        ],
    )
    .unwrap()
    .unwrap();
    assert_eq!(w.requests, 120.5);
    assert_eq!(w.errors, 3.0);
    // Sorted by le, made non-decreasing.
    assert_eq!(
        w.buckets,
        vec![
            (0.05, 51.0),
            (0.1, 51.0),
            (1.0, 119.0),
            (f64::INFINITY, 120.0)
        ]
    );
    assert_eq!((w.series, w.samples), (4, 40));
}

#[test]
fn no_series_or_no_requests_is_no_data_and_missing_errors_are_zero() {
    let none = arm_window(Arm::Canary, &[vec![], vec![], vec![], vec![], vec![]]).unwrap();
    assert_eq!(none, None);
    let zero = arm_window(
        Arm::Baseline,
        &[pts(&[0.0]), pts(&[0.0]), vec![], pts(&[2.0]), pts(&[20.0])],
    )
    .unwrap();
    assert_eq!(zero, None);
    let w = arm_window(
        Arm::Canary,
        &[pts(&[10.0]), vec![], vec![], pts(&[1.0]), pts(&[5.0])],
    )
    .unwrap()
    .unwrap();
    assert_eq!(w.errors, 0.0);
    assert!(w.buckets.is_empty());
    // Extrapolation can make errors exceed requests slightly: clamped.
    let w = arm_window(
        Arm::Canary,
        &[pts(&[10.0]), pts(&[10.2]), vec![], pts(&[1.0]), pts(&[5.0])],
    )
    .unwrap()
    .unwrap();
    assert_eq!(w.errors, 10.0);
}

#[test]
fn non_finite_and_negative_values_are_errors() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for q in 0..5 {
            let mut points: [Vec<(BTreeMap<String, String>, f64)>; 5] = [
                pts(&[10.0]),
                pts(&[1.0]),
                buckets(&[("+Inf", 10.0)]),
                pts(&[1.0]),
                pts(&[5.0]),
            ];
            if q == 2 {
                points[2] = buckets(&[("+Inf", bad)]);
            } else {
                points[q] = pts(&[bad]);
            }
            let e = arm_window(Arm::Canary, &points).unwrap_err();
            assert!(matches!(e, ProviderError::NonFinite { .. }), "{q}: {e:?}");
            assert!(e.is_transient());
        }
    }
    // NaN fails even when the requests say "no data".
    let e = arm_window(
        Arm::Canary,
        &[vec![], pts(&[f64::NAN]), vec![], vec![], vec![]],
    )
    .unwrap_err();
    assert!(matches!(e, ProviderError::NonFinite { .. }));
    let e = arm_window(Arm::Canary, &[pts(&[-1.0]), vec![], vec![], vec![], vec![]]).unwrap_err();
    assert!(matches!(e, ProviderError::Negative { .. }));
    let e = arm_window(
        Arm::Canary,
        &[pts(&[1.0]), vec![], pts(&[1.0]), vec![], vec![]],
    )
    .unwrap_err();
    assert!(
        matches!(e, ProviderError::UnexpectedResultType { .. }),
        "{e:?}"
    );
    let e = arm_window(
        Arm::Canary,
        &[
            pts(&[1.0]),
            vec![],
            buckets(&[("fast", 1.0)]),
            vec![],
            vec![],
        ],
    )
    .unwrap_err();
    assert!(matches!(e, ProviderError::Malformed(_)), "{e:?}");
}

#[test]
fn ordered_keys_follow_numeric_order() {
    let xs = [
        f64::NEG_INFINITY,
        -1.0,
        -0.0,
        0.0,
        0.001,
        0.5,
        1.0,
        1e9,
        f64::INFINITY,
    ];
    for w in xs.windows(2) {
        assert!(ordered_key(w[0]) <= ordered_key(w[1]), "{w:?}");
    }
}

#[test]
fn unix_seconds_format() {
    let t: Timestamp = "2026-01-01T00:00:01.5Z".parse().unwrap();
    assert_eq!(unix_seconds(t), "1767225601.500");
    let t: Timestamp = "1969-12-31T23:59:59.25Z".parse().unwrap();
    assert_eq!(unix_seconds(t), "-0.750");
}

#[tokio::test]
async fn the_same_track_for_both_arms_is_a_configuration_error() {
    let p = provider(PrometheusConfig::default());
    let t = AnalysisTarget::new("shop", "checkout").with_baseline_track("canary");
    let end: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
    let w = Window::ending_at(end, Duration::from_secs(60)).unwrap();
    let e = p.window_counts(&t, w).await.unwrap_err();
    assert!(matches!(e, ProviderError::Config(_)), "{e:?}");
    assert!(!e.is_transient());
}
