//! Kv buckets for plugins: one NATS KV bucket per plugin (or shared)
//! bucket, keys escaped with [`names::escape_token`]
//! so any UTF-8 key of 1 to 256 bytes fits and prefixes still list.
//!
//! `update` is a compare-and-set loop on the entry's revision, which is
//! what increment and compare-and-swap are built on: read, let the caller
//! compute, write expecting the revision read, and on a conflict read again
//! (from the leader) and recompute.
//!
//! Listing scans every key of the bucket (NATS subject filters match whole
//! tokens, not string prefixes): fine for the small buckets plugins keep,
//! linear in the bucket's size. `get` and `list` read from any replica and
//! may lag behind writes; `get_latest` asks the leader.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::try_join_all;

use crate::names::{self, unescape_token};
use crate::store::Bucket;
use crate::{ClusterError, store::Tail};

/// A page of `(key, value)` pairs in key order, and the cursor to pass for
/// the next page (`None` when this was the last).
pub type Page = (Vec<(String, Vec<u8>)>, Option<String>);

/// Conflicting attempts `update` makes before it reports the key too
/// contended (as [`ClusterError::Unavailable`]).
const MAX_UPDATE_ATTEMPTS: u32 = 100;

/// A plugin's kv bucket; see [`Cluster::kv`](crate::Cluster::kv).
#[derive(Clone)]
pub struct KvBucket {
    name: String,
    bucket: Bucket,
}

impl KvBucket {
    pub(crate) fn new(name: &str, bucket: Bucket) -> KvBucket {
        KvBucket { name: name.to_string(), bucket }
    }

    /// The plugin bucket's name (not the NATS bucket's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads a value from any replica (fast; may miss the latest writes).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ClusterError> {
        Ok(self.bucket.read(&names::key(key)?).await?.value.map(|v| v.to_vec()))
    }

    /// Reads a value from the bucket's leader: every acknowledged write.
    pub async fn get_latest(&self, key: &str) -> Result<Option<Vec<u8>>, ClusterError> {
        Ok(self.bucket.read_latest(&names::key(key)?).await?.value.map(|v| v.to_vec()))
    }

    /// Writes a value; returns its revision.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<u64, ClusterError> {
        self.bucket.put(&names::key(key)?, Bytes::copy_from_slice(value)).await
    }

    /// Deletes a key; true if it held a value.
    pub async fn delete(&self, key: &str) -> Result<bool, ClusterError> {
        self.update(key, |current| Ok::<_, std::convert::Infallible>((None, current.is_some())))
            .await
            .map(|existed| existed.unwrap_or_else(|never| match never {}))
    }

    /// Reads, transforms and writes one key atomically: `update` gets the
    /// current value and returns the new one (`None` deletes) with an
    /// answer for the caller; an error from it aborts without writing.
    /// `update` runs again on the latest value whenever another writer got
    /// there first, so it must not have side effects.
    pub async fn update<R, E>(
        &self,
        key: &str,
        mut update: impl FnMut(Option<&[u8]>) -> Result<(Option<Vec<u8>>, R), E>,
    ) -> Result<Result<R, E>, ClusterError> {
        let escaped = names::key(key)?;
        for attempt in 0..MAX_UPDATE_ATTEMPTS {
            // A replica first (cheap); after a conflict, the leader.
            let Tail { value: current, revision } = if attempt == 0 {
                self.bucket.read(&escaped).await?
            } else {
                self.bucket.read_latest(&escaped).await?
            };
            let (next, answer) = match update(current.as_deref()) {
                Ok(done) => done,
                Err(error) => return Ok(Err(error)),
            };
            if next.as_deref() == current.as_deref() {
                return Ok(Ok(answer));
            }
            let written = match next {
                Some(value) => self.bucket.update(&escaped, Bytes::from(value), revision).await.map(drop),
                None => self.bucket.delete(&escaped, revision).await,
            };
            match written {
                Ok(()) => return Ok(Ok(answer)),
                Err(ClusterError::Fenced { .. }) => {
                    if attempt > 2 {
                        // Racing writers: spread them out a little.
                        tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(20)))).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClusterError::unavailable(
            format!("updating key {key:?} of kv bucket {}", self.name),
            format!("{MAX_UPDATE_ATTEMPTS} attempts lost to other writers"),
        ))
    }

    /// Keys starting with `prefix` after `cursor` (the last key of the
    /// previous page), in key order, at most `limit` with their values.
    /// Scans every key of the bucket; values come from any replica.
    pub async fn list(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<Page, ClusterError> {
        let mut keys: Vec<String> = self
            .bucket
            .keys()
            .await?
            .iter()
            .filter_map(|escaped| unescape_token(escaped))
            .filter(|key| key.starts_with(prefix) && cursor.is_none_or(|cursor| key.as_str() > cursor))
            .collect();
        keys.sort_unstable();
        let more = keys.len() > limit;
        keys.truncate(limit);
        let reads = keys.iter().map(|key| async move {
            let tail = self.bucket.read(&names::escape_token(key)).await?;
            Ok::<_, ClusterError>(tail.value.map(|value| (key.clone(), value.to_vec())))
        });
        // A key deleted since the scan is left out of the page.
        let entries = try_join_all(reads).await?.into_iter().flatten().collect();
        let next = if more { keys.last().cloned() } else { None };
        Ok((entries, next))
    }

    /// The NATS bucket behind this plugin bucket.
    pub fn nats_bucket(&self) -> &str {
        self.bucket.name()
    }
}
