//! Serving: open storage, load the plugins, start the background work and
//! the listeners ([`start`]), then, once `shutdown` resolves, stop
//! gracefully ([`Server::run_until`]): stop accepting, let in-flight
//! requests finish (bounded), stop dispatchers between events, flush
//! storage.
//!
//! The caller binds the listeners, so the `host` binary, the tests and the
//! benchmarks start a server the same way, on port 0 if they like.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use corral_runtime::{ControlPlane, Runtime};
use corral_storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::backend::Backend;
use crate::carts::store::jetstream::StreamCarts;
use crate::carts::{CartCluster, Carts, CartsClient, Machines, Owners};
use crate::config::ServerConfig;
use crate::control::StreamSink;
use crate::events::consumers::Consumers;
use crate::events::dispatch::Dispatch;
use crate::events::{relay, retention};
use crate::fleet::Fleet;
use crate::http::admin::Admin;
use crate::http::gateway::Gateway;
use crate::http::listener::accept;
use crate::http::peer_auth::PeerKey;
use crate::http::peers::{GrpcPeers, PeerTls};
use crate::http::tls::Tls;
use crate::metrics::Metrics;
use crate::node::{EveryNodeCaughtUp, Node};
use crate::outbound::Outbound;
use crate::plugins::Registry;
use crate::projections::{CutoverGate, Projections};

/// The sockets a server accepts on.
pub struct Listeners {
    /// Plugins' routes, projection queries and the cart API.
    pub public: TcpListener,
    /// Health, metrics and the admin API.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both listeners.
    pub async fn bind(public: SocketAddr, admin: SocketAddr) -> anyhow::Result<Listeners> {
        let public =
            TcpListener::bind(public).await.with_context(|| format!("binding the public listener on {public}"))?;
        let admin = TcpListener::bind(admin).await.with_context(|| format!("binding the admin listener on {admin}"))?;
        Ok(Listeners { public, admin })
    }
}

/// A server that serves: its plugins are loaded and its listeners accept.
pub struct Server {
    public: SocketAddr,
    admin: SocketAddr,
    registry: Arc<Registry>,
    storage: Storage,
    config: ServerConfig,
    stop: watch::Sender<bool>,
    /// Set when shutdown begins: readiness fails, responses close their connection.
    draining: Arc<AtomicBool>,
    listeners: [JoinHandle<()>; 2],
    background: JoinSet<()>,
    carts: Arc<Carts>,
    node: Option<Arc<Node>>,
}

/// Serves `config` on `listeners` until `shutdown` resolves.
pub async fn run(config: ServerConfig, listeners: Listeners, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    start(config, listeners).await?.run_until(shutdown).await
}

/// Opens storage (and joins the cluster, when configured), loads the
/// plugins and starts serving.
pub async fn start(config: ServerConfig, listeners: Listeners) -> anyhow::Result<Server> {
    let admin_at = listeners.admin.local_addr()?;
    if !admin_at.ip().is_loopback() && config.admin_token.is_none() {
        anyhow::bail!(
            "refusing to serve the admin API on {admin_at}, which is not a loopback address, without a token: \
             set --admin-token (or CORRAL_ADMIN_TOKEN), or listen on 127.0.0.1"
        );
    }
    let metrics = Arc::new(Metrics::new()?);
    let backend = Backend::open(&config, &metrics).await?;
    let (storage, stream) = (backend.storage.clone(), backend.stream.clone());
    let runtime = Runtime::new(config.runtime.clone())?;
    // In a cluster, what is served comes from the cluster's desired state.
    let load_folder = backend.cluster.is_none();
    let registry = Registry::open(runtime, &config.plugins, &config.data_dir, metrics.clone(), load_folder).await?;
    backend.views.follow(&registry);
    let fleet = match &backend.cluster {
        Some(joined) => {
            let fleet = Arc::new(Fleet::new(joined.cluster.clone(), registry.clone(), &config.data_dir)?);
            if let Err(error) = fleet.seed(&config.plugins).await {
                // Not fatal: the node follows whatever the cluster's desired state becomes.
                tracing::error!(
                    folder = %config.plugins.display(),
                    "publishing the plugins folder to the cluster failed: {error:#}; this node follows the cluster's \
                     desired state (deploy with `host deploy`)"
                );
            }
            if let Err(error) = fleet.reconcile_all().await {
                tracing::warn!("reading the cluster's desired state failed (tried again in the background): {error}");
            }
            Some(fleet)
        }
        None => None,
    };
    // In a cluster, the key nodes sign their calls to each other with.
    let peer_key = match &backend.cluster {
        Some(joined) => {
            let secret =
                joined.cluster.peer_secret(rand::random()).await.context("reading the cluster's peer secret")?;
            Some(Arc::new(PeerKey::new(secret, &joined.cluster.options().node_id)))
        }
        None => None,
    };
    // Peers serve TLS when this node does (every node of a cluster alike).
    let peer_ca = config.cluster.as_ref().and_then(|c| c.peer_ca.as_deref());
    let peer_tls = match (&config.tls, peer_ca) {
        (Some(_), ca) => Some(PeerTls::load(ca)?),
        (None, Some(ca)) => anyhow::bail!(
            "--cluster-peer-ca {} is for nodes serving TLS (--tls-cert, --tls-key): without TLS, peers are called in clear",
            ca.display()
        ),
        (None, None) => None,
    };
    let carts = {
        let machines: Arc<dyn Machines> = registry.clone();
        match &backend.cluster {
            // In a cluster, a cart's journal is in the shared stream and one
            // node owns it at a time.
            Some(joined) => {
                let store = Arc::new(StreamCarts::new(joined.cluster.clone()));
                let cluster = CartCluster {
                    owners: Arc::new(Owners::new(joined.cluster.clone())),
                    peers: Arc::new(GrpcPeers::new(
                        &joined.cluster.options().node_id,
                        joined.cluster.options().lease_ttl,
                        peer_key.clone().context("a cluster node has a peer key")?,
                        peer_tls.clone(),
                    )),
                };
                Carts::new(machines, store, Some(cluster), metrics.carts(), config.carts)
            }
            None => {
                let log = backend.log.clone();
                let announce = move |head| log.announce(head);
                Carts::embedded(machines, storage.clone(), announce, metrics.carts(), config.carts)
                    .context("starting the cart journal")?
            }
        }
    };
    let outbound = Arc::new(
        Outbound::new(config.outbound_ca.as_deref(), config.outbound, &metrics)
            .context("preparing plugins' outgoing HTTP")?,
    );
    let control = Arc::new(ControlPlane {
        kv: backend.kv.clone(),
        events: Arc::new(StreamSink::new(stream.clone(), metrics.clone()).checking(&registry)),
        views: backend.views.clone(),
        carts: Arc::new(CartsClient::new(carts.clone())),
        http: outbound.clone(),
    });

    let (stop, stopped) = watch::channel(false);
    let mut background = JoinSet::new();
    // Watch before serving, then catch up on anything that changed while
    // the plugins were loading.
    if config.watch && fleet.is_some() {
        tracing::info!("in a cluster the plugins folder is not watched: deploy with `host deploy` to any node");
    } else if config.watch {
        let watcher = crate::plugins::watch::spawn(registry.clone(), stopped.clone())?;
        background.spawn(async move {
            let _ = watcher.await;
        });
        registry.rescan().await?;
    }
    let dispatch = Arc::new(Dispatch::new(control.clone(), backend.leases.clone()));
    background.spawn(dispatch.clone().supervise(registry.clone(), stream.clone(), metrics.clone(), stopped.clone()));
    // In a cluster, a new projection version becomes active once every node has caught up.
    let gate = backend
        .cluster
        .as_ref()
        .map(|joined| Arc::new(EveryNodeCaughtUp::new(joined.cluster.clone())) as Arc<dyn CutoverGate>);
    let projections = Arc::new(Projections::new(stream.clone(), storage.clone(), metrics.clone(), gate));
    background.spawn(projections.clone().supervise(registry.clone(), stopped.clone()));
    let advertise = match config.cluster.as_ref().and_then(|c| c.advertise.clone()) {
        Some(advertise) => advertise,
        None => listeners.public.local_addr()?.to_string(),
    };
    let node = backend.cluster.as_ref().zip(fleet.clone()).map(|(joined, fleet)| {
        let leases = backend.leases.clone();
        Arc::new(Node::new(joined.cluster.clone(), advertise, leases, projections.clone(), storage.clone(), fleet))
    });
    if let Some(fleet) = &fleet {
        background.spawn(fleet.clone().follow(stopped.clone()));
        let (fleet, leases, stop) = (fleet.clone(), backend.leases.clone(), stopped.clone());
        background.spawn(async move {
            leases.run_while_held("rollouts", stop, move |halted| fleet.clone().drive(halted)).await;
        });
    }
    if let Some(node) = &node {
        background.spawn(node.clone().run(stopped.clone()));
    }
    if let Some(joined) = &backend.cluster {
        background.spawn(relay::run(backend.log.clone(), joined.stream.clone(), stopped.clone()));
    }
    let consumers = Arc::new(Consumers::new(storage.clone(), config.forget_after));
    let floors = crate::floors::floors(&dispatch, &projections, &stream, &storage, &consumers, node.clone());
    // Retention runs under a lease only when it is configured: otherwise a
    // cluster's nodes would take and give up the lease forever.
    if config.retention.max_age.is_some() || config.retention.max_events.is_some() {
        let (stream, leases, retention) = (stream.clone(), backend.leases.clone(), config.retention);
        let stop = stopped.clone();
        background.spawn(async move {
            let work = move |halted| retention::run(stream.clone(), retention, floors.clone(), halted);
            leases.run_while_held("retention", stop, work).await;
        });
    }
    background.spawn(carts.clone().sweep(stopped.clone()));

    let mut grpc = tonic::service::Routes::new(crate::http::grpc::service(carts.clone(), peer_key.clone()));
    if let Some((node, key)) = node.as_ref().zip(peer_key) {
        grpc = grpc.add_service(crate::http::cluster::service(node.clone(), carts.clone(), key));
    }
    let draining = Arc::new(AtomicBool::new(false));
    let gateway = Arc::new(Gateway {
        draining: draining.clone(),
        registry: registry.clone(),
        storage: storage.clone(),
        metrics: metrics.clone(),
        limits: config.http,
        carts: carts.clone(),
        grpc,
        node: node.clone(),
        control,
    });
    outbound.attach(&gateway);
    let (leaving_carts, leaving_node) = (carts.clone(), node.clone());
    let admin = Arc::new(Admin {
        draining: draining.clone(),
        token: config.admin_token.as_deref().map(|token| blake3::hash(token.as_bytes())),
        registry: registry.clone(),
        metrics,
        stream,
        storage: storage.clone(),
        dispatch,
        projections,
        carts,
        node,
        fleet,
        ready_max_lag: config.ready_max_lag,
        consumers,
    });
    let (public, admin_addr) = (listeners.public.local_addr()?, listeners.admin.local_addr()?);
    let (limits, timeout) = (config.http, config.shutdown_timeout);
    let tls = config.tls.as_ref().map(Tls::load).transpose()?;
    if let Some(tls) = &tls {
        background.spawn(tls.clone().watch(stopped.clone()));
    }
    let public_task = tokio::spawn(accept(
        listeners.public,
        move |request| {
            let gateway = gateway.clone();
            async move { gateway.handle(request).await }
        },
        stopped.clone(),
        limits,
        timeout,
        tls,
    ));
    let admin_task = tokio::spawn(accept(
        listeners.admin,
        move |request| {
            let admin = admin.clone();
            async move { admin.handle(request).await }
        },
        stopped,
        limits,
        timeout,
        None,
    ));
    let catalog = registry.catalog();
    tracing::info!(%public, admin = %admin_addr, plugins = catalog.slots.len(), failed = catalog.failures.len(), "ready");
    Ok(Server {
        public,
        admin: admin_addr,
        registry,
        storage,
        config,
        stop,
        draining,
        listeners: [public_task, admin_task],
        background,
        carts: leaving_carts,
        node: leaving_node,
    })
}

impl Server {
    /// Where the public listener accepts.
    pub fn public_addr(&self) -> SocketAddr {
        self.public
    }

    /// Where the admin listener accepts.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The storage it serves from (LMDB is opened once per process: a
    /// test reads the running host's data through this handle).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Plugins served, and components that failed to load.
    pub fn plugins(&self) -> (usize, usize) {
        let catalog = self.registry.catalog();
        (catalog.slots.len(), catalog.failures.len())
    }

    /// Serves until `shutdown` resolves, then stops gracefully.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        shutdown.await;
        self.draining.store(true, Ordering::Release);
        // In a cluster the node leaves first: peers stop placing carts here,
        // and each cart held here finishes its queued calls and gives its
        // lease up, so the next call is served by another node at once.
        if let Some(node) = &self.node {
            node.leave().await;
        }
        self.carts.close().await;
        if !self.config.drain_delay.is_zero() {
            let delay_ms = self.config.drain_delay.as_millis() as u64;
            tracing::info!(delay_ms, "shutting down: not ready, still serving for the drain delay");
            tokio::time::sleep(self.config.drain_delay).await;
        }
        let timeout_ms = self.config.shutdown_timeout.as_millis() as u64;
        tracing::info!(timeout_ms, "shutting down: draining in-flight requests");
        let _ = self.stop.send(true);
        for task in self.listeners {
            task.await.context("listener task")?;
        }
        // Dispatchers stop between events; an unacknowledged event is simply
        // delivered again after the restart.
        while self.background.join_next().await.is_some() {}
        self.storage.sync().context("flushing storage")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// A server on a thread of its own, with its own async runtime (as the
/// `host` binary has), on free loopback ports; stopped gracefully and
/// joined when dropped. For tests, benchmarks and embedders that want a
/// host beside their own code.
pub struct Detached {
    public: SocketAddr,
    admin: SocketAddr,
    storage: Option<Storage>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Detached {
    /// Starts serving `config` on 127.0.0.1, ports chosen by the system.
    pub fn start(config: ServerConfig) -> anyhow::Result<Detached> {
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("corral-server".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async move {
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                let server = match Listeners::bind(loopback, loopback).await {
                    Ok(listeners) => start(config, listeners).await,
                    Err(error) => Err(error),
                };
                let server = match server {
                    Ok(server) => server,
                    Err(error) => {
                        let message = format!("{error:#}");
                        let _ = ready.send(Err(error));
                        return Err(anyhow::anyhow!(message));
                    }
                };
                let _ = ready.send(Ok((server.public_addr(), server.admin_addr(), server.storage().clone())));
                server
                    .run_until(async move {
                        let _ = stopped.await;
                    })
                    .await
            })
        })?;
        let (public, admin, storage) =
            started.recv().map_err(|_| anyhow::anyhow!("the server thread stopped while starting"))??;
        Ok(Detached { public, admin, storage: Some(storage), stop: Some(stop), thread: Some(thread) })
    }

    /// Where the public listener accepts.
    pub fn public_addr(&self) -> SocketAddr {
        self.public
    }

    /// Where the admin listener accepts.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The storage it serves from. Clones must be dropped before the
    /// server stops for its data folder to be closed (and opened again).
    pub fn storage(&self) -> Option<&Storage> {
        self.storage.as_ref()
    }

    /// Stops gracefully and waits for the server to finish; its data
    /// folder is closed when this returns.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> anyhow::Result<()> {
        drop(self.storage.take());
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(anyhow::anyhow!("the server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::warn!("stopping the server: {error:#}");
        }
    }
}
