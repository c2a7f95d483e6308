//! The local cluster a peer run started: its env file, a fresh namespace per test, the CRDs, the
//! Gateway API CRDs, the chart's RBAC and ServiceAccount, and kubectl/helm from the same run.
//!
//! The peers are started by `tests/cluster/start.sh` (or the whole run by
//! `tests/cluster/run-peer-tests.sh`), which writes an env file; tests find it through
//! `TOLLGATE_TEST_ENV=/path/to/env`. Such tests are `#[ignore = "needs the local cluster: run
//! tests/run-all.sh"]`, so plain `cargo test` skips them; under `--include-ignored` without the env
//! file they FAIL with a message saying how to start the peers — never pass vacuously.
//!
//! ```ignore
//! use crate::support::cluster::TestEnv;
//! #[tokio::test]
//! #[ignore = "needs the local cluster: run tests/run-all.sh"]
//! async fn my_test() {
//!     let env = TestEnv::load();
//!     let ns = env.namespace("my-test").await;          // fresh namespace, own client
//!     env.install_crds().await;                          // crds/*.yaml applied, Established
//!     let prom = env.prometheus_url();                   // real Prometheus scraping the pods
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

use super::wait::wait_until;

/// The peers of one run, as described by start.sh's env file.
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub file: PathBuf,
    pub vars: BTreeMap<String, String>,
}

fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

impl TestEnv {
    /// Reads `$TOLLGATE_TEST_ENV`. Panics (fails the test) with instructions when it is missing.
    pub fn load() -> TestEnv {
        let Some(file) = std::env::var_os("TOLLGATE_TEST_ENV") else {
            panic!(
                "TOLLGATE_TEST_ENV is not set: this test needs the local cluster (kube-apiserver, \
                 kwok, pod runner, Prometheus). Run `bash tests/cluster/run-peer-tests.sh` (or \
                 tests/run-all.sh), or start the peers with tests/cluster/start.sh and export \
                 TOLLGATE_TEST_ENV=<the env file it prints>."
            )
        };
        TestEnv::from_file(PathBuf::from(file))
    }

    /// The env file of another cluster started by start.sh (a test's private control plane).
    pub fn from_file(file: PathBuf) -> TestEnv {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "TOLLGATE_TEST_ENV={}: cannot read it ({e}); is the cluster still running? \
                 Start it with tests/cluster/start.sh",
                file.display()
            )
        });
        TestEnv {
            file,
            vars: parse_env_file(&text),
        }
    }

    /// A variable of the env file; panics naming it when absent or empty.
    pub fn var(&self, name: &str) -> &str {
        match self.vars.get(name).map(String::as_str) {
            Some(v) if !v.is_empty() => v,
            _ => panic!(
                "{name} is not set in {} — was that peer started? (see tests/cluster/start.sh)",
                self.file.display()
            ),
        }
    }

    pub fn kubeconfig(&self) -> &Path {
        Path::new(self.var("KUBECONFIG"))
    }

    pub fn prometheus_url(&self) -> &str {
        self.var("PROMETHEUS_URL")
    }

    pub fn pod_cidr(&self) -> &str {
        self.var("TOLLGATE_POD_CIDR")
    }

    pub fn scrape_interval(&self) -> Duration {
        let s: f64 = self
            .var("TOLLGATE_SCRAPE_INTERVAL_SECONDS")
            .parse()
            .unwrap_or(2.0);
        Duration::from_secs_f64(s)
    }

    /// Path of a binary named in the env file (`KUBECTL`, `HELM`, `LOAD_GEN_BIN`, `DEMO_APP_BIN`).
    pub fn bin(&self, name: &str) -> PathBuf {
        PathBuf::from(self.var(name))
    }

    /// A client with the admin credentials of the test cluster.
    pub async fn client(&self) -> Client {
        tollgate::util::http::install_crypto_provider();
        let kc = Kubeconfig::read_from(self.kubeconfig())
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.kubeconfig().display()));
        let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", self.kubeconfig().display()));
        Client::try_from(cfg).unwrap_or_else(|e| panic!("kube client: {e}"))
    }

    /// A fresh namespace `<prefix>-<unique>` for one test, with its own client.
    pub async fn namespace(&self, prefix: &str) -> TestNamespace {
        static N: AtomicU32 = AtomicU32::new(0);
        let client = self.client().await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let prefix: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(30)
            .collect();
        let name = format!(
            "{}-{}-{}-{:x}",
            prefix.trim_matches('-'),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"tollgate.dev/test": "true"}}
        }))
        .expect("namespace object");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        TestNamespace { name, client }
    }

    /// Server-side applies every CRD in crds/ and waits until each is Established.
    pub async fn install_crds(&self) -> Vec<String> {
        let client = self.client().await;
        let api: Api<CustomResourceDefinition> = Api::all(client);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        let mut names = vec![];
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path).expect("read crd");
            let crd: CustomResourceDefinition = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a CRD: {e}", path.display()));
            let name = crd.metadata.name.clone().expect("crd name");
            api.patch(
                &name,
                &PatchParams::apply("tollgate-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("applying {}: {e}", path.display()));
            names.push(name);
        }
        for name in &names {
            wait_until(
                Duration::from_secs(30),
                &format!("CRD {name} Established"),
                || async {
                    let crd = api.get(name).await.ok()?;
                    let established = crd
                        .status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    established.then_some(())
                },
            )
            .await;
        }
        names
    }
}

impl TestEnv {
    /// Renders the chart's ServiceAccount and namespaced RBAC for `namespace` (`helm template`
    /// with `rbac.scope=namespace`, exactly what an install would create) and applies them.
    /// Returns the rendered YAML.
    pub fn install_chart_rbac(&self, namespace: &str) -> String {
        let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/tollgate");
        let version = self
            .var("TOLLGATE_KUBERNETES_VERSION")
            .trim_start_matches('v');
        let chart = chart.to_string_lossy();
        let rendered = self.run_bin(
            "HELM",
            &[
                "template",
                "tollgate",
                &chart,
                "--namespace",
                namespace,
                "--kube-version",
                version,
                "--set",
                "rbac.scope=namespace",
                "--show-only",
                "templates/serviceaccount.yaml",
                "--show-only",
                "templates/rbac.yaml",
            ],
            None,
        );
        self.run_bin("KUBECTL", &["apply", "-f", "-"], Some(&rendered));
        rendered
    }

    /// Runs a binary named in the env file (`KUBECTL`, `HELM`, ...) with the admin kubeconfig
    /// and `stdin`; returns stdout, panics with its output on failure.
    pub fn run_bin(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new(self.bin(bin))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {bin}: {e}"));
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{bin} {args:?} failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl with the admin credentials.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.run_bin("KUBECTL", args, None)
    }

    /// A kubeconfig that authenticates as the chart's ServiceAccount `tollgate` in `namespace`
    /// (installing the chart's RBAC there first), with a bound token from the TokenRequest API.
    /// The operator run under it has exactly the permissions the chart grants.
    pub fn chart_service_account_kubeconfig(&self, namespace: &str) -> PathBuf {
        let dir = Path::new(self.var("TOLLGATE_CLUSTER_DIR"));
        let path = dir.join(format!("sa-{namespace}.kubeconfig"));
        if path.exists() {
            return path;
        }
        self.install_chart_rbac(namespace);
        let token = self.kubectl(&[
            "create",
            "token",
            "tollgate",
            "--namespace",
            namespace,
            "--duration",
            "3h",
        ]);
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    \
             certificate-authority: {ca}\nusers:\n- name: tollgate\n  user:\n    token: {token}\n\
             contexts:\n- name: tollgate\n  context:\n    cluster: local\n    user: tollgate\n    \
             namespace: {namespace}\ncurrent-context: tollgate\n",
            server = self.var("TOLLGATE_APISERVER"),
            ca = self.var("TOLLGATE_CA_FILE"),
            token = token.trim(),
        );
        std::fs::write(&path, config).expect("write the ServiceAccount kubeconfig");
        path
    }

    /// The ServiceAccount kubeconfig of [`TestEnv::chart_service_account_kubeconfig`], but
    /// dialling `server` (e.g. a fault proxy in front of the API server) instead of the API
    /// server itself. `server` must be covered by the apiserver certificate's SANs
    /// (`https://127.0.0.1:<port>` is).
    pub fn chart_service_account_kubeconfig_via(&self, namespace: &str, server: &str) -> PathBuf {
        let direct = self.chart_service_account_kubeconfig(namespace);
        let text = std::fs::read_to_string(&direct).expect("read the ServiceAccount kubeconfig");
        let text = text.replace(
            &format!("server: {}\n", self.var("TOLLGATE_APISERVER")),
            &format!("server: {server}\n"),
        );
        assert!(
            text.contains(server),
            "no server line in {}",
            direct.display()
        );
        let path = direct.with_file_name(format!("sa-{namespace}-via-proxy.kubeconfig"));
        std::fs::write(&path, text).expect("write the proxied kubeconfig");
        path
    }

    /// Applies the Gateway API's standard CRDs (from build.sh's cache) and waits until the
    /// HTTPRoute CRD is Established.
    pub async fn install_gateway_api(&self) {
        self.install_gateway_api_kind("httproutes").await
    }

    /// Server-side applies one Gateway API CRD of the pinned standard channel (`httproutes`,
    /// `grpcroutes`, ...) and waits until it is Established.
    pub async fn install_gateway_api_kind(&self, plural: &str) {
        let dir = self.var("GATEWAY_API_CRDS").to_string();
        let file = format!("{dir}/gateway.networking.k8s.io_{plural}.yaml");
        self.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &file]);
        let api: Api<CustomResourceDefinition> = Api::all(self.client().await);
        wait_until(
            Duration::from_secs(30),
            &format!("the {plural} CRD Established"),
            || async {
                let crd = api
                    .get(&format!("{plural}.gateway.networking.k8s.io"))
                    .await
                    .ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            },
        )
        .await;
    }
}

/// A namespace created for one test. Call [`TestNamespace::delete`] at the end; the cluster is
/// thrown away after the run anyway.
pub struct TestNamespace {
    pub name: String,
    pub client: Client,
}

impl TestNamespace {
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Pods of this namespace matching a label selector.
    pub async fn pods(&self, selector: &str) -> Vec<Pod> {
        self.api::<Pod>()
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    pub async fn delete(self) {
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await;
    }
}
