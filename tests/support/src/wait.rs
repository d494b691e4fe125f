//! Waiting for what a test expects to happen, by polling, never by a
//! fixed sleep.

use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Some`; panics naming `what`
/// after `timeout`.
pub async fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
