//! A webhook receiver on 127.0.0.1 that does what a careful receiver of at-least-once
//! notifications does: it processes each idempotency key once and drops the duplicates (counting
//! them). While held, it answers nothing (the request stays in flight) until released, so a test
//! can kill the sender between its status write and the answer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use tokio::sync::watch;

use super::wait::wait_until;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// The `Idempotency-Key` header.
    pub header_key: Option<String>,
    /// The body as JSON.
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Seen {
    arrivals: Vec<Arrival>,
    /// Body of the first request processed per key, in the order processed.
    processed: BTreeMap<String, serde_json::Value>,
    order: Vec<String>,
    duplicates: usize,
}

#[derive(Clone)]
struct Hook {
    seen: Arc<Mutex<Seen>>,
    hold: watch::Receiver<bool>,
}

async fn receive(State(mut hook): State<Hook>, headers: HeaderMap, body: Bytes) -> &'static str {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let header_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    hook.seen.lock().unwrap().arrivals.push(Arrival {
        header_key: header_key.clone(),
        body: body.clone(),
    });
    // Held: no answer until released (bounded, so a forgotten hold cannot hang a test).
    let _ = tokio::time::timeout(Duration::from_secs(300), hook.hold.wait_for(|held| !*held)).await;
    // Processed when answered: a request whose sender died before the answer is a duplicate
    // of nothing; a repeat of a key already processed is dropped.
    let key = header_key.unwrap_or_default();
    let mut seen = hook.seen.lock().unwrap();
    if seen.processed.contains_key(&key) {
        seen.duplicates += 1;
    } else {
        seen.processed.insert(key.clone(), body);
        seen.order.push(key);
    }
    "ok"
}

/// The receiver.
pub struct DedupWebhook {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    hold: watch::Sender<bool>,
}

impl DedupWebhook {
    /// A receiver that answers at once (`held` false) or holds every answer until released.
    pub async fn start(held: bool) -> DedupWebhook {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (hold, receiver) = watch::channel(held);
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(Hook {
                seen: seen.clone(),
                hold: receiver,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook");
        let addr = listener.local_addr().expect("webhook address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        DedupWebhook {
            url: format!("http://{addr}/hook"),
            seen,
            hold,
        }
    }

    /// Answer every held request and the ones to come.
    pub fn release(&self) {
        let _ = self.hold.send(false);
    }

    /// Every request so far, answered or not.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.seen.lock().unwrap().arrivals.clone()
    }

    /// The keys processed, in order (each once).
    pub fn processed_keys(&self) -> Vec<String> {
        self.seen.lock().unwrap().order.clone()
    }

    /// The body processed for `key`.
    pub fn processed(&self, key: &str) -> Option<serde_json::Value> {
        self.seen.lock().unwrap().processed.get(key).cloned()
    }

    /// Requests dropped as duplicates of a processed key.
    pub fn duplicates(&self) -> usize {
        self.seen.lock().unwrap().duplicates
    }

    /// Waits (bounded) until a request with `event` in its body arrived; returns it.
    pub async fn wait_arrival(&self, event: &str) -> Arrival {
        wait_until(
            Duration::from_secs(60),
            &format!("a {event} notification to arrive"),
            || async {
                self.arrivals()
                    .into_iter()
                    .find(|a| a.body["event"] == event)
            },
        )
        .await
    }
}
