//! The fleet check's vocabulary, shared by the asking ([`super::attest`], [`super::cluster`]) and
//! the judging ([`super::rules`]): which pod, what it said it runs, and the typed reasons a pod
//! or the fleet fails. No logic beyond naming and classifying.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::crd::Track;

use super::probe::ProbeError;

/// A pod as the fleet check names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRef {
    pub track: Track,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}

/// A ready pod to attest: its name, track and address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTarget {
    pub track: Track,
    pub name: String,
    pub ip: IpAddr,
}

impl PodTarget {
    pub fn pod_ref(&self) -> PodRef {
        PodRef {
            track: self.track,
            name: self.name.clone(),
            ip: Some(self.ip),
        }
    }
}

/// What one attestation attempt gave: the target and either its answer or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct PodObservation {
    pub target: PodTarget,
    pub result: Result<Attestation, AttestError>,
}

/// Machine-readable reason a pod (or the fleet) fails the check. Serialized as the variant name
/// (`"VersionMismatch"`), the Kubernetes convention for reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ProblemKind {
    /// The pod reports another version than its track should run.
    VersionMismatch,
    /// The pod's configuration hash differs from the other pods of its track.
    ConfigDrift,
    /// The pod agrees with its track, but the track's hash is not the expected one (stable's,
    /// the declared one or the pipeline's).
    ConfigMismatch,
    /// No answer within the per-pod timeout.
    Timeout,
    /// Connection refused, reset, or another transport failure.
    Unreachable,
    /// The pod answered with a status outside 2xx.
    HttpStatus,
    /// The body is not JSON (or is too large).
    InvalidBody,
    /// A configured field is absent (or null).
    MissingField,
    /// A configured field is present but not a non-empty string (a number, a list, "").
    InvalidField,
    /// Kubernetes says the pod is ready but gives it no usable IP address.
    NoAddress,
    /// The pod's `pod-template-hash` is not the expected ReplicaSet's.
    TemplateHashMismatch,
    /// The pod runs another image (by `imageID`) than the other pods of its workload.
    ImageMismatch,
    /// A stable or baseline pod was found while no stable version is expected.
    UnexpectedPod,
    /// A declared dependency is missing, unreadable or outside its constraint.
    DependencyOutOfRange,
    /// A dependency's version differs between the pod and its reference (stable's, or its
    /// track's majority).
    DependencyDrift,
    /// A flag differs, key by key, from its reference (stable's, or its track's majority), or
    /// is present on some pods and missing on others.
    FlagDrift,
    /// A flag does not have the value the Rollout declares for it.
    FlagMismatch,
    /// A guarded flag is on while this pod runs a version below the guard's minimum.
    GuardedVersion,
}

impl ProblemKind {
    /// The name written into status and reports (the serialized form).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::VersionMismatch => "VersionMismatch",
            ProblemKind::ConfigDrift => "ConfigDrift",
            ProblemKind::ConfigMismatch => "ConfigMismatch",
            ProblemKind::Timeout => "Timeout",
            ProblemKind::Unreachable => "Unreachable",
            ProblemKind::HttpStatus => "HttpStatus",
            ProblemKind::InvalidBody => "InvalidBody",
            ProblemKind::MissingField => "MissingField",
            ProblemKind::InvalidField => "InvalidField",
            ProblemKind::NoAddress => "NoAddress",
            ProblemKind::TemplateHashMismatch => "TemplateHashMismatch",
            ProblemKind::ImageMismatch => "ImageMismatch",
            ProblemKind::UnexpectedPod => "UnexpectedPod",
            ProblemKind::DependencyOutOfRange => "DependencyOutOfRange",
            ProblemKind::DependencyDrift => "DependencyDrift",
            ProblemKind::FlagDrift => "FlagDrift",
            ProblemKind::FlagMismatch => "FlagMismatch",
            ProblemKind::GuardedVersion => "GuardedVersion",
        }
    }

    /// The pod did not answer, rather than answered wrong. A pod that just turned ready may
    /// not listen yet, so this holds the rollout (no evidence, no progress) and the pod is asked
    /// again until the progress deadline; a wrong answer blocks at once.
    pub fn is_unanswered(self) -> bool {
        match self {
            ProblemKind::Timeout | ProblemKind::Unreachable | ProblemKind::NoAddress => true,
            ProblemKind::VersionMismatch
            | ProblemKind::ConfigDrift
            | ProblemKind::ConfigMismatch
            | ProblemKind::HttpStatus
            | ProblemKind::InvalidBody
            | ProblemKind::MissingField
            | ProblemKind::InvalidField
            | ProblemKind::TemplateHashMismatch
            | ProblemKind::ImageMismatch
            | ProblemKind::UnexpectedPod
            | ProblemKind::DependencyOutOfRange
            | ProblemKind::DependencyDrift
            | ProblemKind::FlagDrift
            | ProblemKind::FlagMismatch
            | ProblemKind::GuardedVersion => false,
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason one pod fails: what it reported, what was expected, and a short human detail.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub kind: ProblemKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    pub detail: String,
}

/// A problem found outside the attestation (the Kubernetes cross-check), tied to a pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodProblem {
    pub pod: PodRef,
    pub problem: Problem,
}

/// What a pod says it runs (or what its source says for it: the kubelet's image record,
/// Prometheus' `build_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    pub version: String,
    /// `None` when the source has no configuration hash to give (image record, Prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Versions of what the pod depends on (`{"postgres": "15.4"}`), bounded by the parser.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, String>,
    /// Flags and settings that matter, each value as its JSON text (`true`, `"blue"`, `3`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, String>,
}

/// Why a pod's attestation is missing. Every variant fails the check (fail closed); all are
/// transient from the operator's point of view (the pod may answer on the next look).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AttestError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("answered HTTP {status}: {body}")]
    HttpStatus { status: u16, body: String },
    #[error("body is not JSON ({error}): {body}")]
    InvalidBody { error: String, body: String },
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("field {field} missing at JSON pointer {pointer:?}")]
    MissingField {
        field: &'static str,
        pointer: String,
    },
    #[error("field {field} at JSON pointer {pointer:?} is not a non-empty string: {found}")]
    InvalidField {
        field: &'static str,
        pointer: String,
        found: String,
    },
    /// A map (dependencies, flags) that is not an object of bounded, well-formed entries.
    #[error("field {field} at JSON pointer {pointer:?} is unusable: {reason}")]
    InvalidEntries {
        field: &'static str,
        pointer: String,
        reason: String,
    },
    /// The source other than the pod (kubelet record, Prometheus) has nothing for this pod yet:
    /// a pod that just started has no series until Prometheus has scraped it, so this is
    /// unanswered (the rollout holds until the progress deadline), never a pass.
    #[error("{0}")]
    NoRecord(String),
    /// The source has something for this pod that cannot be used (several versions at once).
    #[error("{0}")]
    BadRecord(String),
}

impl AttestError {
    /// The machine-readable kind used in reports.
    pub fn kind(&self) -> ProblemKind {
        match self {
            AttestError::Timeout(_) => ProblemKind::Timeout,
            AttestError::Unreachable(_) => ProblemKind::Unreachable,
            AttestError::HttpStatus { .. } => ProblemKind::HttpStatus,
            AttestError::InvalidBody { .. } | AttestError::BodyTooLarge(_) => {
                ProblemKind::InvalidBody
            }
            AttestError::MissingField { .. } => ProblemKind::MissingField,
            AttestError::InvalidField { .. }
            | AttestError::InvalidEntries { .. }
            | AttestError::BadRecord(_) => ProblemKind::InvalidField,
            AttestError::NoRecord(_) => ProblemKind::Unreachable,
        }
    }

    /// What the pod reported, where there is something to show.
    pub fn reported(&self) -> Option<String> {
        match self {
            AttestError::HttpStatus { status, .. } => Some(status.to_string()),
            AttestError::InvalidBody { body, .. } => Some(body.clone()),
            AttestError::InvalidField { found, .. } => Some(found.clone()),
            AttestError::InvalidEntries { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    }
}

impl From<ProbeError> for AttestError {
    fn from(e: ProbeError) -> Self {
        match e {
            ProbeError::Timeout(d) => AttestError::Timeout(d),
            ProbeError::Connect(s) | ProbeError::Transport(s) => AttestError::Unreachable(s),
            ProbeError::BodyTooLarge(n) => AttestError::BodyTooLarge(n),
        }
    }
}
