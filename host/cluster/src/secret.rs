//! The cluster's peer secret: 32 bytes in the `secrets` bucket, created by
//! the first node that asks (with bytes it drew itself) and read by every
//! node after, so all nodes share it with no configuration. Nodes sign the
//! calls they make to each other with it; a call without a valid
//! signature is not a peer's. Whoever can read the bucket — holds the NATS
//! credentials — is trusted as a peer, which is the trust the cluster
//! already rests on.

use std::time::Duration;

use bytes::Bytes;

use crate::{Cluster, ClusterError};

/// The key of the peer secret in the `secrets` bucket.
const PEER_SECRET: &str = "peer";

impl Cluster {
    /// The cluster's peer secret: the one stored, or `candidate` if none
    /// was (two nodes racing to create it get the same winner).
    pub async fn peer_secret(&self, candidate: [u8; 32]) -> Result<[u8; 32], ClusterError> {
        // Right after the bucket is created, its stream may have no leader
        // yet ("no stream found"): ask again for a few seconds. Creating
        // again is safe: a create that landed unanswered reads back as ours.
        let mut pause = Duration::from_millis(50);
        loop {
            match self.read_or_create_secret(candidate).await {
                Err(ClusterError::Unavailable { .. }) if pause < Duration::from_secs(2) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                done => return done,
            }
        }
    }

    async fn read_or_create_secret(&self, candidate: [u8; 32]) -> Result<[u8; 32], ClusterError> {
        let secrets = &self.inner.secrets;
        if secrets.create(PEER_SECRET, Bytes::copy_from_slice(&candidate)).await?.is_some() {
            return Ok(candidate);
        }
        let stored = secrets.read_latest(PEER_SECRET).await?.value;
        match stored.as_deref().map(<[u8; 32]>::try_from) {
            Some(Ok(secret)) => Ok(secret),
            _ => Err(ClusterError::Corrupt {
                what: format!("key {PEER_SECRET:?} of bucket {}", secrets.name()),
                cause: "the peer secret is not 32 bytes; delete the key and restart the nodes".into(),
            }),
        }
    }
}
