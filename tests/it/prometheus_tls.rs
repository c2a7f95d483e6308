//! The Prometheus provider over https with basic auth, against a real Prometheus whose web
//! configuration turns on TLS (a throwaway CA and server certificate made with the `openssl` CLI)
//! and basic auth. Needs peers: run `tests/run-all.sh` or `tests/peers/prometheus.sh test`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::prometheus::*;
use tollgate::analysis::providers::prometheus::{PrometheusConfig, PrometheusProvider};
use tollgate::analysis::providers::{AnalysisTarget, MetricsProvider, ProviderError, Window};
use tollgate::util::credentials::Credentials;
use tollgate::util::secret::Secret;

/// bcrypt (cost 4) of the test-only password `hunter2`, as Prometheus' web config wants it.
const HUNTER2_BCRYPT: &str = "$2b$04$edNI8uvNTxO27wLdGHsMCOQlwryuRQdDQr62cosJnnWmQdQPZvT6i";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("peer missing: the openssl CLI is needed to make test certificates: {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it (webpki refuses a self-signed CA
/// certificate used as the server's own).
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=tollgate test CA",
            "-days",
            "2",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "server.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=127.0.0.1",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus and demo-app: run tests/run-all.sh"]
async fn https_and_basic_auth_against_a_real_prometheus() {
    let dir = temp_dir("prom-tls");
    make_certs(&dir);
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {d}/server.pem\n  key_file: {d}/server.key\nbasic_auth_users:\n  alice: {HUNTER2_BCRYPT}\n",
            d = dir.display()
        ),
    )
    .expect("web config");
    let prom = Prometheus::start_in(dir.clone(), Some(&web));
    let ca = std::fs::read_to_string(dir.join("ca.pem")).expect("ca");
    let config = PrometheusConfig {
        address: prom.url(),
        timeout_ms: 5_000,
        ca_pem: Some(ca),
        ..Default::default()
    };
    let target = AnalysisTarget::new("shop", "checkout");
    let w = Window::ending_at(now_ms(), Duration::from_secs(10)).expect("window");

    let good = PrometheusProvider::new(
        config.clone(),
        Some(Credentials::Basic {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        }),
    )
    .expect("provider");
    let a = good
        .instant_query("vector(42)", now_ms())
        .await
        .expect("https + basic auth");
    assert_eq!(a.series[0].points[0].1, 42.0);
    let c = good
        .window_counts(&target, w)
        .await
        .expect("counts over https");
    assert_eq!((c.canary, c.baseline), (None, None));

    let wrong = PrometheusProvider::new(
        config.clone(),
        Some(Credentials::Basic {
            username: "alice".into(),
            password: Secret::new("not-hunter2"),
        }),
    )
    .expect("provider");
    let e = wrong
        .window_counts(&target, w)
        .await
        .expect_err("wrong password");
    eprintln!("wrong password: {e}");
    assert!(
        matches!(e, ProviderError::Unauthorized { status: 401 }),
        "{e:?}"
    );
    assert!(!format!("{e}{e:?}{wrong:?}").contains("not-hunter2"));

    let untrusted = PrometheusProvider::new(
        PrometheusConfig {
            ca_pem: None,
            ..config
        },
        Some(Credentials::Basic {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        }),
    )
    .expect("provider");
    let e = untrusted
        .window_counts(&target, w)
        .await
        .expect_err("unknown CA");
    eprintln!("untrusted certificate: {e}");
    assert!(matches!(e, ProviderError::Unreachable(_)), "{e:?}");
    assert!(!format!("{e}").contains("hunter2"));
}
