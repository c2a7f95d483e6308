//! Small helpers with one copy each, used by every layer and depending on no other module of
//! the crate (util sits at the bottom: `util <- crd <- {gates, analysis, traffic} <- rollout <-
//! runtime <- cli`).
//!
//! - [`duration`]: the Go-style duration every CLI flag takes (`1m30s`, `500ms`, bare seconds),
//!   and a duration serialized as milliseconds.
//! - [`secret`]: a string that zeroes its memory on drop and never prints ([`secret::Secret`]).
//! - [`credentials`]: a bearer token or basic auth read from a Kubernetes Secret's data or the
//!   environment, with one fail-closed rule set for the broker and Prometheus alike.
//! - [`retry`]: exponential backoff with jitter (`backon`), `Retry-After`, and the retry policy of
//!   each caller, table-tested side by side.
//! - [`text`]: shortening on character boundaries and making outside text printable.
//! - [`number`]: how a measured number is written for people (`1.922e6`, `0.850`).
//! - [`output`]: the `--output text|json|yaml` choice every command shares.
//! - [`http`]: the one HTTP client builder (TLS provider, user agent, no redirects, no
//!   link-local addresses).
//! - [`hosts`]: the allow-list patterns for peer hosts and the addresses always refused.

pub mod credentials;
pub mod duration;
pub mod hosts;
pub mod http;
pub mod number;
pub mod output;
pub mod retry;
pub mod secret;
pub mod text;
