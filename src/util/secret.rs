//! The one type for a secret string: a bearer token, a password, a webhook URL that is itself a
//! credential.
//!
//! Built on the `secrecy` crate: the value lives in a box that is zeroed when dropped and is only
//! reachable through [`Secret::expose`], so reading it is a visible act in the code. `Debug` and
//! `Display` print `[redacted]`, so no log line, status field, Event or error message that formats
//! a `Secret` can carry its value.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

/// What `Debug` and `Display` print instead of the value.
pub const REDACTED: &str = "[redacted]";

/// A string that never shows itself. Cloning copies the secret into a second zeroed box.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wrap `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The value itself: only for the request that needs it (an `Authorization` header, the
    /// webhook's URL), never for text meant for people.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

/// Equal values are equal secrets (for configuration comparisons and tests; not constant-time,
/// so not for checking a secret a client sent).
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// For clap: a flag or environment variable read straight into a `Secret`.
impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_and_exposes_on_request() {
        let s = Secret::new("hunter2-pass");
        assert_eq!(
            format!("{s:?} {s} {:?}", Some(s.clone())),
            "[redacted] [redacted] Some([redacted])"
        );
        assert_eq!(s.expose(), "hunter2-pass");
        assert_eq!(s, Secret::from("hunter2-pass"));
        assert_ne!(s, Secret::new("other"));
        assert!(Secret::new("").is_empty());
        assert_eq!("x".parse::<Secret>().unwrap().expose(), "x");
    }
}
