//! Projection views, keyed `tenant NUL projection NUL id` so one tenant's
//! views of one projection are contiguous and a listing can never cross
//! into another tenant's.
//!
//! - `index`: the secondary index entries kept with the views.
//! - `query`: filtered, sorted queries, walked through an index or a scan.

mod index;
mod query;

use corral_query::Indexes;

pub use query::{QueryPage, ViewQueryError};

use crate::{Storage, StorageError, compose};

/// A change to one view: `None` deletes it.
pub type ViewChange = ((String, String), Option<Vec<u8>>);

impl Storage {
    /// Writes a projection's view changes (`(tenant, id) → value`), their
    /// index entries (`indexes`, as [`Storage::prepare_indexes`] set them
    /// up for the scope) and its checkpoint in one transaction: views,
    /// indexes and checkpoint never disagree.
    pub fn commit_views(
        &self,
        projection: &str,
        consumer: &str,
        checkpoint: u64,
        changes: &[ViewChange],
        indexes: &Indexes,
    ) -> Result<(), StorageError> {
        self.write(|txn| {
            for ((tenant, id), value) in changes {
                let key = compose(&[tenant, projection, id])?;
                if !indexes.is_empty() {
                    if let Some(old) = self.views.get(txn, &key)?.map(<[u8]>::to_vec) {
                        self.index_view(txn, projection, indexes, (tenant, id), &old, false)?;
                    }
                    if let Some(value) = value {
                        self.index_view(txn, projection, indexes, (tenant, id), value, true)?;
                    }
                }
                match value {
                    Some(value) => self.views.put(txn, &key, value)?,
                    None => {
                        self.views.delete(txn, &key)?;
                    }
                }
            }
            let current = self.checkpoints.get(txn, consumer)?.unwrap_or(0);
            if checkpoint > current {
                self.checkpoints.put(txn, consumer, &checkpoint)?;
            }
            Ok(())
        })
    }

    /// Deletes every view of a projection (all tenants), their index
    /// entries and its checkpoint, in one transaction: the start of a
    /// rebuild.
    pub fn reset_projection(&self, projection: &str, consumer: &str) -> Result<usize, StorageError> {
        self.write(|txn| {
            let mut doomed = Vec::new();
            for item in self.views.iter(txn)? {
                let (key, _) = item?;
                if key.split(|b| *b == 0).nth(1) == Some(projection.as_bytes()) {
                    doomed.push(key.to_vec());
                }
            }
            for key in &doomed {
                self.views.delete(txn, key)?;
            }
            self.clear_indexes(txn, projection)?;
            self.checkpoints.delete(txn, consumer)?;
            Ok(doomed.len())
        })
    }

    /// Every view of a projection scope, all tenants: `(tenant, id) → value`.
    pub fn scope_views(
        &self,
        projection: &str,
    ) -> Result<std::collections::BTreeMap<(String, String), Vec<u8>>, StorageError> {
        let txn = self.env.read_txn()?;
        let mut views = std::collections::BTreeMap::new();
        for item in self.views.iter(&txn)? {
            let (key, value) = item?;
            let mut parts = key.splitn(3, |b| *b == 0);
            let (Some(tenant), Some(scope), Some(id)) = (parts.next(), parts.next(), parts.next()) else { continue };
            if scope == projection.as_bytes() {
                let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
                views.insert((text(tenant), text(id)), value.to_vec());
            }
        }
        Ok(views)
    }

    /// A BLAKE3 digest of every view of a projection scope (tenant, id and
    /// value, in order; not the scope's name): equal digests mean
    /// byte-identical views, across generations too.
    pub fn views_digest(&self, projection: &str) -> Result<(String, usize), StorageError> {
        let views = self.scope_views(projection)?;
        let mut hasher = blake3::Hasher::new();
        for ((tenant, id), value) in &views {
            for part in [tenant.as_bytes(), id.as_bytes(), value.as_slice()] {
                hasher.update(&(part.len() as u64).to_le_bytes()).update(part);
            }
        }
        Ok((hasher.finalize().to_hex().to_string(), views.len()))
    }

    /// Reads one view.
    pub fn view_get(&self, tenant: &str, projection: &str, id: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.env.read_txn()?;
        Ok(self.views.get(&txn, &compose(&[tenant, projection, id])?)?.map(<[u8]>::to_vec))
    }

    /// Views of one tenant and projection with ids starting with `prefix`,
    /// after `cursor`, at most `limit`; and the cursor of the next page.
    pub fn view_list(
        &self,
        tenant: &str,
        projection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<crate::kv::Page, StorageError> {
        let txn = self.env.read_txn()?;
        crate::page(&txn, self.views, &[tenant, projection], prefix, cursor, limit)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Storage, StorageOptions, compose};

    #[test]
    fn views_page_within_one_tenant_and_projection() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let mut txn = storage.env.write_txn().unwrap();
        for (tenant, projection, id) in
            [("a", "orders", "o1"), ("a", "orders", "o2"), ("a", "ordersx", "o3"), ("b", "orders", "o4")]
        {
            storage.views.put(&mut txn, &compose(&[tenant, projection, id]).unwrap(), id.as_bytes()).unwrap();
        }
        txn.commit().unwrap();
        let (page, next) = storage.view_list("a", "orders", "o", None, 1).unwrap();
        assert_eq!((page[0].0.as_str(), next.as_deref()), ("o1", Some("o1")));
        let (page, next) = storage.view_list("a", "orders", "o", next.as_deref(), 5).unwrap();
        assert_eq!(page.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["o2"]);
        assert_eq!(next, None, "nothing of projection ordersx or of tenant b");
        assert_eq!(storage.view_get("b", "orders", "o4").unwrap().as_deref(), Some(&b"o4"[..]));
        assert_eq!(storage.view_get("a", "orders", "o4").unwrap(), None);
    }
}
