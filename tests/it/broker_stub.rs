//! The broker client against pact-stub-server serving the official client's contract (real paths,
//! verified by the Pact Broker's own CI) and tollgate's own consumer contract. A request that does
//! not match an interaction gets a 404 from the stub, so every assertion here also proves a match.
//!
//! Needs the pact-stub-server binary: `tests/run-all.sh`, or
//! `export TOLLGATE_PACT_STUB_SERVER=$(tests/cluster/pact-stub.sh install | tail -n1)` and
//! `cargo test --test it broker_stub:: -- --include-ignored`.

use crate::support::broker::*;
use crate::support::own_contract::*;
use crate::support::pact_stub::*;
use tollgate::gates::broker::{
    decide, BlockKind, BrokerApi, BrokerError, ContractVerdict, Deployable, DeploymentRecord,
    GateProgress, Ignore, LatestBy, MatrixQuery, MatrixTarget, Selector,
};

fn sel(p: &str, version: Option<&str>, tag: Option<&str>, latest: bool) -> Selector {
    Selector {
        pacticipant: p.into(),
        version: version.map(str::to_string),
        tag: tag.map(str::to_string),
        latest,
    }
}

fn q(
    selectors: Vec<Selector>,
    latestby: LatestBy,
    target: Option<MatrixTarget>,
    ignore: Vec<Ignore>,
) -> MatrixQuery {
    MatrixQuery {
        selectors,
        latestby: Some(latestby),
        target,
        ignore,
    }
}

#[tokio::test]
#[ignore = "needs pact-stub-server: run tests/run-all.sh"]
async fn every_matrix_interaction_of_the_official_contract() {
    // Each matrix request of the contract is unique, so one stub serves them all.
    let stub = Stub::start(&[REFERENCE_CONTRACT], None);
    let broker = peer_broker(&stub.base_url(), None);
    let policy = fast_policy(1);
    let now = jiff::Timestamp::now();

    // Two explicit versions (one pacticipant name with a space).
    for consumer in ["Foo Thing", "Foo"] {
        let a = broker
            .matrix(&q(
                vec![
                    sel(consumer, Some("1.2.3"), None, false),
                    sel("Bar", Some("4.5.6"), None, false),
                ],
                LatestBy::Cvpv,
                None,
                vec![],
            ))
            .await
            .unwrap_or_else(|e| panic!("{consumer}: {e}"));
        assert_eq!(a.deployable(), Some(Deployable::Yes));
        assert_eq!(a.matrix.len(), 1);
        assert_eq!(a.summary.as_ref().and_then(|s| s.unknown), Some(1));
        assert_eq!(
            decide(&Ok(a), &GateProgress::default(), now, &policy).verdict,
            ContractVerdict::Pass
        );
    }

    // Foo 1.2.3 and the latest prod version of Bar.
    let a = broker
        .matrix(&q(
            vec![
                sel("Foo", Some("1.2.3"), None, false),
                sel("Bar", None, Some("prod"), true),
            ],
            LatestBy::Cvpv,
            None,
            vec![],
        ))
        .await
        .expect("latest prod of Bar");
    assert_eq!(a.deployable(), Some(Deployable::Yes));

    // Foo 1.2.3 and the latest prod versions of all others (the can-i-deploy --to prod shape).
    let a = broker
        .matrix(&q(
            vec![sel("Foo", Some("1.2.3"), None, false)],
            LatestBy::Cvp,
            Some(MatrixTarget::LatestTagged("prod".into())),
            vec![],
        ))
        .await
        .expect("to tag prod");
    assert_eq!(
        a.matrix[0]
            .provider
            .version
            .as_ref()
            .map(|v| v.number.as_str()),
        Some("4.5.6")
    );
    // No summary: no verdict, so the gate blocks.
    let d = decide(&Ok(a), &GateProgress::default(), now, &policy);
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: BlockKind::BrokerError
        },
        "{}",
        d.reason
    );

    // Foo 1.2.4 and the latest version of Bar.
    let a = broker
        .matrix(&q(
            vec![
                sel("Foo", Some("1.2.4"), None, false),
                sel("Bar", None, None, true),
            ],
            LatestBy::Cvpv,
            None,
            vec![],
        ))
        .await
        .expect("latest Bar");
    assert_eq!(a.deployable(), Some(Deployable::Yes));

    // Only the version of Foo: against the latest of everything.
    let a = broker
        .matrix(&q(
            vec![sel("Foo", Some("1.2.3"), None, false)],
            LatestBy::Cvp,
            Some(MatrixTarget::Latest),
            vec![],
        ))
        .await
        .expect("to latest");
    assert_eq!(a.deployable(), Some(Deployable::Yes));

    // All versions of Foo and Bar: rows only.
    let a = broker
        .matrix(&q(
            vec![sel("Foo", None, None, false), sel("Bar", None, None, false)],
            LatestBy::Cvpv,
            None,
            vec![],
        ))
        .await
        .expect("all versions");
    assert_eq!(a.matrix.len(), 2);
    assert_eq!(a.deployable(), None);

    // A version that does not exist: a reason but no deployable -> not deployable, with that reason.
    let a = broker
        .matrix(&q(
            vec![
                sel("Foo", Some("1.2.3"), None, false),
                sel("Bar", Some("9.9.9"), None, false),
            ],
            LatestBy::Cvpv,
            None,
            vec![],
        ))
        .await
        .expect("missing version");
    assert_eq!(a.deployable(), Some(Deployable::Absent));
    let d = decide(&Ok(a), &GateProgress::default(), now, &policy);
    assert_eq!(
        d.verdict,
        ContractVerdict::Block {
            kind: BlockKind::NotDeployable
        }
    );
    assert!(d.reason.contains("an error message"), "{}", d.reason);

    // A pacticipant that does not exist: 400 with an errors list.
    let e = broker
        .matrix(&q(
            vec![
                sel("Wiffle", Some("1.2.3"), None, false),
                sel("Meep", Some("9.9.9"), None, false),
            ],
            LatestBy::Cvpv,
            None,
            vec![],
        ))
        .await
        .expect_err("400");
    assert!(
        matches!(e, BrokerError::BadRequest { ref errors, .. } if errors == &vec!["an error message".to_string()]),
        "{e:?}"
    );

    // Ignoring one version of Foo.
    let a = broker
        .matrix(&q(
            vec![
                sel("Bar", Some("4.5.6"), None, false),
                sel("Foo", None, Some("prod"), false),
            ],
            LatestBy::Cvpv,
            None,
            vec![Ignore::parse("Foo@3.4.5")],
        ))
        .await
        .expect("ignore");
    assert_eq!(a.deployable(), Some(Deployable::Yes));
    assert_eq!(a.summary.as_ref().and_then(|s| s.ignored), Some(1));
    assert_eq!(a.notices[0].text, "some notice");
    assert_eq!(a.matrix[1].ignored, Some(true));

    // And a request the contract does not have gets the stub's 404: unmatched requests fail.
    let e = broker
        .matrix(&q(
            vec![sel("Nobody", Some("0"), None, false)],
            LatestBy::Cvp,
            None,
            vec![],
        ))
        .await
        .expect_err("unmatched");
    assert_eq!(e.code(), "NotFound", "{e}");
}

const INDEX_WITH_VERSION: &str =
    "the pb:pacticipant-version and pb:environments relations exist in the index resource";
const VERSION_WITH_TEST: &str =
    "version 5556b8149bf8bac76bc30f50a8a2dd4c22c85f30 of pacticipant Foo exists with a test environment available for deployment";
const VERSION_WITHOUT_TEST: &str = "version 5556b8149bf8bac76bc30f50a8a2dd4c22c85f30 of pacticipant Foo exists with 2 environments that aren't test available for deployment";

fn only_states(states: &[&str]) -> String {
    let escaped: Vec<String> = states.iter().map(|s| regex_escape(s)).collect();
    format!("^({})$", escaped.join("|"))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn foo_record(instance: Option<&str>) -> DeploymentRecord {
    DeploymentRecord {
        pacticipant: "Foo".into(),
        version: "5556b8149bf8bac76bc30f50a8a2dd4c22c85f30".into(),
        environment: "test".into(),
        application_instance: instance.map(str::to_string),
    }
}

#[tokio::test]
#[ignore = "needs pact-stub-server: run tests/run-all.sh"]
async fn record_deployment_hal_flow_of_the_official_contract() {
    let stub = Stub::start(
        &[REFERENCE_CONTRACT],
        Some(&only_states(&[INDEX_WITH_VERSION, VERSION_WITH_TEST])),
    );
    let broker = peer_broker(&stub.base_url(), None);
    let rec = broker
        .record_deployment(&foo_record(Some("blue")))
        .await
        .expect("recorded through index -> pacticipant-version -> record-deployment");
    assert_eq!(rec.status, 201);
    assert_eq!(rec.application_instance.as_deref(), Some("blue"));
    assert!(
        rec.url.ends_with(
            "/pacticipants/Foo/versions/5556b8149bf8bac76bc30f50a8a2dd4c22c85f30/deployed-versions/environment/cb632df3-0a0d-4227-aac3-60114dd36479"
        ),
        "{}",
        rec.url
    );
    // Idempotent: the same record again is the same answer.
    let again = broker
        .record_deployment(&foo_record(Some("blue")))
        .await
        .expect("again");
    assert_eq!(again, rec);
}

#[tokio::test]
#[ignore = "needs pact-stub-server: run tests/run-all.sh"]
async fn record_deployment_to_an_environment_the_version_does_not_offer() {
    let stub = Stub::start(
        &[REFERENCE_CONTRACT],
        Some(&only_states(&[INDEX_WITH_VERSION, VERSION_WITHOUT_TEST])),
    );
    let broker = peer_broker(&stub.base_url(), None);
    let e = broker
        .record_deployment(&foo_record(Some("blue")))
        .await
        .expect_err("no test env");
    match &e {
        BrokerError::EnvironmentNotAvailable {
            environment,
            available,
        } => {
            assert_eq!(environment, "test");
            assert_eq!(available, &vec!["prod".to_string(), "dev".to_string()]);
        }
        other => panic!("expected EnvironmentNotAvailable, got {other:?}"),
    }
    assert!(e.to_string().contains("it offers: prod, dev"), "{e}");
}

#[tokio::test]
#[ignore = "needs pact-stub-server: run tests/run-all.sh"]
async fn environments_of_the_official_contract() {
    let stub = Stub::start(
        &[REFERENCE_CONTRACT],
        Some(&only_states(&[INDEX_WITH_VERSION, "an environment exists"])),
    );
    let envs = peer_broker(&stub.base_url(), None)
        .environments()
        .await
        .expect("embedded list");
    assert_eq!(envs.len(), 1);
    assert_eq!(envs[0].name, "test");
    assert_eq!(
        envs[0].uuid.as_deref(),
        Some("78e85fb2-9df1-48da-817e-c9bea6294e01")
    );
    drop(stub);

    let stub = Stub::start(
        &[REFERENCE_CONTRACT],
        Some(&only_states(&[
            INDEX_WITH_VERSION,
            "an environment with name test exists",
        ])),
    );
    let envs = peer_broker(&stub.base_url(), None)
        .environments()
        .await
        .expect("link list");
    assert_eq!(
        envs.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["test"]
    );
}

#[tokio::test]
#[ignore = "needs pact-stub-server: run tests/run-all.sh"]
async fn own_contract_served_by_the_stub() {
    let stub = Stub::start(&[OWN_CONTRACT], None);
    exercise_own_contract(&stub.base_url()).await;
}

#[tokio::test]
#[ignore = "needs pact-stub-server: run tests/run-all.sh"]
async fn cli_against_the_stub() {
    let stub = Stub::start(&[OWN_CONTRACT], None);
    let base = stub.base_url();
    // Run from this thread: it is the one inside the stub's private network namespace.
    let run = |args: Vec<&'static str>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("PACT_BROKER_BASE_URL", &base)
            .env_remove("PACT_BROKER_TOKEN")
            .env_remove("PACT_BROKER_USERNAME")
            .env_remove("PACT_BROKER_PASSWORD")
            .output()
            .expect("run tollgate");
        std::future::ready(Ok::<_, std::convert::Infallible>(out))
    };
    let cid = |v: &'static str, extra: &[&'static str]| {
        let mut a = vec![
            "can-i-deploy",
            "--pacticipant",
            "Foo",
            "--version",
            v,
            "--environment",
            "production",
        ];
        a.extend_from_slice(extra);
        a
    };
    let out = run(cid("1.2.3", &[])).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("DEPLOYABLE: Foo 1.2.3 -> production"));

    let out = run(cid("1.2.4", &["--output", "json"])).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(v["verdict"], "notDeployable");
    assert_eq!(v["deployable"], false);

    let out = run(cid(
        "1.2.5",
        &["--retry-while-unknown", "2", "--retry-interval", "0.05"],
    ))
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = run(cid("1.2.5", &["--ignore", "Bar"])).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = run(cid("1.2.4", &["--dry-run"])).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "dry-run reports the no and exits 0, as pact-broker can-i-deploy --dry-run does"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("[dry-run] NOT DEPLOYABLE"));

    let out = run(vec![
        "can-i-deploy",
        "--pacticipant",
        "Foo",
        "--version",
        "1.2.3",
        "--environment",
        "nowhere",
        "--output",
        "json",
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(v["error"], "BadRequest");

    let out = run(vec![
        "record-deployment",
        "--pacticipant",
        "Foo",
        "--version",
        "1.2.3",
        "--environment",
        "production",
    ])
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(vec![
        "record-undeployment",
        "--pacticipant",
        "Baz",
        "--environment",
        "production",
        "--output",
        "json",
    ])
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(v["recorded"], true);
    assert_eq!(v["undeployed"], serde_json::json!(["2.0.0"]));
}
