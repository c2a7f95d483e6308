//! What a kubelet does with a pod, done with podman, for the chart's operator pod.
//!
//! kwok's nodes run nothing: kwok only marks pods Running and gives them an IP (from the loopback
//! pod CIDR). So the test plays the kubelet for the operator's pods: it pulls the image the pod
//! names from the registry, mounts a ServiceAccount token from the TokenRequest API (bound to the
//! pod, as the kubelet's projected volume is), the cluster CA from the namespace's
//! `kube-root-ca.crt` ConfigMap and the namespace at /var/run/secrets/kubernetes.io/serviceaccount,
//! sets `KUBERNETES_SERVICE_HOST`/`_PORT`, resolves the container's env (values, `fieldRef`s,
//! Secret and ConfigMap keys) and expands `$(VAR)` in args and env as the kubelet does, and
//! applies the security context (user, read-only root filesystem, no privilege escalation,
//! capabilities, seccomp) and memory/CPU limits.
//!
//! Differences from a real node, each because this machine has no pod network: the container
//! shares the host's network namespace, where the pod's loopback IP is already routable, and
//! `KUBERNETES_SERVICE_HOST` is the API server's own address (Service ClusterIPs route nowhere
//! here). Service-link variables (`<SERVICE>_SERVICE_HOST` ...) are not injected, and the token is
//! not rotated (the tests are far shorter than its hour).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use super::{podman, run, stdout};

/// The operator container of one pod, running under podman; removed when dropped.
pub struct PodContainer {
    /// podman's name for it.
    pub name: String,
    /// The pod it stands for.
    pub pod: String,
    pub log: PathBuf,
    /// The readiness probe's URL (`http://<pod IP>:<port><path>`).
    pub readiness_url: String,
    pub started: Instant,
    child: Child,
    secrets: PathBuf,
}

/// `$(NAME)` replaced by the variable's value when it is defined, `$$` by `$`; anything else
/// kept, as the kubelet does for command, args and env values.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(reference) = tail
            .strip_prefix("$(")
            .and_then(|t| t.find(')').map(|end| &t[..end]))
            .filter(|name| vars.contains_key(*name))
        {
            out.push_str(&vars[reference]);
            rest = &tail[reference.len() + 3..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Bytes of a memory quantity (`256Mi`, `1G`, `512`).
pub fn memory_bytes(quantity: &str) -> u64 {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return number.parse::<u64>().expect("memory quantity") * factor;
        }
    }
    quantity.parse().expect("memory quantity")
}

/// CPUs of a CPU quantity (`500m`, `2`).
pub fn cpus(quantity: &str) -> f64 {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().expect("cpu quantity") / 1000.0,
        None => quantity.parse().expect("cpu quantity"),
    }
}

/// The value of a `fieldRef` the kubelet resolves from the pod object.
fn field(pod: &Pod, path: &str) -> String {
    let spec = pod.spec.as_ref().expect("pod spec");
    let status = pod.status.as_ref();
    let value = match path {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        "metadata.uid" => pod.metadata.uid.clone(),
        "spec.nodeName" => spec.node_name.clone(),
        "spec.serviceAccountName" => spec.service_account_name.clone(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        other => panic!("this kubelet does not resolve fieldRef {other}"),
    };
    value.unwrap_or_default()
}

/// The container's environment as the kubelet builds it, in order, `$(VAR)` expanded against
/// what came before.
async fn environment(client: &Client, pod: &Pod, container: &Container) -> Vec<(String, String)> {
    let namespace = pod.metadata.namespace.as_deref().expect("namespace");
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut ordered = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => expand(value, &vars),
            (None, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field(pod, &f.field_path)
                } else if let Some(s) = &from.secret_key_ref {
                    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
                        .get(&s.name)
                        .await
                        .unwrap_or_else(|e| panic!("Secret {} for {}: {e}", s.name, var.name));
                    let bytes = secret
                        .data
                        .and_then(|d| d.get(&s.key).cloned())
                        .unwrap_or_else(|| panic!("key {} in Secret {}", s.key, s.name));
                    String::from_utf8(bytes.0).expect("a UTF-8 Secret value")
                } else if let Some(c) = &from.config_map_key_ref {
                    let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                        .get(&c.name)
                        .await
                        .unwrap_or_else(|e| panic!("ConfigMap {}: {e}", c.name));
                    map.data
                        .and_then(|d| d.get(&c.key).cloned())
                        .unwrap_or_else(|| panic!("key {} in ConfigMap {}", c.key, c.name))
                } else {
                    panic!("this kubelet does not resolve {:?}", var.value_from)
                }
            }
            (None, None) => String::new(),
        };
        vars.insert(var.name.clone(), value.clone());
        ordered.push((var.name.clone(), value));
    }
    ordered
}

/// The projected ServiceAccount volume: a token bound to the pod (TokenRequest API), the
/// cluster CA as the namespace's `kube-root-ca.crt` ConfigMap holds it, and the namespace.
async fn service_account_volume(client: &Client, pod: &Pod, dir: &std::path::Path) {
    let namespace = pod.metadata.namespace.as_deref().expect("namespace");
    let spec = pod.spec.as_ref().expect("spec");
    let account = spec.service_account_name.as_deref().unwrap_or("default");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(3607),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        }),
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for ServiceAccount {account}: {e}"))
        .status
        .and_then(|status| status.token)
        .expect("a token in the TokenRequest's status");
    let maps = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let started = Instant::now();
    let ca = loop {
        // Published by kube-controller-manager's root-ca-cert-publisher into every namespace.
        if let Ok(map) = maps.get("kube-root-ca.crt").await {
            if let Some(ca) = map.data.and_then(|d| d.get("ca.crt").cloned()) {
                break ca;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no kube-root-ca.crt in {namespace}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("token dir");
    for (file, text) in [
        ("token", token.as_str()),
        ("ca.crt", &ca),
        ("namespace", namespace),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, text).expect("write the ServiceAccount volume");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// podman flags for the pod's and container's security contexts (the container's wins).
fn security_flags(pod: &Pod, container: &Container, image_user: &str) -> Vec<String> {
    let pod_sc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let sc = container.security_context.clone().unwrap_or_default();
    let mut flags = Vec::new();
    let user = sc.run_as_user.or(pod_sc.run_as_user);
    let group = sc.run_as_group.or(pod_sc.run_as_group);
    let effective_uid = match user {
        Some(uid) => {
            let gid = group.unwrap_or(0);
            flags.push(format!("--user={uid}:{gid}"));
            uid
        }
        // The image's user, which must then be numeric for runAsNonRoot to be checkable.
        None => image_user
            .split(':')
            .next()
            .and_then(|u| u.parse().ok())
            .unwrap_or(0),
    };
    if sc.run_as_non_root.or(pod_sc.run_as_non_root) == Some(true) {
        assert_ne!(
            effective_uid, 0,
            "runAsNonRoot, but the container would run as root: the kubelet refuses to start it"
        );
    }
    if sc.read_only_root_filesystem == Some(true) {
        // podman's own tmpfs on /tmp, /run and /var/tmp is not what a kubelet gives.
        flags.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
    }
    if sc.allow_privilege_escalation == Some(false) {
        flags.push("--security-opt=no-new-privileges".into());
    }
    assert_ne!(
        sc.privileged,
        Some(true),
        "this kubelet runs no privileged pod"
    );
    if let Some(caps) = &sc.capabilities {
        for cap in caps.drop.iter().flatten() {
            flags.push(format!("--cap-drop={cap}"));
        }
        for cap in caps.add.iter().flatten() {
            flags.push(format!("--cap-add={cap}"));
        }
    }
    let seccomp = sc.seccomp_profile.or(pod_sc.seccomp_profile);
    match seccomp.as_ref().map(|s| s.type_.as_str()) {
        // RuntimeDefault is the runtime's default profile, which podman applies by itself.
        None | Some("RuntimeDefault") => {}
        Some("Unconfined") => flags.push("--security-opt=seccomp=unconfined".into()),
        Some(other) => panic!("this kubelet does not load seccomp profile {other}"),
    }
    flags
}

impl PodContainer {
    /// Starts the pod's only container as the kubelet would (see the module doc). `apiserver`
    /// is `https://host:port`; `registry_insecure` pulls over plain HTTP (a loopback registry).
    pub async fn start(
        client: &Client,
        pod: &Pod,
        apiserver: &str,
        work: &std::path::Path,
    ) -> Self {
        let spec = pod.spec.as_ref().expect("pod spec");
        assert_eq!(spec.containers.len(), 1, "one container per operator pod");
        assert!(spec.init_containers.is_none(), "no init containers");
        let container = &spec.containers[0];
        let pod_name = pod.metadata.name.clone().expect("pod name");
        let namespace = pod.metadata.namespace.clone().expect("namespace");
        let pod_ip = field(pod, "status.podIP");
        assert!(!pod_ip.is_empty(), "pod {pod_name} has no IP yet");
        let image = container.image.clone().expect("image");

        // The image as the kubelet gets it: pulled from the registry the pod names.
        run(
            "podman pull",
            podman().args(["pull", "--quiet", "--tls-verify=false", &image]),
        );
        let image_user = stdout(
            "podman image inspect",
            podman().args(["image", "inspect", "--format", "{{.Config.User}}", &image]),
        );

        let secrets = work.join(format!("{namespace}-{pod_name}-serviceaccount"));
        if spec.automount_service_account_token != Some(false) {
            service_account_volume(client, pod, &secrets).await;
        }
        let env = environment(client, pod, container).await;
        let vars: BTreeMap<String, String> = env.iter().cloned().collect();
        let (host, port) = apiserver
            .trim_start_matches("https://")
            .rsplit_once(':')
            .expect("apiserver host:port");

        let name = format!("tollgate-test-{namespace}-{pod_name}");
        let mut args: Vec<String> = vec![
            "run".into(),
            format!("--name={name}"),
            format!("--hostname={pod_name}"),
            "--network=host".into(),
            "--pull=never".into(),
            format!(
                "--stop-timeout={}",
                spec.termination_grace_period_seconds.unwrap_or(30)
            ),
            format!("--env=KUBERNETES_SERVICE_HOST={host}"),
            format!("--env=KUBERNETES_SERVICE_PORT={port}"),
        ];
        if spec.automount_service_account_token != Some(false) {
            args.push(format!(
                "--volume={}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
                secrets.display()
            ));
        }
        for (key, value) in &env {
            args.push(format!("--env={key}={value}"));
        }
        args.extend(security_flags(pod, container, &image_user));
        if let Some(limits) = container.resources.as_ref().and_then(|r| r.limits.as_ref()) {
            if let Some(memory) = limits.get("memory") {
                args.push(format!("--memory={}", memory_bytes(&memory.0)));
            }
            if let Some(cpu) = limits.get("cpu") {
                args.push(format!("--cpus={}", cpus(&cpu.0)));
            }
        }
        if let Some(command) = &container.command {
            let command: Vec<String> = command.iter().map(|c| expand(c, &vars)).collect();
            args.push(format!(
                "--entrypoint={}",
                serde_json::to_string(&command).expect("entrypoint JSON")
            ));
        }
        args.push(image);
        args.extend(container.args.iter().flatten().map(|a| expand(a, &vars)));

        let probe = container
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .expect("the operator container has an HTTP readiness probe");
        let probe_port = match &probe.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => *p,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(named) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(named))
                .map(|p| p.container_port)
                .unwrap_or_else(|| panic!("no container port named {named}")),
        };
        let readiness_url = format!(
            "http://{}:{probe_port}{}",
            probe.host.clone().unwrap_or(pod_ip),
            probe.path.clone().unwrap_or_else(|| "/".into())
        );

        let log = work.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("container log");
        let started = Instant::now();
        let child = podman()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("podman run");
        eprintln!("kubelet: podman {}", args.join(" "));
        PodContainer {
            name,
            pod: pod_name,
            log,
            readiness_url,
            started,
            child,
            secrets,
        }
    }

    /// What the readiness probe gets: `(status, body)`, None while nothing answers.
    pub async fn probe(&self) -> Option<(u16, String)> {
        let response = reqwest::Client::new()
            .get(&self.readiness_url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }

    /// Waits until the readiness probe succeeds; returns the time from `podman run` to then.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Duration {
        loop {
            if let Some((200..=299, _)) = self.probe().await {
                return self.started.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the container of {} exited ({status}) before it was ready:\n{}",
                    self.pod,
                    self.log_text()
                );
            }
            assert!(
                self.started.elapsed() < timeout,
                "{} not ready after {timeout:?} ({:?}):\n{}",
                self.pod,
                self.probe().await,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The container's main process as the host sees it.
    pub fn host_pid(&self) -> u32 {
        stdout(
            "podman inspect",
            podman().args(["inspect", "--format", "{{.State.Pid}}", &self.name]),
        )
        .parse()
        .expect("a pid")
    }

    /// `podman inspect` of the container, as JSON.
    pub fn inspect(&self) -> serde_json::Value {
        let text = stdout("podman inspect", podman().args(["inspect", &self.name]));
        let list: serde_json::Value = serde_json::from_str(&text).expect("inspect JSON");
        list[0].clone()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails when the API server ever refused the operator (its RBAC must be enough).
    pub fn assert_never_forbidden(&self) {
        let text = self.log_text();
        let refused: Vec<&str> = text
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("forbidden"))
            .take(5)
            .collect();
        assert!(
            refused.is_empty(),
            "the operator in pod {} was refused:\n{}",
            self.pod,
            refused.join("\n")
        );
    }
}

impl Drop for PodContainer {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "--force", "--time=2", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.secrets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_the_kubelet() {
        let vars: BTreeMap<String, String> =
            [("POD_IP".to_string(), "127.0.60.4".to_string())].into();
        assert_eq!(
            expand("--admin-addr=$(POD_IP):8081", &vars),
            "--admin-addr=127.0.60.4:8081"
        );
        assert_eq!(
            expand("$(UNSET) $$(POD_IP) $", &vars),
            "$(UNSET) $(POD_IP) $"
        );
        assert_eq!(memory_bytes("256Mi"), 268_435_456);
        assert_eq!(cpus("500m"), 0.5);
    }
}
