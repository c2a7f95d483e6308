//! What the integration tests stand on: real peers started and stopped by guards, and the small
//! helpers around them. Each file owns one facility and says in its header what it is.
//!
//! Peers by tier:
//! - no peer: [`broker`] (a scripted misbehaving broker), [`scripted_webhook`], [`capture`]
//!   (tracing output), [`argocd`] (Argo CD's health check on a real Lua), [`source_imports`]
//!   (reads `src/` for the module-direction check);
//! - local processes: [`fleet`] (demo-app "pods" on loopback addresses), [`prometheus`] (a Debian
//!   Prometheus of a test's own with demo-apps and a counting load loop), [`pact_stub`]
//!   (pact-stub-server serving real contracts), [`own_contract`] (tollgate's consumer contract),
//!   [`toxiproxy`] (a fault proxy between tollgate and a peer);
//! - the local cluster (`tests/cluster/`): [`cluster`] (env file, namespaces, CRDs, chart RBAC),
//!   [`cluster_prometheus`], [`load`] (load-gen), and the e2e world: [`operator`],
//!   [`rollout_manifest`], [`rollout_watch`], [`scenario`], [`http_route`], [`webhook_sink`],
//!   [`dedup_webhook`] (a receiver that drops duplicate idempotency keys and can hold answers);
//! - shared by all: [`http`], [`ports`], [`wait`]; the browser tests: [`webdriver`].

pub mod argocd;
pub mod broker;
pub mod capture;
pub mod cli;
pub mod cluster;
pub mod cluster_prometheus;
pub mod dedup_webhook;
pub mod fleet;
pub mod http;
pub mod http_route;
pub mod install;
pub mod load;
pub mod operator;
pub mod own_contract;
pub mod pact_stub;
pub mod ports;
pub mod prometheus;
pub mod rollout_manifest;
pub mod rollout_watch;
pub mod scenario;
pub mod scripted_webhook;
pub mod source_imports;
pub mod toxiproxy;
pub mod wait;
pub mod webdriver;
pub mod webhook_sink;
