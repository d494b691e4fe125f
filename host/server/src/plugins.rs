//! The mounted plugins of a running host: every component in the plugins
//! folder, loaded with its sidecar, in an immutable [`Catalog`] snapshot. A
//! broken one is reported and skipped; the others serve.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use corral_runtime::{Plugin, Runtime, World};

use crate::canary::{Canary, CanaryPolicy};
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
    /// How a new version of it is rolled out (routes), from the sidecar.
    pub(crate) canary: Option<CanaryPolicy>,
    pub(crate) metrics: PluginMetrics,
}

/// A component that could not be mounted, and why.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) file: PathBuf,
    pub(crate) error: String,
}

/// One served plugin of a catalog: the file it came from, its current
/// version, and a canary version if one is being tried.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) stem: String,
    pub(crate) mounted: Arc<Mounted>,
    pub(crate) canary: Option<Arc<Canary>>,
}

/// An immutable snapshot of what is served. Swapping plugins builds a new
/// catalog and replaces the old one atomically; calls already running keep
/// the `Arc<Mounted>` they started with.
#[derive(Default)]
pub(crate) struct Catalog {
    pub(crate) slots: Vec<Slot>,
    pub(crate) failures: Vec<Failure>,
    pub(crate) router: Router,
}

impl Catalog {
    /// Builds a catalog from slots in order. A slot whose plugin name is
    /// taken or whose routes conflict is left out and reported; the earlier
    /// slot wins, so callers put the slot being deployed last.
    pub(crate) fn build(candidates: Vec<Slot>, mut failures: Vec<Failure>) -> (Catalog, Vec<(String, String)>) {
        let mut catalog = Catalog::default();
        let mut rejected = Vec::new();
        for slot in candidates {
            let plugin = &slot.mounted.plugin;
            let taken = catalog.slots.iter().find(|s| s.mounted.plugin.name() == plugin.name());
            let outcome = match taken {
                Some(other) => Err(format!(
                    "{}: plugin name {:?} is already used by {}; plugin names must be unique (set `name` in the sidecar)",
                    plugin.path().display(),
                    plugin.name(),
                    other.mounted.plugin.path().display()
                )),
                None => catalog
                    .router
                    .add(plugin.name(), catalog.slots.len(), &slot.mounted.routes)
                    .map_err(|conflict| format!("{}: {conflict}", plugin.path().display())),
            };
            match outcome {
                Ok(()) => catalog.slots.push(slot),
                Err(error) => {
                    failures.push(Failure { file: plugin.path().to_path_buf(), error: error.clone() });
                    rejected.push((slot.stem, error));
                }
            }
        }
        catalog.failures = failures;
        (catalog, rejected)
    }

    /// The slot of a file stem.
    pub(crate) fn slot(&self, stem: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.stem == stem)
    }
}

/// Loads one component with its sidecar (`NAME.toml` beside it, unless
/// given) into a [`Mounted`].
pub(crate) async fn load(
    runtime: &Runtime,
    file: &Path,
    sidecar: Option<&Path>,
    metrics: &Metrics,
) -> anyhow::Result<Mounted> {
    let sidecar_path = sidecar.map(Path::to_path_buf).unwrap_or_else(|| Sidecar::path_for(file));
    let sidecar = Sidecar::load(&sidecar_path)?;
    let plugin = runtime.load(file, sidecar.settings()).await?;
    if !sidecar.carts.plugins.is_empty() && !matches!(plugin.world(), World::Route | World::EventHandler) {
        anyhow::bail!(
            "{}: [carts] plugins grants carts to route and event-handler plugins only; a {} plugin cannot call carts",
            sidecar_path.display(),
            plugin.world().name()
        );
    }
    let routes = served_routes(&plugin, &sidecar);
    let (topics, schedules) =
        subscriptions(&plugin, &sidecar).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let canary = sidecar
        .canary
        .as_ref()
        .map(CanaryPolicy::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{}: {e}", sidecar_path.display()))?;
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
    Ok(Mounted { plugin, sidecar, routes, topics, schedules, canary, metrics })
}

/// The `.wasm` files of the plugins folder, by stem, sorted.
pub(crate) fn stems(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the plugins folder {}", dir.display()))?
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
