//! What a Rollout may make the operator do on its behalf, decided before any request is sent:
//! which hosts it may send requests (and the credentials of its Secrets) to, and how long one
//! request may hold a reconcile worker.
//!
//! On a shared cluster a Rollout is written by a tenant, and the operator acts for it with its
//! own permissions. So the Rollout's own broker and Prometheus addresses must be covered by the
//! operator's allow-lists (an empty list allows only the operator's own default address), no
//! address may be link-local or a cloud metadata service whatever a list says, and no timeout may
//! exceed what keeps one slow peer from tying up the workers every other Rollout shares. A
//! Rollout outside these is a [`SpecProblem`] naming the field: it stops as `InvalidSpec`.
//!
//! The API server enforces the same timeout caps through the CRD's CEL rules; they are checked
//! here again because a Rollout stored under an older CRD never met them.

use std::time::Duration;

use super::model::SpecProblem;
use crate::crd::RolloutSpec;
use crate::util::hosts::{self, HostPattern};

/// Longest `spec.fleetCheck.timeout` (one pod's answer).
pub const MAX_FLEET_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `spec.smoke.requests[].timeout` (one smoke request).
pub const MAX_SMOKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `spec.analysis.provider.prometheus.timeout` (one query).
pub const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The hosts one kind of peer may be on: the operator's default URL (always allowed) and the
/// operator's allow-list.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerHosts<'a> {
    /// The operator's own address for this peer (`--broker-url`, `--prometheus-url`).
    pub default_url: Option<&'a str>,
    /// `--allowed-broker-hosts` / `--allowed-prometheus-hosts`.
    pub allowed: &'a [HostPattern],
}

impl PeerHosts<'_> {
    fn check(&self, field: &str, url: &str, flag: &str) -> Option<SpecProblem> {
        let defaults: Vec<&str> = self.default_url.into_iter().collect();
        hosts::check_url(url, self.allowed, &defaults)
            .err()
            .map(|why| {
                SpecProblem::new(format!(
                    "{field}: {why} (the operator allows its default address and the hosts of \
                 {flag} only)"
                ))
            })
    }
}

/// Why the Rollout's own peer addresses may not be used, if they may not. Addresses the Rollout
/// leaves to the operator's defaults are not checked here (the operator checks its flags when it
/// starts).
pub fn peer_problem(
    spec: &RolloutSpec,
    broker: PeerHosts<'_>,
    prometheus: PeerHosts<'_>,
) -> Option<SpecProblem> {
    if let Some(url) = spec
        .contract_gate
        .as_ref()
        .and_then(|g| g.broker_url.as_deref())
    {
        let problem = broker.check(
            "spec.contractGate.brokerUrl",
            url,
            "--allowed-broker-hosts (chart value allowedBrokerHosts)",
        );
        if problem.is_some() {
            return problem;
        }
    }
    let address = spec
        .analysis
        .as_ref()
        .and_then(|a| a.provider.prometheus.address.as_deref());
    if let Some(url) = address {
        return prometheus.check(
            "spec.analysis.provider.prometheus.address",
            url,
            "--allowed-prometheus-hosts (chart value allowedPrometheusHosts)",
        );
    }
    None
}

/// Why a timeout of the spec is too long (or negative), if one is.
pub fn timeout_problem(spec: &RolloutSpec) -> Option<SpecProblem> {
    let mut timeouts = vec![(
        "spec.fleetCheck.timeout",
        spec.fleet_check().timeout,
        MAX_FLEET_TIMEOUT,
    )];
    if let Some(smoke) = &spec.smoke {
        timeouts.extend(smoke.requests.iter().map(|r| {
            (
                "spec.smoke.requests[].timeout",
                r.timeout,
                MAX_SMOKE_TIMEOUT,
            )
        }));
    }
    if let Some(analysis) = &spec.analysis {
        timeouts.push((
            "spec.analysis.provider.prometheus.timeout",
            analysis.provider.prometheus.timeout,
            MAX_QUERY_TIMEOUT,
        ));
    }
    timeouts.into_iter().find_map(|(field, value, max)| {
        let ok = !value.is_negative() && Duration::from(value) <= max;
        (!ok).then(|| {
            SpecProblem::new(format!(
                "{field} must be at most {}s (one slow peer must not hold a reconcile worker \
                 that other Rollouts share)",
                max.as_secs()
            ))
        })
    })
}

/// Why the templates of `spec.analysis.metrics` cannot be used, if they cannot: an unknown
/// placeholder, or PromQL that does not parse or does not return an instant vector (see
/// [`crate::analysis::providers::prometheus::metrics::compile`]). Checked before any traffic
/// moves, so a typo stops the rollout as `InvalidSpec` naming the metric, not at its first look.
pub fn metrics_problem(spec: &RolloutSpec) -> Option<SpecProblem> {
    let metrics = &spec.analysis.as_ref()?.metrics;
    crate::analysis::providers::prometheus::metrics::compile(metrics)
        .err()
        .map(SpecProblem::new)
}
