//! Who does which work when several nodes could: a subscriber's delivery
//! (and its schedules), retention. On one node ([`Leases::Solo`]) the work
//! just runs. In a cluster the work runs on the node holding its lease
//! (JetStream KV, created by one node, renewed with the expected revision);
//! another node takes over within one TTL of the holder's death. A lease
//! only decides who *should* do the work: the work's own writes are fenced
//! (a checkpoint moves only from the revision it was read at), so a holder
//! that lost its lease without knowing cannot move anything.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use corral_cluster::{Cluster, ClusterError};
use tokio::sync::watch;

use crate::shutdown::pause;

/// How work is shared between nodes.
#[derive(Clone)]
pub enum Leases {
    /// One node: every lease is this node's.
    Solo,
    /// A cluster: leases in JetStream KV, held by this node's id.
    Cluster(Arc<ClusterLeases>),
}

/// The cluster's leases as this node sees them.
pub struct ClusterLeases {
    cluster: Cluster,
    holder: String,
    ttl: Duration,
    held: Mutex<BTreeSet<String>>,
}

impl ClusterLeases {
    /// Leases of `cluster`, held as `holder` (the node's id).
    pub fn new(cluster: Cluster, holder: &str) -> ClusterLeases {
        let ttl = cluster.options().lease_ttl;
        ClusterLeases { cluster, holder: holder.to_string(), ttl, held: Mutex::default() }
    }

    fn mark(&self, name: &str, held: bool) {
        let mut set = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held {
            set.insert(name.to_string());
        } else {
            set.remove(name);
        }
    }
}

impl Leases {
    /// The leases this node holds now.
    pub fn held(&self) -> Vec<String> {
        match self {
            Leases::Solo => Vec::new(),
            Leases::Cluster(leases) => {
                leases.held.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
            }
        }
    }

    /// Runs `work` while this node holds the lease `name`, until `stop`.
    /// `work` gets a stop flag of its own, raised when the lease is lost (or
    /// `stop` is): it must return soon after. In a cluster, a node that does
    /// not hold the lease tries again every third of the TTL.
    pub async fn run_while_held<W, F>(&self, name: &str, stop: watch::Receiver<bool>, work: W)
    where
        W: Fn(watch::Receiver<bool>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        match self {
            Leases::Solo => work(stop).await,
            Leases::Cluster(leases) => leases.run_while_held(name, stop, work).await,
        }
    }
}

impl ClusterLeases {
    async fn run_while_held<W, F>(&self, name: &str, mut stop: watch::Receiver<bool>, work: W)
    where
        W: Fn(watch::Receiver<bool>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let every = self.ttl / 3;
        let leases = self.cluster.leases();
        loop {
            if *stop.borrow() {
                return;
            }
            match leases.try_acquire(name, &self.holder).await {
                Ok(Some(lease)) => {
                    tracing::info!(lease = name, epoch = lease.epoch, "lease acquired: running its work here");
                    self.mark(name, true);
                    let stopped = self.hold(lease, &mut stop, &work).await;
                    self.mark(name, false);
                    if stopped {
                        return;
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(lease = name, "acquiring the lease failed: {error}"),
            }
            if pause(&mut stop, every).await {
                return;
            }
        }
    }

    /// Runs the work while renewing `lease`; returns true if `stop` ended it.
    async fn hold<W, F>(
        &self,
        mut lease: corral_cluster::leases::Lease,
        stop: &mut watch::Receiver<bool>,
        work: &W,
    ) -> bool
    where
        W: Fn(watch::Receiver<bool>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let leases = self.cluster.leases();
        let (halt, halted) = watch::channel(false);
        let mut task = tokio::spawn(work(halted));
        let mut renewed = Instant::now();
        let stopped = loop {
            tokio::select! {
                () = tokio::time::sleep(self.ttl / 3) => match leases.renew(&lease).await {
                    Ok(fresh) => {
                        lease = fresh;
                        renewed = Instant::now();
                    }
                    Err(error @ ClusterError::LeaseLost { .. }) => {
                        tracing::warn!(lease = %lease.name, "lease lost, stopping its work: {error}");
                        break false;
                    }
                    // Unreachable for now: keep working while the lease may
                    // still be ours; past its TTL it surely is not.
                    Err(error) if renewed.elapsed() < self.ttl => {
                        tracing::warn!(lease = %lease.name, "renewing the lease failed, retrying: {error}");
                    }
                    Err(error) => {
                        tracing::warn!(lease = %lease.name, "lease not renewed within its TTL, stopping its work: {error}");
                        break false;
                    }
                },
                _ = &mut task => {
                    tracing::info!(lease = %lease.name, "the lease's work ended; giving the lease up");
                    break false;
                }
                _ = stop.changed() => break true,
            }
        };
        let _ = halt.send(true);
        if !task.is_finished() {
            let _ = task.await;
        }
        // Given up at once, so another node need not wait for the TTL.
        if let Err(error) = leases.release(lease).await {
            tracing::debug!("releasing a lease failed (it expires anyway): {error}");
        }
        stopped
    }
}
