//! Membership: every node writes its [`Member`] entry into a KV bucket
//! whose entries expire after the member TTL (a few seconds), so the live
//! members are the entries present. A view of members is advice (where to
//! forward, whom to ask); correctness never rests on it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ClusterError;
use crate::names::{self, unescape_token};
use crate::store::Bucket;

/// A node of the cluster, as it announces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's id (unique in the cluster).
    pub node_id: String,
    /// Grows with every start of the node: tells a restarted node from
    /// its previous life.
    pub incarnation: u64,
    /// Where peers reach it (`host:port` of its control plane).
    pub advertise: String,
    /// When this incarnation started, milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// The Corral version it runs.
    #[serde(default)]
    pub version: String,
    /// What the node reports of itself with each heartbeat (its consumers'
    /// checkpoints, digests, leases): opaque to this crate.
    #[serde(default)]
    pub details: serde_json::Value,
}

/// The members bucket; see [`Cluster::members`](crate::Cluster::members).
#[derive(Clone)]
pub struct Members {
    bucket: Bucket,
}

impl Members {
    pub(crate) fn new(bucket: Bucket) -> Members {
        Members { bucket }
    }

    /// Writes (or refreshes) the member's entry; call it well within the
    /// member TTL. Returns the entry's revision.
    pub async fn heartbeat(&self, member: &Member) -> Result<u64, ClusterError> {
        let json = serde_json::to_vec(member)
            .map_err(|e| ClusterError::invalid(format!("member {:?}", member.node_id), e.to_string()))?;
        self.bucket.put(&names::key(&member.node_id)?, Bytes::from(json)).await
    }

    /// Removes the member's entry (a graceful leave), unless a newer
    /// incarnation of the node wrote it since.
    pub async fn leave(&self, member: &Member) -> Result<(), ClusterError> {
        let key = names::key(&member.node_id)?;
        let tail = self.bucket.read_latest(&key).await?;
        let Some(value) = tail.value else { return Ok(()) };
        let stored: Option<Member> = serde_json::from_slice(&value).ok();
        if stored.is_some_and(|stored| stored.incarnation != member.incarnation) {
            return Ok(());
        }
        match self.bucket.delete(&key, tail.revision).await {
            Ok(()) | Err(ClusterError::Fenced { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The live members (entries not expired), by node id. Reads from any
    /// replica; an entry that does not decode is skipped with a warning.
    pub async fn list(&self) -> Result<Vec<Member>, ClusterError> {
        let mut members = Vec::new();
        for escaped in self.bucket.keys().await? {
            let Some(value) = self.bucket.read(&escaped).await?.value else { continue };
            match serde_json::from_slice::<Member>(&value) {
                Ok(member) => members.push(member),
                Err(e) => {
                    let node = unescape_token(&escaped).unwrap_or(escaped);
                    tracing::warn!(node = %node, bucket = %self.bucket.name(), "skipping a member entry: {e}");
                }
            }
        }
        members.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(members)
    }
}
