//! Text from peers and inputs reaching a terminal: the real `tollgate` binary run against a pod,
//! a broker and an input that put escape sequences, an OSC title, carriage returns and 64 KiB
//! strings in what they say. Its output holds no raw ESC, BEL or CR byte and stays short. No
//! cluster needed: the pod list comes from the canned API endpoint of `fleet_verify`, the pod
//! and the broker are tiny local servers.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::process::Output;

use crate::fleet_verify::{kubeconfig, pod, serve_pod_list};
use crate::support::broker::{FaultServer, Reply};
use crate::support::cli::tollgate;

/// What a hostile peer says: an OSC window title, a screen clear, a carriage return that
/// would overwrite the line, and 64 KiB more.
fn hostile(tag: &str) -> String {
    hostile_padded(tag, 64 * 1024)
}

/// [`hostile`] with `pad` bytes more, for peers whose bodies are capped below 64 KiB.
fn hostile_padded(tag: &str, pad: usize) -> String {
    format!(
        "{tag}\u{1b}]0;pwned\u{7}\u{1b}[2J\rOK looks fine{}",
        "A".repeat(pad)
    )
}

/// Longest text output any of these commands may print for these hostile strings (a few
/// lines, each cut at `tollgate::util::text::MAX_TERMINAL_LINE` characters).
const MAX_OUTPUT: usize = 8 * 1024;

/// Fails when `out` (stdout and stderr) holds a raw ESC, BEL or CR, or, for text output, is
/// longer than [`MAX_OUTPUT`]; prints what it checked. JSON output is data for programs: it
/// keeps what the peer said whole, escaped by JSON itself, and must parse.
fn assert_terminal_safe(what: &str, output: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let shown = String::from_utf8_lossy(bytes);
        println!(
            "{what} {stream}: {} bytes, exit {:?}: {}",
            bytes.len(),
            out.status.code(),
            shown.chars().take(300).collect::<String>().escape_debug()
        );
        for (byte, name) in [(0x1b, "ESC"), (0x07, "BEL"), (b'\r', "CR")] {
            assert!(
                !bytes.contains(&byte),
                "{what}: raw {name} on {stream}: {}",
                shown.escape_debug()
            );
        }
        if output == "text" || stream == "stderr" {
            assert!(
                bytes.len() <= MAX_OUTPUT,
                "{what}: {} bytes on {stream}, not shortened",
                bytes.len()
            );
        } else if !bytes.is_empty() {
            serde_json::from_slice::<serde_json::Value>(bytes)
                .unwrap_or_else(|e| panic!("{what}: stdout is not JSON: {e}"));
        }
    }
}

/// A pod's HTTP server on `ip` answering every request with `body` (JSON).
fn hostile_pod(ip: Ipv4Addr, body: String) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind pod");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            loop {
                let mut h = String::new();
                match reader.read_line(&mut h) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if h == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn verify_prints_a_hostile_pod_version_escaped_and_short() {
    let octet = 58;
    let ip = Ipv4Addr::new(127, 0, octet, 9);
    // A pod's body is capped at 64 KiB: two 30 KiB strings fit.
    let body = serde_json::json!({"version": hostile_padded("9.9.9", 30 * 1024),
                                  "configHash": hostile_padded("hash", 30 * 1024)})
    .to_string();
    let port = hostile_pod(ip, body);
    let (api_port, _) = serve_pod_list(octet, vec![pod("evil-0", ip.into(), true)]);
    let kc = kubeconfig(octet, api_port, "hostile");
    let port = port.to_string();
    for output in ["text", "json"] {
        let out = tollgate(
            &[
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
                "--output",
                output,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "a wrong version is a finding");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("evil-0"),
            "the pod is named"
        );
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains("pwned"),
            "the pod's version is shown: {shown}"
        );
        assert_terminal_safe(&format!("verify -o {output}"), output, &out);
    }
}

fn cid_args(output: &str) -> Vec<&str> {
    vec![
        "can-i-deploy",
        "--pacticipant",
        "Web",
        "--version",
        "1.0.0",
        "--environment",
        "production",
        "--attempts",
        "1",
        "--request-timeout",
        "2",
        "--output",
        output,
    ]
}

#[tokio::test]
async fn can_i_deploy_prints_a_hostile_broker_escaped_and_short() {
    let no = serde_json::json!({
        "summary": {"deployable": false, "reason": hostile("reason"), "success": 0, "failed": 1, "unknown": 0},
        "matrix": [{"consumer": {"name": hostile("consumer"), "version": {"number": hostile("1")}},
                    "provider": {"name": hostile("provider"), "version": {"number": hostile("2")}},
                    "verificationResult": {"success": false}}],
        "notices": [{"type": "error", "text": hostile("notice")}]
    })
    .to_string();
    let broker = FaultServer::start(vec![Reply::json(200, &no)]).await;
    let errors = FaultServer::start(vec![Reply::raw(
        500,
        "text/plain",
        hostile_padded("error", 4096).as_bytes(),
    )])
    .await;
    for (server, code, tag) in [(&broker, 1, "answer"), (&errors, 3, "error page")] {
        for output in ["text", "json"] {
            let url = server.base_url();
            let args = cid_args(output);
            let out = tokio::task::spawn_blocking(move || {
                tollgate(&args, &[("PACT_BROKER_BASE_URL", url.as_str())])
            })
            .await
            .expect("join");
            assert_eq!(out.status.code(), Some(code), "{tag}");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                all.contains("pwned"),
                "what the broker said is shown: {all}"
            );
            assert_terminal_safe(&format!("can-i-deploy ({tag}) -o {output}"), output, &out);
        }
    }
}

#[tokio::test]
async fn record_deployment_prints_a_hostile_broker_escaped_and_short() {
    // The index points the version at a link whose answer is a hostile error.
    let index = r#"{"_links":{"pb:pacticipant-version":{"href":"/pacticipants/{pacticipant}/versions/{version}"}}}"#;
    // The broker client keeps only the start of an error body (16 KiB): 4 KiB of text reaches
    // it.
    let hostile_error = hostile_padded("error", 4096);
    let server = FaultServer::start(vec![
        Reply::json(200, index),
        Reply::raw(500, "text/plain", hostile_error.as_bytes()),
    ])
    .await;
    let url = server.base_url();
    let out = tokio::task::spawn_blocking(move || {
        tollgate(
            &[
                "record-deployment",
                "--pacticipant",
                "Web",
                "--version",
                "1.0.0",
                "--environment",
                "production",
            ],
            &[("PACT_BROKER_BASE_URL", url.as_str())],
        )
    })
    .await
    .expect("join");
    assert_ne!(out.status.code(), Some(0), "nothing was recorded");
    let shown = String::from_utf8_lossy(&out.stderr);
    assert!(
        shown.contains("pwned"),
        "what the broker said is shown: {shown}"
    );
    assert_terminal_safe("record-deployment", "text", &out);
}

#[test]
fn analyze_prints_a_hostile_input_escaped_and_short() {
    let dir = std::env::temp_dir().join(format!("tollgate-terminal-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let window = |start: String| {
        serde_json::json!({"start": start,
                           "baseline": {"requests": 1000, "errors": 10},
                           "canary": {"requests": 1000, "errors": 10}})
    };
    let input = serde_json::json!({"windows": [window(hostile("w1")), window(hostile("w2"))]});
    let good = dir.join("hostile-start.json");
    std::fs::write(&good, input.to_string()).expect("write input");
    // A file that does not parse, whose error quotes hostile text back.
    let bad = dir.join("hostile-error.json");
    std::fs::write(
        &bad,
        serde_json::json!({"windows": [{"start": "w",
                                        "baseline": {"requests": hostile("requests")}}]})
        .to_string(),
    )
    .expect("write input");
    for (file, what) in [(&good, "a hostile label"), (&bad, "a hostile error")] {
        for output in ["text", "json"] {
            let out = tollgate(
                &[
                    "analyze",
                    "--input",
                    file.to_str().expect("utf-8"),
                    "--output",
                    output,
                    "--all",
                ],
                &[],
            );
            assert_terminal_safe(&format!("analyze ({what}) -o {output}"), output, &out);
        }
    }
}
