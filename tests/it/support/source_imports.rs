//! Reads Rust sources for the module-direction check: a tokenizer that knows just enough Rust to
//! skip comments, strings and char literals, the module each file and inline `mod x { }` block
//! stands for, every `use` tree expanded to full paths, and every path in expressions; paths that
//! start with `crate`, `super` or `self` are resolved to the module they name.
//!
//! It is not a Rust parser: it sees tokens, not types. What it reports is exactly what a reviewer
//! would grep for (`crate::runtime::...`, `super::super::...`, `kube::Client`, `Instant::now`),
//! without being fooled by comments, doc links or string literals.

use std::path::{Path, PathBuf};

/// One token, with the line it starts on.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Semi,
    Comma,
    Star,
    Other,
}

fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let ident_start = |ch: char| ch == '_' || ch.is_alphabetic();
    let ident_char = |ch: char| ch == '_' || ch.is_alphanumeric();
    // Skips a string body from just after the opening quote; `hashes` > 0 for raw strings.
    let skip_string = |i: &mut usize, line: &mut usize, raw: bool, hashes: usize| {
        while *i < c.len() {
            let ch = c[*i];
            if ch == '\n' {
                *line += 1;
            }
            if !raw && ch == '\\' {
                if c.get(*i + 1) == Some(&'\n') {
                    *line += 1;
                }
                *i += 2;
                continue;
            }
            if ch == '"' && (0..hashes).all(|k| c.get(*i + 1 + k) == Some(&'#')) {
                *i += 1 + hashes;
                return;
            }
            *i += 1;
        }
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i += 1;
            skip_string(&mut i, &mut line, false, 0);
            out.push((Tok::Other, line));
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime / label ('a).
            if c.get(i + 1) == Some(&'\\') {
                // Quote, backslash and the escaped char, then up to the closing quote.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
            }
            out.push((Tok::Other, line));
        } else if ident_start(ch) {
            let start = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let next = c.get(i).copied();
            let prefix = matches!(word.as_str(), "r" | "b" | "br" | "c" | "cr");
            if prefix && next == Some('"') {
                i += 1;
                skip_string(&mut i, &mut line, word.contains('r'), 0);
                out.push((Tok::Other, line));
            } else if prefix && word.contains('r') && next == Some('#') {
                let mut hashes = 0;
                while c.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if c.get(i + hashes) == Some(&'"') {
                    i += hashes + 1;
                    skip_string(&mut i, &mut line, true, hashes);
                    out.push((Tok::Other, line));
                } else if word == "r" {
                    // A raw identifier: r#type.
                    i += 1;
                    let start = i;
                    while i < c.len() && ident_char(c[i]) {
                        i += 1;
                    }
                    out.push((Tok::Ident(c[start..i].iter().collect()), line));
                } else {
                    out.push((Tok::Ident(word), line));
                }
            } else if word == "b" && next == Some('\'') {
                i += 1;
                if c.get(i) == Some(&'\\') {
                    i += 2;
                }
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push((Tok::Other, line));
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (ident_char(c[i]) || c[i] == '.') {
                // `1..2` and `x.0.1` stay separate enough: a range's dots are not path tokens.
                if c[i] == '.' && c.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
            out.push((Tok::Other, line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ';' => Tok::Semi,
                    ',' => Tok::Comma,
                    '*' => Tok::Star,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// How a path was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// In a `use` item (the tree expanded to one path per leaf).
    Use,
    /// Anywhere else: expressions, types, attributes, macro bodies.
    Expr,
}

/// One path found in a file.
#[derive(Clone, Debug)]
pub struct FoundPath {
    pub line: usize,
    pub kind: PathKind,
    /// The segments as written (`super`, `crate`, `self` included; `*` for a glob).
    pub segments: Vec<String>,
    /// The module (from the crate root) the path is written in, inline `mod` blocks included.
    pub module: Vec<String>,
}

impl FoundPath {
    /// The path as written, `a::b::c`.
    pub fn written(&self) -> String {
        self.segments.join("::")
    }

    /// The absolute path from the crate root when the path starts with `crate`, `super` or
    /// `self`; `None` for other paths (external crates, names in scope). `Err` when a `super`
    /// chain climbs above the crate root.
    pub fn resolved(&self) -> Option<Result<Vec<String>, String>> {
        let first = self.segments.first()?.as_str();
        match first {
            "crate" => Some(Ok(self.segments[1..].to_vec())),
            "self" | "super" => {
                let mut module = self.module.clone();
                let mut rest = &self.segments[..];
                if rest.first().map(String::as_str) == Some("self") {
                    rest = &rest[1..];
                }
                while rest.first().map(String::as_str) == Some("super") {
                    if module.pop().is_none() {
                        return Some(Err(format!(
                            "`{}` climbs above the crate root",
                            self.written()
                        )));
                    }
                    rest = &rest[1..];
                }
                module.extend(rest.iter().cloned());
                Some(Ok(module))
            }
            _ => None,
        }
    }
}

/// The module a source file stands for, from its path relative to `src/`:
/// `lib.rs`/`main.rs` -> [], `a/mod.rs` -> [a], `a/b.rs` -> [a, b].
pub fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_string();
        if !(stem == "mod" || (parts.is_empty() && (stem == "lib" || stem == "main"))) {
            parts.push(stem);
        }
    }
    parts
}

/// Every path in `src`, a file that stands for `module`.
pub fn paths_in(src: &str, module: &[String]) -> Vec<FoundPath> {
    let toks = tokenize(src);
    let mut out = Vec::new();
    // Inline modules: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let current = |inline: &[(String, usize)]| -> Vec<String> {
        let mut m = module.to_vec();
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => {
                depth += 1;
                i += 1;
            }
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    depth += 1;
                    inline.push((name.clone(), depth));
                    i += 3;
                } else {
                    i += 1;
                }
            }
            Tok::Ident(w) if w == "use" => {
                let line = toks[i].1;
                let mut leaves = Vec::new();
                let mut j = i + 1;
                if toks.get(j).map(|t| &t.0) == Some(&Tok::PathSep) {
                    j += 1;
                }
                parse_use_tree(&toks, &mut j, Vec::new(), &mut leaves);
                let here = current(&inline);
                for segments in leaves {
                    out.push(FoundPath {
                        line,
                        kind: PathKind::Use,
                        segments,
                        module: here.clone(),
                    });
                }
                // Resume after the tree; the `;` (or whatever stopped it) is looked at next.
                i = j.max(i + 1);
            }
            Tok::Ident(first) => {
                let after_sep = i > 0 && toks[i - 1].0 == Tok::PathSep;
                let is_path = toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep);
                if after_sep || !is_path {
                    i += 1;
                    continue;
                }
                let line = toks[i].1;
                let mut segments = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j).map(|t| &t.0) == Some(&Tok::PathSep) {
                    match toks.get(j + 1) {
                        Some((Tok::Ident(w), _)) => {
                            segments.push(w.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                out.push(FoundPath {
                    line,
                    kind: PathKind::Expr,
                    segments,
                    module: current(&inline),
                });
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

/// Parses one use tree at `toks[*j]` with `prefix`, pushing each leaf's full path.
fn parse_use_tree(
    toks: &[(Tok, usize)],
    j: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let mut path = prefix;
    loop {
        match toks.get(*j).map(|t| &t.0) {
            Some(Tok::Ident(w)) => {
                path.push(w.clone());
                *j += 1;
                match toks.get(*j).map(|t| &t.0) {
                    Some(Tok::PathSep) => {
                        *j += 1;
                        continue;
                    }
                    Some(Tok::Ident(a)) if a == "as" => *j += 2,
                    _ => {}
                }
                if path.last().map(String::as_str) == Some("self") && path.len() > 1 {
                    path.pop();
                }
                out.push(path);
                return;
            }
            Some(Tok::Star) => {
                *j += 1;
                path.push("*".into());
                out.push(path);
                return;
            }
            Some(Tok::Open) => {
                *j += 1;
                loop {
                    match toks.get(*j).map(|t| &t.0) {
                        Some(Tok::Close) => {
                            *j += 1;
                            return;
                        }
                        Some(Tok::Comma) => *j += 1,
                        None | Some(Tok::Semi) => return,
                        _ => {
                            let before = *j;
                            parse_use_tree(toks, j, path.clone(), out);
                            if *j == before {
                                *j += 1;
                            }
                        }
                    }
                }
            }
            _ => return,
        }
    }
}

/// Every `.rs` file under `dir`, sorted, as (path relative to `dir`, text).
pub fn rust_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                out.push((rel, text));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(src: &str, module: &[&str]) -> Vec<(PathKind, String)> {
        let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
        paths_in(src, &module)
            .into_iter()
            .map(|p| (p.kind, p.written()))
            .collect()
    }

    #[test]
    fn use_trees_expand_to_one_path_per_leaf() {
        let found = written(
            "use crate::a::{b, c::{d as e, self}, f::*};\npub(crate) use ::kube::{Api, Client};",
            &[],
        );
        let uses: Vec<&str> = found
            .iter()
            .filter(|(k, _)| *k == PathKind::Use)
            .map(|(_, p)| p.as_str())
            .collect();
        assert_eq!(
            uses,
            [
                "crate::a::b",
                "crate::a::c::d",
                "crate::a::c",
                "crate::a::f::*",
                "kube::Api",
                "kube::Client"
            ]
        );
    }

    #[test]
    fn comments_strings_and_chars_hide_nothing_and_show_nothing() {
        let src = r####"
            // crate::runtime::in_a_comment
            /* crate::runtime::in /* a nested */ block */
            /// [`crate::runtime::doc_link`]
            let s = "crate::runtime::in_a_string";
            let r = r#"crate::runtime::"raw""#;
            let c = '"'; let q = '\''; let l: &'static str = "x";
            let real = crate::runtime::after_all_that(b'"', b"crate::x");
        "####;
        assert_eq!(
            written(src, &["rollout"]),
            [(PathKind::Expr, "crate::runtime::after_all_that".to_string())]
        );
    }

    #[test]
    fn super_chains_resolve_through_inline_modules() {
        let src = "mod tests { fn f() { super::super::runtime::x(); } }\nfn g() { self::h::i(); }";
        let found = paths_in(src, &["rollout".to_string(), "decide".to_string()]);
        let resolved: Vec<Vec<String>> = found
            .iter()
            .map(|p| p.resolved().expect("relative").expect("inside the crate"))
            .collect();
        assert_eq!(
            resolved,
            [
                vec!["rollout".to_string(), "runtime".into(), "x".into()],
                vec![
                    "rollout".to_string(),
                    "decide".into(),
                    "h".into(),
                    "i".into()
                ],
            ]
        );
        let escape = paths_in("use super::super::super::x;", &["a".to_string()]);
        assert!(escape[0].resolved().expect("relative").is_err());
    }

    #[test]
    fn files_map_to_modules() {
        let m = |p: &str| module_of(Path::new(p));
        assert_eq!(m("lib.rs"), Vec::<String>::new());
        assert_eq!(m("main.rs"), Vec::<String>::new());
        assert_eq!(m("rollout/mod.rs"), ["rollout"]);
        assert_eq!(m("rollout/decide.rs"), ["rollout", "decide"]);
        assert_eq!(m("rollout/decide/tests.rs"), ["rollout", "decide", "tests"]);
    }
}
