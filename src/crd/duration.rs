//! Reading the CRD's duration fields without panicking.
//!
//! The fields are `kube::core::Duration` (the Go syntax, and what `kubectl` users know), but its
//! parser multiplies each component as an `f64` into a `std::time::Duration`, which panics on a
//! value too large (`99999999999999999999999999999h` fits the schema's pattern and length), on
//! a negative component (`1s-5s`) and on a sum that overflows. A Rollout is input from anyone
//! who may create one, and the operator deserializes every Rollout it watches: one such value
//! would abort the operator for every tenant. So each duration field is first read by
//! tollgate's own parser ([`crate::util::duration`], Go's syntax with Go's bound of about 292
//! years, no panics), and handed to kube's parser only when that accepted it: a value it would
//! choke on becomes a deserialization error naming the value instead.

use serde::{de, Deserialize, Deserializer};

use kube::core::Duration;

/// `deserialize_with` for a required duration field.
pub fn go<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(de::Error::custom)
}

/// `deserialize_with` for an optional duration field (`null` is "not set").
pub fn optional_go<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        Some(text) => parse(&text).map(Some).map_err(de::Error::custom),
        None => Ok(None),
    }
}

/// A Go duration as kube reads it, once tollgate's parser has vouched for its size.
pub fn parse(text: &str) -> Result<Duration, String> {
    // kube reads one leading sign (and strips any run of them); the magnitude is what can
    // overflow
    let magnitude = text.trim_start_matches('+').trim_start_matches('-');
    magnitude
        .parse::<crate::util::duration::Duration>()
        .map_err(|e| format!("invalid duration: {e}"))?;
    text.parse::<Duration>()
        .map_err(|e| format!("invalid duration {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_kubes_parser_would_panic_on_are_errors() {
        for text in [
            "99999999999999999999999999999h",
            "27777777777777777777777777777777777777777777777777740s",
            "1s-5s",
            "2562047h2562047h",
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains("invalid duration"), "{text}: {err}");
        }
    }

    #[test]
    fn ordinary_values_read_as_kube_reads_them() {
        for text in ["30s", "1m30s", "500ms", "2h", "1.5h", "0s", "-5s"] {
            assert_eq!(
                parse(text).expect(text),
                text.parse::<Duration>().expect(text),
                "{text}"
            );
        }
    }

    #[test]
    fn a_rollout_with_an_overflowing_duration_is_an_error_not_a_panic() {
        let shop =
            crate::crd::fixtures::shop_with_traffic(serde_json::json!({"type": "ReplicaRatio"}));
        let mut rollout = serde_json::to_value(shop).expect("json");
        rollout["spec"]["progressDeadline"] = "99999999999999999999999999999h".into();
        let err = serde_json::from_value::<crate::crd::Rollout>(rollout).expect_err("refused");
        assert!(err.to_string().contains("too long"), "{err}");
    }
}
