//! Secondary index entries of projection views, in the `view_index`
//! database, kept in the same transaction as the views they index.
//!
//! An entry's key is `scope hash (8 bytes) · index number · tenant NUL ·
//! encoded values · view id`, its value the view id: one scope's entries are
//! one contiguous range (cleared at once on a rebuild), one tenant's entries
//! of one index another (a query never leaves its tenant). Each scope's
//! index definitions are stored beside (`index_definitions`), so a changed
//! declaration rebuilds the entries from the views before folding goes on,
//! and a query plans with exactly the indexes its scope has.

use std::ops::Bound;

use corral_query::{Indexes, successor};
use heed::RwTxn;

use crate::{Storage, StorageError};

/// Views read per transaction while a scope's entries are rebuilt.
const REBUILD_CHUNK: usize = 10_000;

/// The first bytes of every entry of a scope.
fn scope_prefix(scope: &str) -> [u8; 8] {
    let hash = blake3::hash(scope.as_bytes());
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&hash.as_bytes()[..8]);
    prefix
}

/// The first bytes of every entry of one index of a scope, for one tenant.
pub(crate) fn index_prefix(scope: &str, number: u8, tenant: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(10 + tenant.len());
    prefix.extend_from_slice(&scope_prefix(scope));
    prefix.push(number);
    prefix.extend_from_slice(tenant.as_bytes());
    prefix.push(0);
    prefix
}

impl Storage {
    /// Makes a scope's index entries agree with `indexes`: when the stored
    /// definitions differ (a declaration added, dropped or changed), every
    /// entry of the scope is dropped and rebuilt from its views. Returns how
    /// many views were indexed (none when the definitions already agreed).
    ///
    /// The rebuild commits in chunks, so the kv writes, the log and carts
    /// wait for one chunk at most, never for a whole projection's views. The
    /// definitions are written last: until then queries plan without the
    /// indexes (a scan, under its limit), and a crash midway leaves them
    /// differing, so the next start rebuilds again. The caller folds nothing
    /// into the scope meanwhile.
    pub fn prepare_indexes(&self, scope: &str, indexes: &Indexes) -> Result<Option<usize>, StorageError> {
        let definition = indexes.to_definition();
        let current = {
            let txn = self.env.read_txn()?;
            self.index_definitions.get(&txn, scope)?.map(str::to_string)
        };
        if current.as_deref().unwrap_or("") == definition {
            return Ok(None);
        }
        self.write(|txn| self.clear_indexes(txn, scope))?;
        if indexes.is_empty() {
            return Ok(Some(0));
        }
        let (mut after, mut indexed) = (None, 0);
        loop {
            let (last, count) = self.write(|txn| self.index_chunk(txn, scope, indexes, after.as_deref()))?;
            indexed += count;
            match last {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        self.write(|txn| Ok(self.index_definitions.put(txn, scope, &definition)?))?;
        Ok(Some(indexed))
    }

    /// Indexes the scope's views among the next [`REBUILD_CHUNK`] views of
    /// the database after the key `after`; returns the last key read (none
    /// when the database is done) and how many views it indexed.
    fn index_chunk(
        &self,
        txn: &mut RwTxn<'_>,
        scope: &str,
        indexes: &Indexes,
        after: Option<&[u8]>,
    ) -> Result<(Option<Vec<u8>>, usize), StorageError> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let (mut views, mut last, mut read) = (Vec::new(), None, 0);
        for item in self.views.range(txn, &(start, Bound::Unbounded))? {
            let (key, value) = item?;
            read += 1;
            let mut parts = key.splitn(3, |b| *b == 0);
            if let (Some(tenant), Some(owner), Some(id)) = (parts.next(), parts.next(), parts.next())
                && owner == scope.as_bytes()
            {
                let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
                views.push((text(tenant), text(id), value.to_vec()));
            }
            if read == REBUILD_CHUNK {
                last = Some(key.to_vec());
                break;
            }
        }
        for (tenant, id, value) in &views {
            self.index_view(txn, scope, indexes, (tenant, id), value, true)?;
        }
        Ok((last, views.len()))
    }

    /// Drops every index entry and the definitions of a scope.
    pub(crate) fn clear_indexes(&self, txn: &mut RwTxn<'_>, scope: &str) -> Result<(), StorageError> {
        let start = scope_prefix(scope);
        let end = successor(&start);
        let range = (Bound::Included(&start[..]), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded));
        self.view_index.delete_range(txn, &range)?;
        self.index_definitions.delete(txn, scope)?;
        Ok(())
    }

    /// Adds (or, with `add` false, removes) a view's entries.
    pub(crate) fn index_view(
        &self,
        txn: &mut RwTxn<'_>,
        scope: &str,
        indexes: &Indexes,
        (tenant, id): (&str, &str),
        value: &[u8],
        add: bool,
    ) -> Result<(), StorageError> {
        for (number, entry) in indexes.entries(id, value) {
            let mut key = index_prefix(scope, number, tenant);
            key.extend_from_slice(&entry);
            if add {
                self.view_index.put(txn, &key, id.as_bytes())?;
            } else {
                self.view_index.delete(txn, &key)?;
            }
        }
        Ok(())
    }

    /// The index definitions stored for a scope.
    pub(crate) fn index_definitions(&self, txn: &heed::RoTxn<'_>, scope: &str) -> Result<Indexes, StorageError> {
        let definition = self.index_definitions.get(txn, scope)?.unwrap_or("");
        Indexes::from_definition(definition)
            .map_err(|error| StorageError::Corrupt(format!("index definitions of {scope}: {error}")))
    }
}
