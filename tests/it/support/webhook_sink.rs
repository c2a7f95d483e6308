//! A webhook receiver on 127.0.0.1 that accepts every POST and keeps each JSON body in order, for
//! the e2e tests that check which notifications a real operator sent.

use std::time::Duration;

use super::wait::wait_until;

/// A webhook receiver: every JSON body POSTed to it, in order.
pub struct Webhook {
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let sink = sink.clone();
                async move {
                    let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    sink.lock().expect("webhook sink").push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook");
        let addr = listener.local_addr().expect("webhook address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Webhook {
            url: format!("http://{addr}/hook"),
            received,
        }
    }

    /// The `(event, version)` of every notification received so far.
    pub fn events(&self) -> Vec<(String, String)> {
        self.received
            .lock()
            .expect("webhook sink")
            .iter()
            .map(|b| {
                (
                    b["event"].as_str().unwrap_or_default().to_string(),
                    b["version"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Waits (bounded) until `(event, version)` arrived, then returns all events.
    pub async fn wait_for(&self, event: &str, version: &str) -> Vec<(String, String)> {
        let want = (event.to_string(), version.to_string());
        wait_until(
            Duration::from_secs(30),
            &format!("a {event} notification for {version}"),
            || async { self.events().contains(&want).then_some(()) },
        )
        .await;
        self.events()
    }
}
