//! The duration every command-line flag takes, and [`millis`], the serde form of a duration
//! in the gates' configurations.
//!
//! Syntax: Go's `time.ParseDuration`, one or more decimal numbers, each with an optional fraction
//! and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`): `1m30s`, `500ms`, `2h`, `1.5h`. That is also
//! what the CRD's duration fields take (`kube::core::Duration`); a test checks that the two read
//! every example alike.
//!
//! A bare number is a number of seconds (`10`, `0.5`). `can-i-deploy` and `record-deployment` took
//! float seconds and `verify` took bare seconds before every flag shared this type, so scripts
//! written for them keep working; `0` is zero either way, as in Go.
//!
//! Unlike `kube::core::Duration`'s parser, this one never panics on input: an overflowing
//! `99999999999h` or a negative component is an error, not an abort. Negative durations are
//! refused (no flag has a use for one), and the longest duration is Go's, about 292 years.

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

const NANOS_PER_MICRO: u128 = 1_000;
const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_MIN: u128 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u128 = 60 * NANOS_PER_MIN;
/// Go's longest duration: `math.MaxInt64` nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;
/// Fraction digits beyond these cannot change a count of nanoseconds, even in hours.
const MAX_FRACTION_DIGITS: usize = 20;

/// A non-negative length of time read from a flag; see the module doc for the syntax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(StdDuration);

/// Why a flag's text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing given.
    #[error("empty duration (use e.g. 30s, 1m30s, 500ms)")]
    Empty,
    /// Not the syntax at all.
    #[error("{0:?} is not a duration (use e.g. 30s, 1m30s, 500ms, 2h, or a number of seconds)")]
    Invalid(String),
    /// A unit that Go does not know.
    #[error("unknown unit {unit:?} in {input:?} (use ns, us, ms, s, m or h)")]
    Unit {
        /// The unit as written.
        unit: String,
        /// The whole text.
        input: String,
    },
    /// Below zero.
    #[error("{0:?} is negative; give zero or more")]
    Negative(String),
    /// Over Go's bound.
    #[error("{0:?} is too long (at most about 292 years)")]
    TooLong(String),
    /// Zero where only a positive duration makes sense (see [`positive`]).
    #[error("{0:?} must be longer than zero")]
    Zero(String),
}

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration(StdDuration::ZERO);

    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(StdDuration::from_secs(secs))
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Duration {
        Duration(StdDuration::from_millis(millis))
    }

    /// The standard library's duration.
    pub const fn as_std(self) -> StdDuration {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<StdDuration> for Duration {
    fn from(d: StdDuration) -> Self {
        Duration(d)
    }
}

impl From<Duration> for StdDuration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl PartialEq<StdDuration> for Duration {
    fn eq(&self, other: &StdDuration) -> bool {
        self.0 == *other
    }
}

impl FromStr for Duration {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map(Duration)
    }
}

/// A clap value parser for flags that must be longer than zero (a timeout of nothing is a
/// typing mistake, not a wish).
pub fn positive(s: &str) -> Result<Duration, ParseError> {
    let d: Duration = s.parse()?;
    if d.is_zero() {
        return Err(ParseError::Zero(s.trim().to_string()));
    }
    Ok(d)
}

fn parse(input: &str) -> Result<StdDuration, ParseError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    let invalid = || ParseError::Invalid(s.to_string());
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body.is_empty() {
        return Err(invalid());
    }
    let is_number_char = |c: char| c.is_ascii_digit() || c == '.';
    let total = if body.chars().all(is_number_char) {
        component(body, NANOS_PER_SEC, s)?
    } else {
        let mut total: u128 = 0;
        let mut rest = body;
        while !rest.is_empty() {
            let number_end = rest.find(|c| !is_number_char(c)).unwrap_or(rest.len());
            let (number, after) = rest.split_at(number_end);
            let unit_end = after.find(is_number_char).unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_end);
            if number.is_empty() || unit.is_empty() {
                return Err(invalid());
            }
            let scale = match unit {
                "ns" => 1,
                "us" | "\u{b5}s" | "\u{3bc}s" => NANOS_PER_MICRO,
                "ms" => NANOS_PER_MILLI,
                "s" => NANOS_PER_SEC,
                "m" => NANOS_PER_MIN,
                "h" => NANOS_PER_HOUR,
                _ => {
                    return Err(ParseError::Unit {
                        unit: unit.to_string(),
                        input: s.to_string(),
                    })
                }
            };
            total = total
                .checked_add(component(number, scale, s)?)
                .filter(|t| *t <= MAX_NANOS)
                .ok_or_else(|| ParseError::TooLong(s.to_string()))?;
            rest = next;
        }
        total
    };
    if negative && total > 0 {
        return Err(ParseError::Negative(s.to_string()));
    }
    // At most i64::MAX nanoseconds, so it fits.
    Ok(StdDuration::from_nanos(
        u64::try_from(total).map_err(|_| ParseError::TooLong(s.to_string()))?,
    ))
}

/// `number` (digits, at most one `.`, a digit on at least one side) times `scale` nanoseconds.
/// Fractions of a nanosecond are dropped, as Go drops them.
fn component(number: &str, scale: u128, input: &str) -> Result<u128, ParseError> {
    let invalid = || ParseError::Invalid(input.to_string());
    let too_long = || ParseError::TooLong(input.to_string());
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(invalid());
    }
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or_else(too_long)?;
    }
    nanos = nanos
        .checked_mul(scale)
        .filter(|n| *n <= MAX_NANOS)
        .ok_or_else(too_long)?;
    let kept = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
    if !kept.is_empty() {
        let digits: u128 = kept.parse().map_err(|_| invalid())?;
        let denominator = 10u128.pow(kept.len() as u32);
        nanos += digits * scale / denominator;
    }
    if nanos > MAX_NANOS {
        return Err(too_long());
    }
    Ok(nanos)
}

/// Go's `Duration.String`: `0s`, `750ms`, `1.5s`, `1m30s`, `2h0m0s`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.as_nanos();
        if n == 0 {
            return f.write_str("0s");
        }
        if n < NANOS_PER_MICRO {
            return write!(f, "{n}ns");
        }
        if n < NANOS_PER_MILLI {
            return write!(f, "{}µs", decimal(n, NANOS_PER_MICRO));
        }
        if n < NANOS_PER_SEC {
            return write!(f, "{}ms", decimal(n, NANOS_PER_MILLI));
        }
        let hours = n / NANOS_PER_HOUR;
        let minutes = (n % NANOS_PER_HOUR) / NANOS_PER_MIN;
        let seconds = decimal(n % NANOS_PER_MIN, NANOS_PER_SEC);
        if hours > 0 {
            write!(f, "{hours}h{minutes}m{seconds}s")
        } else if minutes > 0 {
            write!(f, "{minutes}m{seconds}s")
        } else {
            write!(f, "{seconds}s")
        }
    }
}

/// `n / unit` with the remainder as decimals, trailing zeros dropped: `1500, 1000` -> `1.5`.
fn decimal(n: u128, unit: u128) -> String {
    let whole = n / unit;
    let rest = n % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Serde for a `std::time::Duration` as whole milliseconds (`#[serde(with =
/// "crate::util::duration::millis")]`), as the gates' configurations are written; a duration
/// too long for `u64` milliseconds is written as `u64::MAX`.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<StdDuration, ParseError> {
        s.parse::<Duration>().map(StdDuration::from)
    }

    #[test]
    fn go_syntax() {
        let ms = StdDuration::from_millis;
        let secs = StdDuration::from_secs;
        for (text, want) in [
            ("0", StdDuration::ZERO),
            ("0s", StdDuration::ZERO),
            ("500ms", ms(500)),
            ("5s", secs(5)),
            ("1m30s", secs(90)),
            ("2h", secs(7200)),
            ("1.5h", secs(5400)),
            ("1h2m3s4ms5us6ns", StdDuration::new(3723, 4_005_006)),
            ("1.5s", ms(1500)),
            (".5s", ms(500)),
            ("1.s", secs(1)),
            ("+5s", secs(5)),
            ("-0", StdDuration::ZERO),
            ("300µs", StdDuration::from_micros(300)),
            ("300μs", StdDuration::from_micros(300)),
            ("  30m ", secs(1800)),
            ("0.000000001s", StdDuration::from_nanos(1)),
            ("0.0000000019s", StdDuration::from_nanos(1)),
            (
                "2562047h47m16.854775807s",
                StdDuration::from_nanos(i64::MAX as u64),
            ),
        ] {
            assert_eq!(d(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(d("10"), Ok(StdDuration::from_secs(10)));
        assert_eq!(d("0.05"), Ok(StdDuration::from_millis(50)));
        assert_eq!(d("2"), Ok(StdDuration::from_secs(2)));
        assert_eq!(d("30.0"), Ok(StdDuration::from_secs(30)));
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        for bad in [
            "",
            "  ",
            "s",
            "fast",
            "5x",
            "5 s",
            "1e3s",
            "1.2.3s",
            ".s",
            ".",
            "5s3",
            "-",
            "-5s",
            "5s-3s",
            "1s+2s",
            "nans",
            "infs",
            "99999999999999999999h",
            "2562047h47m16.854775808s",
            "9223372036854775808ns",
            "340282366920938463463374607431768211456",
            "1d",
        ] {
            assert!(d(bad).is_err(), "{bad:?} parsed as {:?}", d(bad));
        }
        assert!(matches!(d("-5s"), Err(ParseError::Negative(_))));
        assert!(matches!(d("5d"), Err(ParseError::Unit { ref unit, .. }) if unit == "d"));
        assert!(matches!(d("99999999999h"), Err(ParseError::TooLong(_))));
    }

    #[test]
    fn reads_what_the_crd_reads() {
        for text in [
            "0", "0s", "1ns", "1us", "1µs", "1ms", "1s", "1m", "1h", "1m30s", "500ms", "2h45m",
            "1.5h", ".5s", "1.25m", "300ms", "72h", "10s", "3m20s", "1h0m0s",
        ] {
            let ours = d(text).unwrap();
            let kube: StdDuration = text.parse::<kube::core::Duration>().unwrap().into();
            let delta = ours.abs_diff(kube);
            assert!(
                delta <= StdDuration::from_nanos(1),
                "{text}: {ours:?} vs {kube:?}"
            );
        }
    }

    #[test]
    fn prints_as_go_does_and_reads_back() {
        for (text, shown) in [
            ("0", "0s"),
            ("1ns", "1ns"),
            ("1500ns", "1.5µs"),
            ("750ms", "750ms"),
            ("1.5s", "1.5s"),
            ("90s", "1m30s"),
            ("30m", "30m0s"),
            ("2h", "2h0m0s"),
            ("1h2m3.004s", "1h2m3.004s"),
        ] {
            let parsed: Duration = text.parse().unwrap();
            assert_eq!(parsed.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<Duration>(), Ok(parsed), "{shown}");
        }
    }

    #[test]
    fn positive_refuses_zero() {
        assert_eq!(positive("250ms"), Ok(Duration::from_millis(250)));
        assert!(matches!(positive("0s"), Err(ParseError::Zero(_))));
        assert!(matches!(positive("0"), Err(ParseError::Zero(_))));
        assert!(positive("-1s").is_err());
    }
}
