//! The reconcile pipeline of one Rollout: `needs` (what to look at) → observe → `decide`
//! (pure: spec, status, observations, now → plan) → apply.
//!
//! Every decision is made in [`decide`]; the rest only gathers facts and carries out plans.

pub mod apply;
pub mod children;
pub mod decide;
pub mod observe;
pub mod peers;
pub mod reconcile;
