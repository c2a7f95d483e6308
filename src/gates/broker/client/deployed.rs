//! Which versions of a pacticipant the broker holds as currently deployed to an environment:
//! index -> `pb:environments` -> the environment named -> `pb:currently-deployed-deployed-versions`
//! (`?pacticipant=`). Read before recording again after an ambiguous failure (a timed-out or
//! failed POST the broker may have accepted), so a retry never makes a second record.

use reqwest::Url;
use serde_json::Value;

use super::{named_links, required_link, single_link, HttpBroker};
use crate::gates::broker::error::BrokerError;
use crate::gates::broker::types::DeployedVersion;

impl HttpBroker {
    /// The versions of `pacticipant` currently deployed to `environment`.
    pub(super) async fn currently_deployed_versions(
        &self,
        pacticipant: &str,
        environment: &str,
    ) -> Result<Vec<DeployedVersion>, BrokerError> {
        let href = self.index_link("pb:environments").await?;
        let list_url = self.resolve_link(&href)?;
        let list = self.get_json(list_url.clone()).await?;
        let env_url = environment_link(&list, environment)
            .map(|href| self.resolve_link(&href))
            .transpose()?
            .ok_or_else(|| BrokerError::EnvironmentNotAvailable {
                environment: environment.to_string(),
                available: Vec::new(),
            })?;
        let env = self.get_json(env_url.clone()).await?;
        let href = required_link(&env, &env_url, "pb:currently-deployed-deployed-versions")?;
        let mut url: Url = self.resolve_link(&href)?;
        url.query_pairs_mut()
            .append_pair("pacticipant", pacticipant);
        let shown = url.to_string();
        let answer = self.get_json(url).await?;
        parse_deployed_versions(&answer).ok_or_else(|| BrokerError::UnexpectedShape {
            url: shown,
            detail: "_embedded.deployedVersions is not a list".into(),
        })
    }
}

/// The link to the environment named `name` in the broker's environment list (embedded
/// environments' `self`, or the list's named `pb:environments` links).
fn environment_link(list: &Value, name: &str) -> Option<String> {
    let embedded = list
        .get("_embedded")
        .and_then(|e| e.get("environments"))
        .and_then(Value::as_array);
    if let Some(envs) = embedded {
        return envs
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|e| single_link(e, "self"));
    }
    named_links(list, "pb:environments")
        .into_iter()
        .find(|(_, n)| n.as_deref() == Some(name))
        .map(|(href, _)| href)
}

/// The deployed versions of a `currently-deployed` answer; `None` when it is not one.
pub fn parse_deployed_versions(answer: &Value) -> Option<Vec<DeployedVersion>> {
    let list = answer
        .get("_embedded")?
        .get("deployedVersions")?
        .as_array()?;
    Some(
        list.iter()
            .map(|d| {
                let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
                DeployedVersion {
                    version: text(
                        d.get("_embedded")
                            .and_then(|e| e.get("version"))
                            .and_then(|v| v.get("number")),
                    ),
                    application_instance: text(
                        d.get("applicationInstance").or_else(|| d.get("target")),
                    ),
                    href: single_link(d, "self"),
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_deployed_versions_and_the_environment_link() {
        let answer = json!({"_embedded": {"deployedVersions": [
            {"_links": {"self": {"href": "/deployed-versions/ff3a"}}, "applicationInstance": "customer-1",
             "_embedded": {"version": {"number": "2.0.0"}}},
            {"target": "blue"}]}});
        let found = parse_deployed_versions(&answer).unwrap();
        assert_eq!(found[0].version.as_deref(), Some("2.0.0"));
        assert_eq!(found[0].application_instance.as_deref(), Some("customer-1"));
        assert_eq!(found[0].href.as_deref(), Some("/deployed-versions/ff3a"));
        assert_eq!(found[1].version, None);
        assert_eq!(found[1].application_instance.as_deref(), Some("blue"));
        assert_eq!(parse_deployed_versions(&json!({"_embedded": {}})), None);
        let list = json!({"_embedded": {"environments": [
            {"name": "test", "_links": {"self": {"href": "/environments/t"}}},
            {"name": "production", "_links": {"self": {"href": "/environments/p"}}}]}});
        assert_eq!(
            environment_link(&list, "production").as_deref(),
            Some("/environments/p")
        );
        assert_eq!(environment_link(&list, "staging"), None);
        let links =
            json!({"_links": {"pb:environments": [{"name": "production", "href": "/e/p"}]}});
        assert_eq!(
            environment_link(&links, "production").as_deref(),
            Some("/e/p")
        );
    }
}
