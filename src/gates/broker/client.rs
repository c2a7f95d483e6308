//! The broker client: a small trait ([`BrokerApi`]) and its reqwest implementation ([`HttpBroker`]).
//!
//! One method call is one exchange (or, for a record, one HAL walk): no retries happen here. Retrying
//! is the caller's decision, made by the pure functions in [`super::gate`], so the controller can
//! spread retries over reconciles and the CLI can sleep between them.

use std::future::Future;

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use base64::Engine as _;

use super::config::BrokerConfig;
use super::error::{BrokerError, ConfigError};
use super::types::{
    DeployedVersion, DeploymentRecord, Environment, MatrixAnswer, MatrixQuery, RecordedDeployment,
    UndeploymentRecord,
};

mod deployed;
mod undeploy;
use crate::util::credentials::Credentials;
use crate::util::retry::parse_retry_after;
use crate::util::secret::Secret;
use crate::util::text;
pub use deployed::parse_deployed_versions;

const HAL_JSON: &str = "application/hal+json";
/// Error bodies are only read this far; they are shown in messages, not parsed whole.
const ERROR_BODY_CAP: usize = 16 * 1024;
/// How much of a body an error message quotes.
const EXCERPT_CHARS: usize = 200;

/// The broker operations tollgate needs. Implemented by [`HttpBroker`]; tests and the controller can
/// substitute their own.
pub trait BrokerApi: Send + Sync {
    /// `GET /matrix` with this query, parsed whole.
    fn matrix(
        &self,
        query: &MatrixQuery,
    ) -> impl Future<Output = Result<MatrixAnswer, BrokerError>> + Send;

    /// Record that `record.version` now runs in `record.environment`, through the HAL flow:
    /// index -> `pb:pacticipant-version` -> `pb:record-deployment` named after the environment -> POST.
    /// The broker treats a repeated record as the same record, so calling this again is safe.
    fn record_deployment(
        &self,
        record: &DeploymentRecord,
    ) -> impl Future<Output = Result<RecordedDeployment, BrokerError>> + Send;

    /// Record that the versions `record` names no longer run in its environment, as the
    /// official client's `record-undeployment` does: the environment's currently deployed
    /// versions of the pacticipant, then a PATCH `{"currentlyDeployed": false}` of each one on
    /// the record's application instance (and version, when given). Returns those undeployed;
    /// empty when none was deployed there (so calling it again is safe).
    fn record_undeployment(
        &self,
        record: &UndeploymentRecord,
    ) -> impl Future<Output = Result<Vec<DeployedVersion>, BrokerError>> + Send;

    /// The environments the broker knows (index -> `pb:environments` -> GET).
    fn environments(&self) -> impl Future<Output = Result<Vec<Environment>, BrokerError>> + Send;

    /// The versions of `pacticipant` the broker holds as currently deployed to `environment`.
    fn currently_deployed(
        &self,
        pacticipant: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Vec<DeployedVersion>, BrokerError>> + Send;
}

/// The reqwest implementation of [`BrokerApi`].
#[derive(Clone, Debug)]
pub struct HttpBroker {
    config: BrokerConfig,
    http: reqwest::Client,
    /// Strings that must never appear in an error message (secrets and their encodings).
    scrub: Vec<Secret>,
}

impl HttpBroker {
    pub fn new(config: BrokerConfig) -> Result<Self, ConfigError> {
        let http = crate::util::http::client_builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Redirects would carry the Authorization header to wherever the broker points; follow none.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient {
                reason: error_chain(&e),
            })?;
        let mut scrub = Vec::new();
        if let Some(c) = &config.credentials {
            scrub.extend(
                c.secret_values()
                    .into_iter()
                    .filter(|s| s.len() >= 3)
                    .map(Secret::new),
            );
            if let Credentials::Basic { username, password } = c {
                // The Authorization header's form, should a proxy echo it back.
                scrub.push(Secret::new(
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose())),
                ));
            }
        }
        Ok(Self {
            config,
            http,
            scrub,
        })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    fn scrub(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.scrub.iter().map(Secret::expose).collect();
        text::redact(text, &secrets)
    }

    fn url(&self, path: &str) -> Result<Url, BrokerError> {
        self.config.base_url.join(path).map_err(|e| {
            BrokerError::Config(ConfigError::InvalidBaseUrl {
                reason: e.to_string(),
            })
        })
    }

    /// Resolve a link the broker gave, refusing one that leaves the configured origin.
    fn resolve_link(&self, href: &str) -> Result<Url, BrokerError> {
        let url = self
            .config
            .base_url
            .join(href)
            .map_err(|e| BrokerError::UnexpectedShape {
                url: self.config.base_url.to_string(),
                detail: format!("link {href:?} is not a URL: {e}"),
            })?;
        let base = &self.config.base_url;
        if url.origin() != base.origin() {
            return Err(BrokerError::LinkOffOrigin {
                link_origin: url.origin().ascii_serialization(),
                base_origin: base.origin().ascii_serialization(),
            });
        }
        Ok(url)
    }

    /// Send one request and return the JSON body of a 2xx answer, or a typed error.
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        query: Option<&[(String, String)]>,
        body: Option<&Value>,
        allow_empty: bool,
    ) -> Result<(u16, Option<Value>), BrokerError> {
        let body = body.map(|b| (b, "application/json"));
        self.exchange_as(method, url, query, body, allow_empty)
            .await
    }

    /// [`exchange`](Self::exchange) with the body's content type given (a merge patch).
    async fn exchange_as(
        &self,
        method: Method,
        url: Url,
        query: Option<&[(String, String)]>,
        body: Option<(&Value, &str)>,
        allow_empty: bool,
    ) -> Result<(u16, Option<Value>), BrokerError> {
        let shown = url.to_string();
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(ACCEPT, HAL_JSON);
        if let Some(q) = query {
            req = req.query(q);
        }
        if let Some((b, content_type)) = body {
            // reqwest's json() keeps a content type already set.
            req = req.header(CONTENT_TYPE, content_type).json(b);
        }
        if let Some(credentials) = &self.config.credentials {
            req = credentials.authorize(req);
        }
        tracing::debug!(method = %method, url = %shown, "pact broker request");
        let mut resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(&shown, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let cap = if status.is_success() {
            self.config.max_body_bytes
        } else {
            ERROR_BODY_CAP.min(self.config.max_body_bytes)
        };
        let (bytes, truncated) = match read_capped(&mut resp, cap).await {
            Ok(r) => r,
            Err(e) => return Err(self.transport_error(&shown, &e)),
        };
        tracing::debug!(url = %shown, status = status.as_u16(), bytes = bytes.len(), "pact broker answer");
        interpret(
            status,
            &headers,
            &bytes,
            truncated,
            cap,
            allow_empty,
            &shown,
        )
        .map_err(|e| self.scrub_error(e))
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> BrokerError {
        let detail = self.scrub(&error_chain(e));
        if e.is_timeout() {
            let timeout = if e.is_connect() {
                self.config.connect_timeout
            } else {
                self.config.request_timeout
            };
            BrokerError::Timeout {
                url: url.to_string(),
                timeout,
            }
        } else if e.is_connect() {
            BrokerError::Connect {
                url: url.to_string(),
                detail,
            }
        } else {
            BrokerError::Transport {
                url: url.to_string(),
                detail,
            }
        }
    }

    fn scrub_error(&self, e: BrokerError) -> BrokerError {
        match e {
            BrokerError::Unauthorized { url, body } => BrokerError::Unauthorized {
                url,
                body: self.scrub(&body),
            },
            BrokerError::Forbidden { url, body } => BrokerError::Forbidden {
                url,
                body: self.scrub(&body),
            },
            BrokerError::NotFound { url, body } => BrokerError::NotFound {
                url,
                body: self.scrub(&body),
            },
            BrokerError::BadRequest { url, errors, body } => BrokerError::BadRequest {
                url,
                errors: errors.iter().map(|s| self.scrub(s)).collect(),
                body: self.scrub(&body),
            },
            BrokerError::Status {
                status,
                url,
                body,
                retry_after,
            } => BrokerError::Status {
                status,
                url,
                body: self.scrub(&body),
                retry_after,
            },
            BrokerError::InvalidJson {
                url,
                content_type,
                detail,
                excerpt,
            } => BrokerError::InvalidJson {
                url,
                content_type,
                detail,
                excerpt: self.scrub(&excerpt),
            },
            BrokerError::HtmlPage { status, url, title } => BrokerError::HtmlPage {
                status,
                url,
                title: title.map(|t| self.scrub(&t)),
            },
            other => other,
        }
    }

    async fn get_json(&self, url: Url) -> Result<Value, BrokerError> {
        let (_, v) = self.exchange(Method::GET, url, None, None, false).await?;
        v.ok_or_else(|| BrokerError::UnexpectedShape {
            url: self.config.base_url.to_string(),
            detail: "no body".into(),
        })
    }

    /// The href of `rel` on the broker's index (a `MissingRelation` naming the index when the
    /// index has none).
    async fn index_link(&self, rel: &str) -> Result<String, BrokerError> {
        let url = self.url("")?;
        let index = self.get_json(url.clone()).await?;
        required_link(&index, &url, rel)
    }
}

impl BrokerApi for HttpBroker {
    async fn matrix(&self, query: &MatrixQuery) -> Result<MatrixAnswer, BrokerError> {
        let url = self.url("matrix")?;
        let shown = url.to_string();
        let pairs = query.to_pairs();
        let (_, v) = self
            .exchange(Method::GET, url, Some(&pairs), None, false)
            .await?;
        let v = v.unwrap_or(Value::Null);
        serde_json::from_value::<MatrixAnswer>(v).map_err(|e| BrokerError::UnexpectedShape {
            url: shown,
            detail: e.to_string(),
        })
    }

    async fn record_deployment(
        &self,
        record: &DeploymentRecord,
    ) -> Result<RecordedDeployment, BrokerError> {
        let template = self.index_link("pb:pacticipant-version").await?;
        let href = expand_template(
            &template,
            &[
                ("pacticipant", &record.pacticipant),
                ("version", &record.version),
            ],
        );
        let version_url = self.resolve_link(&href)?;
        let version = self.get_json(version_url.clone()).await?;
        let links = named_links(&version, "pb:record-deployment");
        if links.is_empty() && !has_link(&version, "pb:record-deployment") {
            // No environment at all, or a broker too old for deployments: say which.
            return Err(BrokerError::EnvironmentNotAvailable {
                environment: record.environment.clone(),
                available: Vec::new(),
            });
        }
        let Some((href, _)) = links
            .iter()
            .find(|(_, name)| name.as_deref() == Some(record.environment.as_str()))
        else {
            return Err(BrokerError::EnvironmentNotAvailable {
                environment: record.environment.clone(),
                available: links.iter().filter_map(|(_, n)| n.clone()).collect(),
            });
        };
        let post_url = self.resolve_link(href)?;
        let shown = post_url.to_string();
        // `target` is the older name of `applicationInstance`; the official client sends both, so
        // brokers of either age understand the record.
        let body = match &record.application_instance {
            Some(i) => serde_json::json!({ "applicationInstance": i, "target": i }),
            None => serde_json::json!({}),
        };
        let (status, answer) = self
            .exchange(Method::POST, post_url, None, Some(&body), true)
            .await?;
        let field = |k: &str| {
            answer
                .as_ref()
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Ok(RecordedDeployment {
            url: shown,
            status,
            uuid: field("uuid"),
            application_instance: field("applicationInstance")
                .or_else(|| field("target"))
                .or_else(|| record.application_instance.clone()),
        })
    }

    async fn currently_deployed(
        &self,
        pacticipant: &str,
        environment: &str,
    ) -> Result<Vec<DeployedVersion>, BrokerError> {
        self.currently_deployed_versions(pacticipant, environment)
            .await
            .map_err(|e| self.scrub_error(e))
    }

    async fn record_undeployment(
        &self,
        record: &UndeploymentRecord,
    ) -> Result<Vec<DeployedVersion>, BrokerError> {
        self.undeploy(record).await.map_err(|e| self.scrub_error(e))
    }

    async fn environments(&self) -> Result<Vec<Environment>, BrokerError> {
        let href = self.index_link("pb:environments").await?;
        let url = self.resolve_link(&href)?;
        let shown = url.to_string();
        let v = self.get_json(url).await?;
        parse_environments(&v).ok_or_else(|| BrokerError::UnexpectedShape {
            url: shown,
            detail: "neither _embedded.environments nor _links[\"pb:environments\"] is a list of named environments"
                .into(),
        })
    }
}

/// Read a body up to `cap` bytes; `true` when more was there (the rest is not read).
async fn read_capped(
    resp: &mut reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    if let Some(len) = resp.content_length() {
        if len > cap as u64 {
            return Ok((Vec::new(), true));
        }
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > cap {
            let room = cap - buf.len();
            buf.extend_from_slice(&chunk[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, false))
}

/// Turn a status, headers and (capped) body into JSON or a typed error. Pure (and fuzzed).
pub fn interpret(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    truncated: bool,
    cap: usize,
    allow_empty: bool,
    url: &str,
) -> Result<(u16, Option<Value>), BrokerError> {
    let code = status.as_u16();
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = String::from_utf8_lossy(body);
    let looks_html = content_type.contains("html") || {
        let t = text.trim_start().to_ascii_lowercase();
        t.starts_with("<!doctype html") || t.starts_with("<html")
    };
    if status.is_success() {
        if truncated {
            return Err(BrokerError::BodyTooLarge {
                url: url.to_string(),
                limit: cap,
            });
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            if allow_empty {
                return Ok((code, None));
            }
            return Err(BrokerError::EmptyBody {
                status: code,
                url: url.to_string(),
            });
        }
        if looks_html {
            return Err(BrokerError::HtmlPage {
                status: code,
                url: url.to_string(),
                title: html_title(&text),
            });
        }
        return match serde_json::from_slice::<Value>(body) {
            Ok(v) => Ok((code, Some(v))),
            Err(e) => Err(BrokerError::InvalidJson {
                url: url.to_string(),
                content_type: if content_type.is_empty() {
                    "no content type".into()
                } else {
                    content_type
                },
                detail: e.to_string(),
                excerpt: excerpt(&text),
            }),
        };
    }
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let shown_body = if looks_html {
        html_title(&text)
            .map(|t| format!("HTML page {t:?}"))
            .unwrap_or_else(|| "HTML page".into())
    } else {
        excerpt(&text)
    };
    let url = url.to_string();
    Err(match code {
        400 => {
            let errors = serde_json::from_slice::<Value>(body)
                .ok()
                .map(|v| flatten_errors(&v))
                .unwrap_or_default();
            BrokerError::BadRequest {
                url,
                errors,
                body: shown_body,
            }
        }
        401 => BrokerError::Unauthorized {
            url,
            body: shown_body,
        },
        403 => BrokerError::Forbidden {
            url,
            body: shown_body,
        },
        404 => BrokerError::NotFound {
            url,
            body: shown_body,
        },
        429 => BrokerError::RateLimited { url, retry_after },
        _ => BrokerError::Status {
            status: code,
            url,
            body: shown_body,
            retry_after,
        },
    })
}

/// The broker's `errors`: a list of strings, or an object of field -> message(s).
fn flatten_errors(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v.get("errors") {
        Some(Value::Array(a)) => out.extend(a.iter().map(value_text)),
        Some(Value::Object(o)) => {
            for (field, msgs) in o {
                match msgs {
                    Value::Array(a) => {
                        out.extend(a.iter().map(|m| format!("{field}: {}", value_text(m))))
                    }
                    m => out.push(format!("{field}: {}", value_text(m))),
                }
            }
        }
        Some(other) => out.push(value_text(other)),
        None => {}
    }
    out
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn excerpt(text: &str) -> String {
    text::excerpt(text, EXCERPT_CHARS)
}

fn html_title(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let end = lower[open_end..].find("</title")? + open_end;
    let t = text.get(open_end..end)?.trim();
    if t.is_empty() {
        None
    } else {
        Some(text::shorten(t, EXCERPT_CHARS))
    }
}

/// A link relation's href when it is a single `{href}` object (or the first of a list).
fn single_link(resource: &Value, rel: &str) -> Option<String> {
    match resource.get("_links")?.get(rel)? {
        Value::Object(o) => o.get("href")?.as_str().map(str::to_string),
        Value::Array(a) => a.first()?.get("href")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// The single link `rel` of `resource` (read from `at`), which the broker's API promises.
fn required_link(resource: &Value, at: &Url, rel: &str) -> Result<String, BrokerError> {
    single_link(resource, rel).ok_or_else(|| BrokerError::MissingRelation {
        url: at.to_string(),
        relation: rel.into(),
    })
}

fn has_link(resource: &Value, rel: &str) -> bool {
    resource.get("_links").and_then(|l| l.get(rel)).is_some()
}

/// Every `{href, name}` of a link relation (HAL allows an object or a list).
fn named_links(resource: &Value, rel: &str) -> Vec<(String, Option<String>)> {
    let one = |o: &Value| {
        let href = o.get("href")?.as_str()?.to_string();
        let name = o.get("name").and_then(Value::as_str).map(str::to_string);
        Some((href, name))
    };
    match resource.get("_links").and_then(|l| l.get(rel)) {
        Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
        Some(o @ Value::Object(_)) => one(o).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The environments of a `pb:environments` answer (embedded, or as named links). Pure.
pub fn parse_environments(v: &Value) -> Option<Vec<Environment>> {
    if let Some(list) = v
        .get("_embedded")
        .and_then(|e| e.get("environments"))
        .and_then(Value::as_array)
    {
        return list
            .iter()
            .map(|e| serde_json::from_value::<Environment>(e.clone()).ok())
            .collect();
    }
    let links = named_links(v, "pb:environments");
    if links.is_empty() {
        return None;
    }
    links
        .into_iter()
        .map(|(_, name)| {
            name.map(|name| Environment {
                name,
                uuid: None,
                production: None,
            })
        })
        .collect()
}

/// Fill `{name}` placeholders of a HAL URI template with percent-encoded path segments.
pub fn expand_template(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &encode_segment(value));
        // Some proxies hand the template back percent-encoded.
        out = out.replace(&format!("%7B{name}%7D"), &encode_segment(value));
    }
    out
}

fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error and its sources, joined: reqwest's own text ("error sending request") says little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use reqwest::header::HeaderValue;

    fn ct(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn scrubs_every_form_of_the_credentials() {
        let basic = Credentials::Basic {
            username: "ci-user".into(),
            password: Secret::new("pa55word"),
        };
        let config = BrokerConfig::new("http://127.0.0.1:1/", Some(basic)).unwrap();
        let broker = HttpBroker::new(config).unwrap();
        // base64("ci-user:pa55word"), as an Authorization: Basic header carries it.
        let echoed = "auth Y2ktdXNlcjpwYTU1d29yZA== for ci-user with pa55word";
        assert_eq!(
            broker.scrub(echoed),
            "auth [redacted] for [redacted] with [redacted]"
        );
    }

    #[test]
    fn template_expansion_encodes() {
        assert_eq!(
            expand_template(
                "/pacticipants/{pacticipant}/versions/{version}",
                &[("pacticipant", "Foo Thing"), ("version", "1.0/x")]
            ),
            "/pacticipants/Foo%20Thing/versions/1.0%2Fx"
        );
    }

    #[test]
    fn interpret_distinguishes_bodies() {
        let ok = StatusCode::OK;
        let e = interpret(ok, &HeaderMap::new(), b"", false, 10, false, "u").unwrap_err();
        assert!(matches!(e, BrokerError::EmptyBody { .. }));
        let e = interpret(
            ok,
            &ct("text/html"),
            b"<html><title>Sign in</title></html>",
            false,
            100,
            false,
            "u",
        )
        .unwrap_err();
        assert!(matches!(e, BrokerError::HtmlPage { title: Some(ref t), .. } if t == "Sign in"));
        let e = interpret(
            ok,
            &ct("application/json"),
            b"{nope",
            false,
            100,
            false,
            "u",
        )
        .unwrap_err();
        assert!(matches!(e, BrokerError::InvalidJson { .. }));
        let e = interpret(ok, &ct("application/json"), b"{}", true, 2, false, "u").unwrap_err();
        assert!(matches!(e, BrokerError::BodyTooLarge { limit: 2, .. }));
        assert!(interpret(
            StatusCode::CREATED,
            &HeaderMap::new(),
            b"",
            false,
            10,
            true,
            "u"
        )
        .is_ok());
    }

    /// The error `interpret` makes of a failed answer (a GET, at `u`).
    fn failure(status: StatusCode, headers: &HeaderMap, body: &[u8], limit: usize) -> BrokerError {
        interpret(status, headers, body, false, limit, false, "u").unwrap_err()
    }

    #[test]
    fn interpret_statuses() {
        let e = failure(
            StatusCode::BAD_REQUEST,
            &ct("application/json"),
            br#"{"errors":{"environment":["Environment with name 'prod' does not exist"]}}"#,
            1000,
        );
        assert_eq!(
            e.to_string(),
            "the Pact Broker rejected the request (HTTP 400 Bad Request) at u: environment: Environment with name 'prod' does not exist"
        );
        let e = failure(StatusCode::UNAUTHORIZED, &HeaderMap::new(), b"", 10);
        assert!(matches!(e, BrokerError::Unauthorized { .. }));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let e = failure(StatusCode::TOO_MANY_REQUESTS, &h, b"", 10);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_transient());
        let e = failure(
            StatusCode::BAD_GATEWAY,
            &ct("text/html"),
            b"<title>502</title>",
            100,
        );
        assert!(e.is_transient());
        assert!(e.to_string().contains("HTML page"), "{e}");
    }

    #[test]
    fn environments_both_shapes() {
        let a = serde_json::json!({"_embedded":{"environments":[{"name":"test","uuid":"u1","production":false}]}});
        assert_eq!(parse_environments(&a).unwrap()[0].name, "test");
        let b = serde_json::json!({"_links":{"pb:environments":[{"href":"h","name":"prod"}]}});
        assert_eq!(parse_environments(&b).unwrap()[0].name, "prod");
        assert!(parse_environments(&serde_json::json!({})).is_none());
    }
}
