//! Credentials never appear in logs, status, events or error messages. The broker here is a real
//! local server that even reflects the request (with its Authorization header) in its bodies, as a
//! misbehaving proxy could.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::broker::*;
use crate::support::capture::Captured;
use tollgate::gates::broker::{
    run_gate, BrokerApi, BrokerConfig, BrokerError, CanIDeployRequest, ConfigError, Credentials,
    DeploymentRecord, HttpBroker,
};
use tollgate::util::credentials::{self, CredentialsError};
use tollgate::util::secret::Secret;

const TOKEN: &str = "tok-5f1e9c2a-very-secret";
const USER: &str = "svc-tollgate-user";
const PASSWORD: &str = "pw-8d7c6b5a-very-secret";
// base64("svc-tollgate-user:pw-8d7c6b5a-very-secret")
const BASIC_B64: &str = "c3ZjLXRvbGxnYXRlLXVzZXI6cHctOGQ3YzZiNWEtdmVyeS1zZWNyZXQ=";

fn assert_clean(what: &str, text: &str) {
    for secret in [TOKEN, PASSWORD, USER, BASIC_B64] {
        assert!(!text.contains(secret), "{what} leaks a credential: {text}");
    }
}

fn request() -> CanIDeployRequest {
    CanIDeployRequest {
        pacticipant: "Web".into(),
        version: "1.0.0".into(),
        environment: "production".into(),
        ignore: vec![],
    }
}

fn credential_sets() -> Vec<Credentials> {
    vec![
        Credentials::Bearer(Secret::new(TOKEN)),
        Credentials::Basic {
            username: USER.into(),
            password: Secret::new(PASSWORD),
        },
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn no_credential_in_errors_decisions_or_traces() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Callsites cache whether any subscriber wants them. Another test of this process may have
    // registered the client's "pact broker request" callsite while it raced this subscriber's
    // registration, caching "never": ask every callsite again now that this subscriber exists.
    tracing::callsite::rebuild_interest_cache();

    let reflect = |status: u16, ct: &str| Reply::raw(status, ct, b"").with_body(Body::EchoRequest);
    for creds in credential_sets() {
        let replies = vec![
            reflect(400, "application/json"),
            reflect(401, "text/plain"),
            reflect(403, "text/plain"),
            reflect(404, "text/plain"),
            reflect(500, "text/plain"),
            reflect(200, "application/json"), // not JSON: the excerpt would show the header
            reflect(200, "text/html"),
        ];
        for reply in replies {
            let server = FaultServer::start(vec![reply.clone()]).await;
            let broker = fast_broker(&server.base_url(), Some(creds.clone()));
            let d = run_gate(&broker, &request(), &fast_policy(1), tokio::time::sleep).await;
            assert!(!d.passed());
            // The secret really went over the wire (so the test is not vacuous) ...
            let sent = server.requests().join("\n");
            assert!(
                sent.to_ascii_lowercase().contains("authorization:"),
                "no auth header sent"
            );
            assert!(
                sent.contains(TOKEN) || sent.contains(BASIC_B64),
                "the credential was not sent"
            );
            // ... and came back in the body, but nothing we keep shows it.
            assert_clean("reason", &d.reason);
            assert_clean("decision Debug", &format!("{d:?}"));
            assert_clean(
                "decision JSON (status)",
                &serde_json::to_string(&d).unwrap(),
            );
            let rec = DeploymentRecord {
                pacticipant: "Web".into(),
                version: "1.0.0".into(),
                environment: "production".into(),
                application_instance: None,
            };
            let server = FaultServer::start(vec![reply]).await;
            let broker = fast_broker(&server.base_url(), Some(creds.clone()));
            let e = broker.record_deployment(&rec).await.unwrap_err();
            assert_clean("record error Display", &e.to_string());
            assert_clean("record error Debug", &format!("{e:?}"));
        }
        // Transport failures too.
        let addr = closed_port().await;
        let broker = fast_broker(&format!("http://{addr}/"), Some(creds.clone()));
        let d = run_gate(&broker, &request(), &fast_policy(1), tokio::time::sleep).await;
        assert_clean("connect error", &format!("{} {:?}", d.reason, d));
        assert_clean("client Debug", &format!("{broker:?}"));
        assert_clean("config Debug", &format!("{:?}", broker.config()));
    }
    let logs = captured.text();
    assert!(
        logs.contains("pact broker request"),
        "tracing was not captured: {logs}"
    );
    assert_clean("tracing output", &logs);
}

#[test]
fn configuration_errors_and_debug_never_show_secrets() {
    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    data.insert("token".into(), TOKEN.as_bytes().to_vec());
    data.insert("username".into(), USER.as_bytes().to_vec());
    data.insert("password".into(), PASSWORD.as_bytes().to_vec());
    let e = credentials::from_secret_data(&data).unwrap_err();
    assert!(matches!(e, CredentialsError::Conflicting { .. }));
    assert_clean("conflict error", &format!("{e} {e:?}"));

    let env = |k: &str| match k {
        "PACT_BROKER_BASE_URL" => Some(format!("http://{USER}:{PASSWORD}@broker.example/")),
        _ => None,
    };
    let e = BrokerConfig::from_env(env).unwrap_err();
    assert!(matches!(e, ConfigError::CredentialsInUrl));
    assert_clean("URL error", &format!("{e} {e:?}"));

    for c in credential_sets() {
        let cfg = BrokerConfig::new("http://127.0.0.1:1/", Some(c.clone())).unwrap();
        assert_clean("config", &format!("{cfg:?} {c:?} {}", c.kind()));
        let client = HttpBroker::new(cfg).unwrap();
        assert_clean("client", &format!("{client:?}"));
    }
    let errors = [
        BrokerError::Config(e),
        BrokerError::Timeout {
            url: "http://127.0.0.1:1/matrix".into(),
            timeout: Duration::from_secs(1),
        },
    ];
    for e in errors {
        assert_clean("error", &format!("{e} {e:?}"));
    }
}
