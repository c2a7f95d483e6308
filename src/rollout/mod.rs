//! The pure core of the operator: [`decide`] (spec, status, observations, now → plan) and
//! [`children`] (the Deployments a plan calls for). Nothing here touches the network, the clock
//! or a kube client; the I/O around it (fetch → needs → observe → decide → apply) is
//! `runtime::reconcile`.
//!
//! Every decision is made in [`decide`]; the rest only gathers facts and carries out plans.

pub mod children;
pub mod decide;
pub mod policy;
