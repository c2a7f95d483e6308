//! Schema helpers: pieces of OpenAPI that schemars cannot derive on its own.
//!
//! Everything here only shapes the generated CustomResourceDefinition; none of it runs at
//! reconcile time.

use schemars::{json_schema, Schema, SchemaGenerator};

/// Go-style durations (`time.ParseDuration`): one or more `<number><unit>` groups, units
/// `ms`, `s`, `m`, `h`. Negative durations and `ns`/`us` are refused: no tollgate setting means
/// anything below a millisecond. The schema `duration` below uses this pattern, and CEL's
/// `duration()` accepts every string it matches, so rules that compare durations never fail
/// to parse.
///
/// Each group's whole part is bounded by its unit (hours 5 digits, minutes 7, seconds and
/// milliseconds 9: at most about 32 years a group) so that, within the 32 characters a field
/// may hold, no value reaches Go's bound of about 292 years (at most about 100 years in all).
/// Without the bound `99999999999999999999999999999h` matched: Go refuses it, kube's parser
/// panics on it, and one Rollout the operator cannot read fails its whole list of Rollouts.
pub const DURATION_PATTERN: &str = r"^(([0-9]{1,5}(\.[0-9]{1,9})?h)|([0-9]{1,7}(\.[0-9]{1,9})?m)|([0-9]{1,9}(\.[0-9]{1,9})?(s|ms)))+$";

/// Schema of a required duration string.
pub fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": DURATION_PATTERN,
        "maxLength": 32,
    })
}

/// Schema of an optional duration string (absent means "not set").
pub fn optional_duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": DURATION_PATTERN,
        "maxLength": 32,
        "nullable": true,
    })
}

/// An embedded Kubernetes object (a pod template) whose schema the API server already knows.
///
/// Inlining the full PodTemplateSpec schema would make the CRD several hundred kilobytes, too
/// large for client-side `kubectl apply` and costly for CEL estimation. The template is instead
/// kept as an opaque object and validated where it is used: the API server checks it when the
/// operator applies the child Deployments, and the operator reports a rejection in status.
pub fn embedded_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-embedded-resource": false,
        "nullable": true,
    })
}

/// Free-form JSON kept verbatim (the analysis judge's serialized running state).
pub fn opaque_json(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "nullable": true,
    })
}
