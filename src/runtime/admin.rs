//! The admin server: `/metrics` (Prometheus text), `/livez` (the process serves requests) and
//! `/readyz`, which turns ready only once this replica is useful: as leader, after the
//! controller's watches have synced; as a standby, once it is waiting for the lease (it can take
//! over at any moment).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::metrics::Metrics;

/// What this replica is doing, for `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Readiness {
    /// Starting, or leading with watches not yet synced.
    Starting = 0,
    /// Waiting for the leader lease.
    Standby = 1,
    /// Leading, with every watch synced.
    Leading = 2,
    /// Shutting down.
    Stopping = 3,
}

/// Shared state of the admin server.
#[derive(Clone)]
pub struct AdminState {
    metrics: Arc<Metrics>,
    readiness: Arc<AtomicU8>,
}

impl AdminState {
    /// New state, `Starting`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        AdminState {
            metrics,
            readiness: Arc::new(AtomicU8::new(Readiness::Starting as u8)),
        }
    }

    /// Record what the replica is doing now.
    pub fn set(&self, readiness: Readiness) {
        self.readiness.store(readiness as u8, Ordering::SeqCst);
    }

    /// What the replica is doing now.
    pub fn get(&self) -> Readiness {
        match self.readiness.load(Ordering::SeqCst) {
            1 => Readiness::Standby,
            2 => Readiness::Leading,
            3 => Readiness::Stopping,
            _ => Readiness::Starting,
        }
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    match state.get() {
        Readiness::Leading => (StatusCode::OK, "ready: leading, watches synced\n"),
        Readiness::Standby => (
            StatusCode::OK,
            "ready: standby, waiting for the leader lease\n",
        ),
        Readiness::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: watches not synced\n",
        ),
        Readiness::Stopping => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n",
        ),
    }
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serve the admin routes on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get_status(addr: SocketAddr, path: &str) -> (u16, String) {
        let response = crate::util::http::client_builder()
            .build()
            .unwrap()
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    #[tokio::test]
    async fn readyz_follows_the_replica_and_metrics_are_served() {
        let metrics = Arc::new(Metrics::new());
        metrics.reconciles.inc();
        let state = AdminState::new(metrics);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        assert_eq!(get_status(addr, "/livez").await.0, 200);
        assert_eq!(get_status(addr, "/readyz").await.0, 503);
        state.set(Readiness::Standby);
        assert_eq!(get_status(addr, "/readyz").await.0, 200);
        state.set(Readiness::Leading);
        let (code, body) = get_status(addr, "/readyz").await;
        assert_eq!((code, body.contains("leading")), (200, true));
        state.set(Readiness::Stopping);
        assert_eq!(get_status(addr, "/readyz").await.0, 503);
        let (code, body) = get_status(addr, "/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("tollgate_reconciles_total 1"), "{body}");
        assert_eq!(get_status(addr, "/nope").await.0, 404);
        server.abort();
    }
}
