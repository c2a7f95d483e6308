//! Offline validation of an object against one of tollgate's CRDs: the OpenAPI schema (types,
//! bounds, patterns, enums, required and unknown fields), then the CEL rules after the schema's
//! defaults are written in, as the API server does on create. `tollgate lint` and the policy
//! merge use it, so a problem is found before `kubectl apply` or before a merged spec is acted on.
//!
//! The schema walk is a subset of the API server's (no `format`, no `x-kubernetes-list-type`);
//! CEL is kube's evaluator over the same rules. CEL runs only on a schema-clean object: a rule
//! evaluated over a value of the wrong type reports noise, not the problem.

use serde_json::Value;

use super::CrdKind;

/// One problem: the field (`spec.analysis.alpha`, or `spec` for a rule on the whole spec) and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Dotted path of the field the problem is about.
    pub field: String,
    /// What is wrong, as the API server would say it for a CEL rule.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem of `object` as a `kind`: schema findings, or, when there are none, the CEL
/// rules it breaks once defaulted. Empty when the API server would accept it.
pub fn check(kind: CrdKind, object: &Value) -> Vec<Finding> {
    let schema = kind.schema();
    let mut findings = Vec::new();
    walk(&schema, object, "", &mut findings);
    if !findings.is_empty() {
        return findings;
    }
    cel(&schema, object)
}

/// The CEL rules `object` breaks, on `schema`, after its defaults are written in.
pub fn cel(schema: &Value, object: &Value) -> Vec<Finding> {
    match kube::core::cel::Validator::new().validate(schema, object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| Finding {
                field: if e.field_path.is_empty() {
                    "(object)".to_string()
                } else {
                    e.field_path
                },
                message: e.message,
            })
            .collect(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn push(out: &mut Vec<Finding>, path: &str, message: String) {
    out.push(Finding {
        field: if path.is_empty() {
            "(object)".into()
        } else {
            path.into()
        },
        message,
    });
}

/// The schema checks of one value, recursively.
fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<Finding>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            push(out, path, "must not be null".into());
        }
        return;
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let ty = schema.get("type").and_then(Value::as_str);
    let type_ok = match (ty, value) {
        _ if int_or_string => value.is_string() || is_integer(value),
        (None, _) => true,
        (Some("object"), Value::Object(_)) => true,
        (Some("array"), Value::Array(_)) => true,
        (Some("string"), Value::String(_)) => true,
        (Some("boolean"), Value::Bool(_)) => true,
        (Some("number"), Value::Number(_)) => true,
        (Some("integer"), v) => is_integer(v),
        _ => false,
    };
    if !type_ok {
        push(
            out,
            path,
            format!("must be of type {}", ty.unwrap_or("int-or-string")),
        );
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let names: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
            push(out, path, format!("must be one of {}", names.join(", ")));
        }
    }
    match value {
        Value::String(s) => string(schema, s, path, out),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if x < min {
                    push(out, path, format!("must be greater than or equal to {min}"));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if x > max {
                    push(out, path, format!("must be less than or equal to {max}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    push(out, path, format!("must have at least {min} items"));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    push(out, path, format!("must have at most {max} items"));
                }
            }
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(item, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => object(schema, map, path, out),
        Value::Bool(_) | Value::Null => {}
    }
}

fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn string(schema: &Value, s: &str, path: &str, out: &mut Vec<Finding>) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if len < min {
            push(out, path, format!("must be at least {min} characters long"));
        }
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if len > max {
            push(out, path, format!("must be at most {max} characters long"));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => push(out, path, format!("must match the pattern {pattern}")),
            // fail closed: a pattern this checker cannot read is a finding, never a pass
            Err(e) => push(
                out,
                path,
                format!("schema pattern {pattern} unreadable: {e}"),
            ),
        }
    }
}

fn object(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    out: &mut Vec<Finding>,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(required) {
            push(out, &join(path, required), "is required".into());
        }
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, v) in map {
        let here = join(path, key);
        // the type fields and metadata (ObjectMeta) are the API server's own; the CRD schema
        // does not describe them
        if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match (props.and_then(|p| p.get(key)), additional) {
            (Some(sub), _) => walk(sub, v, &here, out),
            (None, Some(sub)) => walk(sub, v, &here, out),
            (None, None) if preserve => {}
            (None, None) => push(out, &here, "unknown field".into()),
        }
    }
}
