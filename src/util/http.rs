//! The one place that builds HTTP clients, so every peer (broker, pods, Prometheus, webhooks) gets the
//! same TLS setup. reqwest is built with `rustls-no-provider`, sharing kube's `ring` provider
//! instead of compiling a second crypto library; the provider must be installed once per process.
//!
//! Two rules hold for every peer, so no caller can forget them: redirects are never followed (a
//! peer that redirects could send the operator, with its credentials, to any address, and the
//! target's answer would be quoted into status), and a host name that resolves only to a
//! link-local or cloud-metadata address is refused (see [`crate::util::hosts::refused_ip`]; IP
//! literals are refused before any request, where the URL is checked).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Once};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::hosts::refused_ip;

static INSTALL_PROVIDER: Once = Once::new();

/// Install rustls' ring provider as the process default (idempotent, cheap after the first call).
pub fn install_crypto_provider() {
    INSTALL_PROVIDER.call_once(|| {
        // An error only means another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder with the crypto provider installed, tollgate's user agent, no
/// redirects, and a resolver that drops link-local and metadata addresses.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(SafeResolver))
}

/// The system resolver, without the addresses no peer may be on.
struct SafeResolver;

impl Resolve for SafeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup = host.clone();
            let found: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs())
                    .await??
                    .collect();
            let allowed = safe_addresses(&found);
            if allowed.is_empty() && !found.is_empty() {
                return Err(format!(
                    "{host} resolves only to link-local or cloud-metadata addresses, which tollgate \
                     never connects to"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `found` a peer may be on.
fn safe_addresses(found: &[SocketAddr]) -> Vec<SocketAddr> {
    found
        .iter()
        .copied()
        .filter(|a| refused_ip(a.ip()).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_client_twice() {
        assert!(client_builder().build().is_ok());
        assert!(client_builder().build().is_ok());
    }

    #[test]
    fn resolved_metadata_addresses_are_dropped() {
        let found: Vec<SocketAddr> = ["169.254.169.254:80", "10.0.0.7:80", "[fd00:ec2::254]:80"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(safe_addresses(&found), vec![found[1]]);
    }

    /// A real server that redirects to a second one: the client stops at the redirect, so the
    /// second server never sees a request.
    #[tokio::test]
    async fn redirects_are_never_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target_addr = target.local_addr().unwrap();
        let hit = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = hit.clone();
        tokio::spawn(async move {
            if target.accept().await.is_ok() {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = redirector.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = redirector.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{target_addr}/latest/meta-data\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(answer.as_bytes()).await;
        });
        let client = client_builder().build().unwrap();
        let response = client.get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(response.status(), 302);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!hit.load(std::sync::atomic::Ordering::SeqCst));
    }
}
