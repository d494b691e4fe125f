//! Consumers the host has seen. Every live subscriber's and projection's
//! consumer is recorded with when it was last live (`system/consumers`),
//! so one whose plugin was removed keeps pinning retention — its
//! checkpoint stays where it was, and the plugin resumes there if it comes
//! back — for the forget-after period (`--forget-after`, default 7 days);
//! after that it no longer holds the log back. `GET /subscriptions` lists
//! such orphans. A consumer without a checkpoint left (a discarded
//! projection generation) is dropped at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use corral_storage::Storage;

/// Where consumers are recorded.
const BUCKET: &str = "system/consumers";
/// A live consumer's record is written again at most this often (or a
/// tenth of the forget-after period, if shorter).
const REFRESH: Duration = Duration::from_secs(60);
/// Records read per page.
const PAGE: usize = 1000;

/// A consumer that is not live any more.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Orphan {
    /// `handler.PLUGIN` or `projection.NAME@HASH`.
    pub consumer: String,
    /// When it was last seen live (ms since the epoch, within a minute).
    pub orphaned_since_ms: u64,
    /// Past the forget-after period: it no longer pins retention.
    pub forgotten: bool,
}

/// The consumers seen, and how long an orphan is remembered.
pub struct Consumers {
    storage: Storage,
    forget_after: Duration,
    /// When each live consumer's record was last written.
    written: Mutex<HashMap<String, u64>>,
}

impl Consumers {
    /// Consumers recorded in `storage`, orphans remembered for `forget_after`.
    pub fn new(storage: Storage, forget_after: Duration) -> Consumers {
        Consumers { storage, forget_after, written: Mutex::default() }
    }

    /// How long an orphan is remembered.
    pub fn forget_after(&self) -> Duration {
        self.forget_after
    }

    /// Records `live` as live now, and returns the recorded consumers that
    /// are not, oldest first.
    pub fn observe(&self, live: &[String]) -> Vec<Orphan> {
        let now = now_ms();
        let refresh = REFRESH.min(self.forget_after / 10).as_millis() as u64;
        {
            let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            for consumer in live {
                if written.get(consumer).is_some_and(|at| now.saturating_sub(*at) < refresh) {
                    continue;
                }
                match self.storage.kv_set(BUCKET, consumer, &now.to_be_bytes()) {
                    Ok(()) => {
                        written.insert(consumer.clone(), now);
                    }
                    Err(error) => tracing::warn!(consumer, "recording a live consumer failed: {error}"),
                }
            }
        }
        let live: BTreeSet<&str> = live.iter().map(String::as_str).collect();
        let forget_ms = self.forget_after.as_millis() as u64;
        let mut orphans: Vec<Orphan> = self
            .recorded()
            .into_iter()
            .filter(|(consumer, _)| !live.contains(consumer.as_str()))
            .map(|(consumer, last)| Orphan {
                consumer,
                orphaned_since_ms: last,
                forgotten: now.saturating_sub(last) >= forget_ms,
            })
            .collect();
        orphans.sort_by_key(|o| o.orphaned_since_ms);
        orphans
    }

    /// Drops the record of a consumer that has nothing left to keep.
    pub fn drop_record(&self, consumer: &str) {
        if let Err(error) = self.storage.kv_delete(BUCKET, consumer) {
            tracing::warn!(consumer, "dropping a consumer's record failed: {error}");
        }
        self.written.lock().unwrap_or_else(PoisonError::into_inner).remove(consumer);
    }

    fn recorded(&self) -> Vec<(String, u64)> {
        let mut records = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let Ok((page, next)) = self.storage.kv_list(BUCKET, "", cursor.as_deref(), PAGE) else { return records };
            records.extend(page.into_iter().filter_map(|(consumer, value)| {
                let bytes: [u8; 8] = value.try_into().ok()?;
                Some((consumer, u64::from_be_bytes(bytes)))
            }));
            match next {
                Some(next) => cursor = Some(next),
                None => return records,
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_consumer_is_an_orphan_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &corral_storage::StorageOptions { map_size: 16 << 20 }).unwrap();
        let live = vec!["handler.a".to_string(), "handler.b".to_string()];
        let consumers = Consumers::new(storage.clone(), Duration::from_secs(3600));
        assert!(consumers.observe(&live).is_empty());
        let orphans = consumers.observe(&live[..1]);
        assert_eq!(orphans.len(), 1);
        assert_eq!((orphans[0].consumer.as_str(), orphans[0].forgotten), ("handler.b", false));
        // With no memory at all, an orphan is forgotten at once.
        let forgetful = Consumers::new(storage, Duration::ZERO);
        assert!(forgetful.observe(&live[..1]).iter().all(|o| o.forgotten));
        forgetful.drop_record("handler.b");
        assert!(forgetful.observe(&live[..1]).is_empty(), "a dropped record is gone");
    }
}
