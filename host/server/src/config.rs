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
    /// How much of the event log to keep.
    pub retention: Retention,
    /// How many carts stay in memory, and for how long.
    pub carts: CartSettings,
    /// Sync changes of the plugins folder while running.
    pub watch: bool,
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
            retention: Retention::default(),
            carts: CartSettings::default(),
            watch: true,
        }
    }
}

/// Size caps of the public listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body, in bytes.
    pub max_response_bytes: usize,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { max_request_bytes: 1 << 20, max_response_bytes: 16 << 20, max_header_bytes: 16 << 10 }
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
}

impl Default for CartSettings {
    fn default() -> Self {
        CartSettings { idle: Duration::from_secs(60), max_active: 10_000 }
    }
}
