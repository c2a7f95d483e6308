//! `tollgate verify` end to end: the real binary reads a kubeconfig, lists pods, attests real
//! demo-app processes and exits 0 / 1 / 3.
//!
//! The pod list comes from a small canned HTTP endpoint that answers the one list request the way
//! kube-apiserver does (a `PodList` as JSON); the cluster tier runs the same command against the
//! real local control plane. Needs `cargo build -p demo-app` (or TOLLGATE_DEMO_APP).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use crate::support::fleet::{Fleet, PodSpec, BLUE, BLUE_HASH, GREEN};
use serde_json::{json, Value};

pub(crate) fn pod(name: &str, ip: IpAddr, ready: bool) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": "checkout"}},
        "status": {
            "phase": "Running",
            "podIP": ip.to_string(),
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        }
    })
}

/// Serve `GET /api/v1/namespaces/shop/pods?labelSelector=app%3Dcheckout` with `pods`; anything
/// else gets a 404 Status. Records the request targets it saw.
pub(crate) fn serve_pod_list(octet: u8, pods: Vec<Value>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((Ipv4Addr::new(127, 0, octet, 250), 0)).expect("bind stub");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let body = json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1"},
        "items": pods,
    })
    .to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            loop {
                let mut h = String::new();
                match reader.read_line(&mut h) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if h == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let target = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            seen2.lock().expect("lock").push(target.clone());
            let ok = target.starts_with("/api/v1/namespaces/shop/pods?")
                && target.contains("labelSelector=app%3Dcheckout");
            let (status, payload) = if ok {
                ("200 OK", body.clone())
            } else {
                (
                    "404 Not Found",
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404, "message": "not found"})
                    .to_string(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                payload.len()
            );
        }
    });
    (port, seen)
}

pub(crate) fn kubeconfig(octet: u8, port: u16, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-fleet-verify-{}-{tag}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: http://127.0.{octet}.250:{port}
contexts:
- name: local
  context:
    cluster: local
    user: nobody
users:
- name: nobody
  user: {{}}
current-context: local
"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

fn tollgate(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run tollgate");
    println!(
        "$ tollgate {}\n{}{}(exit {:?})",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    );
    out
}

#[test]
fn verify_prints_a_table_and_exits_by_verdict() {
    let octet = 50;
    let mut fleet = Fleet::new(octet);
    let a = fleet.spawn("checkout-a", 1, &PodSpec::new("2.0.0", BLUE));
    let b = fleet.spawn("checkout-b", 2, &PodSpec::new("2.0.0", BLUE));
    let c = fleet.spawn("checkout-c", 3, &PodSpec::new("2.0.0", BLUE));
    fleet.wait_ready();
    let pods = vec![
        pod("checkout-a", a, true),
        pod("checkout-b", b, true),
        pod("checkout-c", c, true),
        pod("checkout-d", fleet.ip(4), false),
    ];
    let (api_port, seen) = serve_pod_list(octet, pods);
    let kc = kubeconfig(octet, api_port, "ok");
    let kc = kc.to_str().expect("utf-8 path");
    let port = fleet.port.to_string();
    let base = [
        "verify",
        "--kubeconfig",
        kc,
        "--namespace",
        "shop",
        "--selector",
        "app=checkout",
        "--port",
        &port,
        "--timeout",
        "2s",
    ];

    // All match: exit 0, one row per pod, the not-ready pod listed but not checked.
    let mut args = base.to_vec();
    args.extend([
        "--expect-version",
        "2.0.0",
        "--expect-config-hash",
        BLUE_HASH,
    ]);
    let out = tollgate(&args);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{stdout}");
    assert!(lines[0].contains("CONFIG-HASH"), "{stdout}");
    assert!(
        lines[1].starts_with("checkout-a")
            && lines[1].contains(BLUE_HASH)
            && lines[1].ends_with("ok"),
        "{stdout}"
    );
    assert!(
        lines[4].starts_with("checkout-d") && lines[4].ends_with("not-ready"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS: 3 of 3 ready pod(s)"), "{stdout}");
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|t| t.contains("labelSelector=app%3Dcheckout")));

    // Wrong version expected: exit 1, every pod named.
    let mut args = base.to_vec();
    args.extend(["--expect-version", "3.0.0"]);
    let out = tollgate(&args);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("checkout-b: VersionMismatch"), "{stdout}");
    assert!(stdout.contains("FAIL: 0 of 3"), "{stdout}");

    // Wrong hash expected, JSON output: exit 1 and machine-readable kinds.
    let mut args = base.to_vec();
    args.extend([
        "--expect-version",
        "2.0.0",
        "--expect-config-hash",
        "0000",
        "--output",
        "json",
    ]);
    let out = tollgate(&args);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["passed"], false);
    assert_eq!(v["report"]["canary"]["failed"], 3);
    assert_eq!(v["report"]["failures"][0]["kind"], "ConfigMismatch");
    assert_eq!(v["pods"][0]["configHash"], BLUE_HASH);
}

#[test]
fn verify_names_a_stale_or_drifted_pod() {
    let octet = 51;
    let mut fleet = Fleet::new(octet);
    let a = fleet.spawn("checkout-a", 1, &PodSpec::new("2.0.0", BLUE));
    let b = fleet.spawn("checkout-b", 2, &PodSpec::new("1.0.0", BLUE));
    let c = fleet.spawn("checkout-c", 3, &PodSpec::new("2.0.0", GREEN));
    let d = fleet.spawn("checkout-d", 4, &PodSpec::new("2.0.0", BLUE));
    fleet.wait_ready();
    let pods = vec![
        pod("checkout-a", a, true),
        pod("checkout-b", b, true),
        pod("checkout-c", c, true),
        pod("checkout-d", d, true),
    ];
    let (api_port, _) = serve_pod_list(octet, pods);
    let kc = kubeconfig(octet, api_port, "stale");
    let port = fleet.port.to_string();
    let out = tollgate(&[
        "verify",
        "--kubeconfig",
        kc.to_str().expect("utf-8"),
        "-n",
        "shop",
        "-l",
        "app=checkout",
        "--expect-version",
        "2.0.0",
        "--port",
        &port,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("checkout-b: VersionMismatch"), "{stdout}");
    assert!(stdout.contains("checkout-c: ConfigDrift"), "{stdout}");
    assert!(!stdout.contains("checkout-a:"), "{stdout}");
    assert!(!stdout.contains("checkout-d:"), "{stdout}");
}

#[test]
fn verify_exits_3_when_kubernetes_cannot_be_reached_and_1_when_nothing_matches() {
    let octet = 52;
    // Nothing listens on this port once the probe socket is gone.
    let closed = TcpListener::bind((Ipv4Addr::new(127, 0, octet, 250), 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let kc = kubeconfig(octet, closed, "down");
    let out = tollgate(&[
        "verify",
        "--kubeconfig",
        kc.to_str().expect("utf-8"),
        "-n",
        "shop",
        "-l",
        "app=checkout",
        "--expect-version",
        "2.0.0",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));

    // A selector that matches no pod is not a pass.
    let (api_port, _) = serve_pod_list(octet, Vec::new());
    let kc = kubeconfig(octet, api_port, "empty");
    let out = tollgate(&[
        "verify",
        "--kubeconfig",
        kc.to_str().expect("utf-8"),
        "-n",
        "shop",
        "-l",
        "app=checkout",
        "--expect-version",
        "2.0.0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no ready pod to attest"));

    // Bad settings: exit 3 before any network.
    let out = tollgate(&[
        "verify",
        "--kubeconfig",
        kc.to_str().expect("utf-8"),
        "-n",
        "shop",
        "-l",
        "app=checkout",
        "--expect-version",
        "2.0.0",
        "--version-pointer",
        "version",
    ]);
    assert_eq!(out.status.code(), Some(3));
}
