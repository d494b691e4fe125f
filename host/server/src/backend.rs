//! What a server stands on ([`Backend`]): its own LMDB always (projection
//! views and checkpoints, carts, the local log) and, in a cluster, NATS
//! JetStream (the shared event stream, kv, subscribers' checkpoints,
//! leases, membership). Chosen once at start; everything above it speaks
//! the seams (`EventStream`, the runtime's `KvBackend`, `Leases`).

use std::sync::Arc;

use anyhow::Context as _;
use corral_cluster::{Cluster, ClusterOptions};
use corral_runtime::KvBackend;
use corral_storage::{Storage, StorageOptions, stream};

use crate::config::ServerConfig;
use crate::control::{ClusterKv, Embedded};
use crate::coordination::{ClusterLeases, Leases};
use crate::events::jetstream::ClusterStream;
use crate::events::stream::EventStream;
use crate::metrics::Metrics;

/// The backends a server was started on.
pub(crate) struct Backend {
    /// The node's own LMDB.
    pub(crate) storage: Storage,
    /// The node's own log: the event log itself on one node; in a cluster,
    /// what an earlier version committed there (carts' outbox) is relayed.
    pub(crate) log: Arc<stream::Embedded>,
    /// The event stream plugins emit to and subscribers read.
    pub(crate) stream: Arc<dyn EventStream>,
    /// The kv plugins' `kv` import reaches.
    pub(crate) kv: Arc<dyn KvBackend>,
    /// Views, on the node's own LMDB in every mode.
    pub(crate) views: Arc<Embedded>,
    /// Which node does which shared work.
    pub(crate) leases: Leases,
    /// The cluster, if the node is in one.
    pub(crate) cluster: Option<Joined>,
}

/// A node's connection to its cluster.
pub(crate) struct Joined {
    pub(crate) cluster: Cluster,
    pub(crate) stream: Arc<ClusterStream>,
}

impl Backend {
    /// Opens the node's LMDB and, when configured, joins the cluster (it
    /// keeps trying to reach NATS for a while: starting before NATS is fine).
    pub(crate) async fn open(config: &ServerConfig, metrics: &Arc<Metrics>) -> anyhow::Result<Backend> {
        let lmdb = config.data_dir.join("lmdb");
        let storage = Storage::open(&lmdb, &StorageOptions { map_size: config.storage_map_size })
            .with_context(|| format!("opening storage in {}", lmdb.display()))?;
        let log = Arc::new(stream::Embedded::new(storage.clone(), true).context("starting the event log")?);
        let views = Arc::new(Embedded::new(storage.clone(), metrics.clone()).context("starting the kv writer")?);
        let Some(settings) = &config.cluster else {
            return Ok(Backend {
                stream: log.clone(),
                kv: views.clone(),
                views,
                storage,
                log,
                leases: Leases::Solo,
                cluster: None,
            });
        };
        let mut options = ClusterOptions::new(settings.urls.clone(), &settings.name, &settings.node_id);
        options.lease_ttl = settings.lease_ttl;
        options.replicas = settings.replicas;
        options.ignore_discovered_servers = settings.only_listed_servers;
        let cluster = Cluster::connect(options)
            .await
            .with_context(|| format!("joining cluster {:?} on NATS at {}", settings.name, settings.urls.join(", ")))?;
        tracing::info!(
            cluster = %settings.name,
            node = %settings.node_id,
            nats = %cluster.server_name(),
            api_level = cluster.api_level(),
            "joined the cluster"
        );
        let shared = Arc::new(ClusterStream::new(cluster.clone()));
        Ok(Backend {
            stream: shared.clone(),
            kv: Arc::new(ClusterKv::new(cluster.clone(), metrics.clone())),
            views,
            storage,
            log,
            leases: Leases::Cluster(Arc::new(ClusterLeases::new(cluster.clone(), &settings.node_id))),
            cluster: Some(Joined { cluster, stream: shared }),
        })
    }
}
