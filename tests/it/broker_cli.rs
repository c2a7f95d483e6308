//! `tollgate can-i-deploy` and `tollgate record-deployment` as a pipeline runs them: exit codes and
//! output, against a real local server. No external binary needed.

use std::process::Output;

use crate::support::broker::*;

const YES: &str = r#"{"summary":{"deployable":true,"reason":"All required verification results are published and successful","success":1,"failed":0,"unknown":0},"matrix":[{"consumer":{"name":"Web","version":{"number":"1.0.0"}},"provider":{"name":"Api","version":{"number":"2.0.0"}},"verificationResult":{"success":true}}],"notices":[{"type":"success","text":"Api 2.0.0 in production verified Web 1.0.0"}]}"#;
const NO: &str = r#"{"summary":{"deployable":false,"reason":"The verification for the pact between Web 1.0.0 and Api 2.0.0 failed","success":0,"failed":1,"unknown":0},"matrix":[]}"#;
const UNKNOWN: &str = r#"{"summary":{"deployable":null,"reason":"Missing verification","success":0,"failed":0,"unknown":1}}"#;

async fn tollgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    crate::support::cli::tollgate_async(args, env).await
}

fn cid(extra: &[&'static str]) -> Vec<&'static str> {
    let mut a = vec![
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
        "1",
    ];
    a.extend_from_slice(extra);
    a
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test]
async fn exit_codes() {
    let yes = FaultServer::start(vec![Reply::json(200, YES)]).await;
    let o = tollgate(&cid(&[]), &[("PACT_BROKER_BASE_URL", &yes.base_url())]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with("DEPLOYABLE: Web 1.0.0 -> production"),
        "{text}"
    );
    assert!(text.contains("Web (1.0.0) -> Api (2.0.0): yes"), "{text}");

    let no = FaultServer::start(vec![Reply::json(200, NO)]).await;
    let o = tollgate(
        &cid(&["--output", "json"]),
        &[("PACT_BROKER_BASE_URL", &no.base_url())],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["verdict"], "notDeployable");
    assert_eq!(v["exitCode"], 1);
    assert_eq!(v["deployable"], false);
    assert!(v["reason"]
        .as_str()
        .unwrap()
        .contains("Web 1.0.0 and Api 2.0.0 failed"));

    let unknown = FaultServer::start(vec![Reply::json(200, UNKNOWN)]).await;
    let o = tollgate(
        &cid(&[
            "--retry-while-unknown",
            "2",
            "--retry-interval",
            "0.05",
            "--output",
            "json",
        ]),
        &[("PACT_BROKER_BASE_URL", &unknown.base_url())],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["verdict"], "unknown");
    assert!(v["deployable"].is_null());
    assert_eq!(v["asks"], 3, "retry-while-unknown 2 means three asks");

    let addr = closed_port().await;
    let o = tollgate(
        &cid(&[]),
        &[("PACT_BROKER_BASE_URL", &format!("http://{addr}/"))],
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("cannot connect"), "{}", stdout(&o));
}

#[tokio::test]
async fn dry_run_reports_but_never_passes_a_no() {
    // Like `pact-broker can-i-deploy --dry-run`: the real verdict, marked, and exit 0.
    let no = FaultServer::start(vec![Reply::json(200, NO)]).await;
    let o = tollgate(
        &cid(&["--dry-run"]),
        &[("PACT_BROKER_BASE_URL", &no.base_url())],
    )
    .await;
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).starts_with("[dry-run] NOT DEPLOYABLE"),
        "{}",
        stdout(&o)
    );
    let o = tollgate(
        &cid(&["--dry-run", "--output", "json"]),
        &[("PACT_BROKER_BASE_URL", &no.base_url())],
    )
    .await;
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["verdict"], "notDeployable", "the real verdict: {v}");
    assert_eq!(v["deployable"], false);
    assert_eq!(
        (v["dryRun"].as_bool(), v["exitCode"].as_u64()),
        (Some(true), Some(0))
    );

    // An unreachable broker is reported as such, and exits 0 too; a configuration error does not.
    let addr = closed_port().await;
    let o = tollgate(
        &cid(&["--dry-run"]),
        &[("PACT_BROKER_BASE_URL", &format!("http://{addr}/"))],
    )
    .await;
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).starts_with("[dry-run] BROKER ERROR"),
        "{}",
        stdout(&o)
    );
    let o = tollgate(&cid(&["--dry-run"]), &[]).await;
    assert_eq!(o.status.code(), Some(3));
}

#[tokio::test]
async fn configuration_errors_exit_3_without_secrets() {
    let o = tollgate(&cid(&[]), &[]).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("PACT_BROKER_BASE_URL"));

    let o = tollgate(
        &cid(&["--output", "json"]),
        &[
            ("PACT_BROKER_BASE_URL", "http://127.0.0.1:9/"),
            ("PACT_BROKER_TOKEN", "tok-cli-secret-1"),
            ("PACT_BROKER_USERNAME", "user-cli-secret-2"),
            ("PACT_BROKER_PASSWORD", "pw-cli-secret-3"),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    let all = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(all.contains("both a bearer token and basic auth"), "{all}");
    for s in ["tok-cli-secret-1", "user-cli-secret-2", "pw-cli-secret-3"] {
        assert!(!all.contains(s), "{all}");
    }
}

#[tokio::test]
async fn record_deployment_cli() {
    let index = r#"{"_links":{"pb:pacticipant-version":{"href":"/pacticipants/{pacticipant}/versions/{version}"}}}"#;
    let version = r#"{"_links":{"pb:record-deployment":[{"name":"production","href":"/pacticipants/Web/versions/1.0.0/deployed-versions/environment/e1"}]}}"#;
    let server = FaultServer::start(vec![
        Reply::json(200, index),
        Reply::json(200, version),
        Reply::json(201, r#"{"uuid":"d1","applicationInstance":"eu"}"#),
    ])
    .await;
    let o = tollgate(
        &[
            "record-deployment",
            "--pacticipant",
            "Web",
            "--version",
            "1.0.0",
            "--environment",
            "production",
            "--application-instance",
            "eu",
        ],
        &[
            ("PACT_BROKER_BASE_URL", &server.base_url()),
            ("PACT_BROKER_TOKEN", "t0ken-value"),
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        stdout(&o).trim(),
        "recorded: Web 1.0.0 is deployed to production (instance eu)"
    );
    let reqs = server.requests();
    assert!(reqs[0].starts_with("GET / "), "{}", reqs[0]);
    assert!(
        reqs[1].starts_with("GET /pacticipants/Web/versions/1.0.0 "),
        "{}",
        reqs[1]
    );
    assert!(
        reqs[2]
            .starts_with("POST /pacticipants/Web/versions/1.0.0/deployed-versions/environment/e1 "),
        "{}",
        reqs[2]
    );
    assert!(
        reqs[2].ends_with(r#"{"applicationInstance":"eu","target":"eu"}"#),
        "{}",
        reqs[2]
    );
    assert!(reqs[2]
        .to_ascii_lowercase()
        .contains("authorization: bearer t0ken-value"));

    let addr = closed_port().await;
    let o = tollgate(
        &[
            "record-deployment",
            "--pacticipant",
            "Web",
            "--version",
            "1.0.0",
            "--environment",
            "production",
            "--attempts",
            "2",
            "--output",
            "json",
        ],
        &[("PACT_BROKER_BASE_URL", &format!("http://{addr}/"))],
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["recorded"], false);
    assert!(
        v["reason"].as_str().unwrap().contains("after 2 attempt(s)"),
        "{v}"
    );
}

/// A small stateful broker: the HAL walk of a record, the environment's currently deployed
/// versions, and a POST that is stored at once but answered only after `post_delay` (a broker
/// behind a slow proxy). Returns its base URL and the requests it received.
pub(crate) async fn slow_recording_broker(
    post_delay: std::time::Duration,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let deployed = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (log, deployed) = (log.clone(), deployed.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = text.lines().next().unwrap_or("").to_string();
                log.lock().unwrap().push(line.clone());
                let path = line.split(' ').nth(1).unwrap_or("");
                let body = if line.starts_with("POST ") {
                    let instance = text.split("\"applicationInstance\":\"").nth(1);
                    let instance = instance.and_then(|r| r.split('"').next()).unwrap_or("");
                    deployed.lock().unwrap().push(instance.to_string());
                    tokio::time::sleep(post_delay).await;
                    r#"{"uuid":"d1"}"#.to_string()
                } else if path == "/" {
                    r#"{"_links":{"pb:pacticipant-version":{"href":"/pacticipants/{pacticipant}/versions/{version}"},"pb:environments":{"href":"/environments"}}}"#.to_string()
                } else if path == "/pacticipants/Web/versions/1.0.0" {
                    r#"{"_links":{"pb:record-deployment":[{"name":"production","href":"/pacticipants/Web/versions/1.0.0/deployed-versions/environment/e1"}]}}"#.to_string()
                } else if path == "/environments" {
                    r#"{"_embedded":{"environments":[{"name":"production","_links":{"self":{"href":"/environments/e1"}}}]}}"#.to_string()
                } else if path == "/environments/e1" {
                    r#"{"_links":{"pb:currently-deployed-deployed-versions":{"href":"/environments/e1/deployed-versions/currently-deployed"}}}"#.to_string()
                } else if path.starts_with("/environments/e1/deployed-versions/currently-deployed")
                {
                    let items: Vec<String> = deployed
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|i| {
                            let instance = if i.is_empty() {
                                String::new()
                            } else {
                                format!(r#""applicationInstance":"{i}","#)
                            };
                            format!(
                                r#"{{{instance}"_embedded":{{"version":{{"number":"1.0.0"}}}}}}"#
                            )
                        })
                        .collect();
                    format!(
                        r#"{{"_embedded":{{"deployedVersions":[{}]}}}}"#,
                        items.join(",")
                    )
                } else {
                    String::new()
                };
                let status = if body.is_empty() {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/hal+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}/"), requests)
}

/// A POST the broker stored but answered too late: the retry reads what the environment holds
/// as deployed, finds the version there, and does not POST a second record.
#[tokio::test]
async fn record_deployment_after_an_accepted_but_timed_out_post_records_once() {
    let (url, requests) = slow_recording_broker(std::time::Duration::from_secs(3)).await;
    let o = tollgate(
        &[
            "record-deployment",
            "--pacticipant",
            "Web",
            "--version",
            "1.0.0",
            "--environment",
            "production",
            "--application-instance",
            "eu",
            "--attempts",
            "3",
            "--request-timeout",
            "1",
        ],
        &[("PACT_BROKER_BASE_URL", &url)],
    )
    .await;
    let reqs = requests.lock().unwrap().clone();
    let posts = reqs.iter().filter(|r| r.starts_with("POST ")).count();
    assert_eq!(posts, 1, "one record only: {reqs:#?}");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        reqs.iter().any(|r| r.starts_with(
            "GET /environments/e1/deployed-versions/currently-deployed?pacticipant=Web "
        )),
        "{reqs:#?}"
    );
}
