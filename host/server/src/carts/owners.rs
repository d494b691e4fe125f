//! Which node owns a cart, in a cluster ([`Owners`]): the cart's lease in
//! the leases bucket (taken with a create, renewed expecting the revision
//! last written; the revision at taking is the owner's epoch, stamped on
//! its journal messages). A cart nobody holds goes to the live member a
//! rendezvous hash of the cart prefers, so callers that pick that node
//! reach the owner without a hop; a call forwarded once is served where it
//! lands. A node that is closing takes no new carts.
//!
//! The lease says who *should* write; the journal's expected sequence is
//! what keeps a stale owner from writing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_cluster::leases::Lease;
use corral_cluster::members::Member;
use corral_cluster::{Cluster, ClusterError};
use corral_storage::carts::CartKey;

/// A live member list is read again at most this often.
const MEMBERS_FRESH: Duration = Duration::from_millis(500);
/// How long a peer that said it is leaving is left out, at most (a node
/// that leaves removes its member entry at once; this only bridges the
/// moment until every peer sees that, and bounds what a forged `Closing`
/// can do).
const LEAVING_FOR_MS: u64 = 10_000;
/// How long a peer that refused a connection is left out.
const SUSPECT_FOR: Duration = Duration::from_secs(3);

/// Where a cart's calls go.
#[derive(Debug)]
pub(crate) enum Claim {
    /// This node holds the cart's lease now.
    Mine(Lease),
    /// Another node holds it, or should take it: forward the calls there.
    Elsewhere(String),
}

/// The cluster's cart leases, as this node takes and keeps them.
pub struct Owners {
    cluster: Cluster,
    node: String,
    closing: AtomicBool,
    members: Mutex<Option<(Instant, Vec<Member>)>>,
    /// Peers that announced they are leaving, and when (Unix ms): no carts
    /// are placed on them for a while, unless they started again since.
    leaving: Mutex<HashMap<String, u64>>,
    /// Peers a call could not connect to, and when.
    suspects: Mutex<HashMap<String, Instant>>,
}

impl Owners {
    /// Ownership in `cluster`, for this node.
    pub fn new(cluster: Cluster) -> Owners {
        let node = cluster.options().node_id.clone();
        Owners {
            cluster,
            node,
            closing: AtomicBool::new(false),
            members: Mutex::new(None),
            leaving: Mutex::default(),
            suspects: Mutex::default(),
        }
    }

    /// This node's id.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// From now on this node takes no new carts.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// A peer announced it is leaving: place no more carts on it.
    pub(crate) fn peer_leaving(&self, node: &str) {
        self.leaving.lock().unwrap_or_else(PoisonError::into_inner).insert(node.to_string(), now_ms());
        *self.members.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The other live members' addresses (to tell them this node leaves).
    pub(crate) async fn peer_addresses(&self) -> Vec<String> {
        self.live().await.into_iter().filter(|m| m.node_id != self.node).map(|m| m.advertise).collect()
    }

    /// How often a held lease is renewed: three times per TTL.
    pub(crate) fn renew_every(&self) -> Duration {
        self.cluster.options().lease_ttl / 3
    }

    /// The lease's TTL.
    pub(crate) fn ttl(&self) -> Duration {
        self.cluster.options().lease_ttl
    }

    /// Takes the cart, or says who has (or should take) it. `forwarded`:
    /// another node sent the call here, so it is served here if the cart
    /// is free.
    pub(crate) async fn claim(&self, key: &CartKey, forwarded: bool) -> Result<Claim, ClusterError> {
        let name = lease_name(key);
        let leases = self.cluster.leases();
        loop {
            let closing = self.closing.load(Ordering::Acquire);
            match leases.holder(&name).await? {
                Some((holder, _)) if holder != self.node => return Ok(Claim::Elsewhere(holder)),
                // A mailbox of this closing node is giving the lease up:
                // place the cart elsewhere once it has.
                Some(_) if closing => tokio::time::sleep(Duration::from_millis(50)).await,
                // This node's own lease, left by an earlier life or a
                // mailbox that just ended: take it anew (a new epoch).
                Some((holder, revision)) => {
                    let stale = Lease { name: name.clone(), holder, epoch: revision, revision };
                    match leases.renew(&stale).await {
                        Ok(lease) => return Ok(Claim::Mine(Lease { epoch: lease.revision, ..lease })),
                        Err(ClusterError::LeaseLost { .. }) => {}
                        Err(error) => return Err(error),
                    }
                }
                None => {
                    if closing || !forwarded {
                        match self.preferred(key, closing).await {
                            Some(node) if node != self.node => return Ok(Claim::Elsewhere(node)),
                            None if closing => {
                                return Err(ClusterError::Unavailable {
                                    what: format!("placing cart {}", key.cart),
                                    cause: "this node is closing and no other node is live".into(),
                                });
                            }
                            _ => {}
                        }
                    }
                    if let Some(lease) = leases.try_acquire(&name, &self.node).await? {
                        return Ok(Claim::Mine(lease));
                    }
                    // Another node took it a moment ago: ask again who.
                }
            }
        }
    }

    /// Renews a held lease; [`ClusterError::LeaseLost`] when another node
    /// took the cart.
    pub(crate) async fn renew(&self, lease: &Lease) -> Result<Lease, ClusterError> {
        self.cluster.leases().renew(lease).await
    }

    /// Gives the cart up at once, so another node need not wait a TTL.
    pub(crate) async fn release(&self, lease: Lease) {
        if let Err(error) = self.cluster.leases().release(lease).await {
            tracing::debug!("releasing a cart lease failed (it expires anyway): {error}");
        }
    }

    /// Where `node` is reached (its advertised address), if it is live.
    pub(crate) async fn address(&self, node: &str) -> Option<String> {
        self.live().await.into_iter().find(|m| m.node_id == node).map(|m| m.advertise)
    }

    /// The live member a rendezvous hash of the cart prefers (skipping this
    /// node when it is closing); none when no member is known.
    async fn preferred(&self, key: &CartKey, skip_self: bool) -> Option<String> {
        let cart = [key.tenant.as_bytes(), b"\0", key.plugin.as_bytes(), b"\0", key.cart.as_bytes()].concat();
        self.live()
            .await
            .into_iter()
            .filter(|member| !(skip_self && member.node_id == self.node))
            .max_by_key(|member| rendezvous(&member.node_id, &cart))
            .map(|member| member.node_id)
    }

    /// The live members, but those suspected of being down.
    async fn live(&self) -> Vec<Member> {
        let mut members = self.members().await;
        let suspects = self.suspects.lock().unwrap_or_else(PoisonError::into_inner);
        members.retain(|m| suspects.get(&m.node_id).is_none_or(|since| since.elapsed() >= SUSPECT_FOR));
        members
    }

    /// A call to `node` could not connect: place no carts on it, and send
    /// it no calls, for a while (its member entry may outlive it by seconds).
    pub(crate) fn suspect(&self, node: &str) {
        self.suspects.lock().unwrap_or_else(PoisonError::into_inner).insert(node.to_string(), Instant::now());
    }

    async fn members(&self) -> Vec<Member> {
        {
            let cached = self.members.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, members)) = cached.as_ref()
                && at.elapsed() < MEMBERS_FRESH
            {
                return members.clone();
            }
        }
        match self.cluster.members().list().await {
            Ok(mut members) => {
                let leaving = self.leaving.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let now = now_ms();
                members.retain(|m| {
                    leaving
                        .get(&m.node_id)
                        .is_none_or(|&since| m.started_ms > since || now.saturating_sub(since) > LEAVING_FOR_MS)
                });
                *self.members.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), members.clone()));
                members
            }
            Err(error) => {
                tracing::warn!("reading the cluster's members failed: {error}");
                let cached = self.members.lock().unwrap_or_else(PoisonError::into_inner);
                cached.as_ref().map(|(_, members)| members.clone()).unwrap_or_default()
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The cart's lease: a digest, since a cart's names can be longer than a key.
fn lease_name(key: &CartKey) -> String {
    let cart = [key.tenant.as_bytes(), b"\0", key.plugin.as_bytes(), b"\0", key.cart.as_bytes()].concat();
    format!("cart.{}", blake3::hash(&cart).to_hex())
}

/// The node's score for a cart: the highest score owns it.
fn rendezvous(node: &str, cart: &[u8]) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(node.as_bytes());
    hasher.update(b"\0");
    hasher.update(cart);
    let mut score = [0; 8];
    score.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_be_bytes(score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_spreads_carts_and_moves_only_a_leaving_nodes_share() {
        let nodes = ["node-0", "node-1", "node-2"];
        let owner = |nodes: &[&str], cart: usize| {
            let cart = format!("cart-{cart}").into_bytes();
            nodes.iter().max_by_key(|node| rendezvous(node, &cart)).unwrap().to_string()
        };
        let before: Vec<String> = (0..300).map(|c| owner(&nodes, c)).collect();
        for node in nodes {
            let share = before.iter().filter(|o| *o == node).count();
            assert!((60..=140).contains(&share), "{node} owns {share} of 300");
        }
        let after: Vec<String> = (0..300).map(|c| owner(&nodes[..2], c)).collect();
        for (was, is) in before.iter().zip(&after) {
            if was != "node-2" {
                assert_eq!(was, is, "a cart of a staying node moved");
            }
        }
    }

    #[test]
    fn lease_names_fit_a_key_whatever_the_cart() {
        let key = CartKey { tenant: "t".repeat(64), plugin: "p".repeat(64), cart: "c".repeat(256) };
        assert_eq!(lease_name(&key).len(), 5 + 64);
    }
}
