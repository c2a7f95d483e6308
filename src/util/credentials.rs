//! Credentials for an HTTP peer (the Pact Broker, Prometheus): a bearer token or basic auth, read
//! from a Kubernetes Secret's data or from environment variables, with one set of rules for both
//! peers.
//!
//! Keys: `token` for a bearer token, or `username` and `password` for basic auth. Values are UTF-8;
//! surrounding whitespace (the newline `echo` or `--from-file` leaves) is trimmed, and a value that
//! is then empty or still holds a control character is an error. Other keys are ignored, so one
//! Secret can also hold e.g. the URL for other tools. A token together with basic auth is an
//! error: tollgate will not guess which one the peer expects.
//!
//! Fail closed: a Secret the Rollout names must hold credentials. One without any of the keys is
//! an error naming the keys expected ([`CredentialsError::NoCredentials`]), never a silent "no
//! auth", since a misspelt key would otherwise send unauthenticated requests. Only the CLI's
//! environment may hold nothing, which means an open peer.
//!
//! The user name is treated as half of the secret: `Debug` hides it as well as the password.
//!
//! Which Secrets may be read as credentials at all ([`usable_secret`]): only those labelled
//! `tollgate.dev/credentials: "true"`, and never a service-account token. A Rollout names a
//! Secret and a URL; without the label anyone who may create a Rollout could have any Secret of
//! the namespace (an app's database password, a service account's token) sent to a server of
//! their choice. The label is the Secret owner's consent.

use std::collections::BTreeMap;
use std::fmt;

use super::secret::Secret;

/// Key of a bearer token in a credentials Secret.
pub const KEY_TOKEN: &str = "token";
/// Key of the basic-auth user name in a credentials Secret.
pub const KEY_USERNAME: &str = "username";
/// Key of the basic-auth password in a credentials Secret.
pub const KEY_PASSWORD: &str = "password";

/// The label a Secret must carry (with value `"true"`) to be used as credentials.
pub const LABEL_CREDENTIALS: &str = "tollgate.dev/credentials";
/// The type of a Secret holding a service account's token: never used as credentials.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// Why a Secret is not used as credentials, if it is not: see the module doc.
pub fn usable_secret(
    labels: Option<&BTreeMap<String, String>>,
    secret_type: Option<&str>,
) -> Result<(), CredentialsError> {
    if secret_type == Some(SERVICE_ACCOUNT_TOKEN_TYPE) {
        return Err(CredentialsError::ServiceAccountToken);
    }
    let marked = labels
        .and_then(|l| l.get(LABEL_CREDENTIALS))
        .is_some_and(|v| v == "true");
    if marked {
        Ok(())
    } else {
        Err(CredentialsError::NotMarked)
    }
}

/// How tollgate authenticates to a peer.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <token>` (PactFlow, Prometheus behind an auth proxy).
    Bearer(Secret),
    /// HTTP basic auth (the open-source Pact Broker, Prometheus' own `basic_auth_users`).
    Basic {
        /// The user name (not printed either).
        username: String,
        /// The password.
        password: Secret,
    },
}

impl Credentials {
    /// A short description that is safe to show: the kind, never a value.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Bearer(_) => "bearer token",
            Credentials::Basic { .. } => "basic auth",
        }
    }

    /// Every secret value (the user name included), so that text from outside can be scrubbed
    /// of them before it is shown.
    pub fn secret_values(&self) -> Vec<&str> {
        match self {
            Credentials::Bearer(t) => vec![t.expose()],
            Credentials::Basic { username, password } => vec![username.as_str(), password.expose()],
        }
    }

    /// Every form in which these credentials could come back in a peer's text: the values, and
    /// for basic auth the base64 of `user:password` that the header carries.
    pub fn scrub_forms(&self) -> Vec<String> {
        use base64::Engine;
        let mut forms: Vec<String> = self.secret_values().iter().map(|s| s.to_string()).collect();
        if let Credentials::Basic { username, password } = self {
            forms.push(
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose())),
            );
        }
        forms
    }

    /// `text` with every form of these credentials replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        super::text::redact(text, &self.scrub_forms())
    }

    /// `request` with the `Authorization` header these credentials call for.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::Bearer(token) => request.bearer_auth(token.expose()),
            Credentials::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer([redacted])"),
            Credentials::Basic { .. } => {
                f.write_str("Basic { username: [redacted], password: [redacted] }")
            }
        }
    }
}

/// Where credentials were read from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A Kubernetes Secret's data (keys `token`, `username`, `password`).
    Secret,
    /// Environment variables (the CLI): the names of the three.
    Environment {
        /// The variable holding a bearer token.
        token: &'static str,
        /// The variable holding the basic-auth user name.
        username: &'static str,
        /// The variable holding the basic-auth password.
        password: &'static str,
    },
}

impl Source {
    /// What `key` is called where it came from: the environment variable, or the Secret's key.
    pub fn name_of(&self, key: &str) -> String {
        match self {
            Source::Secret => format!("key `{key}` of the Secret"),
            Source::Environment {
                token,
                username,
                password,
            } => match key {
                KEY_TOKEN => token.to_string(),
                KEY_USERNAME => username.to_string(),
                KEY_PASSWORD => password.to_string(),
                other => other.to_string(),
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Secret => f.write_str("the Secret"),
            Source::Environment {
                token,
                username,
                password,
            } => write!(f, "the environment ({token}, {username}, {password})"),
        }
    }
}

/// Why no credentials could be made. No message repeats a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The Secret lacks the consent label.
    #[error(
        "is not labelled tollgate.dev/credentials: \"true\"; only Secrets with that label are \
         sent to a peer (add it: kubectl label secret NAME tollgate.dev/credentials=true)"
    )]
    NotMarked,
    /// A service account's token.
    #[error("is a service-account token (type kubernetes.io/service-account-token), never sent to a peer")]
    ServiceAccountToken,
    /// A Secret that is named for credentials holds none of the keys.
    #[error(
        "{origin} holds no credentials: expected the key `token`, or the keys `username` and \
         `password`"
    )]
    NoCredentials {
        /// Where.
        origin: Source,
    },
    /// A token and basic auth at once.
    #[error(
        "both a bearer token and basic auth (username/password) are set in {origin}; set only one"
    )]
    Conflicting {
        /// Where.
        origin: Source,
    },
    /// Half of basic auth.
    #[error("basic auth is incomplete in {origin}: {missing} is missing")]
    IncompleteBasicAuth {
        /// The half that is missing.
        missing: &'static str,
        /// Where.
        origin: Source,
    },
    /// A key present with nothing (but whitespace) in it.
    #[error("the credential {} is empty", origin.name_of(key))]
    Empty {
        /// The key.
        key: &'static str,
        /// Where.
        origin: Source,
    },
    /// A value that is not text.
    #[error("the credential {} is not UTF-8 text", origin.name_of(key))]
    NotUtf8 {
        /// The key.
        key: &'static str,
        /// Where.
        origin: Source,
    },
    /// A value with a line break or another control character inside (no HTTP header can carry
    /// it; most often two values pasted into one).
    #[error(
        "the credential {} contains a control character (a line break inside?); no HTTP header \
         can carry it",
        origin.name_of(key)
    )]
    ControlCharacter {
        /// The key.
        key: &'static str,
        /// Where.
        origin: Source,
    },
    /// A bearer token with a character outside visible ASCII (an `Authorization` header cannot
    /// carry it; sent anyway, every request would fail as if the peer were unreachable).
    #[error(
        "the credential {} holds a character other than visible ASCII, which an HTTP header \
         cannot carry",
        origin.name_of(key)
    )]
    NotHeaderText {
        /// The key.
        key: &'static str,
        /// Where.
        origin: Source,
    },
}

/// Bytes of a Secret's data value: implemented for `k8s_openapi::ByteString` (what kube gives)
/// and `Vec<u8>`.
pub trait SecretBytes {
    /// The bytes.
    fn secret_bytes(&self) -> &[u8];
}

impl SecretBytes for Vec<u8> {
    fn secret_bytes(&self) -> &[u8] {
        self
    }
}

impl SecretBytes for k8s_openapi::ByteString {
    fn secret_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Credentials from a Kubernetes Secret's `data` map (already base64-decoded, as kube gives it).
/// A Secret without any of the keys is an error: see the module doc.
pub fn from_secret_data<V: SecretBytes>(
    data: &BTreeMap<String, V>,
) -> Result<Credentials, CredentialsError> {
    let origin = Source::Secret;
    let text = |key: &'static str| -> Result<Option<&str>, CredentialsError> {
        data.get(key)
            .map(|v| std::str::from_utf8(v.secret_bytes()))
            .transpose()
            .map_err(|_| CredentialsError::NotUtf8 { key, origin })
    };
    let (token, username, password) = (text(KEY_TOKEN)?, text(KEY_USERNAME)?, text(KEY_PASSWORD)?);
    from_parts(origin, token, username, password)?.ok_or(CredentialsError::NoCredentials { origin })
}

/// Credentials from environment variables already read (`None` for an unset one): `Ok(None)`
/// when none is set, an open peer.
pub fn from_environment(
    origin: Source,
    token: Option<&str>,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Option<Credentials>, CredentialsError> {
    from_parts(origin, token, username, password)
}

/// The rules both sources share.
fn from_parts(
    origin: Source,
    token: Option<&str>,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Option<Credentials>, CredentialsError> {
    let clean =
        |value: Option<&str>, key: &'static str| -> Result<Option<String>, CredentialsError> {
            let Some(value) = value.map(str::trim) else {
                return Ok(None);
            };
            if value.is_empty() {
                return Err(CredentialsError::Empty { key, origin });
            }
            if value.chars().any(char::is_control) {
                return Err(CredentialsError::ControlCharacter { key, origin });
            }
            Ok(Some(value.to_string()))
        };
    let token = clean(token, KEY_TOKEN)?;
    if token
        .as_deref()
        .is_some_and(|t| !t.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
    {
        return Err(CredentialsError::NotHeaderText {
            key: KEY_TOKEN,
            origin,
        });
    }
    let username = clean(username, KEY_USERNAME)?;
    let password = clean(password, KEY_PASSWORD)?;
    match (token, username, password) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err(CredentialsError::Conflicting { origin })
        }
        (Some(token), None, None) => Ok(Some(Credentials::Bearer(Secret::new(token)))),
        (None, Some(username), Some(password)) => Ok(Some(Credentials::Basic {
            username,
            password: Secret::new(password),
        })),
        (None, Some(_), None) => Err(CredentialsError::IncompleteBasicAuth {
            missing: KEY_PASSWORD,
            origin,
        }),
        (None, None, Some(_)) => Err(CredentialsError::IncompleteBasicAuth {
            missing: KEY_USERNAME,
            origin,
        }),
        (None, None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: Source = Source::Environment {
        token: "X_TOKEN",
        username: "X_USERNAME",
        password: "X_PASSWORD",
    };

    fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, k8s_openapi::ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.to_vec())))
            .collect()
    }

    /// Every Secret the broker and Prometheus may be given, and what each becomes.
    #[test]
    fn secret_rules() {
        use CredentialsError as E;
        let origin = Source::Secret;
        let bearer = |t: &str| Ok(Credentials::Bearer(Secret::new(t)));
        let basic = |u: &str, p: &str| {
            Ok(Credentials::Basic {
                username: u.into(),
                password: Secret::new(p),
            })
        };
        type Data = BTreeMap<String, k8s_openapi::ByteString>;
        let cases: Vec<(&str, Data, Result<Credentials, E>)> = vec![
            ("token", data(&[("token", b"s3cr3t")]), bearer("s3cr3t")),
            (
                "token with echo's newline",
                data(&[("token", b"s3cr3t\n")]),
                bearer("s3cr3t"),
            ),
            (
                "basic",
                data(&[("username", b"ci"), ("password", b"pw")]),
                basic("ci", "pw"),
            ),
            (
                "other keys ignored",
                data(&[("token", b"t"), ("url", b"http://x")]),
                bearer("t"),
            ),
            ("empty Secret", data(&[]), Err(E::NoCredentials { origin })),
            (
                "only other keys",
                data(&[("url", b"x"), ("Token", b"t")]),
                Err(E::NoCredentials { origin }),
            ),
            (
                "token and basic",
                data(&[("token", b"t"), ("username", b"u"), ("password", b"p")]),
                Err(E::Conflicting { origin }),
            ),
            (
                "token and password",
                data(&[("token", b"t"), ("password", b"p")]),
                Err(E::Conflicting { origin }),
            ),
            (
                "username alone",
                data(&[("username", b"u")]),
                Err(E::IncompleteBasicAuth {
                    missing: "password",
                    origin,
                }),
            ),
            (
                "password alone",
                data(&[("password", b"p")]),
                Err(E::IncompleteBasicAuth {
                    missing: "username",
                    origin,
                }),
            ),
            (
                "blank token",
                data(&[("token", b" \n")]),
                Err(E::Empty {
                    key: "token",
                    origin,
                }),
            ),
            (
                "binary token",
                data(&[("token", &[0xff, 0xfe])]),
                Err(E::NotUtf8 {
                    key: "token",
                    origin,
                }),
            ),
            (
                "two lines in one",
                data(&[("token", b"a\nb")]),
                Err(E::ControlCharacter {
                    key: "token",
                    origin,
                }),
            ),
        ];
        for (name, secret, want) in cases {
            assert_eq!(from_secret_data(&secret), want, "{name}");
        }
        let mut raw = BTreeMap::new();
        raw.insert("token".to_string(), b"abc".to_vec());
        assert_eq!(from_secret_data(&raw), bearer("abc"), "Vec<u8> values");
    }

    #[test]
    fn only_labelled_secrets_that_are_not_service_account_tokens_are_credentials() {
        let labels = |v: &str| BTreeMap::from([(LABEL_CREDENTIALS.to_string(), v.to_string())]);
        assert_eq!(usable_secret(Some(&labels("true")), Some("Opaque")), Ok(()));
        assert_eq!(usable_secret(Some(&labels("true")), None), Ok(()));
        for (name, l, t) in [
            ("no labels", None, Some("Opaque")),
            (
                "other labels",
                Some(BTreeMap::from([("app".into(), "x".into())])),
                None,
            ),
            ("false", Some(labels("false")), None),
            ("True", Some(labels("True")), None),
        ] {
            assert_eq!(
                usable_secret(l.as_ref(), t),
                Err(CredentialsError::NotMarked),
                "{name}"
            );
        }
        let sa = usable_secret(Some(&labels("true")), Some(SERVICE_ACCOUNT_TOKEN_TYPE));
        assert_eq!(sa, Err(CredentialsError::ServiceAccountToken));
        let shown = CredentialsError::NotMarked.to_string();
        assert!(shown.contains("tollgate.dev/credentials"), "{shown}");
    }

    #[test]
    fn an_empty_secret_names_the_keys_expected() {
        let e = from_secret_data(&data(&[])).unwrap_err().to_string();
        assert!(
            e.contains("`token`") && e.contains("`username`") && e.contains("`password`"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_environment_is_an_open_peer() {
        assert_eq!(from_environment(ENV, None, None, None), Ok(None));
        assert_eq!(
            from_environment(ENV, Some("t"), None, None),
            Ok(Some(Credentials::Bearer(Secret::new("t"))))
        );
        let e = from_environment(ENV, Some("t"), Some("u"), Some("p")).unwrap_err();
        assert_eq!(e, CredentialsError::Conflicting { origin: ENV });
        assert!(
            e.to_string().contains("X_TOKEN, X_USERNAME, X_PASSWORD"),
            "{e}"
        );
        assert!(matches!(
            from_environment(ENV, Some(""), None, None),
            Err(CredentialsError::Empty { key: "token", .. })
        ));
        // The variable is named, so the message says exactly what to fix.
        let e = from_environment(ENV, Some("abc\ndef"), None, None).unwrap_err();
        assert!(
            e.to_string().starts_with("the credential X_TOKEN contains"),
            "{e}"
        );
        let e = from_environment(ENV, Some("tökén"), None, None).unwrap_err();
        assert_eq!(
            e,
            CredentialsError::NotHeaderText {
                key: "token",
                origin: ENV
            }
        );
        assert!(e.to_string().contains("X_TOKEN"), "{e}");
        let e = from_environment(ENV, None, Some("u"), Some("")).unwrap_err();
        assert!(e.to_string().contains("X_PASSWORD is empty"), "{e}");
        // Basic auth is base64 encoded: any UTF-8 may be in it.
        assert!(from_environment(ENV, None, Some("jürgen"), Some("pässword")).is_ok());
    }

    #[test]
    fn no_value_is_ever_shown() {
        let basic = Credentials::Basic {
            username: "alice-user".into(),
            password: Secret::new("hunter2-pass"),
        };
        let shown = format!(
            "{basic:?} {:?}",
            Credentials::Bearer(Secret::new("tok-123"))
        );
        for s in ["alice-user", "hunter2-pass", "tok-123"] {
            assert!(!shown.contains(s), "{shown}");
        }
        assert_eq!(basic.kind(), "basic auth");
        assert_eq!(basic.secret_values(), vec!["alice-user", "hunter2-pass"]);
        let header = "YWxpY2UtdXNlcjpodW50ZXIyLXBhc3M="; // base64("alice-user:hunter2-pass")
        let body = format!("denied alice-user hunter2-pass Basic {header}");
        assert_eq!(
            basic.scrub(&body),
            "denied [redacted] [redacted] Basic [redacted]"
        );
        let e = from_secret_data(&data(&[("token", b"a\nsecret-b")])).unwrap_err();
        assert!(!e.to_string().contains("secret-b"), "{e}");
    }
}
