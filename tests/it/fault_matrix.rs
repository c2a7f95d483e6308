//! Faults through a real proxy (Toxiproxy) between the operator's broker peer and a broker:
//! latency of 2 s and 10 s, 1 KB/s, connection resets, a partition, a half-open connection.
//! For each, the answer the operator's own `BrokerPeer` gets and the contract gate's step on it:
//! a fault is never a pass (unless the answer still arrives in time and says yes) and never a
//! block (the gate waits and asks again); once the fault clears the gate passes. A deployment
//! record whose POST was stored but cut off is not repeated when the fault clears.
//!
//! Each row is printed as `fault-matrix | peer | fault | outcome | seconds` for docs/reliability.md.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;
use tollgate::crd::Rollout;
use tollgate::gates::broker::{self, ContractVerdict, GatePolicy, GateProgress};
use tollgate::rollout::decide::{ContractAnswer, RecordOutcome};
use tollgate::runtime::peers::broker::BrokerPeer;
use tollgate::runtime::peers::{ContractPeer, PeerDefaults};

use crate::broker_cli::slow_recording_broker;
use crate::support::broker::{FaultServer, Reply};
use crate::support::toxiproxy::Toxiproxy;

const YES: &str = r#"{"summary":{"deployable":true,"reason":"All required verification results are published and successful","success":1,"failed":0,"unknown":0},"matrix":[]}"#;

fn rollout(broker_url: &str, pacticipant: &str) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "shop", "namespace": "faults"},
        "spec": {"version": "1.0.0", "workloadRef": {"name": "shop"},
                 "contractGate": {"brokerUrl": broker_url, "pacticipant": pacticipant,
                                  "environment": "production"},
                 "steps": [{"setWeight": 50}]}
    }))
    .expect("rollout")
}

/// The operator's broker peer; no Secret is read (no credentialsSecretRef), so the Kubernetes
/// client points nowhere.
fn peer() -> BrokerPeer {
    tollgate::util::http::install_crypto_provider();
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
    BrokerPeer::new(
        kube::Client::try_from(config).expect("client"),
        PeerDefaults::default(),
    )
}

/// What the gate does with `answer`: the kind of its step.
fn gate_step(answer: &ContractAnswer) -> &'static str {
    let step = broker::step(
        &answer.classified(),
        &GateProgress::default(),
        Timestamp::now(),
        &GatePolicy::default(),
    );
    match step.verdict {
        ContractVerdict::Pass => "pass",
        ContractVerdict::Wait { .. } => "wait and ask again",
        ContractVerdict::Block { .. } => "block",
    }
}

async fn ask(peer: &BrokerPeer, rollout: &Rollout) -> (ContractAnswer, Duration) {
    let start = Instant::now();
    let answer = peer.ask(rollout).await.expect("no spec problem");
    (answer, start.elapsed())
}

#[tokio::test]
#[ignore = "needs toxiproxy: TOLLGATE_TOXIPROXY=$(tests/cluster/toxiproxy.sh install | tail -n1)"]
async fn broker_faults_through_a_real_proxy() {
    let toxi = Toxiproxy::start().await;
    let server = FaultServer::start(vec![Reply::json(200, YES)]).await;
    let proxy = toxi.proxy("broker", &server.addr.to_string()).await;
    let url = format!("http://{}/", proxy.listen);
    let r = rollout(&url, "shop");
    let peer = peer();
    type Setup = Option<(&'static str, serde_json::Value)>;
    let faults: Vec<(&str, Setup, &str)> = vec![
        ("none", None, "pass"),
        (
            "latency 2s",
            Some(("latency", json!({"latency": 2000}))),
            "pass",
        ),
        (
            "latency 10s",
            Some(("latency", json!({"latency": 10_000}))),
            "wait and ask again",
        ),
        (
            "bandwidth 1 KB/s",
            Some(("bandwidth", json!({"rate": 1}))),
            "pass",
        ),
        (
            "connection reset",
            Some(("reset_peer", json!({"timeout": 0}))),
            "wait and ask again",
        ),
        (
            "half-open (timeout toxic)",
            Some(("timeout", json!({"timeout": 0}))),
            "wait and ask again",
        ),
    ];
    for (name, setup, want) in faults {
        if let Some((kind, attributes)) = &setup {
            proxy.add("fault", kind, attributes.clone()).await;
        }
        let (answer, took) = ask(&peer, &r).await;
        let got = gate_step(&answer);
        println!(
            "fault-matrix | broker | {name} | {got} ({}) | {:.1}",
            answer.reason().chars().take(80).collect::<String>(),
            took.as_secs_f64()
        );
        assert_eq!(got, want, "{name}: {answer:?}");
        // Bounded by the peer's request timeout, well within the reconcile's deadline.
        assert!(
            took < Duration::from_secs(15),
            "{name} held the ask {took:?}"
        );
        if setup.is_some() {
            proxy.remove("fault").await;
            let (after, took) = ask(&peer, &r).await;
            println!(
                "fault-matrix | broker | {name} cleared | {} | {:.1}",
                gate_step(&after),
                took.as_secs_f64()
            );
            assert_eq!(gate_step(&after), "pass", "{name} cleared: {after:?}");
        }
    }
    // A partition: the proxy refuses and drops connections.
    proxy.enabled(false).await;
    let (answer, took) = ask(&peer, &r).await;
    println!(
        "fault-matrix | broker | partition | {} | {:.1}",
        gate_step(&answer),
        took.as_secs_f64()
    );
    assert_eq!(gate_step(&answer), "wait and ask again", "{answer:?}");
    proxy.enabled(true).await;
    let (after, _) = ask(&peer, &r).await;
    assert_eq!(gate_step(&after), "pass", "partition healed: {after:?}");
}

/// The record's POST reaches the broker (which stores it) but the answer is cut off by a
/// half-open connection; when the fault clears, the operator records again (its next
/// reconcile) and finds the version already deployed: one record.
#[tokio::test]
#[ignore = "needs toxiproxy: TOLLGATE_TOXIPROXY=$(tests/cluster/toxiproxy.sh install | tail -n1)"]
async fn a_record_cut_off_after_the_broker_stored_it_is_not_repeated() {
    let toxi = Toxiproxy::start().await;
    // The broker answers the POST after 2 s; the timeout toxic swallows that answer.
    let (base, requests) = slow_recording_broker(Duration::from_secs(2)).await;
    let upstream = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = toxi.proxy("broker-record", &upstream).await;
    let url = format!("http://{}/", proxy.listen);
    let r = rollout(&url, "Web");
    let peer = peer();
    // The walk (index, version) answers at once; cut the answers off just after the POST is sent.
    let posted = {
        let requests = requests.clone();
        async move {
            while !requests
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("POST "))
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let record = peer.record(&r, "1.0.0");
    let cut = async {
        posted.await;
        proxy.add("cut", "timeout", json!({"timeout": 0})).await;
    };
    let (outcome, ()) = tokio::join!(record, cut);
    let outcome = outcome.expect("no spec problem");
    println!("fault-matrix | broker | record cut off after POST | {outcome:?}");
    assert!(
        matches!(outcome, RecordOutcome::Failed { .. }),
        "{outcome:?}"
    );
    proxy.remove("cut").await;
    let again = peer.record(&r, "1.0.0").await.expect("no spec problem");
    assert_eq!(again, RecordOutcome::Recorded);
    let posts = requests
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("POST "))
        .count();
    println!("fault-matrix | broker | record after the fault cleared | Recorded, {posts} POST(s)");
    assert_eq!(posts, 1, "{:#?}", requests.lock().unwrap());
}
