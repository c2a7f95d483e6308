//! Rollouts for unit tests, written as JSON the way users write YAML. Test-only.

use serde_json::{json, Value};

use super::Rollout;

/// The Rollout of `object` (its `metadata`, `spec` and, optionally, `status`); `apiVersion` and
/// `kind` are filled in. Panics, naming the serde error, when the object is not a valid Rollout.
pub(crate) fn rollout(mut object: Value) -> Rollout {
    object["apiVersion"] = json!("tollgate.dev/v1alpha1");
    object["kind"] = json!("Rollout");
    serde_json::from_value(object).unwrap_or_else(|e| panic!("not a Rollout: {e}"))
}

/// `prod/shop` at 2.0.0: four replicas of a one-container template with an `http` port, one
/// 50% step, and the given `spec.traffic`.
pub(crate) fn shop_with_traffic(traffic: Value) -> Rollout {
    rollout(json!({
        "metadata": {"name": "shop", "namespace": "prod", "uid": "u-1"},
        "spec": {
            "version": "2.0.0", "replicas": 4,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}},
                         "spec": {"containers": [{"name": "shop", "image": "shop:2.0.0",
                                   "ports": [{"name": "http", "containerPort": 8080}]}]}},
            "traffic": traffic,
            "steps": [{"setWeight": 50}]
        }
    }))
}
