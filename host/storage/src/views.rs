//! Projection views, keyed `tenant NUL projection NUL id` so one tenant's
//! views of one projection are contiguous and a listing can never cross
//! into another tenant's.

use std::ops::Bound;

use heed::types::Bytes;

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
        let scope = compose(&[tenant, projection, ""])?;
        let wanted = compose(&[tenant, projection, prefix])?;
        let start = compose(&[tenant, projection, cursor.filter(|c| *c >= prefix).unwrap_or(prefix)])?;
        let mut views = Vec::new();
        let mut next = None;
        for item in self
            .views
            .remap_types::<Bytes, Bytes>()
            .range(&txn, &(Bound::Included(start.as_slice()), Bound::Unbounded))?
        {
            let (stored, value) = item?;
            if !stored.starts_with(&wanted) {
                break;
            }
            let id = String::from_utf8_lossy(&stored[scope.len()..]).into_owned();
            if Some(id.as_str()) == cursor {
                continue;
            }
            if views.len() == limit {
                next = views.last().map(|(id, _): &(String, Vec<u8>)| id.clone());
                break;
            }
            views.push((id, value.to_vec()));
        }
        Ok((views, next))
    }
}
