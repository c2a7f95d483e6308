//! The fleet check's Prometheus source, for services that will never add a version endpoint but
//! already export a `build_info`-style series: `<metric>{<podLabel>="<pod>"}` with the version in
//! a label. Each pod is one instant query (bounded by the fleet check's concurrency); its
//! version goes through the same rules and into the same status evidence as an HTTP answer.
//!
//! No series for a pod (yet: a new pod has none before its first scrape), or Prometheus down or
//! slow, leaves the pod unanswered (`Unreachable`): the rollout holds, never passes. Several
//! versions at once fail it (`InvalidField`).

use jiff::Timestamp;

use crate::analysis::providers::prometheus::promql::{
    is_valid_label_name, is_valid_metric_name, quote,
};
use crate::analysis::providers::prometheus::response::Answer;
use crate::analysis::providers::prometheus::PrometheusProvider;
use crate::gates::fleet::{AttestError, Attestation, Attestor, PodTarget};
use crate::util::text::excerpt;

/// Which series, and which labels in it, say what a pod runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfoQuery {
    metric: String,
    version_label: String,
    pod_label: String,
    /// Extra matchers (label, value), e.g. the namespace, so a same-named pod elsewhere does not
    /// answer for this one.
    matchers: Vec<(String, String)>,
}

impl BuildInfoQuery {
    /// Names are validated (they cannot be escaped); values are quoted.
    pub fn new(
        metric: &str,
        version_label: &str,
        pod_label: &str,
        matchers: Vec<(String, String)>,
    ) -> Result<Self, String> {
        if !is_valid_metric_name(metric) {
            return Err(format!("buildInfo.metric {metric:?} is not a metric name"));
        }
        for (field, label) in [("versionLabel", version_label), ("podLabel", pod_label)]
            .into_iter()
            .chain(matchers.iter().map(|(l, _)| ("matcher", l.as_str())))
        {
            if !is_valid_label_name(label) {
                return Err(format!("buildInfo.{field} {label:?} is not a label name"));
            }
        }
        Ok(BuildInfoQuery {
            metric: metric.into(),
            version_label: version_label.into(),
            pod_label: pod_label.into(),
            matchers,
        })
    }

    /// The PromQL selector of one pod's series.
    pub fn expr(&self, pod: &str) -> String {
        let mut terms = vec![format!("{}={}", self.pod_label, quote(pod))];
        terms.extend(
            self.matchers
                .iter()
                .map(|(l, v)| format!("{l}={}", quote(v))),
        );
        format!("{}{{{}}}", self.metric, terms.join(","))
    }

    /// One pod's attestation from the answer to [`Self::expr`]: exactly one version among its
    /// series (several series of one version, e.g. two scrape jobs, agree).
    pub fn attestation(&self, pod: &str, answer: &Answer) -> Result<Attestation, AttestError> {
        let mut versions: Vec<&str> = answer
            .series
            .iter()
            .filter_map(|s| s.labels.get(&self.version_label).map(String::as_str))
            .filter(|v| !v.trim().is_empty())
            .collect();
        versions.sort_unstable();
        versions.dedup();
        match versions.as_slice() {
            [one] => Ok(Attestation {
                version: (*one).to_string(),
                ..Default::default()
            }),
            [] => Err(AttestError::NoRecord(format!(
                "Prometheus has no {} series with a {} label for pod {pod}",
                self.metric, self.version_label
            ))),
            several => Err(AttestError::BadRecord(format!(
                "{} reports several versions for pod {pod}: {}",
                self.metric,
                excerpt(&several.join(", "), 200)
            ))),
        }
    }
}

/// Attestation from Prometheus.
pub struct BuildInfoAttestor {
    /// The client, or why there is none for now (e.g. its credentials Secret is not there yet):
    /// then every pod is unanswered and the rollout holds.
    provider: Result<PrometheusProvider, String>,
    query: BuildInfoQuery,
}

impl BuildInfoAttestor {
    pub fn new(provider: Result<PrometheusProvider, String>, query: BuildInfoQuery) -> Self {
        BuildInfoAttestor { provider, query }
    }
}

impl Attestor for BuildInfoAttestor {
    async fn attest(&self, target: &PodTarget) -> Result<Attestation, AttestError> {
        let provider = self
            .provider
            .as_ref()
            .map_err(|why| AttestError::Unreachable(format!("Prometheus: {why}")))?;
        let answer = provider
            .instant_query(&self.query.expr(&target.name), Timestamp::now())
            .await
            .map_err(|e| AttestError::Unreachable(format!("Prometheus: {e}")))?;
        self.query.attestation(&target.name, &answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::providers::prometheus::response::Series;

    fn answer(versions: &[Option<&str>]) -> Answer {
        Answer {
            result_type: "vector".into(),
            series: versions
                .iter()
                .map(|v| Series {
                    labels: v
                        .map(|v| [("version".to_string(), v.to_string())].into())
                        .unwrap_or_default(),
                    points: vec![(0.0, 1.0)],
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn q() -> BuildInfoQuery {
        BuildInfoQuery::new(
            "build_info",
            "version",
            "pod",
            vec![("namespace".into(), "shop".into())],
        )
        .unwrap()
    }

    #[test]
    fn the_selector_quotes_values_and_refuses_bad_names() {
        assert_eq!(
            q().expr("api-1"),
            r#"build_info{pod="api-1",namespace="shop"}"#
        );
        assert_eq!(
            q().expr("x\"}or vector(1)"),
            r#"build_info{pod="x\"}or vector(1)",namespace="shop"}"#
        );
        assert!(BuildInfoQuery::new("build info", "version", "pod", vec![]).is_err());
        assert!(BuildInfoQuery::new("build_info", "ver-sion", "pod", vec![]).is_err());
        assert!(
            BuildInfoQuery::new("build_info", "v", "pod", vec![("a b".into(), "x".into())])
                .is_err()
        );
    }

    /// The series' version labels, and the version or the problem kind expected.
    type Case<'a> = (&'a [Option<&'a str>], Result<&'a str, &'a str>);

    #[test]
    fn one_version_per_pod() {
        let table: [Case; 5] = [
            (&[Some("2.0.0")], Ok("2.0.0")),
            (&[Some("2.0.0"), Some("2.0.0")], Ok("2.0.0")),
            (&[], Err("Unreachable")),
            (&[None, Some(" ")], Err("Unreachable")),
            (&[Some("2.0.0"), Some("1.9.3")], Err("InvalidField")),
        ];
        for (series, want) in table {
            let got = q()
                .attestation("api-1", &answer(series))
                .map(|a| a.version)
                .map_err(|e| e.kind().as_str());
            assert_eq!(got.as_deref().map_err(|e| *e), want, "{series:?}");
        }
    }
}
