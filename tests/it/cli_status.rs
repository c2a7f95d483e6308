//! `tollgate status --watch / --wait` and `tollgate list` against a real kube-apiserver. No
//! operator runs: the test writes the status subresource itself, as the operator would, and
//! watches what the CLI prints and how it exits.
//!
//! A watch shows every status the API server stores; polling shows what is there at each poll.
//! So the first test writes two statuses back to back and expects both printed, which a GET
//! every few seconds would not do.
//!
//! Needs the cluster: `bash tests/cluster/run-peer-tests.sh --test cli_status -- --include-ignored`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use crate::support::cluster::{TestEnv, TestNamespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::crd::Rollout;

/// Longer than the 24 characters the list's old fixed column held.
const NAME: &str = "checkout-with-a-name-longer-than-a-column";

async fn create_rollout(ns: &TestNamespace) -> (Api<Rollout>, i64) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/rollout-replica-ratio.yaml"
    ))
    .expect("example");
    let mut rollout: Rollout = serde_saphyr::from_str(&text).expect("example parses");
    rollout.metadata.name = Some(NAME.into());
    rollout.metadata.namespace = Some(ns.name.clone());
    let api: Api<Rollout> = ns.api();
    let created = api
        .create(&PostParams::default(), &rollout)
        .await
        .expect("create rollout");
    (api, created.metadata.generation.expect("generation"))
}

/// Write the status subresource as the operator would.
async fn set_status(api: &Api<Rollout>, status: serde_json::Value) {
    api.patch_status(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("patch status");
}

/// A running `tollgate` whose stdout lines arrive on a channel as they are printed.
struct Cli {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Cli {
    fn start(env: &TestEnv, args: &[&str]) -> Cli {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .arg("--kubeconfig")
            .arg(env.kubeconfig())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tollgate");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Cli {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Read lines until one contains `needle` (panics after `within`, showing what came).
    fn expect_line(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {within:?}; printed so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Wait for the exit (at most `within`): the code, everything printed, and stderr.
    fn exit(mut self, within: Duration) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "tollgate still running after {within:?}: {}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.seen.extend(self.lines.iter());
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (status.code(), self.seen.join("\n"), stderr)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn wait_prints_every_status_the_server_stores_and_exits_0_when_promoted() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("cli-status-wait").await;
    let (api, generation) = create_rollout(&ns).await;

    let mut cli = Cli::start(
        &env,
        &["status", NAME, "-n", &ns.name, "--wait", "--timeout", "2m"],
    );
    cli.expect_line("Phase:     Pending", Duration::from_secs(30));
    set_status(
        &api,
        json!({"phase": "Analyzing", "observedGeneration": generation, "currentStepIndex": 1,
               "currentWeight": 10, "stableVersion": "2.3.0", "canaryVersion": "2.4.0"}),
    )
    .await;
    // Printed by the watch (the first tree came from the GET before it), so the watch is live.
    cli.expect_line("Phase:     Analyzing", Duration::from_secs(30));

    // Two writes back to back: both must be printed, in order.
    set_status(
        &api,
        json!({"phase": "Promoting", "currentWeight": 100, "reason": "Promoting"}),
    )
    .await;
    set_status(
        &api,
        json!({"phase": "Succeeded", "currentStepIndex": null, "currentWeight": 0,
               "stableVersion": "2.4.0", "canaryVersion": null, "reason": "Promoted"}),
    )
    .await;
    let (code, out, stderr) = cli.exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{out}\n{stderr}");
    let promoting = out.find("Phase:     Promoting").expect(&out);
    let succeeded = out.find("Phase:     Succeeded").expect(&out);
    assert!(promoting < succeeded, "{out}");
    assert!(out.contains("Reason:    Promoted"), "{out}");

    // `list` shows the whole name, with the phase in its own column.
    let listed = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["list", "-n", &ns.name, "--kubeconfig"])
        .arg(env.kubeconfig())
        .output()
        .expect("list");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.status.code(), Some(0), "{text}");
    let row = text.lines().find(|l| l.contains(NAME)).expect(&text);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..3], [ns.name.as_str(), NAME, "Succeeded"], "{text}");
    ns.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn wait_exits_1_rolled_back_2_timed_out_and_watch_3_when_deleted() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("cli-status-exit").await;
    let (api, generation) = create_rollout(&ns).await;

    // 2: nothing happens within the timeout.
    let started = Instant::now();
    let cli = Cli::start(
        &env,
        &["status", NAME, "-n", &ns.name, "--wait", "--timeout", "2s"],
    );
    let (code, out, stderr) = cli.exit(Duration::from_secs(30));
    assert_eq!(code, Some(2), "{out}\n{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(stderr.contains("timed out after 2s"), "{stderr}");

    // 1: rolled back while waiting.
    let mut cli = Cli::start(
        &env,
        &["status", NAME, "-n", &ns.name, "--wait", "--timeout", "2m"],
    );
    cli.expect_line("Phase:     Pending", Duration::from_secs(30));
    set_status(
        &api,
        json!({"phase": "RolledBack", "observedGeneration": generation,
               "stableVersion": "2.3.0", "rejectedVersion": "2.4.0", "reason": "AnalysisFailed"}),
    )
    .await;
    let (code, out, stderr) = cli.exit(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{out}\n{stderr}");
    assert!(out.contains("Phase:     RolledBack"), "{out}");

    // 3: --watch (no --wait) follows until the rollout is deleted; JSON documents as it goes.
    let mut cli = Cli::start(
        &env,
        &["status", NAME, "-n", &ns.name, "--watch", "-o", "json"],
    );
    cli.expect_line("\"phase\": \"RolledBack\"", Duration::from_secs(30));
    set_status(&api, json!({"phase": "Pending", "reason": "Retry"})).await;
    cli.expect_line("\"reason\": \"Retry\"", Duration::from_secs(30));
    api.delete(NAME, &DeleteParams::default())
        .await
        .expect("delete");
    let (code, out, stderr) = cli.exit(Duration::from_secs(30));
    assert_eq!(code, Some(3), "{out}\n{stderr}");
    assert!(stderr.contains("was deleted"), "{stderr}");
    ns.delete().await;
}
