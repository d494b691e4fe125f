//! Loading a component into a [`Plugin`]: read, compile (or hit the cache),
//! detect the world, link once into a `*Pre`, call `describe()` once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::Component;

use crate::bindings::batched_projection::BatchedProjectionPre;
use crate::bindings::{cart::CartPre, event_handler::EventHandlerPre, projection::ProjectionPre, route::RoutePre};
use crate::cache::CacheOutcome;
use crate::error::LoadError;
use crate::invoke::CallContext;
use crate::runtime::{ControlPlane, Runtime};
use crate::types::Descriptor;
use crate::world::{self, Detection, World};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// Per-call limits of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel budget of one call (roughly, wasm instructions).
    pub fuel: u64,
    /// Wall-clock deadline of one call.
    pub timeout: Duration,
    /// Largest linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest table, in elements.
    pub table_elements: u32,
    /// Calls that may run at once; more are refused as busy.
    pub max_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 500_000_000,
            timeout: Duration::from_secs(5),
            memory_bytes: 128 << 20,
            table_elements: 100_000,
            max_concurrency: 64,
        }
    }
}

/// What the operator sets for a plugin (usually from its sidecar `NAME.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginSettings {
    /// The name to run the plugin under instead of the one it describes (to
    /// run one component twice, say). Its kv bucket follows the name.
    pub name: Option<String>,
    /// Per-call limits.
    pub limits: Limits,
    /// Shared kv buckets the plugin may use besides its own.
    pub kv_grants: Vec<String>,
    /// Cart plugins whose carts it may mutate and read (route and
    /// event-handler plugins).
    pub cart_grants: Vec<String>,
    /// Configuration values, visible to non-deterministic guests as
    /// environment variables.
    pub env: Vec<(String, String)>,
}

/// Who is calling: what every store of a plugin is stamped with.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) world: World,
    pub(crate) limits: Limits,
    pub(crate) kv_grants: Vec<String>,
    pub(crate) cart_grants: Vec<String>,
    /// The file name of the sidecar beside the component (`NAME.toml`),
    /// where a grant error tells the operator to grant it.
    pub(crate) sidecar: String,
    pub(crate) env: Vec<(String, String)>,
}

/// A component linked for its world and ready for calls.
pub(crate) enum Pre {
    Route(RoutePre<crate::state::HostState>),
    EventHandler(EventHandlerPre<crate::state::HostState>),
    Projection(ProjectionPre<crate::state::HostState>),
    /// A projection of the `batched-projection` world.
    BatchedProjection(BatchedProjectionPre<crate::state::HostState>),
    Cart(CartPre<crate::state::HostState>),
    WasiHttp(ProxyPre<crate::state::HostState>),
}

/// A loaded plugin: compiled, linked, described. Cheap to share; every call
/// gets its own store and instance.
pub struct Plugin {
    pub(crate) identity: Arc<Identity>,
    pub(crate) pre: Pre,
    pub(crate) engine: wasmtime::Engine,
    pub(crate) control: Arc<ControlPlane>,
    pub(crate) metering: bool,
    pub(crate) in_flight: Arc<Semaphore>,
    /// Events one segment of a batched fold stands for (see `batch`):
    /// lowered when a segment runs out of fuel or time, 1 once the guest
    /// reads an input its segment shares.
    pub(crate) stride: AtomicUsize,
    descriptor: Descriptor,
    path: PathBuf,
    content_hash: String,
    cache: CacheOutcome,
    load_time: Duration,
    imports: Vec<String>,
    exports: Vec<String>,
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
    /// Calls running right now.
    pub fn in_flight(&self) -> u32 {
        let free = u32::try_from(self.in_flight.available_permits()).unwrap_or(u32::MAX);
        self.identity.limits.max_concurrency.saturating_sub(free)
    }
}

impl Runtime {
    /// Loads the component at `path`. Nothing about it is compiled or linked
    /// again afterwards; a failure names the file and the cause.
    pub async fn load(&self, path: &Path, settings: PluginSettings) -> Result<Plugin, LoadError> {
        let bytes =
            tokio::fs::read(path).await.map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
        self.load_bytes(path, &bytes, settings).await
    }

    /// Loads a component from bytes; `path` names it in errors and reports.
    pub async fn load_bytes(&self, path: &Path, bytes: &[u8], settings: PluginSettings) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        check_header(path, bytes)?;
        let content_hash = blake3::hash(bytes).to_hex().to_string();
        let (component, cache) = self.compile(path, &content_hash, bytes).await?;

        let component_type = component.component_type();
        let exports: Vec<String> = component_type.exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let imports: Vec<String> = component_type.imports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let world = match world::detect(exports.iter().map(String::as_str)) {
            Detection::Found(world) => world,
            Detection::WrongVersion(export) => {
                return Err(LoadError::WrongVersion { path: path.to_path_buf(), export });
            }
            Detection::Ambiguous(worlds) => {
                let worlds = worlds.iter().map(|w| w.name()).collect::<Vec<_>>().join(", ");
                return Err(LoadError::Ambiguous { path: path.to_path_buf(), worlds });
            }
            Detection::Unknown => {
                let exports = if exports.is_empty() { "none".to_string() } else { exports.join(", ") };
                return Err(LoadError::UnknownWorld { path: path.to_path_buf(), exports });
            }
        };
        let batched = exports.iter().any(|e| world::is_batch_projector(e));
        let pre = self.link(path, world, batched, &component)?;

        let stem = settings
            .name
            .clone()
            .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        let sidecar =
            path.with_extension("toml").file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut plugin = Plugin {
            identity: Arc::new(Identity {
                name: stem.clone(),
                version: "0.0.0".into(),
                world,
                limits: settings.limits.clone(),
                kv_grants: settings.kv_grants.clone(),
                cart_grants: settings.cart_grants.clone(),
                sidecar: sidecar.clone(),
                env: settings.env.clone(),
            }),
            pre,
            engine: self.engine.clone(),
            control: self.control.clone(),
            metering: self.config.metering,
            in_flight: Arc::new(Semaphore::new(settings.limits.max_concurrency as usize)),
            stride: AtomicUsize::new(usize::MAX),
            descriptor: Descriptor {
                name: stem,
                version: "0.0.0".into(),
                routes: Vec::new(),
                topics: Vec::new(),
                schedules: Vec::new(),
                mutation_kinds: Vec::new(),
            },
            path: path.to_path_buf(),
            content_hash,
            cache,
            load_time: Duration::ZERO,
            imports,
            exports,
        };
        if world != World::WasiHttp {
            let descriptor = plugin
                .describe(CallContext::internal("describe"))
                .await
                .map_err(|e| LoadError::Describe { path: path.to_path_buf(), reason: e.kind.to_string() })?
                .value;
            let mut descriptor = descriptor;
            if let Some(name) = &settings.name {
                descriptor.name = name.clone();
            }
            validate(world, &descriptor).map_err(|reason| LoadError::Describe { path: path.to_path_buf(), reason })?;
            plugin.identity = Arc::new(Identity {
                name: descriptor.name.clone(),
                version: descriptor.version.clone(),
                world,
                limits: settings.limits,
                kv_grants: settings.kv_grants,
                cart_grants: settings.cart_grants,
                sidecar,
                env: settings.env,
            });
            plugin.descriptor = descriptor;
        }
        plugin.load_time = started.elapsed();
        Ok(plugin)
    }

    /// Compiles off the async executor: compiling a large component takes seconds.
    async fn compile(
        &self,
        path: &Path,
        content_hash: &str,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let engine = self.engine.clone();
        let bytes = bytes.to_vec();
        let hash = content_hash.to_string();
        let compiled = match &self.cache {
            Some(cache) => {
                let cache = cache.clone();
                tokio::task::spawn_blocking(move || cache.load_or_compile(&engine, &hash, &bytes)).await
            }
            None => {
                tokio::task::spawn_blocking(move || {
                    Component::new(&engine, &bytes).map(|c| (c, CacheOutcome::Disabled))
                })
                .await
            }
        };
        match compiled {
            Ok(Ok(compiled)) => Ok(compiled),
            Ok(Err(error)) => Err(LoadError::Compile { path: path.to_path_buf(), reason: format!("{error:#}") }),
            Err(join) => {
                Err(LoadError::Compile { path: path.to_path_buf(), reason: format!("the compiler crashed: {join}") })
            }
        }
    }

    fn link(&self, path: &Path, world: World, batched: bool, component: &Component) -> Result<Pre, LoadError> {
        let link_error =
            |error: wasmtime::Error| LoadError::Link { path: path.to_path_buf(), world, reason: format!("{error:#}") };
        let linker = if world.is_deterministic() { &self.deterministic_linker } else { &self.linker };
        let instance_pre = linker.instantiate_pre(component).map_err(link_error)?;
        Ok(match world {
            World::Route => Pre::Route(RoutePre::new(instance_pre).map_err(link_error)?),
            World::EventHandler => Pre::EventHandler(EventHandlerPre::new(instance_pre).map_err(link_error)?),
            World::Projection if batched => {
                Pre::BatchedProjection(BatchedProjectionPre::new(instance_pre).map_err(link_error)?)
            }
            World::Projection => Pre::Projection(ProjectionPre::new(instance_pre).map_err(link_error)?),
            World::Cart => Pre::Cart(CartPre::new(instance_pre).map_err(link_error)?),
            World::WasiHttp => Pre::WasiHttp(ProxyPre::new(instance_pre).map_err(link_error)?),
        })
    }
}

/// Tells a component from a core module or something else entirely.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    let reason = if bytes.len() < 8 || &bytes[..4] != MAGIC {
        if bytes.starts_with(b"(") {
            "this is WebAssembly text; build it into a binary component first".to_string()
        } else {
            "not a WebAssembly binary (no \\0asm header)".to_string()
        }
    } else if bytes[4..8] == [1, 0, 0, 0] {
        "this is a core WebAssembly module, not a component; build for wasm32-wasip2 \
         (or wrap it with `wasm-tools component new`)"
            .to_string()
    } else {
        return Ok(());
    };
    Err(LoadError::NotAComponent { path: path.to_path_buf(), reason })
}

/// Checks what `describe()` returned against what the world needs.
fn validate(world: World, descriptor: &Descriptor) -> Result<(), String> {
    let name = &descriptor.name;
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!("name {name:?} must be 1 to 64 lower-case letters, digits or '-'"));
    }
    if descriptor.version.is_empty() {
        return Err("version is empty".into());
    }
    for route in &descriptor.routes {
        let method_ok =
            route.method == "*" || (!route.method.is_empty() && route.method.chars().all(|c| c.is_ascii_uppercase()));
        if !method_ok {
            return Err(format!("route method {:?} must be an upper-case HTTP method or '*'", route.method));
        }
        if !route.pattern.starts_with('/') {
            return Err(format!("route pattern {:?} must start with '/'", route.pattern));
        }
    }
    for topic in &descriptor.topics {
        check_subscription(topic)?;
    }
    for schedule in &descriptor.schedules {
        if schedule.name.is_empty() || schedule.cron.trim().is_empty() {
            return Err(format!("schedule {:?} needs a name and a cron expression", schedule.name));
        }
    }
    match world {
        World::Cart if descriptor.mutation_kinds.is_empty() => {
            Err("a cart must declare at least one mutation kind".into())
        }
        World::Projection if descriptor.topics.is_empty() => {
            Err("a projection must subscribe to at least one topic".into())
        }
        _ => Ok(()),
    }
}

/// A subscription is a topic whose segments may be `*` (one segment) or, as
/// the last one, `>` (one or more segments).
pub fn check_subscription(pattern: &str) -> Result<(), String> {
    let segments: Vec<&str> = pattern.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let ok = *segment == "*"
            || (*segment == ">" && last)
            || (!segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        if !ok {
            return Err(format!("subscription {pattern:?}: segment {segment:?} must be a name, '*', or a final '>'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let path = Path::new("x.wasm");
        assert!(matches!(check_header(path, b"hello"), Err(LoadError::NotAComponent { .. })));
        let core = b"\0asm\x01\0\0\0";
        let err = check_header(path, core).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        assert!(check_header(path, b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn subscriptions() {
        assert!(check_subscription("orders.created").is_ok());
        assert!(check_subscription("orders.*").is_ok());
        assert!(check_subscription("orders.>").is_ok());
        assert!(check_subscription("orders.>.x").is_err());
        assert!(check_subscription("orders..x").is_err());
    }
}
