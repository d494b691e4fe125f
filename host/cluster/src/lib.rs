//! Corral's cluster backend on NATS JetStream: the same seams as the
//! embedded LMDB storage (an event stream, kv buckets, checkpoints, the
//! cart journal) plus what several nodes need to share work (leases,
//! membership), on async-nats.
//!
//! This crate knows nothing of wasm, of Corral's runtime or of LMDB: it
//! stores events and bytes under names. The server adapts it to its own
//! control-plane traits.
//!
//! **Every write that must have one writer is a compare-and-set in
//! JetStream**: checkpoints, leases and kv updates carry the revision they
//! expect, journal appends the last subject sequence they expect. A stale
//! writer gets [`ClusterError::Fenced`], [`ClusterError::LeaseLost`] or
//! [`BatchError::WrongLastSequence`]; nothing it writes after losing lands.
//!
//! # Layout
//!
//! - [`Cluster`] (`connect.rs`): connecting, checking the server's
//!   JetStream API level, creating the stream `CORRAL_<name>` and the
//!   buckets; [`Cluster::connection`] reports whether NATS is reachable.
//! - [`events`]: events published to `<name>.ev.<topic>` (deduplicated by
//!   id) and [`reader`]: reading them in order from a position.
//! - [`journal`]: atomic batch publish (ADR-50) of journal entries,
//!   idempotency markers and outbox events; reading a subject's tail.
//! - [`kv`]: kv buckets for plugins, with a compare-and-set `update`.
//! - [`artifacts`] and [`desired`]: deployed components in the object
//!   store by content hash, and each plugin's desired state (with history,
//!   written expecting a revision, watched by every node).
//! - [`checkpoints`], [`leases`], [`members`]: fenced checkpoints, leases
//!   whose revision is the holder's epoch, and heartbeated membership.
//! - `secret.rs`: the peer secret nodes sign their calls to each other
//!   with ([`Cluster::peer_secret`]).
//! - [`names`]: how names become subjects, keys and bucket names.
//! - [`error`]: [`ClusterError`] and [`BatchError`], shaped by what callers do next.
//!
//! # What "durable" means here
//!
//! A write returns once the stream's leader and a majority of its replicas
//! have it. JetStream writes it to their files, but by default fsyncs only
//! every 2 minutes (`sync_interval`): servers that crash *together* (power
//! loss of all replicas) can lose acknowledged writes. Run nats-server with
//! `jetstream { sync_interval: always }` (the test harness does) for a
//! write to be on disk on a majority before it is acknowledged.
//!
//! # What reads may lag
//!
//! Kv reads through "direct get" ([`kv::KvBucket::get`],
//! [`kv::KvBucket::list`], [`leases::Leases::list`],
//! [`members::Members::list`]) are answered by any replica, which may not
//! have the latest writes yet. An [`reader::EventReader`]'s consumer may
//! live on any replica too: it sees every event in order, possibly a moment
//! after the leader. Reads that must be current go to the leader:
//! [`kv::KvBucket::get_latest`], [`checkpoints::Checkpoints::get`],
//! [`leases::Leases::holder`], [`journal::Journal::last`],
//! [`events::Events::head`]. Correctness never rests on a lagging read:
//! writes that depend on one carry an expected revision and fail if it was
//! stale.
//!
//! # Configuration is shared
//!
//! [`Cluster::connect`] creates the stream and buckets *or updates them to
//! its own options* (replicas, lease and member TTLs, duplicate window):
//! every node of a cluster must be started with the same values, or each
//! start rewrites them.

pub mod artifacts;
pub mod checkpoints;
mod connect;
pub mod desired;
pub mod error;
pub mod events;
pub mod journal;
pub mod kv;
pub mod leases;
pub mod members;
pub mod names;
pub mod reader;
mod secret;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::watch;

pub use connect::{ATOMIC_PUBLISH_API_LEVEL, DEPLOY_HISTORY};
pub use error::{BatchError, ClusterError};

/// How to reach NATS and what to call things there.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Server URLs (`nats://host:4222`), one per element; see
    /// [`ClusterOptions::split_urls`] for a comma-separated list.
    pub urls: Vec<String>,
    /// The cluster's name: 1 to 32 characters of `[A-Za-z0-9_-]`. It names
    /// the stream (`CORRAL_<name>`), prefixes its subjects and the buckets.
    pub name: String,
    /// This node's id, unique in the cluster (shown as the NATS client name).
    pub node_id: String,
    /// Replicas of the stream and buckets (1, or 3 to survive a server loss).
    pub replicas: usize,
    /// How long a lease lives without renewal (the leases bucket's
    /// `max_age`). At least twice a leader failover (~6 s measured).
    pub lease_ttl: Duration,
    /// How long a member entry lives without a heartbeat.
    pub member_ttl: Duration,
    /// How long JetStream remembers event ids to drop a repeated publish.
    pub duplicate_window: Duration,
    /// How long one request (publish ack, API call) may take.
    pub request_timeout: Duration,
    /// How long [`Cluster::connect`] keeps trying before it gives up.
    pub connect_timeout: Duration,
    /// Reconnect only to `urls`, not to servers the cluster announces
    /// (for clients that reach NATS through proxies or NAT).
    pub ignore_discovered_servers: bool,
}

impl ClusterOptions {
    /// Options with defaults: one replica, 15 s leases, 5 s membership,
    /// a 2 min duplicate window, 5 s requests, 30 s to connect.
    pub fn new(urls: Vec<String>, name: impl Into<String>, node_id: impl Into<String>) -> ClusterOptions {
        ClusterOptions {
            urls,
            name: name.into(),
            node_id: node_id.into(),
            replicas: 1,
            lease_ttl: Duration::from_secs(15),
            member_ttl: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(30),
            ignore_discovered_servers: false,
        }
    }

    /// Splits `nats://a:4222,nats://b:4222` into one URL per element:
    /// async-nats takes a list, not one comma-joined string.
    pub fn split_urls(list: &str) -> Vec<String> {
        list.split(',').map(str::trim).filter(|url| !url.is_empty()).map(str::to_string).collect()
    }

    /// The stream holding events, journals and idempotency markers.
    pub fn stream_name(&self) -> String {
        format!("CORRAL_{}", self.name)
    }
}

/// A connection to the cluster's stream and buckets; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    options: ClusterOptions,
    /// The JetStream API level the server reported when connecting.
    api_level: usize,
    client: async_nats::Client,
    context: jetstream::Context,
    stream: jetstream::stream::Stream,
    connected: watch::Receiver<bool>,
    checkpoints: store::Bucket,
    leases: store::Bucket,
    members: store::Bucket,
    snapshots: store::Bucket,
    deploys: store::Bucket,
    /// The peer secret (`secret.rs`).
    secrets: store::Bucket,
    artifacts: async_nats::jetstream::object_store::ObjectStore,
    /// Plugin buckets opened so far, by plugin bucket name.
    buckets: Mutex<HashMap<String, store::Bucket>>,
}

impl Cluster {
    /// The options this cluster was connected with.
    pub fn options(&self) -> &ClusterOptions {
        &self.inner.options
    }

    /// The JetStream API level the server reported at connect (2.12 is 2,
    /// 2.15.1 reports 5).
    pub fn api_level(&self) -> usize {
        self.inner.api_level
    }

    /// The name of the NATS server the client is (or was last) connected
    /// to, e.g. for a status page.
    pub fn server_name(&self) -> String {
        self.inner.client.server_info().server_name
    }

    /// The largest message the server takes (its `max_payload`, 1 MiB by
    /// default), as it said when the client connected.
    pub fn max_payload(&self) -> usize {
        self.inner.client.server_info().max_payload
    }

    /// Whether the client is connected to NATS right now; changes as the
    /// connection drops and comes back. A host reports not-ready (and
    /// refuses writes) while it is false.
    pub fn connection(&self) -> watch::Receiver<bool> {
        self.inner.connected.clone()
    }

    /// The event stream: publish, bounds, retention, readers.
    pub fn events(&self) -> events::Events {
        events::Events::new(self.clone())
    }

    /// Atomic batches and subject tails, for cart journals.
    pub fn journal(&self) -> journal::Journal {
        journal::Journal::new(self.clone())
    }

    /// Fenced checkpoints.
    pub fn checkpoints(&self) -> checkpoints::Checkpoints {
        checkpoints::Checkpoints::new(self.inner.checkpoints.clone())
    }

    /// Leases that expire after [`ClusterOptions::lease_ttl`].
    pub fn leases(&self) -> leases::Leases {
        leases::Leases::new(self.inner.leases.clone())
    }

    /// Membership heartbeats.
    pub fn members(&self) -> members::Members {
        members::Members::new(self.inner.members.clone())
    }

    /// Carts' snapshots, by cart: advisory (a cart loads from its latest
    /// snapshot plus the journal after it; an older one only means a
    /// longer replay).
    pub fn snapshots(&self) -> kv::KvBucket {
        kv::KvBucket::new("snapshots", self.inner.snapshots.clone())
    }

    /// What every node should run: one entry per plugin, with history.
    pub fn desired(&self) -> desired::Desired {
        desired::Desired::new(self.inner.deploys.clone())
    }

    /// Deployed components, stored once by content hash.
    pub fn artifacts(&self) -> artifacts::Artifacts {
        artifacts::Artifacts::new(self.inner.artifacts.clone())
    }

    /// A kv bucket for plugins, created on first use (with the cluster's
    /// replicas and no expiry).
    pub async fn kv(&self, name: &str) -> Result<kv::KvBucket, ClusterError> {
        if let Some(bucket) = self.cached_bucket(name) {
            return Ok(kv::KvBucket::new(name, bucket));
        }
        let bucket_name = names::plugin_bucket(&self.inner.options.name, name)?;
        let bucket = connect::open_bucket(&self.inner.context, &self.inner.options, &bucket_name, None, 1).await?;
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), bucket.clone());
        Ok(kv::KvBucket::new(name, bucket))
    }

    fn cached_bucket(&self, name: &str) -> Option<store::Bucket> {
        self.inner.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
    }

    /// The stream's subject for `suffix` (`ev.<topic>`, `cj.…`, `ci.…`).
    pub(crate) fn subject(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.inner.options.name)
    }

    pub(crate) fn context(&self) -> &jetstream::Context {
        &self.inner.context
    }

    pub(crate) fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    pub(crate) fn stream(&self) -> &jetstream::stream::Stream {
        &self.inner.stream
    }
}
