//! `corral:plugin/kv`: per-plugin buckets behind a [`KvBackend`] (LMDB
//! embedded, JetStream KV in a cluster). The runtime resolves bucket names
//! and grants, so a backend never sees a request a plugin was not allowed.

use std::fmt;

use crate::bindings::kv::{Entry, Host, KvError as WitKvError, Page};
use crate::call::Identity;

/// Longest key, in bytes (LMDB keys are at most 511 bytes, bucket included).
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: u64 = 1024 * 1024;
/// Most entries one `list` call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// A resolved bucket: a plugin's private one, or a shared one it was granted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// The private bucket of the named plugin.
    Plugin(String),
    /// A shared bucket, by name.
    Shared(String),
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bucket::Plugin(name) => write!(f, "plugin/{name}"),
            Bucket::Shared(name) => write!(f, "shared/{name}"),
        }
    }
}

/// A page of entries in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvPage {
    /// Entries, in key order.
    pub entries: Vec<(String, Vec<u8>)>,
    /// The last key returned when more may follow.
    pub next_cursor: Option<String>,
}

/// Why a kv operation failed in the backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// `increment` on a value that is not a decimal i64, or overflow.
    #[error("value is not a counter")]
    NotACounter,
    /// The backend failed.
    #[error("kv unavailable: {0}")]
    Unavailable(String),
}

/// A key-value store with buckets. Implementations must make each operation
/// atomic; `increment` and `compare_and_swap` in particular.
#[async_trait::async_trait]
pub trait KvBackend: Send + Sync + 'static {
    /// Reads a value.
    async fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Writes a value.
    async fn set(&self, bucket: &Bucket, key: &str, value: Vec<u8>) -> Result<(), KvError>;
    /// Deletes a key; true if it existed.
    async fn delete(&self, bucket: &Bucket, key: &str) -> Result<bool, KvError>;
    /// Lists keys starting with `prefix` and greater than `cursor`, at most `limit`.
    async fn list(&self, bucket: &Bucket, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KvPage, KvError>;
    /// Adds `delta` to a decimal counter (absent = 0) and returns the new value.
    async fn increment(&self, bucket: &Bucket, key: &str, delta: i64) -> Result<i64, KvError>;
    /// Replaces the value only if it equals `expected` (none = absent); none
    /// as `new` deletes. True if it swapped.
    async fn compare_and_swap(
        &self,
        bucket: &Bucket,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, KvError>;
}

/// The arithmetic of `increment`, shared by every backend so counters mean
/// the same everywhere: decimal ASCII, absent is 0, overflow is an error.
pub fn add_to_counter(current: Option<&[u8]>, delta: i64) -> Result<(i64, Vec<u8>), KvError> {
    let value = match current {
        None => 0,
        Some(bytes) => {
            std::str::from_utf8(bytes).ok().and_then(|text| text.parse::<i64>().ok()).ok_or(KvError::NotACounter)?
        }
    };
    let next = value.checked_add(delta).ok_or(KvError::NotACounter)?;
    Ok((next, next.to_string().into_bytes()))
}

/// What a call's `kv` import reaches: the backend chosen for the call, and
/// the plugin whose grants it checks.
pub(crate) struct KvHost<'a> {
    pub(crate) backend: &'a dyn KvBackend,
    pub(crate) plugin: &'a Identity,
}

crate::bindings::link_view!(kv, KvHost);

impl KvHost<'_> {
    /// Resolves a guest's bucket name against the plugin's grants.
    fn bucket(&self, name: &str) -> Result<Bucket, WitKvError> {
        if name.is_empty() {
            return Ok(Bucket::Plugin(self.plugin.name.clone()));
        }
        if self.plugin.kv_grants.iter().any(|granted| granted == name) {
            return Ok(Bucket::Shared(name.to_string()));
        }
        Err(WitKvError::AccessDenied(format!(
            "bucket {name:?} is not granted to plugin {}; grant it in its sidecar ({}: kv.buckets = [\"{name}\"])",
            self.plugin.name, self.plugin.sidecar
        )))
    }
}

fn check_key(key: &str) -> Result<(), WitKvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(WitKvError::InvalidKey(format!("keys must be 1 to {MAX_KEY_BYTES} bytes, got {}", key.len())));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), WitKvError> {
    if value.len() as u64 > MAX_VALUE_BYTES {
        return Err(WitKvError::TooLarge(MAX_VALUE_BYTES));
    }
    Ok(())
}

impl From<KvError> for WitKvError {
    fn from(error: KvError) -> Self {
        match error {
            KvError::NotACounter => WitKvError::NotACounter,
            KvError::Unavailable(reason) => WitKvError::Unavailable(reason),
        }
    }
}

impl Host for KvHost<'_> {
    #[tracing::instrument(level = "trace", name = "kv.get", skip_all, fields(bucket = %bucket))]
    async fn get(&mut self, bucket: String, key: String) -> Result<Option<Vec<u8>>, WitKvError> {
        let bucket = self.bucket(&bucket)?;
        check_key(&key)?;
        Ok(self.backend.get(&bucket, &key).await?)
    }

    #[tracing::instrument(level = "trace", name = "kv.set", skip_all, fields(bucket = %bucket))]
    async fn set(&mut self, bucket: String, key: String, value: Vec<u8>) -> Result<(), WitKvError> {
        let bucket = self.bucket(&bucket)?;
        check_key(&key)?;
        check_value(&value)?;
        Ok(self.backend.set(&bucket, &key, value).await?)
    }

    #[tracing::instrument(level = "trace", name = "kv.delete", skip_all, fields(bucket = %bucket))]
    async fn delete(&mut self, bucket: String, key: String) -> Result<bool, WitKvError> {
        let bucket = self.bucket(&bucket)?;
        check_key(&key)?;
        Ok(self.backend.delete(&bucket, &key).await?)
    }

    #[tracing::instrument(level = "trace", name = "kv.list", skip_all, fields(bucket = %bucket))]
    async fn list(
        &mut self,
        bucket: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<Page, WitKvError> {
        let bucket = self.bucket(&bucket)?;
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        let page = self.backend.list(&bucket, &prefix, cursor.as_deref(), limit).await?;
        Ok(Page {
            entries: page.entries.into_iter().map(|(key, value)| Entry { key, value }).collect(),
            next_cursor: page.next_cursor,
        })
    }

    #[tracing::instrument(level = "trace", name = "kv.increment", skip_all, fields(bucket = %bucket))]
    async fn increment(&mut self, bucket: String, key: String, delta: i64) -> Result<i64, WitKvError> {
        let bucket = self.bucket(&bucket)?;
        check_key(&key)?;
        Ok(self.backend.increment(&bucket, &key, delta).await?)
    }

    #[tracing::instrument(level = "trace", name = "kv.compare_and_swap", skip_all, fields(bucket = %bucket))]
    async fn compare_and_swap(
        &mut self,
        bucket: String,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, WitKvError> {
        let bucket = self.bucket(&bucket)?;
        check_key(&key)?;
        if let Some(value) = &new {
            check_value(value)?;
        }
        Ok(self.backend.compare_and_swap(&bucket, &key, expected.as_deref(), new).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters() {
        assert_eq!(add_to_counter(None, 5).unwrap(), (5, b"5".to_vec()));
        assert_eq!(add_to_counter(Some(b"-3"), 1).unwrap(), (-2, b"-2".to_vec()));
        assert_eq!(add_to_counter(Some(b"x"), 1), Err(KvError::NotACounter));
        assert_eq!(add_to_counter(Some(i64::MAX.to_string().as_bytes()), 1), Err(KvError::NotACounter));
    }
}
