//! The Argo CD resource actions for `tollgate.dev/Rollout` (`deploy/argocd/actions/`), run the
//! way Argo CD runs them, on a real Lua interpreter (mlua, Lua 5.4 vendored), against the real
//! Rollouts captured from the e2e run (`tests/fixtures/rollouts/`):
//!
//! - each action changes the spec exactly as the CLI's merge patch does (`control_patch` in
//!   src/cli/rollouts.rs, with the token the action chose), and chooses a fresh token;
//! - the discovery script offers exactly the actions the operator acts on in that phase;
//! - the argocd-cm patch carries every script verbatim.
//!
//! As in Argo CD (`util/lua/lua.go`), only the base, package and table libraries and a safe `os`
//! (time functions) are open; the clock is fixed here so the token is known.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mlua::{Lua, LuaOptions, StdLib, Value};
use serde_json::{json, Value as Json};
use tollgate::cli::rollouts::{control_patch, Control};
use tollgate::crd::{Phase, Rollout};

use crate::support::argocd::to_lua;

/// The fixed clock of the test's `os.time()` (seconds since the epoch).
const NOW: i64 = 1_800_000_000;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn script(name: &str) -> String {
    std::fs::read_to_string(repo(&format!("deploy/argocd/actions/{name}.lua")))
        .unwrap_or_else(|e| panic!("{name}.lua: {e}"))
}

/// The Rollouts captured from the e2e run, with their file names.
fn captured() -> Vec<(String, Json)> {
    let mut out: Vec<(String, Json)> = std::fs::read_dir(repo("tests/fixtures/rollouts"))
        .expect("tests/fixtures/rollouts")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture");
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, serde_json::from_str(&text).expect("fixture JSON"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 10, "captured Rollouts: {}", out.len());
    out
}

/// A Lua state as Argo CD's for actions, with `obj` set and a fixed clock.
fn lua_with(obj: &Json) -> Lua {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::PACKAGE, LuaOptions::default()).unwrap();
    let os = lua.create_table().unwrap();
    os.set("time", lua.create_function(|_, ()| Ok(NOW)).unwrap())
        .unwrap();
    os.set(
        "date",
        lua.create_function(|_, _: mlua::MultiValue| Ok("2027-01-15T08:00:00Z"))
            .unwrap(),
    )
    .unwrap();
    lua.globals().set("os", os).unwrap();
    lua.globals()
        .set("obj", to_lua(&lua, obj).unwrap())
        .unwrap();
    lua
}

/// Lua → JSON: a table with keys 1..n is an array, any other an object.
fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => json!(b),
        Value::Integer(i) => json!(i),
        Value::Number(n) => json!(n),
        Value::String(s) => json!(s.to_str().unwrap().to_string()),
        Value::Table(t) => {
            let n = t.raw_len();
            let pairs: Vec<(Value, Value)> = t.clone().pairs().map(Result::unwrap).collect();
            if n > 0 && pairs.len() == n {
                Json::Array((1..=n).map(|i| to_json(&t.raw_get(i).unwrap())).collect())
            } else {
                let map: serde_json::Map<String, Json> = pairs
                    .iter()
                    .map(|(k, v)| (to_json(k).as_str().unwrap_or("?").to_string(), to_json(v)))
                    .collect();
                Json::Object(map)
            }
        }
        other => panic!("unexpected Lua value {}", other.type_name()),
    }
}

/// `obj` after the action `name`, as JSON.
fn run_action(name: &str, obj: &Json) -> Json {
    let lua = lua_with(obj);
    let result: Value = lua
        .load(script(name))
        .set_name(name)
        .eval()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    to_json(&result)
}

/// Through Lua and back, so both sides of a comparison share the conversion.
fn round_trip(obj: &Json) -> Json {
    let lua = lua_with(obj);
    to_json(&lua.globals().get::<Value>("obj").unwrap())
}

const ACTIONS: [(&str, Control, Option<&str>); 5] = [
    ("promote", Control::Promote, Some("promoteRequest")),
    ("abort", Control::Abort, Some("abortRequest")),
    ("retry", Control::Retry, Some("retryRequest")),
    ("pause", Control::Pause, None),
    ("resume", Control::Resume, Some("resumeRequest")),
];

#[test]
fn each_action_changes_the_spec_as_the_cli_patch_does() {
    for (file, rollout) in captured() {
        for (name, control, field) in ACTIONS {
            let after = run_action(name, &rollout);
            let token = field
                .map(|f| {
                    after["spec"][f]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name} on {file}: no spec.{f}"))
                        .to_string()
                })
                .unwrap_or_default();
            if let Some(f) = field {
                assert!(
                    token.starts_with(&NOW.to_string())
                        && token.chars().all(|c| c.is_ascii_digit()),
                    "{name} on {file}: token {token:?}, the CLI's format is milliseconds"
                );
                assert_ne!(
                    rollout["spec"][f].as_str(),
                    Some(token.as_str()),
                    "{name} on {file}: a token already there would not act"
                );
            }
            let mut expected = rollout.clone();
            json_patch::merge(&mut expected, &control_patch(control, &token));
            assert_eq!(
                after["spec"],
                round_trip(&expected)["spec"],
                "{name} on {file}: the action's spec differs from the CLI's patch"
            );
            assert_eq!(
                after["metadata"],
                round_trip(&rollout)["metadata"],
                "{name} on {file}: only the spec changes"
            );
        }
    }
}

#[test]
fn a_token_equal_to_the_present_one_is_replaced_by_a_fresh_one() {
    let (_, mut rollout) = captured().remove(0);
    rollout["spec"]["promoteRequest"] = json!(format!("{NOW}000"));
    let after = run_action("promote", &rollout);
    assert_eq!(after["spec"]["promoteRequest"], json!(format!("{NOW}0001")));
}

/// What the operator acts on, from the Rust types (src/rollout/decide/controls.rs, steps.rs).
fn offered(rollout: &Rollout) -> BTreeMap<&'static str, bool> {
    let status = rollout.status.clone().unwrap_or_default();
    let phase = status.phase;
    let in_flight = matches!(
        phase,
        Phase::ContractGate
            | Phase::CanaryStarting
            | Phase::FleetCheck
            | Phase::SmokeCheck
            | Phase::Analyzing
    );
    let committed = status.stable_version.as_deref() == Some(rollout.spec.version.as_str());
    let undo = phase == Phase::Succeeded
        && committed
        && status
            .rollback_window
            .as_ref()
            .is_some_and(|w| !w.rolling_back);
    let open_pause = phase == Phase::Analyzing
        && status
            .current_step_index
            .and_then(|i| rollout.spec.steps.get(usize::try_from(i).ok()?))
            .and_then(|s| s.pause.as_ref())
            .is_some_and(|p| p.duration.is_none());
    BTreeMap::from([
        ("promote", in_flight),
        (
            "abort",
            in_flight
                || phase == Phase::Pending
                || (phase == Phase::Promoting && !committed)
                || undo,
        ),
        ("retry", matches!(phase, Phase::Blocked | Phase::RolledBack)),
        (
            "pause",
            (in_flight || phase == Phase::Pending) && !rollout.spec.paused,
        ),
        (
            "resume",
            rollout.spec.paused || status.hold_reason.is_some() || open_pause,
        ),
    ])
}

#[test]
fn discovery_offers_only_what_the_operator_acts_on() {
    let mut seen = BTreeMap::new();
    for (file, json) in captured() {
        let rollout: Rollout = serde_json::from_value(json.clone()).expect("a Rollout");
        let lua = lua_with(&json);
        let actions = to_json(&lua.load(script("discovery")).eval::<Value>().unwrap());
        let enabled: BTreeMap<&str, bool> = ACTIONS
            .iter()
            .map(|(name, _, _)| {
                let disabled = actions[*name]["disabled"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("{file}: {name} not offered: {actions}"));
                (*name, !disabled)
            })
            .collect();
        assert_eq!(enabled, offered(&rollout), "{file}");
        seen.insert(
            format!("{:?}", rollout.status.unwrap_or_default().phase),
            enabled,
        );
    }
    // The captures cover both sides of each rule.
    assert!(seen
        .get("Analyzing")
        .is_some_and(|e| e["promote"] && e["abort"] && !e["retry"]));
    assert!(seen
        .get("RolledBack")
        .is_some_and(|e| e["retry"] && !e["promote"]));
}

#[test]
fn the_argocd_cm_patch_carries_every_script_verbatim() {
    let patch = std::fs::read_to_string(repo("deploy/argocd/argocd-cm-actions-patch.yaml"))
        .expect("the patch");
    let doc: Json = serde_saphyr::from_str(&patch).expect("YAML");
    let key = doc["data"]["resource.customizations.actions.tollgate.dev_Rollout"]
        .as_str()
        .expect("the actions key");
    let actions: Json = serde_saphyr::from_str(key).expect("the key's YAML");
    assert_eq!(
        actions["discovery.lua"].as_str(),
        Some(script("discovery").as_str())
    );
    let definitions = actions["definitions"].as_array().expect("definitions");
    assert_eq!(definitions.len(), ACTIONS.len());
    for ((name, _, _), d) in ACTIONS.iter().zip(definitions) {
        assert_eq!(d["name"], json!(name));
        assert_eq!(
            d["action.lua"].as_str(),
            Some(script(name).as_str()),
            "{name}"
        );
    }
}
