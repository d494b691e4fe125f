//! Leases: who should do a piece of work (run a subscriber's dispatcher,
//! own a cart), as KV entries that expire unless renewed. The bucket's
//! `max_age` is the lease TTL, counted from the last renewal.
//!
//! A lease is taken with a KV create (which also succeeds over the marker
//! an expired lease leaves) and renewed with an update expecting the
//! revision the holder last wrote, so a holder whose lease expired and was
//! taken over cannot renew it: [`ClusterError::LeaseLost`]. The revision at
//! acquisition is the holder's epoch: it only grows, and writes stamped
//! with it tell tenures apart. A lease says who *should* write; writes that
//! must have one writer still check their own expectations.

use bytes::Bytes;

use crate::ClusterError;
use crate::names::{self, unescape_token};
use crate::store::Bucket;

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What the lease is for.
    pub name: String,
    /// Who holds it (a node id).
    pub holder: String,
    /// The revision at acquisition: grows with every new tenure.
    pub epoch: u64,
    /// The revision of the last renewal, which the next one must expect.
    pub revision: u64,
}

/// The leases bucket; see [`Cluster::leases`](crate::Cluster::leases).
#[derive(Clone)]
pub struct Leases {
    bucket: Bucket,
}

impl Leases {
    pub(crate) fn new(bucket: Bucket) -> Leases {
        Leases { bucket }
    }

    /// Takes the lease for `holder` unless someone holds it (`None`).
    pub async fn try_acquire(&self, name: &str, holder: &str) -> Result<Option<Lease>, ClusterError> {
        let key = names::key(name)?;
        let revision = self.bucket.create(&key, Bytes::from(holder.to_string())).await?;
        Ok(revision.map(|revision| Lease {
            name: name.to_string(),
            holder: holder.to_string(),
            epoch: revision,
            revision,
        }))
    }

    /// Renews the lease for another TTL. Fails with
    /// [`ClusterError::LeaseLost`] when it expired or was taken over: stop
    /// the work it guarded.
    pub async fn renew(&self, lease: &Lease) -> Result<Lease, ClusterError> {
        let key = names::key(&lease.name)?;
        match self.bucket.update(&key, Bytes::from(lease.holder.clone()), lease.revision).await {
            Ok(revision) => Ok(Lease { revision, ..lease.clone() }),
            Err(ClusterError::Fenced { .. }) => {
                Err(ClusterError::LeaseLost { lease: lease.name.clone(), revision: lease.revision })
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up at once (instead of letting it expire); false if
    /// it was already lost.
    pub async fn release(&self, lease: Lease) -> Result<bool, ClusterError> {
        let key = names::key(&lease.name)?;
        match self.bucket.delete(&key, lease.revision).await {
            Ok(()) => Ok(true),
            Err(ClusterError::Fenced { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Who holds the lease and at which revision, read from the leader.
    pub async fn holder(&self, name: &str) -> Result<Option<(String, u64)>, ClusterError> {
        let tail = self.bucket.read_latest(&names::key(name)?).await?;
        Ok(tail.value.map(|holder| (String::from_utf8_lossy(&holder).into_owned(), tail.revision)))
    }

    /// Held leases whose name starts with `prefix`, in name order, as
    /// `(name, holder, revision)`. Scans the bucket; reads from any replica.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, String, u64)>, ClusterError> {
        let mut held = Vec::new();
        for escaped in self.bucket.keys().await? {
            let Some(name) = unescape_token(&escaped) else { continue };
            if !name.starts_with(prefix) {
                continue;
            }
            let tail = self.bucket.read(&escaped).await?;
            if let Some(holder) = tail.value {
                held.push((name, String::from_utf8_lossy(&holder).into_owned(), tail.revision));
            }
        }
        held.sort();
        Ok(held)
    }
}
