//! One KV bucket, as every bucket here uses it: reads from any replica or
//! from the leader, creates and revision-checked writes with their failures
//! typed (a create over an existing key, a stale revision), and the key
//! scan listings are built on, watches and history. Keys given here are
//! already escaped.

use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt};

use crate::ClusterError;
use crate::error::is_wrong_last_sequence;

/// A KV bucket handle and its name for messages.
#[derive(Clone)]
pub(crate) struct Bucket {
    store: kv::Store,
}

/// A key's latest state: its value (`None` when absent, deleted, purged or
/// expired) and the revision a write must expect (0 when the key never
/// existed or all its history is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    pub(crate) value: Option<Bytes>,
    pub(crate) revision: u64,
}

/// Header the server puts on a limit marker (a key expired or was purged).
const MARKER_REASON: &str = "Nats-Marker-Reason";
/// Header KV puts on delete and purge tombstones.
const KV_OPERATION: &str = "KV-Operation";

impl Bucket {
    pub(crate) fn new(store: kv::Store) -> Bucket {
        Bucket { store }
    }

    /// The bucket's name.
    pub(crate) fn name(&self) -> &str {
        &self.store.name
    }

    fn what(&self, key: &str) -> String {
        format!("key {key:?} of bucket {}", self.store.name)
    }

    /// The key's state from any replica (direct get): fast, possibly stale.
    pub(crate) async fn read(&self, key: &str) -> Result<Tail, ClusterError> {
        match self.store.entry(key).await {
            Ok(Some(entry)) => {
                let value = (entry.operation == Operation::Put).then_some(entry.value);
                Ok(Tail { value, revision: entry.revision })
            }
            Ok(None) => Ok(Tail { value: None, revision: 0 }),
            Err(e) => Err(ClusterError::from_nats(format!("reading {}", self.what(key)), &e)),
        }
    }

    /// The key's state from the stream leader: current as of the call.
    pub(crate) async fn read_latest(&self, key: &str) -> Result<Tail, ClusterError> {
        let subject = format!("{}{key}", self.store.prefix);
        match self.store.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                let tombstone = message.headers.get(KV_OPERATION).is_some_and(|op| op.as_str() != "PUT")
                    || message.headers.get(MARKER_REASON).is_some();
                Ok(Tail { value: (!tombstone).then_some(message.payload), revision: message.sequence })
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(Tail { value: None, revision: 0 }),
            Err(e) => Err(ClusterError::from_nats(format!("reading {} from its leader", self.what(key)), &e)),
        }
    }

    /// Creates the key; `None` if it holds a value. Creating over a delete
    /// or purge tombstone (an expired lease) succeeds. Unlike async-nats'
    /// `create`, the tombstone is looked up on the leader, so a lagging
    /// replica cannot make a free key look taken.
    pub(crate) async fn create(&self, key: &str, value: Bytes) -> Result<Option<u64>, ClusterError> {
        match self.update(key, value.clone(), 0).await {
            Ok(revision) => return Ok(Some(revision)),
            Err(ClusterError::Fenced { .. }) => {}
            Err(e) => return Err(e),
        }
        let tail = self.read_latest(key).await?;
        if tail.value.is_some() {
            return Ok(None);
        }
        match self.update(key, value, tail.revision).await {
            Ok(revision) => Ok(Some(revision)),
            // Another writer created it in between.
            Err(ClusterError::Fenced { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the key unconditionally; returns the new revision.
    pub(crate) async fn put(&self, key: &str, value: Bytes) -> Result<u64, ClusterError> {
        self.store.put(key, value).await.map_err(|e| ClusterError::from_nats(format!("writing {}", self.what(key)), &e))
    }

    /// Writes the key if it is still at `expected` (0: has never existed or
    /// its history is gone); a stale revision is [`ClusterError::Fenced`].
    pub(crate) async fn update(&self, key: &str, value: Bytes, expected: u64) -> Result<u64, ClusterError> {
        match self.store.update(key, value, expected).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision || is_wrong_last_sequence(&e) => {
                Err(ClusterError::Fenced { what: self.what(key), expected })
            }
            Err(e) => Err(ClusterError::from_nats(format!("updating {}", self.what(key)), &e)),
        }
    }

    /// Leaves a delete tombstone if the key is still at `expected`.
    pub(crate) async fn delete(&self, key: &str, expected: u64) -> Result<(), ClusterError> {
        match self.store.delete_expect_revision(key, Some(expected)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision || is_wrong_last_sequence(&e) => {
                Err(ClusterError::Fenced { what: self.what(key), expected })
            }
            Err(e) => Err(ClusterError::from_nats(format!("deleting {}", self.what(key)), &e)),
        }
    }

    /// Every key holding a value, in no particular order: one scan of the
    /// bucket's latest entries (headers only).
    pub(crate) async fn keys(&self) -> Result<Vec<String>, ClusterError> {
        let what = || format!("listing the keys of bucket {}", self.store.name);
        let keys = self.store.keys().await.map_err(|e| ClusterError::from_nats(what(), &e))?;
        keys.try_collect().await.map_err(|e| ClusterError::from_nats(what(), &e))
    }

    /// The names of keys as they change from now on (writes, deletes,
    /// expiries), escaped; the stream ends or fails when the watch breaks,
    /// and a watch can miss changes around reconnects: reconcile in full
    /// after it ends.
    pub(crate) async fn watch(
        &self,
    ) -> Result<impl futures_util::Stream<Item = Result<String, ClusterError>> + use<>, ClusterError> {
        let name = self.store.name.clone();
        let watch =
            self.store.watch_all().await.map_err(|e| ClusterError::from_nats(format!("watching bucket {name}"), &e))?;
        Ok(watch.map(move |entry| {
            entry.map(|entry| entry.key).map_err(|e| ClusterError::from_nats(format!("watching bucket {name}"), &e))
        }))
    }

    /// Every state of the key the bucket still keeps, oldest first.
    pub(crate) async fn history(&self, key: &str) -> Result<Vec<Tail>, ClusterError> {
        let what = || format!("reading the history of {}", self.what(key));
        let history = self.store.history(key).await.map_err(|e| ClusterError::from_nats(what(), &e))?;
        let entries: Vec<kv::Entry> = history.try_collect().await.map_err(|e| ClusterError::from_nats(what(), &e))?;
        Ok(entries
            .into_iter()
            .map(|entry| Tail {
                value: (entry.operation == Operation::Put).then_some(entry.value),
                revision: entry.revision,
            })
            .collect())
    }
}
