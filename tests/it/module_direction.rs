//! Dependencies inside the crate point one way:
//!
//! ```text
//! util <- crd <- {gates, analysis, traffic} <- rollout (pure) <- runtime (I/O) <- cli
//! ```
//!
//! A module may use the modules of lower layers and its own; never a higher layer, and never a
//! peer of its own layer (gates, analysis and traffic do not reach into each other). `rollout`
//! decides and never acts: no kube client, no HTTP, no tokio, no sockets, no clock. `lib.rs` and
//! `main.rs` only wire modules together and are exempt.
//!
//! The check reads `src/**/*.rs` (see `support::source_imports`), so it sees `use` trees, paths
//! in expressions (`crate::runtime::x::y()`) and `super::super::` escapes alike.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::source_imports::{module_of, paths_in, rust_files, FoundPath, PathKind};

/// The layer of each top-level module.
const LAYERS: &[(&str, u8)] = &[
    ("util", 0),
    ("crd", 1),
    ("gates", 2),
    ("analysis", 2),
    ("traffic", 2),
    ("rollout", 3),
    ("runtime", 4),
    ("cli", 5),
];

/// Imports between peers of one layer that are allowed, as (from, to, why). None is needed today.
const PEER_IMPORTS: &[(&str, &str, &str)] = &[];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// What `rollout` must not touch: the I/O layer's tools. A path matches when it starts with the
/// first segments, or (for `now`) when the two segments follow each other anywhere.
fn io_in_rollout(path: &FoundPath) -> Option<&'static str> {
    let s: Vec<&str> = path.segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["kube", rest @ ..] if rest.iter().any(|x| *x == "Client" || *x == "Api") => {
            return Some("a kube client")
        }
        ["reqwest", ..] => return Some("HTTP (reqwest)"),
        ["tokio", ..] => return Some("tokio"),
        ["std", "net", ..] => return Some("sockets (std::net)"),
        _ => {}
    }
    s.windows(2).find_map(|w| match w {
        ["Timestamp" | "SystemTime" | "Instant", "now"] => Some("the clock"),
        _ => None,
    })
}

/// Every import against the direction in `files` (paths relative to `src/`, and their text), as
/// `file:line: what`, in file and line order.
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut out = Found::default();
    for (rel, text) in files {
        let module = module_of(rel);
        let Some(own) = module.first().cloned() else {
            continue; // lib.rs, main.rs
        };
        let file = Path::new("src").join(rel);
        let file = file.display();
        let Some(own_layer) = layer(&own) else {
            out.insert(format!(
                "{file}:1: top-level module `{own}` has no layer: add it to LAYERS"
            ));
            continue;
        };
        for path in paths_in(text, &module) {
            let line = path.line;
            if own == "rollout" {
                if let Some(what) = io_in_rollout(&path) {
                    out.insert(format!(
                        "{file}:{line}: rollout is pure but uses {what} (`{}`)",
                        path.written()
                    ));
                }
            }
            let target = match path.resolved() {
                None => continue,
                Some(Err(e)) => {
                    out.insert(format!("{file}:{line}: {e}"));
                    continue;
                }
                Some(Ok(target)) => target,
            };
            let Some(to) = target.first().filter(|t| *t != "*") else {
                continue;
            };
            if *to == own {
                continue;
            }
            let how = match path.kind {
                PathKind::Use => "imports",
                PathKind::Expr => "names",
            };
            match layer(to) {
                None => {
                    out.insert(format!(
                        "{file}:{line}: {own} {how} `{}`, which is in no layer",
                        path.written()
                    ));
                }
                Some(to_layer) if to_layer > own_layer => {
                    out.insert(format!(
                        "{file}:{line}: {own} {how} {to}, a higher layer (`{}`)",
                        path.written()
                    ));
                }
                Some(to_layer)
                    if to_layer == own_layer
                        && !PEER_IMPORTS.iter().any(|(f, t, _)| *f == own && t == to) =>
                {
                    out.insert(format!(
                        "{file}:{line}: {own} {how} {to}, a peer of the same layer (`{}`)",
                        path.written()
                    ));
                }
                Some(_) => {}
            }
        }
    }
    out.0.into_iter().map(|(_, _, text)| text).collect()
}

/// Findings keyed by (file, line), each once.
#[derive(Default)]
struct Found(BTreeSet<(String, usize, String)>);

impl Found {
    /// `text` is `file:line: what`.
    fn insert(&mut self, text: String) {
        let mut parts = text.splitn(3, ':');
        let file = parts.next().unwrap_or_default().to_string();
        let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
        self.0.insert((file, line, text));
    }
}

#[test]
fn src_imports_follow_the_module_direction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    assert!(
        files.len() > 20,
        "read only {} files under {}",
        files.len(),
        src.display()
    );
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "{} import(s) against util <- crd <- {{gates, analysis, traffic}} <- rollout <- runtime <- cli:\n{}",
        found.len(),
        found.join("\n")
    );
}

// ---- the checker on synthetic sources ------------------------------------------------------

fn check(files: &[(&str, &str)]) -> Vec<String> {
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect();
    violations(&files)
}

#[test]
fn rollout_importing_runtime_fails() {
    let found = check(&[(
        "rollout/reconcile.rs",
        "use crate::runtime::metrics::Metrics;\nfn f() {}",
    )]);
    assert_eq!(
        found,
        ["src/rollout/reconcile.rs:1: rollout imports runtime, a higher layer (`crate::runtime::metrics::Metrics`)"]
    );
}

#[test]
fn a_higher_layer_named_in_an_expression_or_reached_through_super_fails() {
    let found = check(&[
        (
            "rollout/decide.rs",
            "fn f() {\n    crate::runtime::notify::send(1);\n}\n",
        ),
        (
            "rollout/decide/steps.rs",
            "use super::super::super::runtime::notify;\n",
        ),
        (
            "crd/mod.rs",
            "#[cfg(test)]\nmod tests {\n    use super::super::gates::broker::Thing;\n}\n",
        ),
    ]);
    assert_eq!(
        found,
        [
            "src/crd/mod.rs:3: crd imports gates, a higher layer (`super::super::gates::broker::Thing`)",
            "src/rollout/decide.rs:2: rollout names runtime, a higher layer (`crate::runtime::notify::send`)",
            "src/rollout/decide/steps.rs:1: rollout imports runtime, a higher layer (`super::super::super::runtime::notify`)",
        ]
    );
}

#[test]
fn lower_layers_and_the_own_module_pass() {
    let found = check(&[
        ("cli/mod.rs", "use crate::{runtime, rollout::decide, gates::broker, util};"),
        ("runtime/reconcile.rs", "use crate::rollout::decide::{decide, Plan};\nuse super::metrics::Metrics;"),
        ("rollout/decide.rs", "use crate::crd::Rollout;\nuse crate::analysis::judge::Verdict;\nuse super::children;\nuse self::steps::*;"),
        ("gates/broker/gate.rs", "use super::super::fleet::Track;\nuse crate::util::retry::Backoff;"),
        ("crd/spec.rs", "use crate::util::http::client_builder;"),
        ("lib.rs", "pub mod cli;\nuse crate::cli::run;"),
        ("main.rs", "fn main() { tollgate::cli::run(); crate::x::y(); }"),
    ]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn peers_of_the_middle_layer_do_not_reach_into_each_other() {
    let found = check(&[
        ("gates/smoke/mod.rs", "use crate::analysis::stats::counts;"),
        (
            "traffic/plan.rs",
            "fn f() { let _ = crate::gates::fleet::Track::Canary; }",
        ),
    ]);
    assert_eq!(
        found,
        [
            "src/gates/smoke/mod.rs:1: gates imports analysis, a peer of the same layer (`crate::analysis::stats::counts`)",
            "src/traffic/plan.rs:1: traffic names gates, a peer of the same layer (`crate::gates::fleet::Track::Canary`)",
        ]
    );
}

#[test]
fn util_at_the_bottom_imports_nothing_above_it() {
    let found = check(&[("util/text.rs", "use crate::crd::Reason;")]);
    assert_eq!(
        found,
        ["src/util/text.rs:1: util imports crd, a higher layer (`crate::crd::Reason`)"]
    );
}

#[test]
fn rollout_may_not_do_io_or_read_the_clock() {
    let found = check(&[(
        "rollout/observe.rs",
        r#"use kube::{api::Api, Client};
use std::{net::TcpStream, time::Instant};
async fn f() {
    tokio::time::sleep(d).await;
    let now = jiff::Timestamp::now();
    let t = Instant::now();
    let r = reqwest::get("http://x");
}
"#,
    )]);
    assert_eq!(
        found,
        [
            "src/rollout/observe.rs:1: rollout is pure but uses a kube client (`kube::Client`)",
            "src/rollout/observe.rs:1: rollout is pure but uses a kube client (`kube::api::Api`)",
            "src/rollout/observe.rs:2: rollout is pure but uses sockets (std::net) (`std::net::TcpStream`)",
            "src/rollout/observe.rs:4: rollout is pure but uses tokio (`tokio::time::sleep`)",
            "src/rollout/observe.rs:5: rollout is pure but uses the clock (`jiff::Timestamp::now`)",
            "src/rollout/observe.rs:6: rollout is pure but uses the clock (`Instant::now`)",
            "src/rollout/observe.rs:7: rollout is pure but uses HTTP (reqwest) (`reqwest::get`)",
        ]
    );
}

#[test]
fn pure_rollout_code_and_words_in_comments_or_strings_pass() {
    let found = check(&[(
        "rollout/decide.rs",
        r#"//! Unlike runtime (crate::runtime::reconcile), this never calls Instant::now.
use jiff::Timestamp;
use kube::api::ObjectMeta;
/// See [`crate::runtime::notify`].
pub fn decide(now: Timestamp) -> &'static str { "crate::runtime::x tokio::spawn" }
"#,
    )]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn a_module_outside_every_layer_is_reported() {
    let found = check(&[("dashboard/mod.rs", "pub fn page() {}")]);
    assert_eq!(
        found,
        ["src/dashboard/mod.rs:1: top-level module `dashboard` has no layer: add it to LAYERS"]
    );
}
