//! `host run`'s settings: defaults, overridden by a TOML config file,
//! overridden by `CORRAL_*` environment variables, overridden by flags,
//! resolved into the server's [`ServerConfig`] plus what only the binary
//! needs (addresses to bind, logging).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use corral_server::config::{CartSettings, ClusterConfig, HttpLimits, Retention, ServerConfig};
use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// For people.
    Pretty,
    /// One JSON object per line, for collectors.
    Json,
}

/// Flags of `host run` (each also read from its `CORRAL_*` variable).
#[derive(Debug, Default, clap::Args)]
pub(crate) struct RunArgs {
    /// Folder of plugins (`NAME.wasm`, optional `NAME.toml`).
    #[arg(long, env = "CORRAL_PLUGINS")]
    plugins: Option<PathBuf>,
    /// TOML file with any of these settings (keys as the flags, with `_`).
    #[arg(long, env = "CORRAL_CONFIG")]
    config: Option<PathBuf>,
    /// Public HTTP address [default: 127.0.0.1:8080].
    #[arg(long, env = "CORRAL_LISTEN")]
    listen: Option<SocketAddr>,
    /// Admin and ops address [default: 127.0.0.1:9090].
    #[arg(long, env = "CORRAL_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Where precompiled components are cached [default: DATA_DIR/cache].
    #[arg(long, env = "CORRAL_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Log format [default: pretty].
    #[arg(long, env = "CORRAL_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `corral=debug` [default: info].
    #[arg(long, env = "CORRAL_LOG_LEVEL")]
    log_level: Option<String>,
    /// Largest request body, in bytes [default: 1048576].
    #[arg(long, env = "CORRAL_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<usize>,
    /// Largest response body, in bytes [default: 16777216].
    #[arg(long, env = "CORRAL_MAX_RESPONSE_BYTES")]
    max_response_bytes: Option<usize>,
    /// Largest request head (request line and headers), in bytes [default: 16384].
    #[arg(long, env = "CORRAL_MAX_HEADER_BYTES")]
    max_header_bytes: Option<usize>,
    /// How long an HTTP/1 client has to send a request head, in ms; also how long an idle keep-alive connection stays open [default: 10000].
    #[arg(long, env = "CORRAL_HEADER_READ_TIMEOUT_MS")]
    header_read_timeout_ms: Option<u64>,
    /// Open connections per listener; more are answered 503 and closed [default: 10000].
    #[arg(long, env = "CORRAL_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Concurrent streams per HTTP/2 connection [default: 256].
    #[arg(long, env = "CORRAL_MAX_H2_STREAMS")]
    max_h2_streams: Option<u32>,
    /// How long shutdown waits for in-flight requests, in ms [default: 30000].
    #[arg(long, env = "CORRAL_SHUTDOWN_TIMEOUT_MS")]
    shutdown_timeout_ms: Option<u64>,
    /// On SIGTERM, how long to keep serving while /readyz answers 503, in ms, before stopping (set it behind a load balancer) [default: 0].
    #[arg(long, env = "CORRAL_DRAIN_DELAY_MS")]
    drain_delay_ms: Option<u64>,
    /// Trim events older than this many seconds (never past a subscriber's checkpoint).
    #[arg(long, env = "CORRAL_RETENTION_MAX_AGE_S")]
    retention_max_age_s: Option<u64>,
    /// Keep at most this many events (never trimming past a subscriber's checkpoint).
    #[arg(long, env = "CORRAL_RETENTION_MAX_EVENTS")]
    retention_max_events: Option<u64>,
    /// How long a removed plugin's subscriber or projection keeps pinning retention at its checkpoint: `7d`, `12h` [default: 7d].
    #[arg(long, env = "CORRAL_FORGET_AFTER")]
    forget_after: Option<String>,
    /// Evict a cart from memory after this many seconds without mutations [default: 60].
    #[arg(long, env = "CORRAL_CART_IDLE_S")]
    cart_idle_s: Option<u64>,
    /// Keep at most this many carts in memory [default: 10000].
    #[arg(long, env = "CORRAL_CART_MAX_ACTIVE")]
    cart_max_active: Option<usize>,
    /// Most commands queued per cart; more are refused with 503 / RESOURCE_EXHAUSTED [default: 1024].
    #[arg(long, env = "CORRAL_CART_MAX_QUEUED")]
    cart_max_queued: Option<usize>,
    /// Do not watch the plugins folder (changes then need a restart or the admin API).
    #[arg(long, env = "CORRAL_NO_WATCH")]
    no_watch: bool,
    /// The most the data folder's LMDB may grow to, in MiB; writes past it fail and /readyz turns 503 [default: 16384].
    #[arg(long, env = "CORRAL_STORAGE_MAP_SIZE_MB")]
    storage_map_size_mb: Option<usize>,
    /// /readyz answers 503 while any subscriber or projection is more than this many events behind.
    #[arg(long, env = "CORRAL_READY_MAX_LAG")]
    ready_max_lag: Option<u64>,
    /// Serve the public listener over TLS with this certificate chain (PEM, leaf first; reloaded on change).
    #[arg(long, env = "CORRAL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM; reloaded on change).
    #[arg(long, env = "CORRAL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM certificates (a private CA) trusted for plugins' outgoing HTTPS, besides the system's roots.
    #[arg(long, env = "CORRAL_OUTBOUND_CA_FILE")]
    outbound_ca_file: Option<PathBuf>,
    /// Export traces (OpenTelemetry, OTLP over gRPC) to this collector,
    /// e.g. `http://127.0.0.1:4317`. Without it, traces are exported only
    /// when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set;
    /// `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and the other standard
    /// variables apply either way.
    #[arg(long, env = "CORRAL_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Join a cluster on NATS JetStream: server URLs, comma-separated
    /// (`nats://a:4222,nats://b:4222`). Without it the host runs on its own
    /// on the embedded log and kv.
    #[arg(long, env = "CORRAL_CLUSTER")]
    cluster: Option<String>,
    /// The cluster's name: names its stream, subjects and buckets, so
    /// several clusters can share one NATS [default: corral].
    #[arg(long, env = "CORRAL_CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// This node's id, unique in the cluster [default: the machine's host name].
    #[arg(long, env = "CORRAL_NODE_ID")]
    node_id: Option<String>,
    /// Where the other nodes reach this one (`host:port`) [default: the public listener's address].
    #[arg(long, env = "CORRAL_ADVERTISE")]
    advertise: Option<String>,
    /// How long a dead node's leases (its subscribers, schedules) last before another node takes over, in seconds [default: 15].
    #[arg(long, env = "CORRAL_LEASE_TTL_S")]
    lease_ttl_s: Option<u64>,
    /// Replicas of the cluster's stream and buckets: 1, or 3 to survive the loss of a NATS server [default: 1].
    #[arg(long, env = "CORRAL_CLUSTER_REPLICAS")]
    cluster_replicas: Option<usize>,
    /// Connect only to the `--cluster` URLs, never to servers NATS announces (behind proxies or NAT).
    #[arg(long, env = "CORRAL_CLUSTER_ONLY_LISTED")]
    cluster_only_listed: bool,
    /// PEM certificates (a private CA) trusted for the other nodes' TLS certificates instead of the
    /// system's roots: nodes serving TLS (`--tls-cert`) call each other over TLS.
    #[arg(long, env = "CORRAL_CLUSTER_PEER_CA")]
    cluster_peer_ca: Option<PathBuf>,
}

/// The same settings in a config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    plugins: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    max_request_bytes: Option<usize>,
    max_response_bytes: Option<usize>,
    max_header_bytes: Option<usize>,
    header_read_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    max_h2_streams: Option<u32>,
    shutdown_timeout_ms: Option<u64>,
    drain_delay_ms: Option<u64>,
    retention_max_age_s: Option<u64>,
    retention_max_events: Option<u64>,
    forget_after: Option<String>,
    cart_idle_s: Option<u64>,
    cart_max_active: Option<usize>,
    cart_max_queued: Option<usize>,
    no_watch: Option<bool>,
    storage_map_size_mb: Option<usize>,
    ready_max_lag: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    outbound_ca_file: Option<PathBuf>,
    otlp_endpoint: Option<String>,
    cluster: Option<String>,
    cluster_name: Option<String>,
    node_id: Option<String>,
    advertise: Option<String>,
    lease_ttl_s: Option<u64>,
    cluster_replicas: Option<usize>,
    cluster_only_listed: Option<bool>,
    cluster_peer_ca: Option<PathBuf>,
}

/// Resolved settings of `host run`.
#[derive(Debug, Clone)]
pub(crate) struct RunConfig {
    /// What the server serves and how.
    pub(crate) server: ServerConfig,
    pub(crate) listen: SocketAddr,
    pub(crate) admin_listen: SocketAddr,
    pub(crate) log_format: LogFormat,
    pub(crate) log_level: String,
    /// Where traces go, if `--otlp-endpoint` names a collector.
    pub(crate) otlp_endpoint: Option<String>,
}

impl RunArgs {
    /// Uses `plugins` unless a plugins folder was given.
    pub(crate) fn with_default_plugins(mut self, plugins: PathBuf) -> RunArgs {
        self.plugins = self.plugins.or(Some(plugins));
        self
    }

    /// Merges flags and environment (already merged by clap, flags first)
    /// over the config file over the defaults.
    pub(crate) fn resolve(self, data_dir: Option<PathBuf>) -> anyhow::Result<RunConfig> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let plugins = self.plugins.or(file.plugins).context(
            "no plugins folder: pass --plugins DIR (or set CORRAL_PLUGINS, or `plugins` in the config file)",
        )?;
        let data_dir = data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(".corral"));
        let mut server = ServerConfig::new(plugins, data_dir.clone());
        server.runtime.cache_dir = Some(self.cache_dir.or(file.cache_dir).unwrap_or_else(|| data_dir.join("cache")));
        let defaults = HttpLimits::default();
        server.http = HttpLimits {
            max_request_bytes: self.max_request_bytes.or(file.max_request_bytes).unwrap_or(defaults.max_request_bytes),
            max_response_bytes: self
                .max_response_bytes
                .or(file.max_response_bytes)
                .unwrap_or(defaults.max_response_bytes),
            max_header_bytes: self
                .max_header_bytes
                .or(file.max_header_bytes)
                .unwrap_or(defaults.max_header_bytes)
                .max(8192),
            header_read_timeout: self
                .header_read_timeout_ms
                .or(file.header_read_timeout_ms)
                .map_or(defaults.header_read_timeout, |ms| Duration::from_millis(ms.max(100))),
            max_connections: self.max_connections.or(file.max_connections).unwrap_or(defaults.max_connections).max(1),
            max_h2_streams: self.max_h2_streams.or(file.max_h2_streams).unwrap_or(defaults.max_h2_streams).max(1),
        };
        if let Some(ms) = self.shutdown_timeout_ms.or(file.shutdown_timeout_ms) {
            server.shutdown_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.drain_delay_ms.or(file.drain_delay_ms) {
            server.drain_delay = Duration::from_millis(ms);
        }
        server.retention = Retention {
            max_age: self.retention_max_age_s.or(file.retention_max_age_s).map(Duration::from_secs),
            max_events: self.retention_max_events.or(file.retention_max_events),
            ..Retention::default()
        };
        if let Some(text) = self.forget_after.or(file.forget_after) {
            server.forget_after = corral_server::plugins::sidecar::parse_duration(&text)
                .map_err(|reason| anyhow::anyhow!("--forget-after: {reason}"))?;
        }
        let carts = CartSettings::default();
        server.carts = CartSettings {
            idle: self.cart_idle_s.or(file.cart_idle_s).map(Duration::from_secs).unwrap_or(carts.idle),
            max_active: self.cart_max_active.or(file.cart_max_active).unwrap_or(carts.max_active).max(1),
            max_queued: self.cart_max_queued.or(file.cart_max_queued).unwrap_or(carts.max_queued).max(1),
        };
        server.watch = !(self.no_watch || file.no_watch.unwrap_or(false));
        server.ready_max_lag = self.ready_max_lag.or(file.ready_max_lag);
        server.outbound_ca = self.outbound_ca_file.or(file.outbound_ca_file);
        if let Some(mb) = self.storage_map_size_mb.or(file.storage_map_size_mb) {
            server.storage_map_size = mb.max(1) << 20;
        }
        server.tls = match (self.tls_cert.or(file.tls_cert), self.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(corral_server::config::TlsConfig { cert, key }),
            (None, None) => None,
            _ => anyhow::bail!(
                "TLS needs both a certificate and a key: set --tls-cert and --tls-key (or tls_cert and tls_key)"
            ),
        };
        if let Some(urls) = self.cluster.or(file.cluster) {
            let urls = corral_cluster::ClusterOptions::split_urls(&urls);
            if urls.is_empty() {
                anyhow::bail!("--cluster needs at least one NATS URL, e.g. nats://127.0.0.1:4222");
            }
            if server.retention.max_age.is_some() {
                anyhow::bail!(
                    "--retention-max-age-s is not offered with --cluster: keep a number of events (--retention-max-events)"
                );
            }
            let name = self.cluster_name.or(file.cluster_name).unwrap_or_else(|| "corral".into());
            let node_id = self.node_id.or(file.node_id).unwrap_or_else(host_name);
            let mut cluster = ClusterConfig::new(urls, &name, &node_id);
            cluster.advertise = self.advertise.or(file.advertise);
            if let Some(ttl) = self.lease_ttl_s.or(file.lease_ttl_s) {
                cluster.lease_ttl = Duration::from_secs(ttl.max(1));
            }
            if let Some(replicas) = self.cluster_replicas.or(file.cluster_replicas) {
                cluster.replicas = replicas.max(1);
            }
            cluster.only_listed_servers = self.cluster_only_listed || file.cluster_only_listed.unwrap_or(false);
            cluster.peer_ca = self.cluster_peer_ca.or(file.cluster_peer_ca);
            server.cluster = Some(cluster);
        }
        Ok(RunConfig {
            server,
            listen: self.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            admin_listen: self
                .admin_listen
                .or(file.admin_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090))),
            log_format: self.log_format.or(file.log_format).unwrap_or(LogFormat::Pretty),
            log_level: self.log_level.or(file.log_level).unwrap_or_else(|| "info".into()),
            otlp_endpoint: self.otlp_endpoint.or(file.otlp_endpoint).filter(|e| !e.is_empty()),
        })
    }
}

/// The machine's host name, or `node` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "node".into())
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("corral.toml");
        std::fs::write(&file, "plugins = \"from-file\"\nlisten = \"127.0.0.1:7000\"\nlog_level = \"debug\"\n").unwrap();
        let args = RunArgs {
            config: Some(file.clone()),
            listen: Some("127.0.0.1:7001".parse().unwrap()),
            ..RunArgs::default()
        };
        let config = args.resolve(None).unwrap();
        assert_eq!(config.server.plugins, PathBuf::from("from-file"));
        assert_eq!(config.listen.port(), 7001, "the flag wins over the file");
        assert_eq!(config.log_level, "debug", "the file wins over the default");
        assert_eq!(config.admin_listen.port(), 9090);
        assert_eq!(config.server.data_dir, PathBuf::from(".corral"));
        assert_eq!(config.server.runtime.cache_dir, Some(PathBuf::from(".corral/cache")));

        std::fs::write(&file, "plugins = \"p\"\nlisten_port = 3\n").unwrap();
        let error = RunArgs { config: Some(file), ..RunArgs::default() }.resolve(None).unwrap_err();
        assert!(format!("{error:#}").contains("listen_port"), "{error:#}");
        assert!(RunArgs::default().resolve(None).is_err(), "a plugins folder is required");
    }
}
