//! End to end: deleting a Rollout that recorded its version in the Pact Broker tells the broker
//! that the version no longer runs there, through the finalizer `tollgate.dev/undeployment`.
//! pact-stub-server serves tollgate's own consumer contract (`tests/pacts/`), which holds the
//! calls: can-i-deploy for Baz 2.0.0, the currently deployed versions of Baz (2.0.0, so the
//! controller's record finds it there), and the merge patch that marks it undeployed. With the
//! broker stopped, the deletion still completes within its bound and an Event says the record
//! failed, naming the command that records it by hand.

use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use tollgate::crd::{Phase, Rollout, FINALIZER_UNDEPLOYMENT};

use crate::support::cluster::{TestEnv, TestNamespace};
use crate::support::operator::Operator;
use crate::support::pact_stub::Broker;
use crate::support::rollout_manifest::{rollout, template, NAME};
use crate::support::rollout_watch::wait_for;

/// Create the Rollout of Baz 2.0.0 (the contract's pacticipant) and wait until it is promoted
/// and recorded in the broker, carrying the undeployment finalizer.
async fn promoted(env: &TestEnv, broker: &Broker, api: &Api<Rollout>, operator: &Operator) {
    let mut manifest = serde_json::to_value(rollout(NAME, env.prometheus_url(), false)).unwrap();
    manifest["spec"]["version"] = json!("2.0.0");
    manifest["spec"]["template"] = template("2.0.0", 0.05, None);
    manifest["spec"]["contractGate"] = json!({"brokerUrl": broker.url, "pacticipant": "Baz",
        "environment": "production", "pollInterval": "3s"});
    let manifest: Rollout = serde_json::from_value(manifest).unwrap();
    api.create(&PostParams::default(), &manifest)
        .await
        .expect("create rollout");
    let r = wait_for(
        api,
        NAME,
        Duration::from_secs(90),
        "2.0.0 promoted and recorded",
        operator,
        |s| s.phase == Phase::Succeeded && s.deployment_record.as_ref().is_some_and(|d| d.recorded),
    )
    .await;
    assert!(
        r.finalizers().iter().any(|f| f == FINALIZER_UNDEPLOYMENT),
        "the undeployment finalizer is on: {:?}",
        r.finalizers()
    );
}

/// Delete the Rollout and wait until it is gone (at most `bound`); returns how long it took.
async fn delete_and_wait(api: &Api<Rollout>, bound: Duration, operator: &Operator) -> Duration {
    let start = Instant::now();
    api.delete(NAME, &DeleteParams::default())
        .await
        .expect("delete rollout");
    loop {
        if api.get_opt(NAME).await.expect("read rollout").is_none() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "the Rollout is still there {}s after its deletion\n{}",
            bound.as_secs(),
            operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The notes of the namespace's Events of `reason`, each as often as it was posted.
async fn notes(ns: &TestNamespace, reason: &str) -> Vec<String> {
    let events: Api<Event> = ns.api();
    let items = events
        .list(&Default::default())
        .await
        .expect("events")
        .items;
    items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .flat_map(|e| {
            let times = e.series.as_ref().map_or(1, |s| s.count.max(1));
            let note = e.note.unwrap_or_default();
            std::iter::repeat_n(note, usize::try_from(times).unwrap_or(1))
        })
        .collect()
}

/// The Events of `reason`, once at least one arrived (Events are published after the write that
/// removes the finalizer; allow them a moment), or none after 10 s.
async fn wait_notes(ns: &TestNamespace, reason: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let found = notes(ns, reason).await;
        if !found.is_empty() || start.elapsed() > Duration::from_secs(10) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn deleting_a_promoted_rollout_records_its_undeployment() {
    let env = TestEnv::load();
    env.install_crds().await;
    let broker = Broker::start().await;
    let ns = env.namespace("e2e-undeploy").await;
    let operator = Operator::start(&env, &ns.name);
    let api: Api<Rollout> = ns.api();
    promoted(&env, &broker, &api, &operator).await;

    // The broker answers the merge patch as the contract says: the deletion completes at once.
    let took = delete_and_wait(&api, Duration::from_secs(30), &operator).await;
    let recorded = wait_notes(&ns, "UndeploymentRecorded").await;
    let failed = notes(&ns, "UndeploymentRecordFailed").await;
    let log = operator.log_tail();
    operator.assert_never_forbidden();
    drop(operator);
    drop(broker);
    ns.delete().await;
    assert_eq!(
        recorded,
        vec!["recorded in the broker: Baz 2.0.0 no longer runs in production".to_string()],
        "{log}"
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}\n{log}");
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn with_the_broker_stopped_the_deletion_completes_within_its_bound() {
    let env = TestEnv::load();
    env.install_crds().await;
    let broker = Broker::start().await;
    let ns = env.namespace("e2e-undeploy-down").await;
    let operator = Operator::start(&env, &ns.name);
    let api: Api<Rollout> = ns.api();
    promoted(&env, &broker, &api, &operator).await;

    // Stop the broker, and make sure nothing answers on its port any more.
    let port: u16 = broker
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the stub's port");
    drop(broker);
    let stopped = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the broker still answers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Tried again for 30 s after the deletion request (each attempt fails at once here), then
    // let go: never much longer than the bound (30 s + one 10 s attempt).
    let took = delete_and_wait(&api, Duration::from_secs(75), &operator).await;
    let failed = wait_notes(&ns, "UndeploymentRecordFailed").await;
    let recorded = notes(&ns, "UndeploymentRecorded").await;
    let log = operator.log_tail();
    operator.assert_never_forbidden();
    drop(operator);
    ns.delete().await;
    assert!(
        took >= Duration::from_secs(29),
        "released before the bound: {took:?}\n{log}"
    );
    assert_eq!(failed.len(), 1, "exactly one Event: {failed:#?}\n{log}");
    let note = &failed[0];
    assert!(
        note.contains("could not tell the broker that Baz 2.0.0 no longer runs in production")
            && note.contains("within 30s of the deletion")
            && note.contains(
                "`tollgate record-undeployment --pacticipant Baz --environment production \
                 --version 2.0.0`"
            ),
        "{note}"
    );
    assert!(recorded.is_empty(), "{recorded:?}");
}
