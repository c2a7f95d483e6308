//! Requests to and answers from the Pact Broker, as types.

use serde::{Deserialize, Deserializer, Serialize};

/// One `q[]` selector of a matrix query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    pub pacticipant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `q[][latest]=true`: the latest version (with `tag`: the latest with that tag).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub latest: bool,
}

/// An `ignore[]` selector: integrations with this pacticipant (optionally only this version) do not
/// count towards the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ignore {
    pub pacticipant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Ignore {
    /// Parse the CLI form `NAME` (every version) or `NAME@VERSION` (one version).
    pub fn parse(s: &str) -> Self {
        match s.rsplit_once('@') {
            Some((p, v)) if !p.is_empty() && !v.is_empty() => Ignore {
                pacticipant: p.to_string(),
                version: Some(v.to_string()),
            },
            _ => Ignore {
                pacticipant: s.to_string(),
                version: None,
            },
        }
    }
}

/// What the other side of the matrix is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MatrixTarget {
    /// `environment=NAME`: the versions currently deployed or released there (the modern way).
    Environment(String),
    /// `latest=true&tag=NAME`: the latest versions with that tag (the legacy way).
    LatestTagged(String),
    /// `latest=true`: the latest version of every integrated pacticipant.
    Latest,
}

/// `latestby=` of a matrix query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LatestBy {
    /// `cvp`: one selector, the others are found by the target (can-i-deploy).
    Cvp,
    /// `cvpv`: every pacticipant has its own selector.
    Cvpv,
}

/// A `GET /matrix` query. [`CanIDeployRequest::to_matrix_query`] builds the one tollgate's gate
/// sends; the general form is there so every shape the official clients send can be expressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatrixQuery {
    pub selectors: Vec<Selector>,
    pub latestby: Option<LatestBy>,
    pub target: Option<MatrixTarget>,
    pub ignore: Vec<Ignore>,
}

impl MatrixQuery {
    /// The query string pairs, in the form the broker (Rack) parses: `q[][pacticipant]=...`.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for s in &self.selectors {
            pairs.push(("q[][pacticipant]".to_string(), s.pacticipant.clone()));
            if let Some(v) = &s.version {
                pairs.push(("q[][version]".to_string(), v.clone()));
            }
            if let Some(t) = &s.tag {
                pairs.push(("q[][tag]".to_string(), t.clone()));
            }
            if s.latest {
                pairs.push(("q[][latest]".to_string(), "true".to_string()));
            }
        }
        match self.latestby {
            Some(LatestBy::Cvp) => pairs.push(("latestby".into(), "cvp".into())),
            Some(LatestBy::Cvpv) => pairs.push(("latestby".into(), "cvpv".into())),
            None => {}
        }
        match &self.target {
            Some(MatrixTarget::Environment(e)) => pairs.push(("environment".into(), e.clone())),
            Some(MatrixTarget::LatestTagged(t)) => {
                pairs.push(("latest".into(), "true".into()));
                pairs.push(("tag".into(), t.clone()));
            }
            Some(MatrixTarget::Latest) => pairs.push(("latest".into(), "true".into())),
            None => {}
        }
        for i in &self.ignore {
            pairs.push(("ignore[][pacticipant]".to_string(), i.pacticipant.clone()));
            if let Some(v) = &i.version {
                pairs.push(("ignore[][version]".to_string(), v.clone()));
            }
        }
        pairs
    }
}

/// The question of the contract gate: may `version` of `pacticipant` be deployed to `environment`?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanIDeployRequest {
    pub pacticipant: String,
    pub version: String,
    pub environment: String,
    #[serde(default)]
    pub ignore: Vec<Ignore>,
}

impl CanIDeployRequest {
    /// The query the official clients send for `can-i-deploy --pacticipant P --version V --to-environment E`:
    /// `q[][pacticipant]=P&q[][version]=V&latestby=cvp&environment=E` (+ `ignore[]`).
    pub fn to_matrix_query(&self) -> MatrixQuery {
        MatrixQuery {
            selectors: vec![Selector {
                pacticipant: self.pacticipant.clone(),
                version: Some(self.version.clone()),
                tag: None,
                latest: false,
            }],
            latestby: Some(LatestBy::Cvp),
            target: Some(MatrixTarget::Environment(self.environment.clone())),
            ignore: self.ignore.clone(),
        }
    }
}

/// `summary.deployable`: only `Yes` may ever pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Deployable {
    /// `true`
    Yes,
    /// `false`
    No,
    /// `null`: a verification is missing or still running.
    Unknown,
    /// The field is absent (e.g. an answer about versions that do not exist): not a yes.
    Absent,
}

/// The whole answer of `GET /matrix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatrixAnswer {
    #[serde(default)]
    pub summary: Option<Summary>,
    #[serde(default)]
    pub matrix: Vec<MatrixRow>,
    #[serde(default)]
    pub notices: Vec<Notice>,
}

impl MatrixAnswer {
    pub fn deployable(&self) -> Option<Deployable> {
        self.summary.as_ref().map(Summary::deployable)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `None`: absent; `Some(None)`: null; `Some(Some(b))`: a verdict.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub deployable: Option<Option<bool>>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub success: Option<u64>,
    #[serde(default)]
    pub failed: Option<u64>,
    #[serde(default)]
    pub unknown: Option<u64>,
    #[serde(default)]
    pub ignored: Option<u64>,
}

impl Summary {
    pub fn deployable(&self) -> Deployable {
        match self.deployable {
            Some(Some(true)) => Deployable::Yes,
            Some(Some(false)) => Deployable::No,
            Some(None) => Deployable::Unknown,
            None => Deployable::Absent,
        }
    }
}

/// Deserialize a present field (even `null`) as `Some`, so an absent one stays `None`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatrixRow {
    pub consumer: RowPacticipant,
    pub provider: RowPacticipant,
    #[serde(default)]
    pub pact: Option<RowPact>,
    #[serde(default)]
    pub verification_result: Option<RowVerification>,
    #[serde(default)]
    pub ignored: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowPacticipant {
    pub name: String,
    #[serde(default)]
    pub version: Option<RowVersion>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowVersion {
    pub number: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowPact {
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowVerification {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub verified_at: Option<String>,
}

/// What to tell the broker after a promotion (the new version) or a rollback (the stable one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    pub pacticipant: String,
    pub version: String,
    pub environment: String,
    /// Tells apart several instances of the same app in one environment (e.g. per customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_instance: Option<String>,
}

/// What to tell the broker when a version stops running: the Rollout was deleted, so its
/// version no longer runs on its application instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndeploymentRecord {
    pub pacticipant: String,
    pub environment: String,
    /// The instance the version ran as (`None`: the one without an instance name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_instance: Option<String>,
    /// Only this version (`None`: whatever is deployed on that instance, as the official client does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl UndeploymentRecord {
    /// Whether `deployed` is what this record undeploys: the same instance, and the same version
    /// when one is given.
    pub fn matches(&self, deployed: &DeployedVersion) -> bool {
        deployed.application_instance == self.application_instance
            && self
                .version
                .as_ref()
                .is_none_or(|v| deployed.version.as_ref() == Some(v))
    }
}

/// The broker's answer to a recorded deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedDeployment {
    /// The `pb:record-deployment` URL the record was posted to.
    pub url: String,
    pub status: u16,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub application_instance: Option<String>,
}

/// A version the broker holds as deployed to an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedVersion {
    /// The version number (`None` when the broker's answer leaves it out).
    pub version: Option<String>,
    /// The application instance it is deployed as, if any.
    pub application_instance: Option<String>,
    /// The deployed-version resource.
    pub href: Option<String>,
}

impl DeployedVersion {
    /// Whether this is `record`'s version on `record`'s instance.
    pub fn is(&self, record: &DeploymentRecord) -> bool {
        self.version.as_deref() == Some(record.version.as_str())
            && self.application_instance == record.application_instance
    }
}

/// An environment known to the broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: String,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub production: Option<bool>,
}

/// A test answer whose summary counts one success and one unknown.
#[cfg(test)]
impl MatrixAnswer {
    pub(crate) fn summarised(deployable: Option<Option<bool>>, reason: &str) -> MatrixAnswer {
        MatrixAnswer {
            summary: Some(Summary {
                deployable,
                reason: Some(reason.to_string()),
                success: Some(1),
                failed: Some(0),
                unknown: Some(1),
                ignored: None,
            }),
            matrix: vec![],
            notices: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn can_i_deploy_query_is_the_official_shape() {
        let q = CanIDeployRequest {
            pacticipant: "Foo".into(),
            version: "1.2.3".into(),
            environment: "production".into(),
            ignore: vec![Ignore::parse("Bar"), Ignore::parse("Baz@2.0.0")],
        }
        .to_matrix_query();
        let pairs = q.to_pairs();
        let s: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            s,
            [
                "q[][pacticipant]=Foo",
                "q[][version]=1.2.3",
                "latestby=cvp",
                "environment=production",
                "ignore[][pacticipant]=Bar",
                "ignore[][pacticipant]=Baz",
                "ignore[][version]=2.0.0"
            ]
        );
    }

    #[test]
    fn deployable_tri_state_and_absent() {
        let p = |s: &str| {
            serde_json::from_str::<MatrixAnswer>(s)
                .unwrap()
                .deployable()
        };
        assert_eq!(
            p(r#"{"summary":{"deployable":true}}"#),
            Some(Deployable::Yes)
        );
        assert_eq!(
            p(r#"{"summary":{"deployable":false}}"#),
            Some(Deployable::No)
        );
        assert_eq!(
            p(r#"{"summary":{"deployable":null}}"#),
            Some(Deployable::Unknown)
        );
        assert_eq!(p(r#"{"summary":{"reason":"x"}}"#), Some(Deployable::Absent));
        assert_eq!(p(r#"{"matrix":[]}"#), None);
        assert!(
            serde_json::from_str::<MatrixAnswer>(r#"{"summary":{"deployable":"yes"}}"#).is_err()
        );
    }

    #[test]
    fn server_snapshots_parse() {
        let raw = include_str!("../../../tests/broker_fixtures/can-i-deploy-server-responses.json");
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let mut seen = 0;
        for (name, snap) in v.as_object().unwrap() {
            if snap["status"] != 200 {
                continue;
            }
            let a: MatrixAnswer =
                serde_json::from_value(serde_json::json!({"summary": snap["summary"]})).unwrap();
            let d = a.deployable().unwrap();
            if name.contains("without ignoring") {
                assert_eq!(d, Deployable::Unknown);
            } else {
                assert_eq!(d, Deployable::Yes, "{name}");
            }
            seen += 1;
        }
        assert_eq!(seen, 4);
    }
}
