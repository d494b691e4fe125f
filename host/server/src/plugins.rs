//! The mounted plugins of a running host: every component in the plugins
//! folder, loaded with its sidecar. A broken one is reported and skipped;
//! the others serve.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use corral_runtime::{Plugin, Runtime, World};

use crate::metrics::{Metrics, PluginMetrics};
use crate::router::Router;
use crate::schedule::Schedule;
use crate::sidecar::Sidecar;

/// A plugin the host serves, with what the operator set and its metrics.
pub(crate) struct Mounted {
    pub(crate) plugin: Plugin,
    pub(crate) sidecar: Sidecar,
    /// The routes actually served (sidecar overrides applied).
    pub(crate) routes: Vec<(String, String)>,
    /// The topics subscribed to (event handlers), sidecar overrides applied.
    pub(crate) topics: Vec<String>,
    /// Cron schedules (event handlers), sidecar overrides applied.
    pub(crate) schedules: Vec<Arc<Schedule>>,
    pub(crate) metrics: PluginMetrics,
}

/// A component that could not be mounted, and why.
pub(crate) struct Failure {
    pub(crate) file: PathBuf,
    pub(crate) error: String,
}

/// Everything loaded from the plugins folder.
pub(crate) struct Catalog {
    pub(crate) mounted: Vec<Arc<Mounted>>,
    pub(crate) failures: Vec<Failure>,
    pub(crate) router: Router,
}

/// Loads every `.wasm` in `dir` (sorted by name).
pub(crate) async fn load_dir(runtime: &Runtime, dir: &Path, metrics: &Metrics) -> anyhow::Result<Catalog> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the plugins folder {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    files.sort();
    let mut catalog = Catalog { mounted: Vec::new(), failures: Vec::new(), router: Router::default() };
    for file in files {
        match mount(runtime, &file, &mut catalog, metrics).await {
            Ok(mounted) => {
                tracing::info!(
                    plugin = mounted.plugin.name(),
                    version = mounted.plugin.version(),
                    world = %mounted.plugin.world(),
                    file = %file.display(),
                    cache = mounted.plugin.cache_outcome().name(),
                    load_ms = mounted.plugin.load_time().as_millis() as u64,
                    "plugin loaded"
                );
                catalog.mounted.push(Arc::new(mounted));
            }
            Err(error) => {
                let error = format!("{error:#}");
                tracing::error!(file = %file.display(), "plugin skipped: {error}");
                catalog.failures.push(Failure { file, error });
            }
        }
    }
    Ok(catalog)
}

async fn mount(runtime: &Runtime, file: &Path, catalog: &mut Catalog, metrics: &Metrics) -> anyhow::Result<Mounted> {
    let sidecar = Sidecar::load_for(file)?;
    let plugin = runtime.load(file, sidecar.settings()).await?;
    if let Some(other) = catalog.mounted.iter().find(|m| m.plugin.name() == plugin.name()) {
        anyhow::bail!(
            "{}: plugin name {:?} is already used by {}; plugin names must be unique",
            file.display(),
            plugin.name(),
            other.plugin.path().display()
        );
    }
    let routes = served_routes(&plugin, &sidecar);
    let (topics, schedules) =
        subscriptions(&plugin, &sidecar).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    catalog
        .router
        .add(plugin.name(), catalog.mounted.len(), &routes)
        .map_err(|conflict| anyhow::anyhow!("{}: {conflict}", file.display()))?;
    let metrics = metrics.plugin(plugin.name());
    Ok(Mounted { plugin, sidecar, routes, topics, schedules, metrics })
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
        corral_runtime::plugin::check_subscription(topic)?;
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
