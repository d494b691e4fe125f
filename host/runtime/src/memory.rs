//! In-memory backends of the control plane: for tests, benchmarks and the
//! plugin test kit. Real deployments use the LMDB or cluster backends.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::emit::{EmitError, EventSink, NewEvent};
use crate::kv::{Bucket, KvBackend, KvError, KvPage, add_to_counter};
use crate::views::{ViewPage, ViewQuery, ViewQueryError, ViewReader, ViewsError};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One page of `(name, value)` from `entries` (already positioned at the
/// start key and limited to the scope), skipping `cursor` itself.
fn page<'a>(
    entries: impl Iterator<Item = (&'a str, &'a Vec<u8>)>,
    cursor: Option<&str>,
    limit: u32,
) -> (Vec<(String, Vec<u8>)>, Option<String>) {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, value) in entries {
        if Some(name) == cursor {
            continue;
        }
        if out.len() == limit as usize {
            let next = out.last().map(|(k, _)| k.clone());
            return (out, next);
        }
        out.push((name.to_string(), value.clone()));
    }
    (out, None)
}

/// Buckets in a map.
#[derive(Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemoryKv {
    /// All entries of one bucket, in key order.
    pub fn dump(&self, bucket: &Bucket) -> Vec<(String, Vec<u8>)> {
        let bucket = bucket.to_string();
        lock(&self.entries)
            .iter()
            .filter(|((b, _), _)| *b == bucket)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[async_trait::async_trait]
impl KvBackend for MemoryKv {
    async fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(lock(&self.entries).get(&(bucket.to_string(), key.to_string())).cloned())
    }

    async fn set(&self, bucket: &Bucket, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        lock(&self.entries).insert((bucket.to_string(), key.to_string()), value);
        Ok(())
    }

    async fn delete(&self, bucket: &Bucket, key: &str) -> Result<bool, KvError> {
        Ok(lock(&self.entries).remove(&(bucket.to_string(), key.to_string())).is_some())
    }

    async fn list(&self, bucket: &Bucket, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KvPage, KvError> {
        let bucket = bucket.to_string();
        let entries = lock(&self.entries);
        let start = (bucket.clone(), cursor.filter(|c| *c >= prefix).unwrap_or(prefix).to_string());
        let scoped = entries
            .range(start..)
            .take_while(|((b, key), _)| *b == bucket && key.starts_with(prefix))
            .map(|((_, key), value)| (key.as_str(), value));
        let (entries, next_cursor) = page(scoped, cursor, limit);
        Ok(KvPage { entries, next_cursor })
    }

    async fn increment(&self, bucket: &Bucket, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut entries = lock(&self.entries);
        let slot = (bucket.to_string(), key.to_string());
        let (next, bytes) = add_to_counter(entries.get(&slot).map(Vec::as_slice), delta)?;
        entries.insert(slot, bytes);
        Ok(next)
    }

    async fn compare_and_swap(
        &self,
        bucket: &Bucket,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, KvError> {
        let mut entries = lock(&self.entries);
        let slot = (bucket.to_string(), key.to_string());
        if entries.get(&slot).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        match new {
            Some(value) => entries.insert(slot, value),
            None => entries.remove(&slot),
        };
        Ok(true)
    }
}

/// Emitted events in a list; sequence numbers start at 1.
#[derive(Default)]
pub struct MemoryEvents {
    events: Mutex<Vec<NewEvent>>,
}

impl MemoryEvents {
    /// Every event published so far, in order.
    pub fn events(&self) -> Vec<NewEvent> {
        lock(&self.events).clone()
    }
}

#[async_trait::async_trait]
impl EventSink for MemoryEvents {
    async fn publish(&self, event: NewEvent) -> Result<u64, EmitError> {
        let mut events = lock(&self.events);
        events.push(event);
        Ok(events.len() as u64)
    }
}

/// Views in a map keyed by tenant, projection and id.
#[derive(Default)]
pub struct MemoryViews {
    views: Mutex<BTreeMap<(String, String, String), Vec<u8>>>,
}

impl MemoryViews {
    /// Stores a view.
    pub fn put(&self, tenant: &str, projection: &str, id: &str, value: Vec<u8>) {
        lock(&self.views).insert((tenant.into(), projection.into(), id.into()), value);
    }

    /// Deletes a view; true if it existed.
    pub fn delete(&self, tenant: &str, projection: &str, id: &str) -> bool {
        lock(&self.views).remove(&(tenant.into(), projection.into(), id.into())).is_some()
    }

    /// Every view of one projection as `(tenant, id, value)`, in order.
    pub fn dump(&self, projection: &str) -> Vec<(String, String, Vec<u8>)> {
        lock(&self.views)
            .iter()
            .filter(|((_, p, _), _)| p == projection)
            .map(|((tenant, _, id), value)| (tenant.clone(), id.clone(), value.clone()))
            .collect()
    }
}

#[async_trait::async_trait]
impl ViewReader for MemoryViews {
    async fn get(&self, tenant: &str, projection: &str, id: &str) -> Result<Option<Vec<u8>>, ViewsError> {
        Ok(lock(&self.views).get(&(tenant.into(), projection.into(), id.into())).cloned())
    }

    async fn list(
        &self,
        tenant: &str,
        projection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ViewPage, ViewsError> {
        let views = lock(&self.views);
        let start =
            (tenant.to_string(), projection.to_string(), cursor.filter(|c| *c >= prefix).unwrap_or(prefix).to_string());
        let scoped = views
            .range(start..)
            .take_while(|((t, p, id), _)| t == tenant && p == projection && id.starts_with(prefix))
            .map(|((_, _, id), value)| (id.as_str(), value));
        let (views, next_cursor) = page(scoped, cursor, limit);
        Ok(ViewPage { views, next_cursor })
    }

    /// Every view of the tenant is read: there are no indexes in memory.
    async fn query(&self, tenant: &str, projection: &str, query: &ViewQuery) -> Result<ViewPage, ViewQueryError> {
        let parsed =
            corral_query::Query::parse(&query.filter, &query.order_by, "", &query.cursor, query.limit as usize)
                .map_err(|error| ViewQueryError::Invalid(error.to_string()))?;
        let views = lock(&self.views);
        let scoped = views
            .iter()
            .filter(|((t, p, _), _)| t == tenant && p == projection)
            .map(|((_, _, id), value)| (id.as_str(), value.as_slice()));
        let (views, next_cursor) = parsed.answer(scoped);
        Ok(ViewPage { views, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kv_pages_through_a_prefix() {
        let kv = MemoryKv::default();
        let bucket = Bucket::Plugin("p".into());
        for key in ["a1", "a2", "a3", "b1"] {
            kv.set(&bucket, key, key.as_bytes().to_vec()).await.unwrap();
        }
        let first = kv.list(&bucket, "a", None, 2).await.unwrap();
        assert_eq!(first.entries.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a1", "a2"]);
        assert_eq!(first.next_cursor.as_deref(), Some("a2"));
        let second = kv.list(&bucket, "a", first.next_cursor.as_deref(), 2).await.unwrap();
        assert_eq!(second.entries.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a3"]);
        assert_eq!(second.next_cursor, None);
        let other = Bucket::Plugin("q".into());
        assert_eq!(kv.get(&other, "a1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn compare_and_swap_only_swaps_on_match() {
        let kv = MemoryKv::default();
        let bucket = Bucket::Shared("s".into());
        assert!(kv.compare_and_swap(&bucket, "k", None, Some(b"1".to_vec())).await.unwrap());
        assert!(!kv.compare_and_swap(&bucket, "k", None, Some(b"2".to_vec())).await.unwrap());
        assert!(kv.compare_and_swap(&bucket, "k", Some(b"1"), None).await.unwrap());
        assert_eq!(kv.get(&bucket, "k").await.unwrap(), None);
    }
}
