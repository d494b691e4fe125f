//! Where carts' journals live ([`CartStore`]): the node's LMDB on one node
//! ([`embedded::LmdbCarts`]), the cluster's stream in a cluster
//! ([`jetstream::StreamCarts`]). Both keep, per cart, the journal, the
//! latest snapshot and the recorded result of every client id, and commit a
//! mailbox round's entries, records and outbox events all or nothing.
//!
//! A commit names the journal position it was built on; the cluster's
//! store refuses it ([`StoreError::Fenced`]) when another writer moved the
//! journal since, so a stale owner never appends.

mod codec;
pub(crate) mod embedded;
pub(crate) mod jetstream;

use corral_storage::carts::{Applied, CartCommit, CartKey, JournalEntry, Recorded, Snapshot, Stored};

/// A cart as loaded, and the journal position the next commit must expect.
pub(crate) struct Loaded {
    /// The latest snapshot and the entries after it.
    pub(crate) stored: Stored,
    /// Where the journal ends (its last message's sequence; 0 when it is
    /// empty, and always 0 in LMDB, where one writer is a given).
    pub(crate) position: u64,
    /// In a cluster, the node that wrote the journal's last message.
    pub(crate) writer: Option<String>,
}

/// Why a store operation failed, shaped by what the mailbox does next.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum StoreError {
    /// The journal moved past the expected position: another node owns the
    /// cart now. Nothing was written; drop the cart and re-route.
    #[error("{0}")]
    Fenced(String),
    /// The store has as many commits in flight as it takes; nothing was
    /// written. Retry shortly.
    #[error("{0}")]
    Busy(String),
    /// The store failed; for a commit, nothing was written (an unknown
    /// outcome is resolved before this is returned, or named as such).
    #[error("{0}")]
    Failed(String),
}

/// What a round's commit holds so far (messages and bytes of its journal
/// message), for [`CartStore::admit`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
}

/// Whether a mutation fits in the round being built.
#[derive(Debug)]
pub(crate) enum Admit {
    /// It does (and is counted in).
    Fits,
    /// Not with what the round already holds: it starts the next round.
    NextRound,
    /// Not in any commit: the reason, for the caller.
    Never(String),
}

/// Carts' journals, snapshots and idempotency records.
#[async_trait::async_trait]
pub(crate) trait CartStore: Send + Sync + 'static {
    /// The cart's latest snapshot and the journal entries after it.
    async fn load(&self, key: &CartKey) -> Result<Loaded, StoreError>;

    /// What the mutation with client id `id` returned, if it was applied.
    async fn recorded(&self, key: &CartKey, id: &str) -> Result<Option<Recorded>, StoreError>;

    /// Commits one round of a cart, built on the journal at `position`, by
    /// the owner of tenure `epoch` (0 on one node). Returns the commit with
    /// its outbox sequences filled in and the journal's new position. A
    /// store may leave the commit's snapshot out, for [`keep_snapshot`]
    /// afterwards.
    ///
    /// [`keep_snapshot`]: CartStore::keep_snapshot
    async fn commit(&self, commit: CartCommit, position: u64, epoch: u64) -> Result<(CartCommit, u64), StoreError>;

    /// The cart's whole journal and its latest snapshot.
    async fn journal(&self, key: &CartKey) -> Result<(Vec<JournalEntry>, Option<Snapshot>), StoreError>;

    /// Keeps a snapshot of the cart at journal `position`, outside a commit:
    /// a commit's, once its callers are answered, and what an owner leaves
    /// behind when it gives the cart up, so the next owner replays little.
    /// LMDB stores snapshots within commits only.
    async fn keep_snapshot(&self, _key: &CartKey, _snapshot: Snapshot, _position: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// The store's name in metrics: `lmdb` or `jetstream`.
    fn name(&self) -> &'static str;

    /// Whether `applied` fits in the round's commit after what `used`
    /// holds (and if so counts it in): a round stops before a commit the
    /// store could not take, and a mutation no commit could hold is refused.
    fn admit(&self, _used: &mut Budget, _applied: &Applied) -> Admit {
        Admit::Fits
    }
}
