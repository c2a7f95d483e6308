//! Helpers of the local test cluster:
//! * [`pods`]: which demo-app process a kwok pod should have (pure; used by the `pod-runner` bin);
//! * [`loadgen`]: a bounded, rate-limited load generator spread uniformly over ready pods or URLs
//!   (used by the `load-gen` bin).
#![forbid(unsafe_code)]

pub mod cidr;
pub mod loadgen;
pub mod pods;

/// Install rustls' ring provider once (reqwest is built without one, like the operator's).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A kube client from `KUBECONFIG` (or the default kubeconfig).
pub async fn kube_client() -> Result<kube::Client, kube::Error> {
    install_crypto_provider();
    kube::Client::try_default().await.map_err(|e| match e {
        kube::Error::InferConfig(e) => kube::Error::InferConfig(e),
        other => other,
    })
}
