//! Records the git commit the binary is built from, so `tollgate --version` names it: a version
//! must identify exactly one build of the code (the Pact Broker's rule for versions).
//!
//! `TOLLGATE_GIT_COMMIT` overrides what git says, for a source tarball without `.git` and for the
//! image build, which labels the image with the same value it passes here. Without either the
//! commit is `unknown`, and the version says so rather than guessing.
use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Re-run when HEAD moves: HEAD itself (a checkout) and the files holding the ref it names.
/// Only existing files are watched: cargo treats a missing one as changed on every build.
fn watch_head() {
    let mut files = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(git(&["rev-parse", "--git-path", &reference]));
    }
    files.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for file in files.into_iter().flatten() {
        if Path::new(&file).exists() {
            println!("cargo:rerun-if-changed={file}");
        }
    }
}

/// A commit as a version may carry it: hex digits, optionally `-dirty` (a build of a tree with
/// uncommitted changes). Anything else is refused, so the value can go into labels and headers.
fn valid(commit: &str) -> bool {
    let sha = commit.strip_suffix("-dirty").unwrap_or(commit);
    (7..=64).contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TOLLGATE_GIT_COMMIT");
    let commit = match std::env::var("TOLLGATE_GIT_COMMIT") {
        Ok(value) if !value.trim().is_empty() => {
            let value = value.trim().to_ascii_lowercase();
            if !valid(&value) {
                panic!(
                    "TOLLGATE_GIT_COMMIT={value:?} is not a git commit (7 to 64 hex digits, \
                     optionally followed by -dirty)"
                );
            }
            value
        }
        _ => {
            watch_head();
            git(&["rev-parse", "HEAD"])
                .filter(|c| valid(c))
                .unwrap_or_else(|| "unknown".into())
        }
    };
    // Semver build metadata: `0.1.0+9014dbb6b9c1`, `0.1.0+9014dbb6b9c1.dirty`, `0.1.0+unknown`.
    let (sha, dirty) = match commit.strip_suffix("-dirty") {
        Some(sha) => (sha, ".dirty"),
        None => (commit.as_str(), ""),
    };
    let short: String = sha.chars().take(12).collect();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=TOLLGATE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=TOLLGATE_VERSION={version}+{short}{dirty}");
}
