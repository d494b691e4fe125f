//! A component and its sidecar become a [`Mounted`] plugin: loaded on the
//! runtime (once: the file is read and hashed once, [`Component`]), with the
//! routes, topics, schedules, canary policy and payload schemas the
//! operator's sidecar sets and its metrics resolved.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use corral_runtime::{Plugin, Runtime, World};

use crate::metrics::{Metrics, PluginMetrics};
use crate::plugins::cron::Schedule;
use crate::plugins::deploy::DeployError;
use crate::plugins::sidecar::{CanaryPolicy, Sidecar};
use corral_query::Indexes;
use corral_schemas::{Declared, Serves};

/// A plugin the host serves, with what the operator set and its metrics.
pub struct Mounted {
    /// The loaded component.
    pub plugin: Plugin,
    /// Its sidecar, as read when it was mounted.
    pub sidecar: Sidecar,
    /// The routes actually served (sidecar overrides applied).
    pub routes: Vec<(String, String)>,
    /// The topics subscribed to (event handlers), sidecar overrides applied.
    pub topics: Vec<String>,
    /// Cron schedules (event handlers), sidecar overrides applied.
    pub schedules: Vec<Arc<Schedule>>,
    /// How a new version of it is rolled out (routes), from the sidecar.
    pub canary: Option<CanaryPolicy>,
    /// The schemas of its payloads, compiled.
    pub schemas: Declared,
    /// A projection's secondary indexes on its views.
    pub indexes: Indexes,
    pub(crate) metrics: PluginMetrics,
    /// The file's size and modification time when it was read, if it came
    /// from the plugins folder: an unchanged file is recognised without
    /// reading it again.
    pub(crate) stamp: Option<Stamp>,
}

/// A file's size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: SystemTime,
}

impl Stamp {
    /// The stamp of `path` now, if it can be read.
    pub(crate) fn of(path: &Path) -> Option<Stamp> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Stamp { len: metadata.len(), modified: metadata.modified().ok()? })
    }
}

/// A component's bytes, read and hashed once.
pub struct Component {
    /// Where it is (or will be) in the plugins folder; names it in errors.
    pub path: PathBuf,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// BLAKE3 of the bytes, hex.
    pub hash: String,
    /// The file's stamp, taken before it was read (a change made while
    /// reading is seen as a change next time).
    pub(crate) stamp: Option<Stamp>,
}

impl Component {
    /// Reads the component at `path`.
    pub fn read(path: &Path) -> Result<Component, DeployError> {
        let stamp = Stamp::of(path);
        let bytes = std::fs::read(path).map_err(|error| DeployError::storage(path, error))?;
        Ok(Component { path: path.to_path_buf(), hash: corral_runtime::content_hash(&bytes), bytes, stamp })
    }

    /// An upload that will be written to `path`.
    pub fn uploaded(path: PathBuf, bytes: Vec<u8>) -> Component {
        Component { path, hash: corral_runtime::content_hash(&bytes), bytes, stamp: None }
    }
}

/// Mounts `component` with the sidecar at `sidecar_path` (none there: the
/// defaults).
pub async fn mount(
    runtime: &Runtime,
    component: &Component,
    sidecar_path: &Path,
    metrics: &Metrics,
) -> Result<Mounted, DeployError> {
    let sidecar_error = |reason: String| DeployError::Sidecar { path: sidecar_path.to_path_buf(), reason };
    let sidecar = Sidecar::load(sidecar_path).map_err(|error| sidecar_error(format!("{error:#}")))?;
    let file = &component.path;
    let plugin = runtime.load_hashed(file, &component.bytes, component.hash.clone(), sidecar.settings()).await?;
    if !sidecar.carts.plugins.is_empty() && !matches!(plugin.world(), World::Route | World::EventHandler) {
        return Err(sidecar_error(format!(
            "[carts] plugins grants carts to route and event-handler plugins only; a {} plugin cannot call carts",
            plugin.world().name()
        )));
    }
    if plugin.world() != World::EventHandler && (sidecar.topics.is_some() || sidecar.schedules.is_some()) {
        let why = match plugin.world() {
            World::Projection => {
                "a projection's topics are part of its deterministic fold: declare them in describe(), so a change is a new version that builds its own generation"
            }
            _ => "only event handlers subscribe to topics and schedules",
        };
        return Err(sidecar_error(format!(
            "`topics` and `schedules` are not allowed for a {} plugin ({why}); remove them from the sidecar",
            plugin.world().name()
        )));
    }
    let routes = served_routes(&plugin, &sidecar);
    let (topics, schedules) = subscriptions(&plugin, &sidecar).map_err(|reason| {
        if sidecar.topics.is_some() || sidecar.schedules.is_some() {
            sidecar_error(reason)
        } else {
            DeployError::Descriptor { path: file.clone(), reason }
        }
    })?;
    let canary = sidecar.canary.as_ref().map(CanaryPolicy::parse).transpose().map_err(sidecar_error)?;
    let serves = Serves {
        plugin: plugin.name(),
        world: plugin.world(),
        routes: &routes,
        kinds: &plugin.descriptor().mutation_kinds,
    };
    let schemas = Declared::compile(&sidecar.schemas, &serves).map_err(sidecar_error)?;
    let indexes = Indexes::declare(&sidecar.projection.indexes)
        .map_err(|error| sidecar_error(format!("[projection] indexes: {error}")))?;
    if !indexes.is_empty() && plugin.world() != World::Projection {
        return Err(sidecar_error(format!(
            "[projection] indexes are for projections' views; {} is a {} plugin: remove them",
            plugin.name(),
            plugin.world().name()
        )));
    }
    let metrics = metrics.plugin(plugin.name());
    tracing::info!(
        plugin = plugin.name(),
        version = plugin.version(),
        world = %plugin.world(),
        file = %file.display(),
        cache = plugin.cache_outcome().name(),
        load_ms = plugin.load_time().as_millis() as u64,
        "plugin loaded"
    );
    Ok(Mounted {
        plugin,
        sidecar,
        routes,
        topics,
        schedules,
        canary,
        schemas,
        indexes,
        metrics,
        stamp: component.stamp,
    })
}

/// Longest plugin file name.
pub const MAX_STEM_BYTES: usize = 128;

/// Whether `stem` can name a plugin file: 1 to [`MAX_STEM_BYTES`] letters,
/// digits, `-`, `_` and `.`, not starting with `.` (the watcher ignores those).
pub fn valid_stem(stem: &str) -> bool {
    !stem.is_empty()
        && stem.len() <= MAX_STEM_BYTES
        && !stem.starts_with('.')
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// The `.wasm` files of the plugins folder, by stem, sorted.
pub fn stems(dir: &Path) -> Result<Vec<String>, DeployError> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .map_err(|error| DeployError::storage(dir, format!("reading the plugins folder: {error}")))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .filter_map(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|stem| !stem.starts_with('.'))
        .collect();
    stems.sort();
    Ok(stems)
}

/// An event handler's topics and schedules; its schedule events are
/// subscribed to implicitly.
fn subscriptions(plugin: &Plugin, sidecar: &Sidecar) -> Result<(Vec<String>, Vec<Arc<Schedule>>), String> {
    if plugin.world() != World::EventHandler {
        return Ok((Vec::new(), Vec::new()));
    }
    let name = plugin.name();
    let mut topics = sidecar.topics.clone().unwrap_or_else(|| plugin.descriptor().topics.clone());
    for topic in &topics {
        corral_runtime::topics::check_subscription(topic)?;
    }
    let specs: Vec<(String, String)> = match &sidecar.schedules {
        Some(schedules) => schedules.iter().map(|s| (s.name.clone(), s.cron.clone())).collect(),
        None => plugin.descriptor().schedules.iter().map(|s| (s.name.clone(), s.cron.clone())).collect(),
    };
    let schedules = specs
        .iter()
        .map(|(schedule, cron)| Schedule::new(name, schedule, cron).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    if !schedules.is_empty() {
        topics.push(format!("schedule.{name}.>"));
    }
    Ok((topics, schedules))
}

/// A route plugin serves its described routes unless the sidecar replaces
/// them; a wasi:http component is mounted at its sidecar's `mount`, by
/// default `/NAME/*`.
fn served_routes(plugin: &Plugin, sidecar: &Sidecar) -> Vec<(String, String)> {
    match plugin.world() {
        World::Route => match &sidecar.routes {
            Some(routes) => routes.iter().map(|r| (r.method.clone(), r.pattern.clone())).collect(),
            None => plugin.descriptor().routes.iter().map(|r| (r.method.clone(), r.pattern.clone())).collect(),
        },
        World::WasiHttp => {
            let mount = sidecar.mount.clone().unwrap_or_else(|| format!("/{}/*", plugin.name()));
            vec![("*".to_string(), mount)]
        }
        World::EventHandler | World::Projection | World::Cart => Vec::new(),
    }
}
