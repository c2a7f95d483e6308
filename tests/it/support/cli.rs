//! The `tollgate` binary as a pipeline or an SRE runs it: no broker credentials or kubeconfig
//! inherited from the environment the tests run in, only what a test passes.

use std::process::{Command, Output};

/// Variables a test's own environment may hold that would change what the CLI does.
const AMBIENT: [&str; 5] = [
    "KUBECONFIG",
    "PACT_BROKER_BASE_URL",
    "PACT_BROKER_TOKEN",
    "PACT_BROKER_USERNAME",
    "PACT_BROKER_PASSWORD",
];

/// Run `tollgate args…` with exactly `env` on top of a cleaned environment and wait for it.
pub fn tollgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.args(args);
    for k in AMBIENT {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run tollgate")
}

/// [`tollgate`] off the async runtime, so servers the test runs on it keep answering.
pub async fn tollgate_async(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        tollgate(&args, &env)
    })
    .await
    .expect("join")
}
