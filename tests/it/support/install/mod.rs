//! Support of tests/install.rs, the tests that install tollgate as its users do:
//! * [`image`]: the operator image, built once per test run from a clean clone of this repository
//!   with deploy/image/build.sh inside a network namespace that has no network;
//! * [`registry`]: a local image registry (deploy/image/registry.sh), the image pushed to it;
//! * [`kubelet`]: what a kubelet would do with one of the chart's pods, done with podman;
//! * [`cluster`]: a private control plane, for the tests that change cluster-wide objects (the
//!   CRD) and so must not share the run's cluster with tests running at the same time.
#![allow(dead_code)] // each test uses a different part of this module

pub mod cluster;
pub mod image;
pub mod kubelet;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository this test was built from.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shared peer cache of tests/cluster/build.sh (also where image builds keep their clone).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("TOLLGATE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tollgate"),
    }
}

/// A `podman` command with this machine's settings (tests/cluster/containers.conf: runc, ulimits
/// the container may have), without touching /etc/containers.
pub fn podman() -> Command {
    let mut command = Command::new("podman");
    command.env(
        "CONTAINERS_CONF",
        repo().join("tests/cluster/containers.conf"),
    );
    command
}

/// Runs `command`; returns its output, or panics with it (naming `what`) when it failed.
pub fn run(what: &str, command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {command:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `run`, returning trimmed stdout.
pub fn stdout(what: &str, command: &mut Command) -> String {
    String::from_utf8_lossy(&run(what, command).stdout)
        .trim()
        .to_string()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
