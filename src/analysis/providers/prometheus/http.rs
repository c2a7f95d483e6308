//! One query over HTTP: the request (instant or range, with Prometheus' own timeout a little
//! shorter than ours), the body read under its size bound, and every failure typed.

use std::time::Duration;

use jiff::Timestamp;

use super::response::{self, Answer, Limits};
use super::PrometheusProvider;
use crate::analysis::providers::ProviderError;
use crate::util::text::shorten_bytes;

/// When a query is evaluated.
#[derive(Debug, Clone, Copy)]
pub(super) enum Eval {
    Instant(Timestamp),
    /// Points at `start`, `start + step`, ... `end`.
    Range {
        start: Timestamp,
        end: Timestamp,
        step_millis: i64,
    },
}

pub(super) fn unix_seconds(t: Timestamp) -> String {
    let ms = t.as_millisecond();
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

impl PrometheusProvider {
    /// Run one PromQL expression: an instant query at `at`.
    pub async fn instant_query(&self, expr: &str, at: Timestamp) -> Result<Answer, ProviderError> {
        self.run(expr, Eval::Instant(at)).await
    }

    /// Run one PromQL expression as a range query.
    pub async fn range_query(
        &self,
        expr: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<Answer, ProviderError> {
        let step_millis = i64::try_from(step.as_millis()).unwrap_or(i64::MAX).max(1);
        self.run(
            expr,
            Eval::Range {
                start,
                end,
                step_millis,
            },
        )
        .await
    }

    pub(super) async fn run(&self, expr: &str, eval: Eval) -> Result<Answer, ProviderError> {
        let (path, mut params) = match eval {
            Eval::Instant(t) => (
                "api/v1/query",
                vec![("query", expr.to_string()), ("time", unix_seconds(t))],
            ),
            Eval::Range {
                start,
                end,
                step_millis,
            } => (
                "api/v1/query_range",
                vec![
                    ("query", expr.to_string()),
                    ("start", unix_seconds(start)),
                    ("end", unix_seconds(end)),
                    (
                        "step",
                        format!("{}.{:03}", step_millis / 1000, step_millis % 1000),
                    ),
                ],
            ),
        };
        // Ask Prometheus to give up a little before we do, so its timeout error comes back typed.
        let server_timeout = self
            .timeout
            .as_millis()
            .saturating_sub(self.timeout.as_millis() / 10)
            .max(1);
        params.push(("timeout", format!("{server_timeout}ms")));
        let url = self
            .base
            .join(path)
            .map_err(|e| ProviderError::Config(format!("address {}: {e}", self.base)))?;
        let mut req = self.client.get(url).query(&params);
        if let Some(credentials) = &self.auth {
            req = credentials.authorize(req);
        }
        let mut resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let cap = self.config.max_body_bytes;
        if let Some(len) = resp.content_length() {
            if len > cap as u64 {
                return Err(ProviderError::TooLarge(format!(
                    "body of {len} bytes, more than the limit of {cap}"
                )));
            }
        }
        // The body's buffer and the parsed answer are charged to the process's budget while
        // this read holds them; a body that would pass the cap stops at the cap.
        let mut held = self.budget.hold();
        let mut body: Vec<u8> = Vec::new();
        if let Some(len) = resp.content_length() {
            held.grow(len as usize)?;
            body.reserve_exact(len as usize);
        }
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? {
            let needed = body.len() + chunk.len();
            if needed > cap {
                return Err(ProviderError::TooLarge(format!(
                    "body over the limit of {cap} bytes"
                )));
            }
            if needed > body.capacity() {
                // Doubling, never past the cap: the buffer is at most the cap, and what it
                // holds in room is charged, not only what it holds in bytes.
                let room = needed.max(body.capacity() * 2).min(cap);
                held.grow(room)?;
                body.reserve_exact(room - body.len());
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            if let Some((error_type, message)) = response::error_of(&body) {
                return Err(ProviderError::Query {
                    error_type,
                    message,
                });
            }
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                return Err(ProviderError::Unauthorized {
                    status: status.as_u16(),
                });
            }
            return Err(ProviderError::Http {
                status: status.as_u16(),
                excerpt: shorten_bytes(&String::from_utf8_lossy(&body), 200),
            });
        }
        let buffer = body.capacity();
        let answer = response::parse_charged(
            &body,
            Limits {
                max_series: self.config.max_series,
                max_points: self.config.max_samples,
            },
            &mut |kept| held.grow_to(buffer + kept),
        )?;
        // The body is no longer needed; the parsed answer is small (bounded above) and becomes
        // counts right after this returns.
        drop(body);
        drop(held);
        if !answer.warnings.is_empty() && !self.config.accept_warnings {
            return Err(ProviderError::Warnings(answer.warnings));
        }
        Ok(answer)
    }

    fn transport_error(&self, e: &reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            return ProviderError::Timeout(self.timeout);
        }
        // The chain of causes says what actually happened (refused, reset, certificate...). The URL
        // is left out (its query string is the whole PromQL); the base address says where.
        let mut msg = format!("{}: {}", self.base, e.to_string().replace(" for url", ""));
        if let Some(u) = e.url() {
            msg = msg.replace(&format!(" ({u})"), "");
        }
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        if e.is_connect() {
            ProviderError::Unreachable(msg)
        } else {
            ProviderError::Transport(msg)
        }
    }
}
