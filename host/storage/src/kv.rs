//! Buckets of keys. A stored key is `bucket NUL key`, so one bucket's keys
//! are contiguous and a listing never crosses into another bucket.

use heed::RwTxn;

use crate::{Storage, StorageError, compose};

/// A page of `(key, value)` pairs in key order, and where to continue.
pub type Page = (Vec<(String, Vec<u8>)>, Option<String>);

impl Storage {
    /// Reads a value.
    pub fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.env.read_txn()?;
        Ok(self.kv.get(&txn, &compose(&[bucket, key])?)?.map(<[u8]>::to_vec))
    }

    /// Writes a value, durably (one commit; [`crate::kv_writes`] groups them).
    pub fn kv_set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.write(|txn| self.kv_set_in(txn, bucket, key, value))
    }

    /// Writes a value in `txn`.
    pub(crate) fn kv_set_in(
        &self,
        txn: &mut RwTxn<'_>,
        bucket: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), StorageError> {
        self.kv.put(txn, &compose(&[bucket, key])?, value)?;
        Ok(())
    }

    /// Deletes a key; true if it existed.
    pub fn kv_delete(&self, bucket: &str, key: &str) -> Result<bool, StorageError> {
        self.write(|txn| self.kv_delete_in(txn, bucket, key))
    }

    /// Deletes a key in `txn`; true if it existed.
    pub(crate) fn kv_delete_in(&self, txn: &mut RwTxn<'_>, bucket: &str, key: &str) -> Result<bool, StorageError> {
        Ok(self.kv.delete(txn, &compose(&[bucket, key])?)?)
    }

    /// Reads, transforms and writes one key in a single write transaction:
    /// what `increment` and `compare-and-swap` are built on. `update` gets
    /// the current value and returns the new one (`None` deletes) with a
    /// result for the caller; an error from it aborts without writing.
    pub fn kv_update<T, E>(
        &self,
        bucket: &str,
        key: &str,
        update: impl FnOnce(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T), E>,
    ) -> Result<Result<T, E>, StorageError> {
        self.write(|txn| self.kv_update_in(txn, bucket, key, update))
    }

    /// [`Storage::kv_update`] in `txn`.
    pub(crate) fn kv_update_in<T, E>(
        &self,
        txn: &mut RwTxn<'_>,
        bucket: &str,
        key: &str,
        update: impl FnOnce(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T), E>,
    ) -> Result<Result<T, E>, StorageError> {
        let stored = compose(&[bucket, key])?;
        let current = self.kv.get(txn, &stored)?.map(<[u8]>::to_vec);
        let (next, answer) = match update(current.as_deref()) {
            Ok(done) => done,
            Err(error) => return Ok(Err(error)),
        };
        if next == current {
            return Ok(Ok(answer));
        }
        match next {
            Some(value) => self.kv.put(txn, &stored, &value)?,
            None => {
                self.kv.delete(txn, &stored)?;
            }
        }
        Ok(Ok(answer))
    }

    /// Keys of `bucket` starting with `prefix` and after `cursor`, at most
    /// `limit`; the cursor for the next page if there may be more.
    pub fn kv_list(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, StorageError> {
        let txn = self.env.read_txn()?;
        crate::page(&txn, self.kv, &[bucket], prefix, cursor, limit)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Storage, StorageOptions};

    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        (dir, storage)
    }

    #[test]
    fn buckets_are_separate() {
        let (_dir, storage) = storage();
        storage.kv_set("plugin/a", "k", b"1").unwrap();
        storage.kv_set("plugin/ab", "k", b"2").unwrap();
        assert_eq!(storage.kv_get("plugin/a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(storage.kv_get("plugin/b", "k").unwrap(), None);
        let (entries, _) = storage.kv_list("plugin/a", "", None, 10).unwrap();
        assert_eq!(entries, [("k".to_string(), b"1".to_vec())], "no spill into plugin/ab");
        assert!(storage.kv_set("bad\0bucket", "k", b"").is_err());
    }

    #[test]
    fn lists_pages_by_prefix() {
        let (_dir, storage) = storage();
        for key in ["a1", "a2", "a3", "b1"] {
            storage.kv_set("p", key, key.as_bytes()).unwrap();
        }
        let (page, next) = storage.kv_list("p", "a", None, 2).unwrap();
        assert_eq!(page.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a1", "a2"]);
        let (page, next) = storage.kv_list("p", "a", next.as_deref(), 2).unwrap();
        assert_eq!(page.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a3"]);
        assert_eq!(next, None);
    }

    #[test]
    fn update_is_atomic_and_aborts_on_error() {
        let (_dir, storage) = storage();
        let add = |delta: i64| {
            move |current: Option<&[u8]>| -> Result<(Option<Vec<u8>>, i64), String> {
                let n: i64 = current
                    .map(|c| String::from_utf8_lossy(c).parse().map_err(|_| "nan".to_string()))
                    .transpose()?
                    .unwrap_or(0);
                Ok((Some((n + delta).to_string().into_bytes()), n + delta))
            }
        };
        assert_eq!(storage.kv_update("p", "n", add(2)).unwrap(), Ok(2));
        assert_eq!(storage.kv_update("p", "n", add(3)).unwrap(), Ok(5));
        storage.kv_set("p", "x", b"text").unwrap();
        assert_eq!(storage.kv_update("p", "x", add(1)).unwrap(), Err("nan".to_string()));
        assert_eq!(storage.kv_get("p", "x").unwrap(), Some(b"text".to_vec()));
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
            storage.kv_set("p", "k", b"v").unwrap();
        }
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        assert_eq!(storage.kv_get("p", "k").unwrap(), Some(b"v".to_vec()));
    }
}
