//! Loading a component into a [`Plugin`]: read, check, compile (or hit the
//! artifact cache), detect the world, link once into a `*Pre`, call
//! `describe()` once and check what it says. Nothing is compiled or linked
//! again afterwards.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::batched_projection::BatchedProjectionPre;
use crate::bindings::{cart::CartPre, event_handler::EventHandlerPre, projection::ProjectionPre, route::RoutePre};
use crate::cache::CacheOutcome;
use crate::call::{CallContext, Identity};
use crate::capped::HandleIndex;
use crate::error::LoadError;
use crate::plugin::{Plugin, Pre};
use crate::runtime::Runtime;
use crate::settings::PluginSettings;
use crate::topics::check_subscription;
use crate::types::Descriptor;
use crate::world::{self, Detection, World};

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
        let content_hash = content_hash(bytes);
        self.load_hashed(path, bytes, content_hash, settings).await
    }

    /// Loads a component whose [`content_hash`] the caller computed already
    /// (to compare it with what it serves, say), so it is hashed once.
    pub async fn load_hashed(
        &self,
        path: &Path,
        bytes: &[u8],
        content_hash: String,
        settings: PluginSettings,
    ) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        check_header(path, bytes)?;
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
        if world.is_deterministic()
            && let Some(http) = imports.iter().find(|name| name.starts_with("wasi:http/"))
        {
            let reason = format!(
                "it imports {http}, but the {} world is deterministic (a replay must give the same result) and \
                 may not call out; outgoing HTTP is for route and event-handler plugins, granted in their \
                 sidecar's [http]",
                world.name()
            );
            return Err(LoadError::Link { path: path.to_path_buf(), world, reason });
        }
        let pre = self.link(path, world, batched, &component)?;

        let stem = settings
            .name
            .clone()
            .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        let sidecar =
            path.with_extension("toml").file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut plugin = Plugin {
            identity: Arc::new(Identity::new(
                stem.clone(),
                "0.0.0".into(),
                world,
                sidecar.clone(),
                settings.clone(),
                self.log_budget(&stem),
            )),
            pre,
            engine: self.engine.clone(),
            metering: self.config.metering,
            in_flight: Arc::new(Semaphore::new(settings.limits.max_concurrency as usize)),
            long_calls: self.long_calls.clone(),
            long_ticked: self.long_ticked.clone(),
            ran_long: Arc::default(),
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
            warm_routes: Default::default(),
            warm_handlers: Default::default(),
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
            validate(world, &descriptor)
                .map_err(|reason| LoadError::Descriptor { path: path.to_path_buf(), reason })?;
            let (name, version) = (descriptor.name.clone(), descriptor.version.clone());
            let log_budget = self.log_budget(&name);
            plugin.identity = Arc::new(Identity::new(name, version, world, sidecar, settings, log_budget));
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
            World::Route => {
                let index = HandleIndex::of(component)
                    .ok_or_else(|| link_error(wasmtime::Error::msg("no `handle` in its http-handler export")))?;
                Pre::Route(RoutePre::new(instance_pre).map_err(link_error)?, index)
            }
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

/// A component's identity: BLAKE3 of its bytes, hex. What the artifact
/// cache, rollback copies and deploy checks name it by.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
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
        corral_routes::Pattern::parse(&route.pattern).map_err(|error| error.to_string())?;
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
}
