//! The tracks of a Rollout (the child workloads it owns) and the labels and annotation that mark
//! their objects. One enum for every layer: the children built, the pods the fleet check asks,
//! the Services that select them and the names written into `status`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Label: the Rollout a pod belongs to.
pub const LABEL_ROLLOUT: &str = "tollgate.dev/rollout";
/// Label: the pod's track (`stable`, `canary`, `baseline`).
pub const LABEL_TRACK: &str = "tollgate.dev/track";
/// Label: set to "true" on canary and baseline pods, the two arms the judge compares (the
/// canary Service behind an HTTPRoute selects it, so a dedicated baseline gets traffic too).
pub const LABEL_COMPARED: &str = "tollgate.dev/compared";
/// Label: who manages the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`] on every object the operator owns.
pub const MANAGED_BY: &str = "tollgate";
/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "tollgate";
/// Annotation: the version a workload's pods run.
pub const ANNOTATION_VERSION: &str = "tollgate.dev/version";

/// Annotation on a Deployment adopted through `spec.workloadRef`: the Rollout that adopted it
/// (a second Rollout naming it is refused). Removed when that Rollout is deleted.
pub const ANNOTATION_ADOPTED_BY: &str = "tollgate.dev/adopted-by";
/// Finalizer of a Rollout that adopted a Deployment: its deletion first scales that Deployment
/// back to the size it had.
pub const FINALIZER_ADOPTION: &str = "tollgate.dev/adoption";
/// Finalizer of a Rollout that records deployments in the Pact Broker
/// (`contractGate.recordDeployments`): its deletion first tells the broker that the recorded
/// version no longer runs there, within a bounded time (see `decide::undeployment`).
pub const FINALIZER_UNDEPLOYMENT: &str = "tollgate.dev/undeployment";

/// Which workload of a rollout a pod belongs to. Ordered canary, baseline, stable: the order in
/// which reports list pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Track {
    /// Serves the version under test.
    Canary,
    /// A fresh copy of stable, compared with the canary.
    Baseline,
    /// Serves the stable version.
    Stable,
}

impl Track {
    /// All tracks.
    pub const ALL: [Track; 3] = [Track::Canary, Track::Baseline, Track::Stable];

    /// Label value (and the name used in status and reports).
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Canary => "canary",
            Track::Baseline => "baseline",
            Track::Stable => "stable",
        }
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Labels that select one track's pods of a rollout.
pub fn track_labels(rollout: &str, track: Track) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_ROLLOUT.to_string(), rollout.to_string()),
        (LABEL_TRACK.to_string(), track.as_str().to_string()),
    ])
}
