//! The settings of a running server, resolved (the `host` binary merges
//! its flags, environment and config file into these). A leaf: the areas
//! read their part, it reads none of theirs.

use std::path::PathBuf;
use std::time::Duration;

use corral_runtime::RuntimeConfig;

/// Everything [`serve::start`](crate::serve::start) needs besides its listeners.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Folder of plugins (`NAME.wasm`, optional `NAME.toml`).
    pub plugins: PathBuf,
    /// The host's data: LMDB, kept versions for rollback.
    pub data_dir: PathBuf,
    /// The engine: artifact cache, pool size, metering.
    pub runtime: RuntimeConfig,
    /// Size caps of the public listener.
    pub http: HttpLimits,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long a stopping host keeps serving, not ready (`/readyz` 503,
    /// `connection: close` on every response), before it stops accepting:
    /// time for a load balancer to notice and send elsewhere.
    pub drain_delay: Duration,
    /// The bearer token every admin request but `/healthz` and `/readyz`
    /// must carry; required to serve the admin API off loopback.
    pub admin_token: Option<String>,
    /// How much of the event log to keep.
    pub retention: Retention,
    /// How long a removed plugin's subscriber or projection keeps pinning
    /// retention at its checkpoint.
    pub forget_after: Duration,
    /// How many carts stay in memory, and for how long.
    pub carts: CartSettings,
    /// Sync changes of the plugins folder while running.
    pub watch: bool,
    /// Join a cluster on NATS JetStream instead of serving from the
    /// embedded log and kv alone.
    pub cluster: Option<ClusterConfig>,
    /// Serve the public listener over TLS.
    pub tls: Option<TlsConfig>,
    /// The most the node's LMDB may grow to, in bytes (address space is
    /// reserved, disk is not); writes past it fail as `map_full`.
    pub storage_map_size: usize,
    /// `/readyz` fails while any subscriber or active projection is more
    /// than this many events behind the head of the log.
    pub ready_max_lag: Option<u64>,
    /// PEM certificates trusted for plugins' outgoing HTTPS besides the
    /// system's roots (a private CA).
    pub outbound_ca: Option<PathBuf>,
    /// Body caps of plugins' outgoing requests.
    pub outbound: OutboundLimits,
}

/// The public listener's certificate and key (PEM files, reloaded on change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// How a node joins a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// NATS server URLs, one per element.
    pub urls: Vec<String>,
    /// The cluster's name (`[A-Za-z0-9_-]`, 1 to 32): names its stream,
    /// subjects and buckets, so several clusters can share one NATS.
    pub name: String,
    /// This node's id, unique in the cluster.
    pub node_id: String,
    /// Where peers reach this node (`host:port`); by default its public
    /// listener's address.
    pub advertise: Option<String>,
    /// How long a lease (a subscriber, a schedule, retention) outlives its
    /// holder's last renewal: the longest a dead node's work waits.
    pub lease_ttl: Duration,
    /// Replicas of the stream and buckets: 1, or 3 to survive a NATS
    /// server's loss.
    pub replicas: usize,
    /// Connect only to `urls`, never to the servers NATS announces (for a
    /// node that reaches NATS through proxies or NAT).
    pub only_listed_servers: bool,
    /// PEM certificates (a private CA, or the nodes' own) trusted for the
    /// peers' certificates instead of the system's roots. When the public
    /// listener serves TLS, this node calls its peers over TLS too.
    pub peer_ca: Option<PathBuf>,
}

impl ClusterConfig {
    /// A cluster `name` on `urls`, joined as `node_id`, with 15 s leases and
    /// one replica.
    pub fn new(urls: Vec<String>, name: &str, node_id: &str) -> ClusterConfig {
        ClusterConfig {
            urls,
            name: name.to_string(),
            node_id: node_id.to_string(),
            advertise: None,
            lease_ttl: Duration::from_secs(15),
            replicas: 1,
            only_listed_servers: false,
            peer_ca: None,
        }
    }
}

impl ServerConfig {
    /// The defaults for serving `plugins` with data in `data_dir` (the
    /// artifact cache in its `cache/` folder).
    pub fn new(plugins: PathBuf, data_dir: PathBuf) -> ServerConfig {
        let runtime = RuntimeConfig { cache_dir: Some(data_dir.join("cache")), ..RuntimeConfig::default() };
        ServerConfig {
            plugins,
            data_dir,
            runtime,
            http: HttpLimits::default(),
            shutdown_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            admin_token: None,
            retention: Retention::default(),
            forget_after: Duration::from_secs(7 * 24 * 3600),
            carts: CartSettings::default(),
            watch: true,
            cluster: None,
            tls: None,
            storage_map_size: corral_storage::StorageOptions::default().map_size,
            ready_max_lag: None,
            outbound_ca: None,
            outbound: OutboundLimits::default(),
        }
    }
}

/// Size and connection caps of the listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body, in bytes.
    pub max_response_bytes: usize,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// How long an HTTP/1 client has to send a whole request head, counted
    /// from when the connection is ready for one: also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Open connections per listener; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub max_h2_streams: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_request_bytes: 1 << 20,
            max_response_bytes: 16 << 20,
            max_header_bytes: 16 << 10,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_h2_streams: 256,
        }
    }
}

/// How much of the event log to keep; never less than a consumer still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep events younger than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many events.
    pub max_events: Option<u64>,
    /// How often to check.
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { max_age: None, max_events: None, interval: Duration::from_secs(1) }
    }
}

/// How many carts stay in memory, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartSettings {
    /// A cart without commands for this long is evicted.
    pub idle: Duration,
    /// At most this many carts in memory; beyond it the least recently used
    /// idle cart is evicted.
    pub max_active: usize,
    /// At most this many commands queued (or being handled) per cart;
    /// beyond it a call is refused at once (503 / `RESOURCE_EXHAUSTED`).
    pub max_queued: usize,
}

impl Default for CartSettings {
    fn default() -> Self {
        CartSettings { idle: Duration::from_secs(60), max_active: 10_000, max_queued: 1024 }
    }
}

/// Size caps of plugins' outgoing requests' bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundLimits {
    /// Largest request body a plugin may send.
    pub max_request_bytes: u64,
    /// Largest response body a plugin may read.
    pub max_response_bytes: u64,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits { max_request_bytes: 16 << 20, max_response_bytes: 16 << 20 }
    }
}
