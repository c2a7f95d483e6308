//! Parsing Prometheus HTTP API answers (`/api/v1/query`, `/api/v1/query_range`). Pure.
//!
//! ```json
//! {"status":"success","data":{"resultType":"vector","result":[{"metric":{"le":"0.1"},"value":[1700000000.5,"12"]}]},
//!  "warnings":["..."]}
//! {"status":"error","errorType":"bad_data","error":"parse error ..."}
//! ```
//! Sample values are strings and may be `"NaN"`, `"+Inf"` or `"-Inf"`; parsing keeps them as f64 and
//! the caller decides (a count that is not finite is an error there).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::analysis::providers::ProviderError;
use crate::util::text::shorten_bytes;

/// One series of an answer: its labels and its points `(unix seconds, value)`. An instant vector has
/// one point per series; a matrix has many.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

/// A parsed successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `vector`, `matrix` or `scalar` (a scalar becomes one series without labels).
    pub result_type: String,
    pub series: Vec<Series>,
    pub warnings: Vec<String>,
}

/// Bounds on what one answer may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_series: usize,
    pub max_points: usize,
}

/// Parse a sample value as Prometheus writes it (`"1"`, `"0.25"`, `"NaN"`, `"+Inf"`, `"-Inf"`).
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => {
            // Reject Rust-only spellings ("inf", "infinity") that Prometheus never writes.
            if s.is_empty()
                || s.chars()
                    .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
            {
                return None;
            }
            s.parse::<f64>().ok()
        }
    }
}

fn point(v: &Value) -> Result<(f64, f64), ProviderError> {
    let arr = v.as_array().filter(|a| a.len() == 2).ok_or_else(|| {
        ProviderError::Malformed(format!("sample is not [time, \"value\"]: {}", excerpt(v)))
    })?;
    let t = arr[0].as_f64().ok_or_else(|| {
        ProviderError::Malformed(format!("sample time is not a number: {}", excerpt(v)))
    })?;
    let raw = arr[1].as_str().ok_or_else(|| {
        ProviderError::Malformed(format!("sample value is not a string: {}", excerpt(v)))
    })?;
    let value = parse_value(raw)
        .ok_or_else(|| ProviderError::Malformed(format!("sample value {raw:?} is not a number")))?;
    Ok((t, value))
}

fn excerpt(v: &Value) -> String {
    shorten_bytes(&v.to_string(), 200)
}

/// If `body` is a Prometheus error answer, its `(errorType, error)`.
pub fn error_of(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("status")?.as_str()? != "error" {
        return None;
    }
    let ty = v
        .get("errorType")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let msg = v
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((ty, shorten_bytes(&msg, 500)))
}

/// Parse a 2xx answer body: the envelope (status, warnings), then the data's series.
pub fn parse(body: &[u8], limits: Limits) -> Result<Answer, ProviderError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ProviderError::Malformed(format!(
            "not JSON ({e}): {}",
            shorten_bytes(&String::from_utf8_lossy(&body[..body.len().min(200)]), 200)
        ))
    })?;
    let status = v
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::Malformed(format!("no status field: {}", excerpt(&v))))?;
    if status == "error" {
        let (error_type, message) =
            error_of(body).unwrap_or_else(|| ("unknown".into(), String::new()));
        return Err(ProviderError::Query {
            error_type,
            message,
        });
    }
    if status != "success" {
        return Err(ProviderError::Malformed(format!(
            "unknown status {status:?}"
        )));
    }
    let warnings = warnings(&v)?;
    let data = v
        .get("data")
        .ok_or_else(|| ProviderError::Malformed("success without data".into()))?;
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::Malformed("data without resultType".into()))?
        .to_string();
    let result = data
        .get("result")
        .ok_or_else(|| ProviderError::Malformed("data without result".into()))?;
    let series = series(&result_type, result, limits)?;
    Ok(Answer {
        result_type,
        series,
        warnings,
    })
}

/// The answer's `warnings`, each shortened; none when absent.
fn warnings(v: &Value) -> Result<Vec<String>, ProviderError> {
    match v.get("warnings") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(ws)) => Ok(ws
            .iter()
            .map(|w| {
                shorten_bytes(
                    w.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| w.to_string())
                        .as_str(),
                    500,
                )
            })
            .collect()),
        Some(other) => Err(ProviderError::Malformed(format!(
            "warnings is not a list: {}",
            excerpt(other)
        ))),
    }
}

/// The series of a `result` of `result_type` (a scalar is one series without labels), within
/// `limits`.
fn series(result_type: &str, result: &Value, limits: Limits) -> Result<Vec<Series>, ProviderError> {
    let mut series = Vec::new();
    match result_type {
        "scalar" => {
            series.push(Series {
                labels: BTreeMap::new(),
                points: vec![point(result)?],
            });
        }
        "vector" | "matrix" => {
            let items = result
                .as_array()
                .ok_or_else(|| ProviderError::Malformed("result is not a list".into()))?;
            if items.len() > limits.max_series {
                return Err(ProviderError::TooLarge(format!(
                    "{} series, more than the limit of {}",
                    items.len(),
                    limits.max_series
                )));
            }
            let mut total_points = 0usize;
            for item in items {
                let labels = labels(item)?;
                let points = if result_type == "vector" {
                    let p = item.get("value").ok_or_else(|| {
                        ProviderError::Malformed("vector sample without value".into())
                    })?;
                    vec![point(p)?]
                } else {
                    let ps = item
                        .get("values")
                        .and_then(Value::as_array)
                        .ok_or_else(|| {
                            ProviderError::Malformed("matrix series without values".into())
                        })?;
                    ps.iter().map(point).collect::<Result<Vec<_>, _>>()?
                };
                total_points += points.len();
                if total_points > limits.max_points {
                    return Err(ProviderError::TooLarge(format!(
                        "more than the limit of {} samples",
                        limits.max_points
                    )));
                }
                series.push(Series { labels, points });
            }
        }
        other => {
            return Err(ProviderError::UnexpectedResultType {
                what: "query".into(),
                got: format!("a {other} result"),
            });
        }
    }
    Ok(series)
}

/// A series' labels (its `metric` object, every value a string); none when absent.
fn labels(item: &Value) -> Result<BTreeMap<String, String>, ProviderError> {
    match item.get("metric") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => Ok((k.clone(), s.to_string())),
                None => Err(ProviderError::Malformed(format!(
                    "label {k} is not a string"
                ))),
            })
            .collect(),
        Some(other) => Err(ProviderError::Malformed(format!(
            "metric is not an object: {}",
            excerpt(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_series: 100,
        max_points: 1000,
    };

    #[test]
    fn parses_values_including_nan_and_infinities() {
        assert_eq!(parse_value("1"), Some(1.0));
        assert_eq!(parse_value("0.25"), Some(0.25));
        assert_eq!(parse_value("1e3"), Some(1000.0));
        assert_eq!(parse_value("-2.5E-1"), Some(-0.25));
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("inf"), None);
        assert_eq!(parse_value(""), None);
        assert_eq!(parse_value("12abc"), None);
    }

    #[test]
    fn parses_a_vector_with_warnings() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"le":"0.1"},"value":[1700000000.5,"12"]},
            {"metric":{"le":"+Inf"},"value":[1700000000.5,"NaN"]}]},
            "warnings":["partial response: store down"]}"#;
        let a = parse(body, L).unwrap();
        assert_eq!(a.result_type, "vector");
        assert_eq!(a.series.len(), 2);
        assert_eq!(a.series[0].labels["le"], "0.1");
        assert_eq!(a.series[0].points, vec![(1700000000.5, 12.0)]);
        assert!(a.series[1].points[0].1.is_nan());
        assert_eq!(a.warnings, vec!["partial response: store down".to_string()]);
    }

    #[test]
    fn parses_an_empty_vector_a_matrix_and_a_scalar() {
        let a = parse(
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            L,
        )
        .unwrap();
        assert!(a.series.is_empty());
        let a = parse(
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"+Inf"]]}]}}"#,
            L,
        )
        .unwrap();
        assert_eq!(a.series[0].points, vec![(1.0, 1.0), (2.0, f64::INFINITY)]);
        let a = parse(
            br#"{"status":"success","data":{"resultType":"scalar","result":[3,"-Inf"]}}"#,
            L,
        )
        .unwrap();
        assert_eq!(a.series[0].points, vec![(3.0, f64::NEG_INFINITY)]);
        let e = parse(
            br#"{"status":"success","data":{"resultType":"string","result":[3,"x"]}}"#,
            L,
        )
        .unwrap_err();
        assert!(
            matches!(e, ProviderError::UnexpectedResultType { .. }),
            "{e:?}"
        );
    }

    #[test]
    fn prometheus_errors_are_typed() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \"}\""}"#;
        let e = parse(body, L).unwrap_err();
        match &e {
            ProviderError::Query {
                error_type,
                message,
            } => {
                assert_eq!(error_type, "bad_data");
                assert!(message.contains("parse error"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.is_transient());
        let e = parse(
            br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#,
            L,
        )
        .unwrap_err();
        assert!(e.is_transient());
        assert_eq!(
            error_of(br#"{"status":"error","errorType":"unavailable","error":"x"}"#)
                .unwrap()
                .0,
            "unavailable"
        );
        assert_eq!(error_of(b"<html>"), None);
    }

    #[test]
    fn garbage_is_malformed() {
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"{}",
            b"{\"status\":\"success\"}",
            b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}",
            b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1,2]}]}}",
            b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1,\"abc\"]}]}}",
            b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"a\":1},\"value\":[1,\"1\"]}]}}",
            b"{\"status\":\"maybe\"}",
            b"\xff\xfe garbage",
        ] {
            let e = parse(body, L).unwrap_err();
            assert!(matches!(e, ProviderError::Malformed(_)), "{:?} -> {e:?}", String::from_utf8_lossy(body));
            assert!(e.is_transient());
        }
    }

    #[test]
    fn bounds_series_and_points() {
        let items: Vec<String> = (0..5)
            .map(|i| format!(r#"{{"metric":{{"i":"{i}"}},"value":[1,"1"]}}"#))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            items.join(",")
        );
        let small = Limits {
            max_series: 4,
            max_points: 1000,
        };
        assert!(matches!(
            parse(body.as_bytes(), small),
            Err(ProviderError::TooLarge(_))
        ));
        let few_points = Limits {
            max_series: 10,
            max_points: 3,
        };
        assert!(matches!(
            parse(body.as_bytes(), few_points),
            Err(ProviderError::TooLarge(_))
        ));
        assert_eq!(parse(body.as_bytes(), L).unwrap().series.len(), 5);
    }
}
