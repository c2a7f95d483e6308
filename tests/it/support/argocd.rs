//! Runs the Argo CD health check for `tollgate.dev/Rollout` (`deploy/argocd/rollout-health.lua`)
//! the way Argo CD does, on a real Lua interpreter (mlua, Lua 5.4, vendored: no system Lua).
//!
//! What is reproduced from Argo CD (`util/lua/lua.go`):
//! - the object becomes the global `obj`: JSON objects and arrays become tables (arrays 1-based),
//!   JSON null becomes nil, so a null field is absent, exactly as with Argo CD's `decodeValue`;
//! - only the base, package and table libraries are open (Argo CD's default; `string` and `math`
//!   only with `useOpenLibs`), so a script that calls `string.format` fails here as it would there.
//!   Argo CD also opens a reduced `os` (time functions); it is left out here on purpose, so a
//!   health check that reads the clock fails in the test;
//! - the script's result must be a table whose `status` is one of Healthy, Progressing, Degraded,
//!   Suspended, Missing, Unknown; another value gives `Unknown` / "Lua returned an invalid health
//!   status", as in Argo CD.
//!
//! One difference: Argo CD's interpreter (gopher-lua) has only float numbers, printed without a
//! fraction when whole ("3"). JSON integers are passed here as Lua integers, which print the same
//! way, so messages read the same in both.
//!
//! A script error panics: a health check that errors is a bug, never an acceptable result.
//!
//! ```ignore
//! let (status, message) = support::argocd::argocd_health(&serde_json::to_value(&rollout)?);
//! assert_eq!(status, "Healthy", "{message}");
//! ```

use mlua::{Lua, LuaOptions, StdLib, Table, Value};

/// The health check as shipped.
pub const SCRIPT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/argocd/rollout-health.lua"
));

/// The statuses Argo CD accepts from a health script.
pub const VALID_STATUSES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];

/// Argo CD's health for a Rollout (as JSON, e.g. straight from the API server): (status, message).
pub fn argocd_health(rollout: &serde_json::Value) -> (String, String) {
    argocd_health_with(SCRIPT, rollout)
}

/// [`argocd_health`] with another script (tests of the harness itself).
pub fn argocd_health_with(script: &str, rollout: &serde_json::Value) -> (String, String) {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::PACKAGE, LuaOptions::default())
        .expect("a Lua state with Argo CD's libraries");
    let obj = to_lua(&lua, rollout).expect("the object converts to Lua");
    lua.globals()
        .set("obj", obj)
        .expect("setting the global obj");
    let result: Value = lua
        .load(script)
        .set_name("rollout-health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("the health check failed on this object: {e}\n{rollout:#}"));
    let Value::Table(hs) = result else {
        panic!(
            "the health check returned {} instead of a table (Argo CD: \"expect table output from \
             Lua script\")",
            result.type_name()
        );
    };
    let status = field(&hs, "status");
    let message = field(&hs, "message");
    match status {
        Some(s) if VALID_STATUSES.contains(&s.as_str()) => (s, message.unwrap_or_default()),
        _ => (
            "Unknown".to_string(),
            "Lua returned an invalid health status".to_string(),
        ),
    }
}

fn field(t: &Table, key: &str) -> Option<String> {
    match t.get::<Value>(key).ok()? {
        Value::String(s) => Some(s.to_str().ok()?.to_string()),
        _ => None,
    }
}

/// JSON → Lua as Argo CD's `decodeValue` does (null: nil; arrays: 1-based tables).
pub fn to_lua(lua: &Lua, v: &serde_json::Value) -> mlua::Result<Value> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(items) => {
            let t = lua.create_table()?;
            // gopher-lua's Append skips nil, so null array items leave no hole.
            for item in items.iter().filter(|i| !i.is_null()) {
                t.raw_push(to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        J::Object(map) => {
            let t = lua.create_table()?;
            for (k, item) in map {
                // Setting nil leaves the key absent, as in Argo CD.
                t.raw_set(k.as_str(), to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}
