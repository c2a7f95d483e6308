//! One bounded HTTP exchange with a pod, shared by the attestor and the smoke checks: a per-request
//! deadline over connect, headers and body, a cap on the body size, no proxy, no redirects.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;

/// Largest body read from a pod by default; past it the answer is refused as garbage.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a pod gave no usable HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
}

/// Status and (capped) body of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The HTTP client for pods: no proxy (pod IPs are reached directly), no redirects (an answer
/// elsewhere is not this pod's answer), a connect timeout as a first line of defence.
pub fn pod_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    crate::util::http::client_builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
}

/// `http://<ip>:<port><path>`, with IPv6 addresses bracketed.
pub fn pod_url(ip: IpAddr, port: u16, path: &str) -> String {
    format!("http://{}{}", SocketAddr::new(ip, port), path)
}

/// Send one request and read the answer, all within `timeout`.
pub async fn exchange(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    max_body_bytes: usize,
) -> Result<ProbeResponse, ProbeError> {
    let work = async {
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > max_body_bytes {
                return Err(ProbeError::BodyTooLarge(max_body_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(ProbeResponse { status, body })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(ProbeError::Timeout(_))) | Err(_) => Err(ProbeError::Timeout(timeout)),
        Ok(Err(e)) => Err(e),
    }
}

fn classify(e: reqwest::Error) -> ProbeError {
    if e.is_timeout() {
        // The caller replaces the duration with its own deadline.
        ProbeError::Timeout(Duration::ZERO)
    } else if e.is_connect() {
        ProbeError::Connect(error_chain(&e))
    } else {
        ProbeError::Transport(error_chain(&e))
    }
}

/// The error and its sources on one line ("error sending request: connection refused").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// A short, printable excerpt of a body for error messages.
pub fn excerpt(body: &[u8], max_chars: usize) -> String {
    crate::util::text::excerpt(&String::from_utf8_lossy(body), max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bracket_ipv6() {
        assert_eq!(
            pod_url("127.0.20.1".parse().unwrap(), 8080, "/version"),
            "http://127.0.20.1:8080/version"
        );
        assert_eq!(
            pod_url("::1".parse().unwrap(), 80, "/v"),
            "http://[::1]:80/v"
        );
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt(b"abc\ndef", 100), "abc def");
        assert_eq!(excerpt(b"abcdef", 3), "abc…");
        assert_eq!(excerpt(&[0xff, b'a'], 10), "\u{fffd}a");
    }
}
