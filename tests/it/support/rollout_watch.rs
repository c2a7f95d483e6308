//! Watching a Rollout until a condition on its status holds (bounded; on timeout the test fails
//! with the last status and the operator's log), capturing the real objects on the way when
//! `TOLLGATE_CAPTURE_DIR` is set (the source of `tests/fixtures/rollouts/`).

use std::time::Duration;

use kube::api::Api;
use tollgate::crd::Rollout;

use super::operator::Operator;

/// With `TOLLGATE_CAPTURE_DIR` set, keep the first object seen in each phase of each test as
/// `<test>--<Phase>.json` (the namespace without its unique suffix names the test).
pub fn capture(rollout: &Rollout) {
    let Some(dir) = std::env::var_os("TOLLGATE_CAPTURE_DIR") else {
        return;
    };
    let (Some(ns), Some(status)) = (rollout.metadata.namespace.as_deref(), &rollout.status) else {
        return;
    };
    // `<test>-<pid>-<n>`: drop the numeric suffixes
    let mut test = ns;
    while let Some((head, tail)) = test.rsplit_once('-') {
        if !tail.chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        test = head;
    }
    let path = std::path::Path::new(&dir).join(format!("{test}--{:?}.json", status.phase));
    if path.exists() {
        return;
    }
    let mut object = rollout.clone();
    object.metadata.managed_fields = None;
    if let Ok(text) = serde_json::to_string_pretty(&object) {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(path, text + "\n");
    }
}

/// Poll the rollout until `done` holds; on timeout fail with its status and the operator's log.
pub async fn wait_for(
    api: &Api<Rollout>,
    name: &str,
    timeout: Duration,
    what: &str,
    operator: &Operator,
    done: impl Fn(&tollgate::crd::RolloutStatus) -> bool,
) -> Rollout {
    let start = std::time::Instant::now();
    let mut last = None;
    loop {
        if let Ok(r) = api.get(name).await {
            capture(&r);
            if r.status.as_ref().is_some_and(&done) {
                return r;
            }
            last = Some(r);
        }
        if start.elapsed() > timeout {
            let status = last.and_then(|r| r.status);
            panic!(
                "timed out after {timeout:?} waiting for {what}\nstatus: {status:#?}\noperator log:\n{}",
                operator.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
