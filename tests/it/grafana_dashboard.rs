//! `deploy/grafana/tollgate-dashboard.json` against what the operator exports: every panel's
//! PromQL runs on a real Prometheus that scraped a real operator through a promotion and a
//! rollback, and fails on a query error or an empty result. A quicker check (no cluster) holds
//! every metric name a panel uses to the names the operator's registry renders.
//!
//! Needs the cluster for the first: `tests/cluster/run-peer-tests.sh --test it --
//! --include-ignored grafana_dashboard`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate::crd::Phase;
use tollgate::runtime::dora::DoraEvent;
use tollgate::runtime::metrics::{ErrorKind, ErrorLabels, GateLabels, Metrics, NotificationLabels};

use crate::support::prometheus::{Prometheus, TargetGroup};
use crate::support::scenario::Scenario;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/tollgate-dashboard.json"
);

/// Every (panel title, expression) of the board.
fn queries() -> Vec<(String, String)> {
    let board: Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).expect("dashboard"))
            .expect("JSON");
    let mut out = Vec::new();
    for panel in board["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr").to_string();
            out.push((panel["title"].as_str().unwrap_or("").to_string(), expr));
        }
    }
    out
}

/// Grafana's variables as a test run fills them in: every job and namespace, a 1-minute rate
/// window, the last hour as the dashboard's range.
fn concrete(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$job", ".*")
        .replace("$namespace", ".*")
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"tollgate_[a-z_]+").unwrap();
    re.find_iter(expr)
        .map(|m| {
            let name = m.as_str();
            ["_bucket", "_total", "_sum", "_count"]
                .iter()
                .fold(name.to_string(), |n, s| n.trim_end_matches(s).to_string())
        })
        .collect()
}

#[test]
fn every_metric_the_dashboard_uses_is_one_the_operator_exports() {
    let m = Metrics::new();
    m.record_dora(
        "ns/r",
        &[
            DoraEvent::Promoted {
                lead_time: Some(1.0),
            },
            DoraEvent::RolledBack {
                reason: "AnalysisFailed".into(),
                time_to_detect: Some(1.0),
            },
            DoraEvent::GateWait {
                gate: "analysis",
                seconds: 1.0,
            },
        ],
    );
    // Families render only once they have a series: give every one of them one.
    m.errors
        .get_or_create(&ErrorLabels {
            kind: ErrorKind::Transient,
        })
        .inc();
    m.gate_seconds
        .get_or_create(&GateLabels {
            gate: "fleet".into(),
        })
        .observe(0.1);
    m.notifications
        .get_or_create(&NotificationLabels {
            event: "Promoted".into(),
            outcome: "delivered".into(),
        })
        .inc();
    m.set_phase("ns/r", Some(Phase::Analyzing));
    let exported = m.render();
    let queries = queries();
    assert!(
        (14..=20).contains(&queries.iter().map(|q| &q.0).collect::<BTreeSet<_>>().len()),
        "about 15 panels"
    );
    for (title, expr) in &queries {
        for name in metric_names(expr) {
            assert!(
                exported.contains(&format!("# TYPE {name} ")),
                "panel {title:?} uses {name}, which the operator does not export"
            );
        }
    }
}

/// `expr` evaluated now: the result rows, or the error Prometheus gave.
async fn query(prometheus: &str, expr: &str) -> Result<Vec<Value>, String> {
    let response = crate::support::http::http()
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(body.to_string());
    }
    Ok(match body["data"]["resultType"].as_str() {
        Some("vector" | "matrix") => body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        _ => vec![body["data"]["result"].clone()],
    })
}

/// The sum of a counter across series (0 while there is none).
async fn total(prometheus: &str, metric: &str) -> f64 {
    let rows = query(prometheus, &format!("sum({metric})"))
        .await
        .unwrap_or_default();
    rows.first()
        .and_then(|r| r["value"][1].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Wait until Prometheus has scraped a value of `metric` above `above`.
async fn wait_above(prometheus: &str, metric: &str, above: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = total(prometheus, metric).await;
        if now > above {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{metric} stayed at {now} (waiting for more than {above})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn every_panel_query_answers_after_a_promotion_and_a_rollback() {
    let prometheus = Prometheus::start("grafana-dashboard");
    let world = Scenario::with_stable_v1("grafana-dora").await;
    let admin = world
        .operator
        .admin
        .trim_start_matches("http://")
        .to_string();
    prometheus.set_targets(
        "operator",
        &[TargetGroup {
            targets: vec![admin],
            labels: Default::default(),
        }],
    );
    prometheus.wait_up("job=\"demo\"", 1).await;
    let url = prometheus.url();
    // The first deployment may itself count as a promotion: read the count before rolling and
    // wait for a higher one, never for a fixed number.
    let promotions = total(&url, "tollgate_promotions_total").await;
    world.roll_to("2.0.0", 0.0, None).await;
    let promoted = world.finished("2.0.0").await;
    assert_eq!(promoted.phase, Phase::Succeeded, "{promoted:#?}");
    wait_above(&url, "tollgate_promotions_total", promotions).await;
    let rollbacks = total(&url, "tollgate_rollbacks_total").await;
    world.roll_to("3.0.0", 0.15, None).await;
    let rolled_back = world.finished("3.0.0").await;
    assert_eq!(rolled_back.phase, Phase::RolledBack, "{rolled_back:#?}");
    wait_above(&url, "tollgate_rollbacks_total", rollbacks).await;
    // Histograms are scraped with the counters; one more scrape for good measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut failures = Vec::new();
    for (title, expr) in queries() {
        let expr = concrete(&expr);
        match query(&url, &expr).await {
            Ok(rows) if rows.is_empty() => failures.push(format!("{title}: empty: {expr}")),
            Ok(_) => {}
            Err(e) => failures.push(format!("{title}: error {e}: {expr}")),
        }
    }
    world.end().await;
    prometheus.stop();
    assert!(failures.is_empty(), "{failures:#?}");
}
