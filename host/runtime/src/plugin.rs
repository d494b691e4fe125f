//! A loaded [`Plugin`]: compiled, linked into a `*Pre` for its world,
//! described. Cheap to share; every call gets its own store and instance
//! (`invoke`, `batch`, `wasi_http`). Loading one is `load`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::batched_projection::BatchedProjectionPre;
use crate::bindings::event_handler::EventHandler;
use crate::bindings::{cart::CartPre, event_handler::EventHandlerPre, projection::ProjectionPre, route::RoutePre};
use crate::cache::CacheOutcome;
use crate::call::Identity;
use crate::capped::{Handle, HandleIndex};
use crate::settings::Limits;
use crate::store::HostState;
use crate::types::Descriptor;
use crate::warm::Pool;
use crate::world::World;

/// A component linked for its world and ready for calls.
pub(crate) enum Pre {
    /// A route, and where it exports `handle` (called through `capped`).
    Route(RoutePre<HostState>, HandleIndex),
    EventHandler(EventHandlerPre<HostState>),
    Projection(ProjectionPre<HostState>),
    /// A projection of the `batched-projection` world.
    BatchedProjection(BatchedProjectionPre<HostState>),
    Cart(CartPre<HostState>),
    WasiHttp(ProxyPre<HostState>),
}

/// A loaded plugin: compiled, linked, described. Cheap to share; every call
/// gets its own store and instance.
pub struct Plugin {
    pub(crate) identity: Arc<Identity>,
    pub(crate) pre: Pre,
    pub(crate) engine: wasmtime::Engine,
    pub(crate) metering: bool,
    pub(crate) in_flight: Arc<Semaphore>,
    /// The runtime's permits for long-running calls.
    pub(crate) long_calls: Arc<Semaphore>,
    /// When a holder of one last ran (ms since the Unix epoch).
    pub(crate) long_ticked: Arc<std::sync::atomic::AtomicU64>,
    /// Whether its last call ran past `LONG_CALL`: then the next one needs
    /// a long-call permit from its first tick, so a plugin whose calls are
    /// all heavy does not get each one's first milliseconds for free.
    pub(crate) ran_long: Arc<std::sync::atomic::AtomicBool>,
    /// Events one segment of a batched fold stands for (see `batch`):
    /// lowered when a segment runs out of fuel or time, 1 once the guest
    /// reads an input its segment shares.
    pub(crate) stride: AtomicUsize,
    pub(crate) descriptor: Descriptor,
    pub(crate) path: PathBuf,
    pub(crate) content_hash: String,
    pub(crate) cache: CacheOutcome,
    pub(crate) load_time: Duration,
    pub(crate) imports: Vec<String>,
    pub(crate) exports: Vec<String>,
    /// Idle warm instances, when the plugin reuses them.
    pub(crate) warm_routes: Pool<Handle>,
    pub(crate) warm_handlers: Pool<EventHandler>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.identity.name)
            .field("version", &self.identity.version)
            .field("world", &self.identity.world)
            .field("path", &self.path)
            .field("content_hash", &self.content_hash)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Plugin name (from `describe()`, or the file name for wasi:http components).
    pub fn name(&self) -> &str {
        &self.identity.name
    }
    /// Plugin version.
    pub fn version(&self) -> &str {
        &self.identity.version
    }
    /// Whether its last call ran past [`LONG_CALL`](crate::invoke::LONG_CALL),
    /// so the next one needs a long-call permit from its first tick.
    pub fn last_call_ran_long(&self) -> bool {
        self.ran_long.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// The world the component targets.
    pub fn world(&self) -> World {
        self.identity.world
    }
    /// What the component says about itself.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }
    /// The limits every call gets.
    pub fn limits(&self) -> &Limits {
        &self.identity.limits
    }
    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// BLAKE3 hash of the component bytes, hex.
    pub fn content_hash(&self) -> &str {
        &self.content_hash
    }
    /// Whether the load hit the artifact cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }
    /// How long loading took (read, compile or cache, link, describe).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
    /// Names of the component's imports.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }
    /// Names of the component's exports.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }
    /// Warm instances waiting for a call (0 unless the plugin reuses them).
    pub fn warm_instances(&self) -> usize {
        self.warm_routes.idle() + self.warm_handlers.idle()
    }
    /// Log lines dropped over the log budget, by every version of this
    /// plugin name since the runtime first loaded it.
    pub fn log_lines_dropped(&self) -> u64 {
        self.identity.log_budget.dropped()
    }
    /// Calls running right now.
    pub fn in_flight(&self) -> u32 {
        let free = u32::try_from(self.in_flight.available_permits()).unwrap_or(u32::MAX);
        self.identity.limits.max_concurrency.saturating_sub(free)
    }
}
