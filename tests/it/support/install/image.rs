//! The operator image, built once per test binary: a clean clone of this repository at its HEAD,
//! then deploy/image/build.sh --offline inside `unshare --net` (a network namespace with no
//! interface but a downed loopback), so the build provably needs nothing from any network: no
//! registry to pull a base image from, no crate download.
//!
//! The clone is kept in the peer cache (`$TOLLGATE_IMAGE_SRC`, default
//! `~/.cache/tollgate/image-src`) and brought to HEAD with checkout + `git clean -fdx`, so a
//! warm run recompiles only what the commit changed; the release build's target dir is
//! `$TOLLGATE_IMAGE_TARGET_DIR`, else `$CARGO_TARGET_DIR` (build.sh's own default).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use super::{cache_dir, podman, repo, run, stdout};

/// What the build produced.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Local reference, `localhost/tollgate:<version>-<12 hex digits>`.
    pub reference: String,
    /// The commit it was built from (the clone's HEAD).
    pub commit: String,
    /// `<crate version>+<12 hex digits>`, what `tollgate --version` and the label say.
    pub version: String,
    /// Wall time of the build (clone update, cargo, image), seconds.
    pub build_seconds: f64,
}

static IMAGE: OnceLock<BuiltImage> = OnceLock::new();

/// The image of this repository's HEAD; the first caller builds it, the others wait for it.
pub fn built() -> &'static BuiltImage {
    IMAGE.get_or_init(build_from_clean_clone)
}

fn git(dir: &std::path::Path) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(dir);
    command
}

/// A clean checkout of `commit` at `src`: cloned the first time, fetched and checked out (with
/// every untracked or ignored file removed) after that.
fn clean_clone(src: &std::path::Path, commit: &str) {
    if !src.join(".git").exists() {
        let _ = std::fs::remove_dir_all(src);
        std::fs::create_dir_all(src.parent().expect("parent")).expect("cache dir");
        run(
            "git clone",
            Command::new("git")
                .args(["clone", "--quiet", "--no-checkout"])
                .arg(repo())
                .arg(src),
        );
    }
    run(
        "git fetch",
        git(src)
            .args(["fetch", "--quiet", "--no-tags"])
            .arg(repo())
            .arg("HEAD"),
    );
    run(
        "git checkout",
        git(src).args(["checkout", "--quiet", "--force", "--detach", commit]),
    );
    run("git clean", git(src).args(["clean", "-qfdx"]));
    let status = stdout("git status", git(src).args(["status", "--porcelain"]));
    assert!(status.is_empty(), "the clone is not clean:\n{status}");
}

fn build_from_clean_clone() -> BuiltImage {
    let started = Instant::now();
    let commit = stdout("git rev-parse", git(repo()).args(["rev-parse", "HEAD"]));
    let src = std::env::var_os("TOLLGATE_IMAGE_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("image-src"));
    clean_clone(&src, &commit);
    eprintln!(
        "building the image of {commit} in {} with no network",
        src.display()
    );
    let output = Command::new("unshare")
        .args(["--net", "--", "bash", "deploy/image/build.sh", "--offline"])
        .current_dir(&src)
        .env_remove("TOLLGATE_GIT_COMMIT")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("run deploy/image/build.sh");
    assert!(
        output.status.success(),
        "deploy/image/build.sh --offline failed in a clean clone ({})",
        output.status
    );
    let reference = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let short = &commit[..12];
    assert!(
        reference.ends_with(&format!("-{short}")),
        "the tag names the commit: {reference}"
    );
    let built = BuiltImage {
        reference,
        version: format!("{}+{short}", env!("CARGO_PKG_VERSION")),
        commit,
        build_seconds: started.elapsed().as_secs_f64(),
    };
    println!(
        "image {} built in {:.1}s from a clean clone, offline",
        built.reference, built.build_seconds
    );
    built
}

/// `podman image inspect` of the image, as JSON.
pub fn inspect(reference: &str) -> serde_json::Value {
    let text = stdout(
        "podman image inspect",
        podman().args(["image", "inspect", reference]),
    );
    let list: serde_json::Value = serde_json::from_str(&text).expect("inspect JSON");
    list[0].clone()
}

/// Every file, link and folder of the image's root filesystem, relative (`etc/passwd`).
pub fn files(reference: &str) -> Vec<String> {
    let mount = stdout(
        "podman image mount",
        podman().args(["image", "mount", reference]),
    );
    let root = PathBuf::from(&mount);
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the image's filesystem") {
            let path = entry.expect("entry").path();
            let relative = path
                .strip_prefix(&root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                stack.push(path);
                found.push(format!("{relative}/"));
            } else {
                found.push(relative);
            }
        }
    }
    let _ = podman().args(["image", "unmount", reference]).output();
    found.sort();
    found
}
