//! Stopping background work: every long-running task watches one flag that
//! turns true when the host shuts down, and sleeps only until it does.

use std::time::Duration;

use tokio::sync::watch;

/// Sleeps for `duration`, unless stopped first; true if stopped.
pub async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
