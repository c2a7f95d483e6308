//! End to end with a team's own metric (`spec.analysis.metrics`): a counter pair on demo-app's
//! second metric family (`payments_failures_total` per `payments_attempts_total`), named unlike
//! the built-in request counter. The new version regresses only that metric (its HTTP error
//! rate is the stable version's), and the rollout is rolled back on it, the reason naming it.
//! Runs on the local control plane like `e2e_rollout` (its own namespace and operator).

use kube::api::{Patch, PatchParams};
use serde_json::json;
use tollgate::crd::{MetricVerdict, Phase};

use crate::support::rollout_manifest::{template_with, NAME};
use crate::support::scenario::Scenario;

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_regression_of_a_template_metric_alone_is_rolled_back_naming_it() {
    let world = Scenario::start("e2e-metrics", false).await;
    // the team's metric beside the built-in error rate, given once 1.0.0 is stable
    let metrics = json!({"spec": {"analysis": {"metrics": [{
        "name": "paymentFailures",
        "weight": 3,
        "counterPair": {
            "errors": "sum(increase(payments_failures_total{ {{selector}} }[{{window}}]))",
            "total": "sum(increase(payments_attempts_total{ {{selector}} }[{{window}}]))",
            "passTolerance": 2.0
        }
    }]}}});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&metrics))
        .await
        .expect("add the metric");
    // 2.0.0 fails one payment in five; its HTTP error rate is 1.0.0's (5%)
    let failing = [("DEMO_PAYMENT_FAILURE_RATE", "0.2")];
    world
        .roll_to_template("2.0.0", template_with("2.0.0", 0.05, None, &failing))
        .await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}\n{log}");
    assert_eq!(
        status.reason.as_deref(),
        Some("AnalysisFailed"),
        "{status:#?}"
    );
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("paymentFailures"),
        "{message}\n{status:#?}"
    );
    let analysis = status.analysis.expect("analysis evidence kept");
    let by = |name: &str| {
        analysis
            .metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} in {:#?}", analysis.metrics))
    };
    let pay = by("paymentFailures");
    assert_eq!(pay.verdict, MetricVerdict::Fail, "{pay:#?}");
    assert!(pay.lower.is_some_and(|l| l > 1.0), "{pay:#?}");
    assert!(pay.canary_samples > 0, "{pay:#?}");
    let errors = by("errorRate");
    assert_ne!(
        errors.verdict,
        MetricVerdict::Fail,
        "errors did not change: {errors:#?}"
    );
}
