//! A webhook on 127.0.0.1 (axum) that answers from a script: the i-th POST gets the i-th answer
//! (a status, a 429 with Retry-After, or no answer at all), then one answer for ever; it records
//! when each request came, its content type and body, and what it answered.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

/// What the webhook does with one request.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16, &'static str),
    /// 429 with `Retry-After: <seconds>`.
    RateLimited(u64),
    /// Read the request, never answer.
    Hang,
}

/// One request as the webhook received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub answered: Option<u16>,
}

#[derive(Clone)]
struct Hook {
    script: Arc<Mutex<VecDeque<Answer>>>,
    then: Answer,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn answer(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    let next = hook
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| hook.then.clone());
    let answered = match &next {
        Answer::Status(s, _) => Some(*s),
        Answer::RateLimited(_) => Some(429),
        Answer::Hang => None,
    };
    hook.received.lock().unwrap().push(Received {
        at: Instant::now(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: body.to_vec(),
        answered,
    });
    match next {
        Answer::Status(s, text) => (StatusCode::from_u16(s).unwrap(), text).into_response(),
        Answer::RateLimited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Answer::Hang => std::future::pending().await,
    }
}

/// The running webhook; its URL carries a path that stands for a secret (`SECRETPATH`), so tests
/// can check that it never shows.
pub struct Server {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    /// Answers `script` in order, then `then` for ever.
    pub async fn start(script: Vec<Answer>, then: Answer) -> Server {
        let hook = Hook {
            script: Arc::new(Mutex::new(script.into())),
            then,
            received: Arc::default(),
        };
        let received = hook.received.clone();
        let app = Router::new()
            .route("/services/T000/B000/SECRETPATH", post(answer))
            .with_state(hook);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            url: format!("http://{addr}/services/T000/B000/SECRETPATH"),
            received,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}
