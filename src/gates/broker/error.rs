//! Typed errors of the broker client, split into permanent and transient.
//!
//! No variant holds a credential: URLs are checked to carry none, and any text that came from the
//! broker (bodies, error lists) is scrubbed of the configured secret values before it is stored.

use std::time::Duration;

use crate::util::credentials::CredentialsError;

/// A broker configuration that cannot work; waiting will not fix it (permanent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no broker URL: set PACT_BROKER_BASE_URL (CLI) or the broker URL of the Rollout")]
    MissingBaseUrl,
    #[error("the broker URL is not usable: {reason}")]
    InvalidBaseUrl { reason: String },
    #[error(
        "the broker URL carries credentials (user:password@); put them in a token or username/password \
         instead, so they stay out of logs"
    )]
    CredentialsInUrl,
    #[error(
        "the broker URL carries a credential in its query (`{key}=`), which would be dropped or \
         logged; remove it and set PACT_BROKER_TOKEN (CLI) or the Rollout's \
         spec.contractGate.credentialsSecretRef instead"
    )]
    CredentialInQuery { key: String },
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
    #[error("a broker setting is not usable: {reason}")]
    InvalidSetting { reason: String },
    #[error("the HTTP client cannot be built: {reason}")]
    HttpClient { reason: String },
}

/// One failed exchange with the broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot connect to the Pact Broker at {url}: {detail}; check the broker URL and that the broker is up")]
    Connect { url: String, detail: String },

    #[error("the Pact Broker at {url} did not answer within {timeout:?}; the broker is slow or unreachable")]
    Timeout { url: String, timeout: Duration },

    #[error("the request to the Pact Broker at {url} failed: {detail}")]
    Transport { url: String, detail: String },

    #[error("the Pact Broker refused the credentials (HTTP 401 Unauthorized) for {url}; check the token or username/password{}", with_body(.body))]
    Unauthorized { url: String, body: String },

    #[error("the credentials may not do this (HTTP 403 Forbidden) at {url}; recording a deployment needs write access{}", with_body(.body))]
    Forbidden { url: String, body: String },

    #[error("the Pact Broker rejected the request (HTTP 400 Bad Request) at {url}: {}", join_errors(.errors, .body))]
    BadRequest {
        url: String,
        errors: Vec<String>,
        body: String,
    },

    #[error("the Pact Broker has no resource at {url} (HTTP 404){}; check the base URL and that the pacticipant and version exist", with_body(.body))]
    NotFound { url: String, body: String },

    #[error("the Pact Broker is rate limiting (HTTP 429) at {url}{}", retry_after_text(.retry_after))]
    RateLimited {
        url: String,
        retry_after: Option<Duration>,
    },

    #[error("the Pact Broker answered HTTP {status} at {url}{}{}", retry_after_text(.retry_after), with_body(.body))]
    Status {
        status: u16,
        url: String,
        body: String,
        retry_after: Option<Duration>,
    },

    #[error("the Pact Broker answered HTTP {status} with an empty body at {url}, where JSON was expected")]
    EmptyBody { status: u16, url: String },

    #[error(
        "the Pact Broker answered HTTP {status} with an HTML page{} at {url}, not JSON; is the URL pointing at a \
         login page, a proxy or the broker's UI?",
        title_text(.title)
    )]
    HtmlPage {
        status: u16,
        url: String,
        title: Option<String>,
    },

    #[error("the Pact Broker's answer at {url} is not valid JSON ({content_type}): {detail}; starts with {excerpt:?}")]
    InvalidJson {
        url: String,
        content_type: String,
        detail: String,
        excerpt: String,
    },

    #[error("the Pact Broker's answer at {url} is JSON but not in the expected shape: {detail}")]
    UnexpectedShape { url: String, detail: String },

    #[error("the Pact Broker's answer at {url} is larger than the {limit}-byte cap; refusing to read it")]
    BodyTooLarge { url: String, limit: usize },

    #[error("the Pact Broker's resource at {url} has no {relation:?} link; is this a Pact Broker, and a recent enough one?")]
    MissingRelation { url: String, relation: String },

    #[error(
        "the Pact Broker offers no record-deployment link for environment {environment:?} (it offers: {}); \
         create the environment in the broker or fix the name",
        list_or_none(.available)
    )]
    EnvironmentNotAvailable {
        environment: String,
        available: Vec<String>,
    },

    #[error("the Pact Broker advertises a link to {link_origin}, another origin than the configured {base_origin}; \
             refusing to send credentials there (configure tollgate with the broker's public base URL)")]
    LinkOffOrigin {
        link_origin: String,
        base_origin: String,
    },

    #[error("the broker configuration is not usable: {0}")]
    Config(#[from] ConfigError),
}

/// Whether waiting and asking again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Connect errors, timeouts, 5xx, 408, 429: retry with backoff.
    Transient,
    /// Anything else: retrying the same request gives the same answer.
    Permanent,
}

impl BrokerError {
    pub fn class(&self) -> ErrorClass {
        match self {
            BrokerError::Connect { .. }
            | BrokerError::Timeout { .. }
            | BrokerError::Transport { .. }
            | BrokerError::RateLimited { .. } => ErrorClass::Transient,
            BrokerError::Status { status, .. } if *status >= 500 || *status == 408 => {
                ErrorClass::Transient
            }
            // A gateway's HTML error page on 5xx is still a 5xx.
            BrokerError::HtmlPage { status, .. } | BrokerError::EmptyBody { status, .. }
                if *status >= 500 || *status == 408 || *status == 429 =>
            {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// The wait the broker asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BrokerError::RateLimited { retry_after, .. }
            | BrokerError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short stable name of the failure, for status fields, metrics and JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            BrokerError::Connect { .. } => "ConnectError",
            BrokerError::Timeout { .. } => "Timeout",
            BrokerError::Transport { .. } => "TransportError",
            BrokerError::Unauthorized { .. } => "Unauthorized",
            BrokerError::Forbidden { .. } => "Forbidden",
            BrokerError::BadRequest { .. } => "BadRequest",
            BrokerError::NotFound { .. } => "NotFound",
            BrokerError::RateLimited { .. } => "RateLimited",
            BrokerError::Status { .. } => "HttpStatus",
            BrokerError::EmptyBody { .. } => "EmptyBody",
            BrokerError::HtmlPage { .. } => "HtmlPage",
            BrokerError::InvalidJson { .. } => "InvalidJson",
            BrokerError::UnexpectedShape { .. } => "UnexpectedShape",
            BrokerError::BodyTooLarge { .. } => "BodyTooLarge",
            BrokerError::MissingRelation { .. } => "MissingRelation",
            BrokerError::EnvironmentNotAvailable { .. } => "EnvironmentNotAvailable",
            BrokerError::LinkOffOrigin { .. } => "LinkOffOrigin",
            BrokerError::Config(_) => "ConfigError",
        }
    }
}

fn with_body(body: &str) -> String {
    if body.trim().is_empty() {
        " (empty body)".to_string()
    } else {
        format!(": {}", body.trim())
    }
}

fn join_errors(errors: &[String], body: &str) -> String {
    if errors.is_empty() {
        if body.trim().is_empty() {
            "no reason given".to_string()
        } else {
            body.trim().to_string()
        }
    } else {
        errors.join("; ")
    }
}

fn retry_after_text(d: &Option<Duration>) -> String {
    let cap = crate::util::retry::RetryPolicy::BROKER.max_retry_after;
    match d {
        Some(d) if *d > cap => format!(
            ", asked to retry after {}s (tollgate waits at most {}s)",
            d.as_secs(),
            cap.as_secs()
        ),
        Some(d) => format!(", asked to retry after {}s", d.as_secs()),
        None => String::new(),
    }
}

fn title_text(t: &Option<String>) -> String {
    match t {
        Some(t) => format!(" ({t:?})"),
        None => String::new(),
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let s = |status| BrokerError::Status {
            status,
            url: "u".into(),
            body: String::new(),
            retry_after: None,
        };
        assert!(s(500).is_transient());
        assert!(s(503).is_transient());
        assert!(s(408).is_transient());
        assert!(!s(418).is_transient());
        assert!(BrokerError::RateLimited {
            url: "u".into(),
            retry_after: None
        }
        .is_transient());
        assert!(!BrokerError::Unauthorized {
            url: "u".into(),
            body: String::new()
        }
        .is_transient());
        assert!(!BrokerError::InvalidJson {
            url: "u".into(),
            content_type: "application/json".into(),
            detail: "x".into(),
            excerpt: "x".into()
        }
        .is_transient());
    }
}
