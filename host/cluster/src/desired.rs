//! Desired state: what every node of the cluster should run, one entry per
//! plugin (its value is the server's, opaque here) in a bucket that keeps
//! the last [`DEPLOY_HISTORY`](crate::DEPLOY_HISTORY) revisions of each.
//!
//! Every write expects the revision its writer read, so two deploys (or a
//! deploy and a rollout step) that raced cannot overwrite each other: the
//! second gets [`ClusterError::Fenced`] naming the revision it expected.
//! Nodes learn of changes through [`Desired::changes`] and, since a watch
//! can miss changes around reconnects, also read [`Desired::all`] in full.

use futures_util::Stream;

use crate::ClusterError;
use crate::names::{self, unescape_token};
use crate::store::Bucket;

/// One plugin's desired state at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The plugin.
    pub plugin: String,
    /// Its state, `None` when it was removed (or never deployed).
    pub value: Option<Vec<u8>>,
    /// The revision a write must expect (0: never written).
    pub revision: u64,
}

/// The deploys bucket; see [`Cluster::desired`](crate::Cluster::desired).
#[derive(Clone)]
pub struct Desired {
    bucket: Bucket,
}

impl Desired {
    pub(crate) fn new(bucket: Bucket) -> Desired {
        Desired { bucket }
    }

    /// The plugin's latest state, read from the leader.
    pub async fn get(&self, plugin: &str) -> Result<Entry, ClusterError> {
        let tail = self.bucket.read_latest(&names::key(plugin)?).await?;
        Ok(Entry { plugin: plugin.to_string(), value: tail.value.map(|v| v.to_vec()), revision: tail.revision })
    }

    /// Writes the plugin's state if it is still at `expected` (from
    /// [`Desired::get`]); returns the new revision. A stale `expected` is
    /// [`ClusterError::Fenced`] and writes nothing.
    pub async fn write(&self, plugin: &str, value: &[u8], expected: u64) -> Result<u64, ClusterError> {
        self.bucket.update(&names::key(plugin)?, bytes::Bytes::copy_from_slice(value), expected).await
    }

    /// Removes the plugin from the desired state if it is still at
    /// `expected`: every node unloads it.
    pub async fn remove(&self, plugin: &str, expected: u64) -> Result<(), ClusterError> {
        self.bucket.delete(&names::key(plugin)?, expected).await
    }

    /// Every plugin with a desired state, in name order, each read from
    /// the leader.
    pub async fn all(&self) -> Result<Vec<Entry>, ClusterError> {
        let mut plugins: Vec<String> = self.bucket.keys().await?.iter().filter_map(|k| unescape_token(k)).collect();
        plugins.sort();
        let mut entries = Vec::with_capacity(plugins.len());
        for plugin in plugins {
            let entry = self.get(&plugin).await?;
            if entry.value.is_some() {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// The plugins whose state changes from now on (possibly repeated);
    /// ends or fails when the watch breaks.
    pub async fn changes(&self) -> Result<impl Stream<Item = Result<String, ClusterError>> + use<>, ClusterError> {
        use futures_util::StreamExt as _;
        let watch = self.bucket.watch().await?;
        Ok(watch.filter_map(|key| async move {
            match key {
                Ok(escaped) => unescape_token(&escaped).map(Ok),
                Err(error) => Some(Err(error)),
            }
        }))
    }

    /// The states of the plugin the bucket keeps, oldest first.
    pub async fn history(&self, plugin: &str) -> Result<Vec<Entry>, ClusterError> {
        let tails = self.bucket.history(&names::key(plugin)?).await?;
        Ok(tails
            .into_iter()
            .map(|tail| Entry {
                plugin: plugin.to_string(),
                value: tail.value.map(|v| v.to_vec()),
                revision: tail.revision,
            })
            .collect())
    }
}
