//! The one place that builds HTTP clients, so every peer (broker, pods, Prometheus, webhooks) gets the
//! same TLS setup. reqwest is built with `rustls-no-provider`, sharing kube's `ring` provider
//! instead of compiling a second crypto library; the provider must be installed once per process.

use std::sync::Once;

static INSTALL_PROVIDER: Once = Once::new();

/// Install rustls' ring provider as the process default (idempotent, cheap after the first call).
pub fn install_crypto_provider() {
    INSTALL_PROVIDER.call_once(|| {
        // An error only means another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder with the crypto provider installed and tollgate's user agent.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_client_twice() {
        assert!(client_builder().build().is_ok());
        assert!(client_builder().build().is_ok());
    }
}
