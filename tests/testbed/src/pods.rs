//! What demo-app process a pod should have: pure functions of the Pod object.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::cidr::Cidr;

/// The process a pod should have: demo-app with these `DEMO_*` environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSpec {
    pub ip: Ipv4Addr,
    pub uid: String,
    pub env: BTreeMap<String, String>,
}

/// `namespace/name`.
pub fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// The pod's IPv4 address when it is Running, not being deleted, and its IP is in `cidr`.
pub fn running_ip(pod: &Pod, cidr: &Cidr) -> Option<Ipv4Addr> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let ip: Ipv4Addr = status.pod_ip.as_deref()?.parse().ok()?;
    cidr.contains(ip).then_some(ip)
}

/// True when the pod is Running with a Ready condition True (what a Service would route to).
pub fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
                && s.conditions
                    .as_ref()
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
}

/// The container that describes the app: the first one with a `DEMO_*` env var, else the first.
fn app_container(pod: &Pod) -> Option<&Container> {
    let containers = &pod.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|c| {
            c.env
                .as_ref()
                .is_some_and(|env| env.iter().any(|e| e.name.starts_with("DEMO_")))
        })
        .or_else(|| containers.first())
}

/// Version from an image reference's tag: `repo/demo-app:1.2.3` -> `1.2.3`.
pub fn image_tag(image: &str) -> Option<&str> {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':')
        .map(|(_, tag)| tag)
        .filter(|t| !t.is_empty())
}

/// The demo-app process this pod should have, or None when it should have none.
///
/// Environment: every `DEMO_*` variable with a literal value from the app container's `env`
/// (`valueFrom` is not resolved); `DEMO_VERSION` defaults to the image tag; `DEMO_LISTEN` is
/// always `<podIP>:<port>`.
pub fn desired(pod: &Pod, cidr: &Cidr, port: u16) -> Option<ProcSpec> {
    let ip = running_ip(pod, cidr)?;
    let mut env = BTreeMap::new();
    if let Some(c) = app_container(pod) {
        for e in c.env.iter().flatten() {
            if let (true, Some(v)) = (e.name.starts_with("DEMO_"), e.value.as_ref()) {
                env.insert(e.name.clone(), v.clone());
            }
        }
        if !env.contains_key("DEMO_VERSION") {
            let v = c.image.as_deref().and_then(image_tag).unwrap_or("unknown");
            env.insert("DEMO_VERSION".into(), v.to_string());
        }
    } else {
        env.insert("DEMO_VERSION".into(), "unknown".into());
    }
    env.insert("DEMO_LISTEN".into(), format!("{ip}:{port}"));
    Some(ProcSpec {
        ip,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        env,
    })
}

/// The demo-app command line of a process spec, for the pod runner's `--inline` mode (which
/// builds `demo_app::Args` in-process instead of passing env to a child): every known `DEMO_*`
/// variable as its flag. Unknown names are left out, as demo-app's own env parsing ignores them;
/// empty values too, since clap treats an empty env var as absent.
pub fn demo_app_argv(env: &BTreeMap<String, String>) -> Vec<String> {
    const FLAGS: [(&str, &str); 13] = [
        ("DEMO_LISTEN", "listen"),
        ("DEMO_VERSION", "version"),
        ("DEMO_CONFIG", "config"),
        ("DEMO_DEPENDENCIES", "dependency"),
        ("DEMO_FLAGS", "flag"),
        ("DEMO_VERSION_FAULT", "version-fault"),
        ("DEMO_ERROR_RATE", "error-rate"),
        ("DEMO_LATENCY_MS", "latency-ms"),
        ("DEMO_LATENCY_SIGMA", "latency-sigma"),
        ("DEMO_ADDED_LATENCY_MS", "added-latency-ms"),
        ("DEMO_LATENCY_MODE", "latency-mode"),
        ("DEMO_TAIL_FRACTION", "tail-fraction"),
        ("DEMO_SEED", "seed"),
    ];
    let mut argv = vec!["demo-app".to_string()];
    for (var, flag) in FLAGS {
        if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
            argv.push(format!("--{flag}={v}"));
        }
    }
    argv
}

/// A Prometheus label name from a Kubernetes label key, as `kubernetes_sd_configs`' labelmap
/// would make it: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub fn prom_label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Target labels of a pod for Prometheus' file_sd: every pod label (sanitized), `namespace`,
/// `pod`, `node`, and `track` / `rollout` also from `tollgate.dev/track` / `tollgate.dev/rollout`.
pub fn target_labels(pod: &Pod) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    for (k, v) in &labels {
        out.insert(prom_label_name(k), v.clone());
    }
    for (from, to) in [
        ("tollgate.dev/track", "track"),
        ("tollgate.dev/rollout", "rollout"),
    ] {
        if let Some(v) = labels.get(from) {
            out.insert(to.to_string(), v.clone());
        }
    }
    out.insert(
        "namespace".into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    out.insert("pod".into(), pod.metadata.name.clone().unwrap_or_default());
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        out.insert("node".into(), node);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn running(env: serde_json::Value, image: &str, ip: &str) -> Pod {
        pod(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [
                {"name": "sidecar", "image": "envoy:1"},
                {"name": "app", "image": image, "env": env}
            ]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
    }

    #[test]
    fn takes_demo_env_from_the_app_container() {
        let cidr: Cidr = "127.0.10.0/24".parse().unwrap();
        let p = running(
            json!([{"name": "DEMO_VERSION", "value": "2.0.0"},
                   {"name": "DEMO_ERROR_RATE", "value": "0.1"},
                   {"name": "DEMO_LISTEN", "value": "0.0.0.0:1"},
                   {"name": "OTHER", "value": "x"},
                   {"name": "DEMO_CONFIG", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
            "demo-app:1.0.0",
            "127.0.10.5",
        );
        let s = desired(&p, &cidr, 8080).unwrap();
        assert_eq!(s.ip.to_string(), "127.0.10.5");
        assert_eq!(s.uid, "u1");
        assert_eq!(s.env.get("DEMO_VERSION").map(String::as_str), Some("2.0.0"));
        assert_eq!(
            s.env.get("DEMO_ERROR_RATE").map(String::as_str),
            Some("0.1")
        );
        assert_eq!(
            s.env.get("DEMO_LISTEN").map(String::as_str),
            Some("127.0.10.5:8080")
        );
        assert!(!s.env.contains_key("OTHER"));
        assert!(!s.env.contains_key("DEMO_CONFIG"));
        assert!(is_ready(&p));
        assert_eq!(key(&p), "ns/p");
    }

    #[test]
    fn target_labels_for_file_sd() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "ns",
                         "labels": {"app.kubernetes.io/name": "shop", "tollgate.dev/track": "canary",
                                    "9lives": "x"}},
            "spec": {"nodeName": "kwok-node-1", "containers": [{"name": "app"}]}
        }));
        let l = target_labels(&p);
        assert_eq!(l["app_kubernetes_io_name"], "shop");
        assert_eq!(l["tollgate_dev_track"], "canary");
        assert_eq!(l["track"], "canary");
        assert_eq!(l["_9lives"], "x");
        assert_eq!(l["namespace"], "ns");
        assert_eq!(l["pod"], "p");
        assert_eq!(l["node"], "kwok-node-1");
    }

    #[test]
    fn version_defaults_to_the_image_tag() {
        let cidr: Cidr = "127.0.10.0/24".parse().unwrap();
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "app", "image": "reg:5000/team/demo-app:1.4.2"}]},
            "status": {"phase": "Running", "podIP": "127.0.10.9"}
        }));
        let s = desired(&p, &cidr, 8080).unwrap();
        assert_eq!(s.env.get("DEMO_VERSION").map(String::as_str), Some("1.4.2"));
        assert!(!is_ready(&p), "no Ready condition");
        assert_eq!(image_tag("demo-app"), None);
        assert_eq!(image_tag("reg:5000/demo-app"), None);
        assert_eq!(image_tag("demo-app:3@sha256:abc"), Some("3"));
    }

    #[test]
    fn no_process_unless_running_in_cidr_and_not_deleting() {
        let cidr: Cidr = "127.0.10.0/24".parse().unwrap();
        assert!(desired(&running(json!([]), "a:1", "10.0.0.5"), &cidr, 8080).is_none());
        assert!(desired(&running(json!([]), "a:1", ""), &cidr, 8080).is_none());
        let mut p = running(json!([]), "a:1", "127.0.10.3");
        p.status.as_mut().unwrap().phase = Some("Pending".into());
        assert!(desired(&p, &cidr, 8080).is_none());
        let mut p = running(json!([]), "a:1", "127.0.10.3");
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Default::default(),
        ));
        assert!(desired(&p, &cidr, 8080).is_none());
        assert!(!is_ready(&p));
    }

    #[test]
    fn demo_app_argv_maps_every_known_variable_to_its_flag() {
        let env: BTreeMap<String, String> = [
            ("DEMO_VERSION", "2.0.0"),
            ("DEMO_LISTEN", "127.64.0.3:8080"),
            ("DEMO_CONFIG", "a=1,b=2"),
            ("DEMO_FLAGS", ""),
            ("DEMO_UNKNOWN", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            demo_app_argv(&env),
            [
                "demo-app",
                "--listen=127.64.0.3:8080",
                "--version=2.0.0",
                "--config=a=1,b=2"
            ]
        );
    }
}
