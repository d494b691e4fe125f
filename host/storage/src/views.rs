//! Projection views, keyed `tenant NUL projection NUL id` so one tenant's
//! views of one projection are contiguous and a listing can never cross
//! into another tenant's.

use crate::{Storage, StorageError, compose};

impl Storage {
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
