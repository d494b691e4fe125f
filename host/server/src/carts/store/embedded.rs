//! Carts in the node's LMDB: reads straight from storage, commits through
//! the group-commit thread ([`Journal`]), so many carts share one fsync.

use corral_storage::Storage;
use corral_storage::carts::{CartCommit, CartKey, JournalEntry, Recorded, Snapshot};
use corral_storage::journal::Journal;

use crate::carts::store::{CartStore, Loaded, StoreError};

/// Carts' journals in LMDB.
pub(crate) struct LmdbCarts {
    storage: Storage,
    journal: Journal,
}

impl LmdbCarts {
    /// Over `storage`; `announce` is told the log's head after each commit
    /// that published events.
    pub(crate) fn start(storage: Storage, announce: impl Fn(u64) + Send + 'static) -> anyhow::Result<LmdbCarts> {
        let journal = Journal::start(storage.clone(), announce)?;
        Ok(LmdbCarts { storage, journal })
    }
}

fn failed(error: impl ToString) -> StoreError {
    StoreError::Failed(error.to_string())
}

#[async_trait::async_trait]
impl CartStore for LmdbCarts {
    async fn load(&self, key: &CartKey) -> Result<Loaded, StoreError> {
        Ok(Loaded { stored: self.storage.cart_stored(key).map_err(failed)?, position: 0, writer: None })
    }

    async fn recorded(&self, key: &CartKey, id: &str) -> Result<Option<Recorded>, StoreError> {
        self.storage.cart_recorded(key, id).map_err(failed)
    }

    async fn commit(&self, commit: CartCommit, _position: u64, _epoch: u64) -> Result<(CartCommit, u64), StoreError> {
        let mut committed = self.journal.commit(vec![commit]).await.map_err(failed)?;
        let commit = committed.pop().ok_or_else(|| failed("the journal answered without the commit"))?;
        Ok((commit, 0))
    }

    fn name(&self) -> &'static str {
        "lmdb"
    }

    async fn journal(&self, key: &CartKey) -> Result<(Vec<JournalEntry>, Option<Snapshot>), StoreError> {
        self.storage.cart_journal(key).map_err(failed)
    }
}
