//! Trimming the event log by age and size, never past the slowest
//! consumer's checkpoint: an event some subscriber or projection has not
//! done is never deleted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::config::Retention;
use crate::events::stream::{EventStream, StreamError};
use crate::shutdown::pause;

/// The highest sequence that may be deleted now, if any, given the
/// checkpoints (`floors`) of every live consumer.
pub(crate) async fn trim_point(
    stream: &dyn EventStream,
    retention: &Retention,
    floors: &[u64],
) -> Result<Option<u64>, StreamError> {
    let head = stream.head().await?;
    let mut cut: Option<u64> = None;
    if let Some(max_events) = retention.max_events {
        cut = cut.max(head.checked_sub(max_events));
    }
    if let Some(max_age) = retention.max_age {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let oldest_kept_ms = now_ms.saturating_sub(max_age.as_millis() as u64);
        let by_age = match stream.first_at_or_after(oldest_kept_ms).await? {
            Some(sequence) => sequence.checked_sub(1),
            None => Some(head),
        };
        cut = cut.max(by_age);
    }
    let Some(cut) = cut else { return Ok(None) };
    let slowest = floors.iter().copied().min();
    Ok(Some(slowest.map_or(cut, |slowest| cut.min(slowest))).filter(|up_to| *up_to > 0))
}

/// The checkpoints of every live consumer: retention never trims past
/// the slowest. The host gives its subscribers' and projections' (and, in
/// a cluster, every node's).
pub(crate) type Floors =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Vec<u64>, StreamError>> + Send>> + Send + Sync>;

/// Trims periodically until `stop`.
pub(crate) async fn run(
    stream: Arc<dyn EventStream>,
    retention: Retention,
    floors: Floors,
    mut stop: watch::Receiver<bool>,
) {
    if retention.max_age.is_none() && retention.max_events.is_none() {
        return;
    }
    let mut trimmed_to = 0;
    loop {
        if pause(&mut stop, retention.interval).await {
            return;
        }
        let up_to = match floors().await {
            Ok(floors) => trim_point(stream.as_ref(), &retention, &floors).await,
            Err(error) => Err(error),
        };
        match up_to {
            Ok(Some(up_to)) if up_to > trimmed_to => match stream.trim(up_to).await {
                Ok(removed) => {
                    trimmed_to = up_to;
                    if removed > 0 {
                        tracing::info!(removed, up_to, "trimmed the event log");
                    }
                }
                Err(error) => tracing::error!("trimming the event log failed: {error}"),
            },
            Ok(_) => {}
            Err(error) => tracing::error!("finding what to trim failed: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use corral_storage::log::NewRecord;
    use corral_storage::{Storage, StorageOptions, stream};

    use super::*;

    #[tokio::test]
    async fn never_trims_past_the_slowest_consumer() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let log = stream::Embedded::new(storage, false).unwrap();
        let record = NewRecord {
            topic: "t".into(),
            tenant: String::new(),
            correlation_id: String::new(),
            traceparent: None,
            source: "s".into(),
            payload: Vec::new(),
        };
        EventStream::publish(&log, vec![record; 10]).await.unwrap();
        let retention = Retention { max_age: None, max_events: Some(3), interval: Duration::from_secs(1) };
        assert_eq!(trim_point(&log, &retention, &[]).await.unwrap(), Some(7));
        assert_eq!(trim_point(&log, &retention, &[4, 10]).await.unwrap(), Some(4));
        assert_eq!(trim_point(&log, &retention, &[0]).await.unwrap(), None, "a new consumer holds everything");
        let by_age =
            Retention { max_age: Some(Duration::from_secs(3600)), max_events: None, interval: Duration::from_secs(1) };
        assert_eq!(trim_point(&log, &by_age, &[]).await.unwrap(), None, "all events are young");
        assert_eq!(log.trim(4).await.unwrap(), 4);
        assert_eq!(log.storage().first().unwrap(), Some(5));
    }
}
