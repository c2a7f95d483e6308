//! Record that a version no longer runs in an environment, the way the official client's
//! `record-undeployment` does: the environment's currently deployed versions of the pacticipant
//! (see `deployed`), then for each one on the same application instance (and, when given, of the
//! same version) a PATCH of its own resource (`self`) with `{"currentlyDeployed": false}` as a
//! JSON merge patch. The broker keeps the deployed-version resource and marks it undeployed, so
//! can-i-deploy stops counting it; a second call finds nothing left to undeploy.

use reqwest::Method;

use super::HttpBroker;
use crate::gates::broker::error::BrokerError;
use crate::gates::broker::types::{DeployedVersion, UndeploymentRecord};

/// The content type the broker's deployed-version resource accepts for PATCH.
pub(super) const MERGE_PATCH: &str = "application/merge-patch+json";

impl HttpBroker {
    pub(super) async fn undeploy(
        &self,
        record: &UndeploymentRecord,
    ) -> Result<Vec<DeployedVersion>, BrokerError> {
        let deployed = self
            .currently_deployed_versions(&record.pacticipant, &record.environment)
            .await?;
        let mut undeployed = Vec::new();
        for found in deployed.into_iter().filter(|d| record.matches(d)) {
            let Some(href) = found.href.as_deref() else {
                return Err(BrokerError::UnexpectedShape {
                    url: self.config.base_url.to_string(),
                    detail: "a currently deployed version has no self link".into(),
                });
            };
            let url = self.resolve_link(href)?;
            let body = serde_json::json!({ "currentlyDeployed": false });
            self.exchange_as(Method::PATCH, url, None, Some((&body, MERGE_PATCH)), true)
                .await?;
            undeployed.push(found);
        }
        Ok(undeployed)
    }
}
