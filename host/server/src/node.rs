//! This node in a cluster ([`Node`]): its member entry, heartbeated with
//! what it reports of itself (leases held, its projections' checkpoints and
//! view digests, the plugin versions it runs), the cluster as it sees it (`GET /cluster`), and whether it
//! can reach NATS (readiness, and refusing writes while cut off); and the
//! projections' cutover gate ([`EveryNodeCaughtUp`]), which reads those
//! reports.
//!
//! Membership is advice — where to look, what to compare — never what
//! correctness rests on (leases and fenced writes do that).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_cluster::Cluster;
use corral_cluster::members::Member;
use corral_storage::Storage;
use tokio::sync::watch;

use crate::coordination::Leases;
use crate::fleet::Fleet;
use crate::projections::{CutoverGate, Projections};
use crate::shutdown::pause;

/// A view digest is computed again at most this often (it reads every view).
const DIGEST_EVERY: Duration = Duration::from_secs(5);
/// How often a node heartbeats while a canary of a cluster rollout is on
/// trial here (the driver judges on the counts it reports).
const ON_TRIAL_EVERY: Duration = Duration::from_millis(250);

/// This node's part in the cluster.
pub struct Node {
    cluster: Cluster,
    member: Member,
    leases: Leases,
    projections: Arc<Projections>,
    storage: Storage,
    /// Its plugins across the cluster (what it runs is reported).
    fleet: Arc<Fleet>,
    /// Per projection generation: the checkpoint its digest was taken at,
    /// the digest, when.
    digests: Mutex<HashMap<String, (u64, String, Instant)>>,
    /// Set once the node leaves: no more heartbeats.
    leaving: std::sync::atomic::AtomicBool,
}

/// A projection generation as a node reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Reported {
    /// The generation's checkpoint now.
    checkpoint: u64,
    /// BLAKE3 of its views, and the checkpoint they were digested at.
    digest: Option<String>,
    digest_at: u64,
    /// Whether queries read it (the active generation).
    active: bool,
    /// Whether it has reached the head of the stream once (a building
    /// generation is then ready to cut over).
    #[serde(default)]
    caught_up: bool,
}

/// What `member` reports of its projection generations, by consumer.
fn reported(member: &Member) -> BTreeMap<String, Reported> {
    serde_json::from_value(member.details["projections"].clone()).unwrap_or_default()
}

impl Node {
    /// This node (`node_id`, reachable at `advertise`) in `cluster`.
    pub fn new(
        cluster: Cluster,
        advertise: String,
        leases: Leases,
        projections: Arc<Projections>,
        storage: Storage,
        fleet: Arc<Fleet>,
    ) -> Node {
        let started_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let member = Member {
            node_id: cluster.options().node_id.clone(),
            incarnation: started_ms,
            advertise,
            started_ms,
            version: env!("CARGO_PKG_VERSION").to_string(),
            details: serde_json::Value::Null,
        };
        let digests = Mutex::default();
        Node { cluster, member, leases, projections, storage, fleet, digests, leaving: Default::default() }
    }

    /// This node's id.
    pub fn id(&self) -> &str {
        &self.member.node_id
    }

    /// This life of the node (its start time, ms).
    pub fn incarnation(&self) -> u64 {
        self.member.incarnation
    }

    /// The cluster it is in.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Whether it reaches NATS right now.
    pub fn connected(&self) -> bool {
        *self.cluster.connection().borrow()
    }

    /// Heartbeats until `stop`, then leaves (its entry is removed, so the
    /// others see it gone at once rather than after the member TTL). What
    /// it serves changing makes it heartbeat at once; a canary on trial,
    /// every [`ON_TRIAL_EVERY`].
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut served = self.fleet.changes();
        loop {
            let every = match self.fleet.on_trial() {
                true => ON_TRIAL_EVERY,
                false => self.cluster.options().member_ttl / 3,
            };
            if self.leaving.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            let mut member = self.member.clone();
            member.details = self.details().await;
            if let Err(error) = self.cluster.members().heartbeat(&member).await {
                tracing::warn!(node = %self.member.node_id, "heartbeat failed: {error}");
            }
            tokio::select! {
                stopped = pause(&mut stop, every) => if stopped { break },
                changed = served.changed() => if changed.is_err() { break },
            }
        }
        self.leave().await;
    }

    /// Removes this node's member entry, so peers place no more work here;
    /// heartbeats stop writing it again.
    pub async fn leave(&self) {
        self.leaving.store(true, std::sync::atomic::Ordering::Release);
        if let Err(error) = self.cluster.members().leave(&self.member).await {
            tracing::warn!(node = %self.member.node_id, "leaving the member list failed (the entry expires): {error}");
        }
    }

    /// What this node reports with its heartbeat.
    async fn details(&self) -> serde_json::Value {
        let mut projections = BTreeMap::new();
        for status in self.projections.statuses().await {
            let projector = &status.projector;
            let checkpoint = self.storage.checkpoint(&projector.consumer).unwrap_or(0);
            let (digest, digest_at) = self.digest(&projector.scope, checkpoint);
            let caught_up = status.active || projector.reached_head();
            let reported = Reported { checkpoint, digest, digest_at, active: status.active, caught_up };
            projections.insert(projector.consumer.clone(), reported);
        }
        serde_json::json!({ "leases": self.leases.held(), "projections": projections, "plugins": self.fleet.reports() })
    }

    /// The digest of a generation's views, taken again when its checkpoint
    /// moved and the last one is older than [`DIGEST_EVERY`].
    fn digest(&self, scope: &str, checkpoint: u64) -> (Option<String>, u64) {
        let mut digests = self.digests.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = digests.get(scope).is_none_or(|(at, _, when)| *at != checkpoint && when.elapsed() >= DIGEST_EVERY);
        if stale {
            match self.storage.views_digest(scope) {
                Ok((digest, _)) => {
                    digests.insert(scope.to_string(), (checkpoint, digest, Instant::now()));
                }
                Err(error) => tracing::warn!(scope, "digesting the views failed: {error}"),
            }
        }
        digests.get(scope).map_or((None, 0), |(at, digest, _)| (Some(digest.clone()), *at))
    }

    /// The projection checkpoints every live member reports (retention
    /// never trims past them).
    pub async fn reported_floors(&self) -> Result<Vec<u64>, corral_cluster::ClusterError> {
        let members = self.cluster.members().list().await?;
        let mut floors = Vec::new();
        for member in members {
            floors.extend(reported(&member).values().map(|r| r.checkpoint));
        }
        Ok(floors)
    }

    /// `GET /cluster`: the members with what each reports, and where
    /// projections disagree (different digests at one checkpoint).
    pub async fn view(&self) -> serde_json::Value {
        let members = match self.cluster.members().list().await {
            Ok(members) => members,
            Err(error) => return serde_json::json!({"node": self.member.node_id, "error": error.to_string()}),
        };
        // consumer -> checkpoint digested at -> digest -> nodes
        let mut digests: BTreeMap<String, BTreeMap<u64, BTreeMap<String, Vec<String>>>> = BTreeMap::new();
        for member in &members {
            for (consumer, report) in reported(member) {
                if let Some(digest) = report.digest {
                    digests
                        .entry(consumer)
                        .or_default()
                        .entry(report.digest_at)
                        .or_default()
                        .entry(digest)
                        .or_default()
                        .push(member.node_id.clone());
                }
            }
        }
        let divergent: Vec<serde_json::Value> = digests
            .iter()
            .flat_map(|(consumer, at)| {
                at.iter().filter(|(_, by_digest)| by_digest.len() > 1).map(move |(checkpoint, by_digest)| {
                    serde_json::json!({"consumer": consumer, "checkpoint": checkpoint, "digests": by_digest})
                })
            })
            .collect();
        serde_json::json!({
            "name": self.cluster.options().name,
            "node": self.member.node_id,
            "connected": self.connected(),
            "nats_server": self.cluster.server_name(),
            "members": members,
            "divergent": divergent,
        })
    }
}

/// Lets a projection's new generation become active once every live
/// member reports its own copy caught up (or already active), so the nodes
/// of a cluster never serve two versions of a projection for longer than a
/// heartbeat. A member that does not run the new version yet holds the
/// cutover back; the old generation keeps serving meanwhile.
pub struct EveryNodeCaughtUp {
    cluster: Cluster,
}

impl EveryNodeCaughtUp {
    /// The gate over `cluster`'s member list.
    pub fn new(cluster: Cluster) -> EveryNodeCaughtUp {
        EveryNodeCaughtUp { cluster }
    }
}

#[async_trait::async_trait]
impl CutoverGate for EveryNodeCaughtUp {
    async fn may_cut_over(&self, consumer: &str) -> Result<(), String> {
        let members =
            self.cluster.members().list().await.map_err(|e| format!("reading the cluster's members failed: {e}"))?;
        let own = &self.cluster.options().node_id;
        if !members.iter().any(|m| &m.node_id == own) {
            return Err(format!("this node ({own}) has not reported itself to the cluster yet"));
        }
        let behind: Vec<&str> = members
            .iter()
            .filter(|m| !reported(m).get(consumer).is_some_and(|r| r.caught_up || r.active))
            .map(|m| m.node_id.as_str())
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        Err(format!("waiting for {} to run this version and catch up", behind.join(", ")))
    }
}
