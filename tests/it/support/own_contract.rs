//! tollgate's own consumer contract with the Pact Broker (`tests/pacts/tollgate-Pact Broker.json`):
//! the calls it is made of and what the gate makes of each answer, shared by the test that writes
//! the contract (against the pact_consumer mock server) and the one that replays it (against
//! pact-stub-server serving the committed file).

use std::time::Duration;

use tollgate::gates::broker::{
    decide, record_with_retries, BlockKind as Kind, BrokerApi, BrokerError, CanIDeployRequest,
    ContractVerdict, Credentials, DeploymentRecord, GatePolicy, GateProgress, Ignore, RecordStep,
    UndeploymentRecord,
};

use tollgate::util::secret::Secret;

use super::broker::{fast_policy, peer_broker};

pub fn cid(version: &str, environment: &str, ignore: &[&str]) -> CanIDeployRequest {
    CanIDeployRequest {
        pacticipant: "Foo".into(),
        version: version.into(),
        environment: environment.into(),
        ignore: ignore.iter().map(|s| Ignore::parse(s)).collect(),
    }
}

/// Exercise every interaction of `tests/pacts/tollgate-Pact Broker.json` against `base` (the
/// pact_consumer mock server, or pact-stub-server serving the committed file) and check what the
/// gate makes of each answer.
pub async fn exercise_own_contract(base: &str) {
    let broker = peer_broker(base, None);
    let policy = GatePolicy {
        unknown_budget: Duration::ZERO,
        ..fast_policy(1)
    };
    let now = jiff::Timestamp::now();
    let ask = |req: CanIDeployRequest| {
        let broker = broker.clone();
        async move { broker.matrix(&req.to_matrix_query()).await }
    };

    // deployable: true, environment-scoped
    let a = ask(cid("1.2.3", "production", &[])).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(d.verdict, ContractVerdict::Pass, "{}", d.reason);
    let answer = a.expect("answer");
    assert_eq!(answer.matrix.len(), 1);
    assert_eq!(answer.matrix[0].consumer.name, "Bar");

    // deployable: false, with the broker's reason
    let a = ask(cid("1.2.4", "production", &[])).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: Kind::NotDeployable
        },
        "{}",
        d.reason
    );
    assert!(d.reason.contains("failed"), "{}", d.reason);

    // deployable: null -> unknown (budget zero here: blocks as unknown at once)
    let a = ask(cid("1.2.5", "production", &[])).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: Kind::Unknown
        },
        "{}",
        d.reason
    );
    assert_eq!(
        a.as_ref()
            .ok()
            .and_then(|x| x.summary.as_ref())
            .and_then(|s| s.unknown),
        Some(1)
    );

    // environment-scoped with an ignored integration
    let a = ask(cid("1.2.5", "production", &["Bar"])).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(d.verdict, ContractVerdict::Pass, "{}", d.reason);
    assert_eq!(
        a.as_ref()
            .ok()
            .and_then(|x| x.summary.as_ref())
            .and_then(|s| s.ignored),
        Some(1)
    );

    // 400 with an errors object: an environment the broker does not know
    let e = ask(cid("1.2.3", "nowhere", &[])).await.expect_err("400");
    match &e {
        BrokerError::BadRequest { errors, .. } => {
            assert_eq!(
                errors,
                &vec!["environment: Environment with name 'nowhere' does not exist".to_string()]
            )
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }

    // 401 with an empty body
    let bad = peer_broker(
        base,
        Some(Credentials::Bearer(Secret::new("expired-token"))),
    );
    let e = bad
        .matrix(&cid("1.2.6", "production", &[]).to_matrix_query())
        .await
        .expect_err("401");
    assert!(
        matches!(e, BrokerError::Unauthorized { ref body, .. } if body.is_empty()),
        "{e:?}"
    );
    assert!(!e.to_string().contains("expired-token"));

    // record a deployment without an application instance (the official contract only has one
    // with), as the controller does: the environment's currently deployed versions first (none
    // here), then the POST
    let record = DeploymentRecord {
        pacticipant: "Foo".into(),
        version: "1.2.3".into(),
        environment: "production".into(),
        application_instance: None,
    };
    let deployed = broker
        .currently_deployed("Foo", "production")
        .await
        .expect("currently deployed versions");
    assert!(deployed.is_empty(), "{deployed:?}");
    let step = record_with_retries(
        &broker,
        &record,
        &fast_policy(1).retry,
        tokio::time::sleep,
        true,
    )
    .await;
    let RecordStep::Recorded { deployment: rec } = step else {
        panic!("not recorded: {step:?}");
    };
    assert_eq!(rec.status, 201);
    assert!(
        rec.url
            .ends_with("/deployed-versions/environment/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b"),
        "{}",
        rec.url
    );
    assert_eq!(
        rec.uuid.as_deref(),
        Some("0b4f0f5e-5c1a-4f55-b6f8-8d7f6f2f1c11")
    );

    // Baz 2.0.0 (the undeployment e2e's Rollout): deployable, and the controller's record finds
    // it already deployed there, so nothing is posted.
    let request = CanIDeployRequest {
        pacticipant: "Baz".into(),
        ..cid("2.0.0", "production", &[])
    };
    let a = ask(request).await;
    let d = decide(&a, &GateProgress::default(), now, &policy);
    assert_eq!(d.verdict, ContractVerdict::Pass, "{}", d.reason);
    let step = record_with_retries(
        &broker,
        &DeploymentRecord {
            pacticipant: "Baz".into(),
            version: "2.0.0".into(),
            environment: "production".into(),
            application_instance: None,
        },
        &fast_policy(1).retry,
        tokio::time::sleep,
        true,
    )
    .await;
    let RecordStep::Recorded { deployment: rec } = step else {
        panic!("Baz 2.0.0 not found recorded: {step:?}");
    };
    assert_eq!(rec.status, 200, "found, not posted: {rec:?}");

    // record an undeployment: Baz 2.0.0 no longer runs in production (no application instance);
    // the call a deleted Rollout's finalizer makes for the version it recorded
    let undeployed = broker
        .record_undeployment(&UndeploymentRecord {
            pacticipant: "Baz".into(),
            environment: "production".into(),
            application_instance: None,
            version: Some("2.0.0".into()),
        })
        .await
        .expect("undeployment recorded");
    assert_eq!(undeployed.len(), 1, "{undeployed:?}");
    assert_eq!(undeployed[0].version.as_deref(), Some("2.0.0"));
    assert!(undeployed[0]
        .href
        .as_deref()
        .is_some_and(|h| h.ends_with("/deployed-versions/5d1e9d7a-0b1c-4f5e-8a2b-3c4d5e6f7a8b")));
    // Another version on that instance is left alone (nothing is patched).
    let other = broker
        .record_undeployment(&UndeploymentRecord {
            pacticipant: "Baz".into(),
            environment: "production".into(),
            application_instance: None,
            version: Some("1.9.0".into()),
        })
        .await
        .expect("nothing to undeploy");
    assert!(other.is_empty(), "{other:?}");
}
