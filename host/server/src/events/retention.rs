//! Trimming the event log by age and size, never past the slowest
//! consumer's checkpoint: an event some subscriber has not acknowledged is
//! never deleted.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use corral_storage::Storage;
use tokio::sync::watch;

use crate::config::Retention;
use crate::shutdown::pause;

/// The highest sequence that may be deleted now, if any.
pub(crate) fn trim_point(
    storage: &Storage,
    retention: &Retention,
    consumers: &[String],
) -> anyhow::Result<Option<u64>> {
    let head = storage.head()?;
    let mut cut: Option<u64> = None;
    if let Some(max_events) = retention.max_events {
        cut = cut.max(head.checked_sub(max_events));
    }
    if let Some(max_age) = retention.max_age {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let oldest_kept_ms = now_ms.saturating_sub(max_age.as_millis() as u64);
        let by_age = match storage.first_at_or_after(oldest_kept_ms)? {
            Some(sequence) => sequence.checked_sub(1),
            None => Some(head),
        };
        cut = cut.max(by_age);
    }
    let Some(cut) = cut else { return Ok(None) };
    let slowest = consumers.iter().map(|c| storage.checkpoint(c)).collect::<Result<Vec<u64>, _>>()?.into_iter().min();
    Ok(Some(slowest.map_or(cut, |slowest| cut.min(slowest))).filter(|up_to| *up_to > 0))
}

/// The durable consumers that hold back trimming.
pub(crate) type Consumers = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Trims periodically until `stop`.
pub(crate) async fn run(storage: Storage, retention: Retention, consumers: Consumers, mut stop: watch::Receiver<bool>) {
    if retention.max_age.is_none() && retention.max_events.is_none() {
        return;
    }
    loop {
        if pause(&mut stop, retention.interval).await {
            return;
        }
        let storage = storage.clone();
        let consumers = consumers();
        let trimmed = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            match trim_point(&storage, &retention, &consumers)? {
                Some(up_to) if storage.first()?.is_some_and(|first| first <= up_to) => Ok(storage.trim(up_to)?),
                _ => Ok(0),
            }
        })
        .await;
        match trimmed {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, "trimmed the event log"),
            Ok(Err(error)) => tracing::error!("trimming the event log failed: {error:#}"),
            Err(join) => tracing::error!("trimming the event log failed: {join}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use corral_storage::StorageOptions;
    use corral_storage::log::NewRecord;

    #[test]
    fn never_trims_past_the_slowest_consumer() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let record = NewRecord {
            topic: "t".into(),
            tenant: String::new(),
            correlation_id: String::new(),
            traceparent: None,
            source: "s".into(),
            payload: Vec::new(),
        };
        storage.append(&vec![record; 10]).unwrap();
        let retention = Retention { max_age: None, max_events: Some(3), interval: Duration::from_secs(1) };
        assert_eq!(trim_point(&storage, &retention, &[]).unwrap(), Some(7));
        storage.ack("slow", 4, &[]).unwrap();
        storage.ack("fast", 10, &[]).unwrap();
        let consumers = ["slow".to_string(), "fast".to_string()];
        assert_eq!(trim_point(&storage, &retention, &consumers).unwrap(), Some(4));
        let never_acked = ["new".to_string()];
        assert_eq!(trim_point(&storage, &retention, &never_acked).unwrap(), None, "a new consumer holds everything");
        let by_age =
            Retention { max_age: Some(Duration::from_secs(3600)), max_events: None, interval: Duration::from_secs(1) };
        assert_eq!(trim_point(&storage, &by_age, &[]).unwrap(), None, "all events are young");
    }
}
