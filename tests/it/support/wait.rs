//! Bounded polling: every wait in the peer tests has a deadline and names what it waited for, so a
//! stuck peer fails the test with a message instead of hanging the run.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `f` every 200 ms until it returns Some, or panics after `timeout` naming `what`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
