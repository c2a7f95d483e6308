//! The plain-HTTP client the peer tests use to talk to pods, operators and Prometheus on loopback
//! (built through the crate's client builder, so it has the same TLS setup).

use std::time::Duration;

/// An HTTP client for talking to pods and Prometheus (plain HTTP on loopback).
pub fn http() -> reqwest::Client {
    tollgate::util::http::client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}
