//! tollgate's integration tests, as one test binary (one link of the crate instead of one per
//! file). Each module is one former test file and keeps its name, so
//! `cargo test --test it broker_stub::` runs what `--test broker_stub` ran.
//!
//! Tiers (see README's Tests section):
//! - plain `cargo test`: every test that needs no peer;
//! - `#[ignore = "needs pact-stub-server..."]`, `#[ignore = "needs prometheus and demo-app..."]`
//!   and `#[ignore = "needs the local cluster..."]`: the peer tiers, run by `tests/run-all.sh`
//!   (`-- --include-ignored`), which starts what they need. Without their peer they fail with a
//!   message saying how to get it; they never pass vacuously.
//!
//! Shared harness lives in [`support`], one facility per file.

mod support;

mod argocd_actions;
mod broker_cli;
mod broker_consumer_contract;
mod broker_credentials;
mod broker_faults;
mod broker_stub;
mod cli_status;
mod cluster_peers;
mod dashboard_bench;
mod dashboard_browser;
mod e2e_adoption;
mod e2e_child_applies;
mod e2e_fleet_sources;
mod e2e_hpa;
mod e2e_instant_rollback;
mod e2e_metrics;
mod e2e_rollback_ready;
mod e2e_rollout;
mod e2e_scale_mid_canary;
mod e2e_traffic_routes;
mod e2e_undeployment;
mod fault_matrix;
mod fault_matrix_rollouts;
mod fault_matrix_smoke;
mod fleet_build_info;
mod fleet_check;
mod fleet_image_id;
mod fleet_keys;
mod fleet_smoke;
mod fleet_verify;
mod gitops_example;
mod gitops_health;
mod grafana_dashboard;
mod install;
mod module_direction;
mod notifications;
mod policies;
mod prometheus_faults;
mod prometheus_live;
mod prometheus_tls;
mod report_browser;
#[path = "../stats/main.rs"]
mod stats;
mod tenancy;
mod terminal_text;
mod traffic_routes;
