//! The controller's ContractPeer over the broker client, against a real local server.

mod broker_support;

use broker_support::*;
use tollgate::crd::{ContractSummary, Rollout};
use tollgate::gates::broker::BrokerPeer;
use tollgate::rollout::decide::{ContractAnswer, RecordOutcome};
use tollgate::rollout::reconcile::ContractPeer;

fn rollout(broker_url: &str) -> Rollout {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {
            "version": "1.2.3",
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}},
                         "spec": {"containers": [{"name": "shop", "image": "shop:1.2.3"}]}},
            "steps": [{"setWeight": 20}],
            "contractGate": {"brokerUrl": broker_url, "pacticipant": "shop", "environment": "production",
                             "applicationInstance": "eu"}
        }
    }))
    .expect("rollout")
}

fn peer() -> BrokerPeer {
    let mut p = BrokerPeer::without_secrets();
    p.retry.max_attempts = 2;
    p.retry.initial_backoff = std::time::Duration::from_millis(10);
    p.request_timeout = std::time::Duration::from_millis(500);
    p
}

#[tokio::test]
async fn answers_map_onto_the_state_machine() {
    let cases = [
        (
            Reply::json(
                200,
                r#"{"summary":{"deployable":true,"reason":"ok","success":2,"failed":0,"unknown":0}}"#,
            ),
            "Deployable",
        ),
        (
            Reply::json(
                200,
                r#"{"summary":{"deployable":false,"reason":"Bar failed","failed":1}}"#,
            ),
            "NotDeployable",
        ),
        (
            Reply::json(
                200,
                r#"{"summary":{"deployable":null,"reason":"missing","unknown":1}}"#,
            ),
            "Unknown",
        ),
        (Reply::json(503, ""), "Unreachable"),
        (Reply::raw(401, "text/plain", b""), "Refused"),
        (
            Reply::raw(200, "text/html", b"<title>login</title>"),
            "Refused",
        ),
    ];
    for (reply, want) in cases {
        let server = FaultServer::start(vec![reply]).await;
        let answer = peer().ask(&rollout(&server.base_url())).await;
        let got = match &answer {
            ContractAnswer::Deployable { summary, .. } => {
                assert_eq!(
                    summary,
                    &Some(ContractSummary {
                        success: 2,
                        failed: 0,
                        unknown: 0
                    })
                );
                "Deployable"
            }
            ContractAnswer::NotDeployable { reason, .. } => {
                assert_eq!(reason, "Bar failed");
                "NotDeployable"
            }
            ContractAnswer::Unknown { .. } => "Unknown",
            ContractAnswer::Unreachable { .. } => "Unreachable",
            ContractAnswer::Refused { .. } => "Refused",
        };
        assert_eq!(got, want, "{answer:?}");
        let first = server.requests().remove(0);
        assert!(first.contains("environment=production"), "{first}");
        assert!(first.contains("q%5B%5D%5Bversion%5D=1.2.3"), "{first}");
    }
}

#[tokio::test]
async fn record_walks_the_hal_links() {
    let index = r#"{"_links":{"pb:pacticipant-version":{"href":"/pacticipants/{pacticipant}/versions/{version}"}}}"#;
    let version = r#"{"_links":{"pb:record-deployment":[{"name":"production","href":"/pacticipants/shop/versions/1.2.2/deployed-versions/environment/e1"}]}}"#;
    let server = FaultServer::start(vec![
        Reply::json(200, index),
        Reply::json(200, version),
        Reply::json(201, r#"{"uuid":"d1"}"#),
    ])
    .await;
    // A rollback records the stable version again.
    let outcome = peer().record(&rollout(&server.base_url()), "1.2.2").await;
    assert_eq!(outcome, RecordOutcome::Recorded);
    let reqs = server.requests();
    assert!(
        reqs[1].starts_with("GET /pacticipants/shop/versions/1.2.2 "),
        "{}",
        reqs[1]
    );
    assert!(
        reqs[2].ends_with(r#"{"applicationInstance":"eu","target":"eu"}"#),
        "{}",
        reqs[2]
    );

    let server = FaultServer::start(vec![Reply::json(500, "")]).await;
    let outcome = peer().record(&rollout(&server.base_url()), "1.2.2").await;
    assert!(
        matches!(outcome, RecordOutcome::Failed { ref reason } if reason.contains("HTTP 500")),
        "{outcome:?}"
    );
}
