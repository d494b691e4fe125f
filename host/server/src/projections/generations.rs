//! Projection generations and versioned cutover. Each version of a
//! projection builds its own views — a generation, scoped `NAME@HASH` in
//! storage. Queries read the active generation (recorded per projection in
//! the `system/projections` bucket). When a new version arrives, its
//! generation is built **beside** the active one from the start of the log
//! while the old version keeps folding and serving; once it has caught up,
//! both generations are compared (the diff is recorded), queries cut over,
//! and the old generation is dropped. Swapping the old version back before
//! the cutover discards the new generation. A [`CutoverGate`] may hold the
//! cutover back: in a cluster, until every live node's copy of the new
//! generation has caught up too, so all nodes switch to the same version.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use corral_runtime::World;
use corral_storage::Storage;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::events::stream::EventStream;
use crate::metrics::Metrics;
use crate::plugins::mounted::Mounted;
use crate::plugins::registry::Registry;
use crate::projections::fold::{self, Projector, State};
use crate::projections::quarantine;

/// How often a held-back cutover asks its gate again.
const GATE_RETRY: Duration = Duration::from_secs(1);

/// Whether a generation that caught up on this node may become the active
/// one now.
#[async_trait::async_trait]
pub trait CutoverGate: Send + Sync {
    /// `Ok` to cut over to the generation folded by `consumer`; `Err` says
    /// what the cutover waits for (shown by `GET /projections`).
    async fn may_cut_over(&self, consumer: &str) -> Result<(), String>;
}

/// kv bucket: projection name → content hash of its active generation.
const ACTIVE: &str = "system/projections";

/// The storage scope of a version's views.
pub(crate) fn scope(name: &str, hash: &str) -> String {
    format!("{name}@{}", &hash[..hash.len().min(12)])
}

/// The scope queries read for a projection, if it has views yet.
pub fn active_scope(storage: &Storage, name: &str) -> Option<String> {
    let hash = storage.kv_get(ACTIVE, name).ok().flatten()?;
    Some(scope(name, &String::from_utf8_lossy(&hash)))
}

/// How two generations compared at cutover.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Diff {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) equal: bool,
    pub(crate) views_before: usize,
    pub(crate) views_after: usize,
    /// `tenant/id` of views that differ (at most 20).
    pub(crate) differing: Vec<String>,
    pub(crate) differing_count: usize,
}

struct Folding {
    projector: Arc<Projector>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Generations {
    active: Option<Folding>,
    building: Option<Folding>,
    last_diff: Option<Diff>,
    /// Why the building generation, caught up, is not active yet.
    waiting: Option<String>,
}

/// Every projection's generations.
pub struct Projections {
    stream: Arc<dyn EventStream>,
    storage: Storage,
    metrics: Arc<Metrics>,
    generations: tokio::sync::Mutex<HashMap<String, Generations>>,
    consumers: Mutex<Vec<String>>,
    caught_up: mpsc::UnboundedSender<String>,
    caught_up_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    gate: Option<Arc<dyn CutoverGate>>,
}

/// Why a quarantined event could not be skipped or retried.
#[derive(Debug)]
pub(crate) enum Unresolved {
    /// No such projection (or no active generation).
    NotFound(String),
    /// It is not halted before that event.
    Conflict(String),
    /// Storage failed.
    Storage(String),
}

/// A projection as the admin API shows it.
pub(crate) struct Status {
    pub(crate) projector: Arc<Projector>,
    pub(crate) active: bool,
    pub(crate) last_diff: Option<Diff>,
    /// Why a caught-up building generation is not active yet.
    pub(crate) waiting: Option<String>,
}

impl Projections {
    /// Projections folding from `stream` into views in `storage`; with a
    /// `gate`, a caught-up generation becomes active only once it allows.
    pub fn new(
        stream: Arc<dyn EventStream>,
        storage: Storage,
        metrics: Arc<Metrics>,
        gate: Option<Arc<dyn CutoverGate>>,
    ) -> Projections {
        let (caught_up, receiver) = mpsc::unbounded_channel();
        Projections {
            stream,
            storage,
            metrics,
            generations: tokio::sync::Mutex::default(),
            consumers: Mutex::default(),
            caught_up,
            caught_up_rx: tokio::sync::Mutex::new(receiver),
            gate,
        }
    }

    /// Every running generation, active ones first.
    pub(crate) async fn statuses(&self) -> Vec<Status> {
        let generations = self.generations.lock().await;
        let mut names: Vec<&String> = generations.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let entry = &generations[name];
            for (folding, active) in [(&entry.active, true), (&entry.building, false)] {
                if let Some(folding) = folding {
                    out.push(Status {
                        projector: folding.projector.clone(),
                        active,
                        last_diff: entry.last_diff.clone(),
                        waiting: if active { None } else { entry.waiting.clone() },
                    });
                }
            }
        }
        out
    }

    /// Every generation's consumer: retention never trims past them.
    pub(crate) fn consumers(&self) -> Vec<String> {
        self.consumers.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Clears the active generation's views and checkpoint and replays.
    pub(crate) async fn rebuild(&self, name: &str) -> Result<(), String> {
        let mut generations = self.generations.lock().await;
        let entry = generations.get_mut(name).ok_or_else(|| format!("no projection named {name:?} is loaded"))?;
        let active = entry.active.take().ok_or_else(|| format!("projection {name} has no active generation"))?;
        let mounted = active.projector.mounted.clone();
        stop(active).await;
        entry.active = Some(self.start(mounted, State::Rebuilding, true).await);
        Ok(())
    }

    /// Deals with the event the active generation of `name` halted
    /// before: skips it (the checkpoint moves past it, its record stays,
    /// marked) or folds it again (its record goes; failing again, it is
    /// quarantined again), then folds on. Fails, saying why, unless the
    /// projection is halted before exactly `sequence`.
    pub(crate) async fn resolve(&self, name: &str, sequence: u64, skip: bool) -> Result<(), Unresolved> {
        let mut generations = self.generations.lock().await;
        let entry = generations
            .get_mut(name)
            .ok_or_else(|| Unresolved::NotFound(format!("no projection named {name:?} is loaded")))?;
        let active = entry
            .active
            .as_ref()
            .ok_or_else(|| Unresolved::NotFound(format!("projection {name} has no active generation")))?;
        let projector = active.projector.clone();
        let (scope, consumer) = (projector.scope.clone(), projector.consumer.clone());
        let state = projector.state();
        if state != State::Halted {
            return Err(Unresolved::Conflict(format!(
                "projection {name} is not halted (it is {state:?}); only the event a halted projection stopped before can be skipped or retried (an event skipped by `on_error = \"skip\"` is folded again only by a rebuild)"
            )));
        }
        let checkpoint = self.storage.checkpoint(&consumer).map_err(|e| Unresolved::Storage(e.to_string()))?;
        let halted_before = {
            let list = projector.quarantined.lock().unwrap_or_else(PoisonError::into_inner);
            list.iter()
                .filter(|q| q.halted && !q.skipped_by_operator && q.sequence > checkpoint)
                .map(|q| q.sequence)
                .min()
        };
        if halted_before != Some(sequence) {
            let before = halted_before.map_or_else(|| format!("after {checkpoint}"), |s| s.to_string());
            return Err(Unresolved::Conflict(format!(
                "projection {name} halted before event {before}, not {sequence}"
            )));
        }
        if skip {
            self.storage
                .commit_views(&scope, &consumer, sequence, &[], &corral_query::Indexes::default())
                .map_err(|e| Unresolved::Storage(e.to_string()))?;
            let mut list = projector.quarantined.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(record) = list.iter_mut().find(|q| q.sequence == sequence) {
                record.skipped_by_operator = true;
                quarantine::keep(&self.storage, &scope, record);
            }
            tracing::warn!(projection = name, sequence, "an operator skipped the quarantined event");
        } else {
            quarantine::remove(&self.storage, &scope, sequence).map_err(Unresolved::Storage)?;
            tracing::info!(projection = name, sequence, "an operator asked to fold the quarantined event again");
        }
        let mounted = projector.mounted.clone();
        if let Some(halted) = entry.active.take() {
            stop(halted).await;
        }
        entry.active = Some(self.start(mounted, State::Running, false).await);
        Ok(())
    }

    /// Follows the registry (and cutovers) until `stop_all`.
    pub(crate) async fn supervise(self: Arc<Self>, registry: Arc<Registry>, mut stop_all: watch::Receiver<bool>) {
        let mut changes = registry.changes();
        let mut caught_up = self.caught_up_rx.lock().await;
        // Caught-up generations whose gate said not yet.
        let mut held: BTreeSet<String> = BTreeSet::new();
        let mut retry = tokio::time::interval(GATE_RETRY);
        self.reconcile(&registry).await;
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.reconcile(&registry).await;
                }
                Some(scope) = caught_up.recv() => {
                    held.insert(scope);
                    self.cut_over_held(&mut held).await;
                }
                _ = retry.tick(), if !held.is_empty() => self.cut_over_held(&mut held).await,
                _ = stop_all.changed() => break,
            }
        }
        let all: Vec<Generations> = self.generations.lock().await.drain().map(|(_, g)| g).collect();
        for generations in all {
            for folding in [generations.active, generations.building].into_iter().flatten() {
                stop(folding).await;
            }
        }
    }

    async fn start(&self, mounted: Arc<Mounted>, state: State, reset: bool) -> Folding {
        let name = mounted.plugin.name().to_string();
        let scope = scope(&name, mounted.plugin.content_hash());
        if reset {
            quarantine::clear(&self.storage, &scope);
        }
        let quarantined = quarantine::load(&self.storage, &scope);
        let projector = Arc::new(Projector::new(
            mounted.clone(),
            scope.clone(),
            state,
            self.metrics.folding(&name),
            self.caught_up.clone(),
            quarantined,
        ));
        if reset {
            let storage = self.storage.clone();
            let consumer = projector.consumer.clone();
            let cleared = tokio::task::spawn_blocking(move || storage.reset_projection(&scope, &consumer)).await;
            if !matches!(cleared, Ok(Ok(_))) {
                tracing::error!(projection = %name, "clearing a generation failed; it folds on top of what is there");
            }
        }
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(fold::run(projector.clone(), self.stream.clone(), self.storage.clone(), stopped));
        Folding { projector, stop, task }
    }

    async fn reconcile(&self, registry: &Registry) {
        let catalog = registry.catalog();
        let desired: HashMap<String, Arc<Mounted>> = catalog
            .slots
            .iter()
            .filter(|s| s.mounted.plugin.world() == World::Projection)
            .map(|s| (s.mounted.plugin.name().to_string(), s.mounted.clone()))
            .collect();
        let storage = self.storage.clone();
        let mut generations = self.generations.lock().await;
        let gone: Vec<String> = generations.keys().filter(|n| !desired.contains_key(*n)).cloned().collect();
        for name in gone {
            if let Some(entry) = generations.remove(&name) {
                for folding in [entry.active, entry.building].into_iter().flatten() {
                    stop(folding).await;
                }
            }
        }
        for (name, mounted) in desired {
            let entry = generations.entry(name.clone()).or_default();
            let hash = mounted.plugin.content_hash().to_string();
            let active_hash =
                storage.kv_get(ACTIVE, &name).ok().flatten().map(|h| String::from_utf8_lossy(&h).into_owned());
            match (&entry.active, active_hash.as_deref()) {
                // The active version, maybe with a new sidecar: restart it in place.
                (Some(active), _) if active.projector.mounted.plugin.content_hash() == hash => {
                    if !Arc::ptr_eq(&active.projector.mounted, &mounted) {
                        if let Some(old) = entry.active.take() {
                            stop(old).await;
                        }
                        entry.active = Some(self.start(mounted.clone(), State::Running, false).await);
                    }
                    // Swapped back before the cutover: the new generation goes.
                    if let Some(building) = entry.building.take() {
                        discard(&storage, building).await;
                        entry.waiting = None;
                    }
                }
                // Nothing folding, and this version's views are the active ones.
                (None, Some(active)) if active == hash => {
                    entry.active = Some(self.start(mounted.clone(), State::Running, false).await);
                }
                // A first version: nothing to serve meanwhile, build in place.
                (None, None) => {
                    if let Err(error) = storage.kv_set(ACTIVE, &name, hash.as_bytes()) {
                        tracing::error!(projection = %name, "recording the active generation failed: {error}");
                    }
                    entry.active = Some(self.start(mounted.clone(), State::Rebuilding, true).await);
                }
                // Another version is active (folding or frozen): build beside it.
                _ => {
                    let building_hash =
                        entry.building.as_ref().map(|b| b.projector.mounted.plugin.content_hash().to_string());
                    if building_hash.as_deref() != Some(&hash) {
                        if let Some(building) = entry.building.take() {
                            discard(&storage, building).await;
                        }
                        entry.waiting = None;
                        tracing::info!(projection = %name, version = mounted.plugin.version(), "building a new generation beside the active one");
                        entry.building = Some(self.start(mounted.clone(), State::Building, true).await);
                    }
                }
            }
        }
        *self.consumers.lock().unwrap_or_else(PoisonError::into_inner) = generations
            .values()
            .flat_map(|g| [&g.active, &g.building])
            .flatten()
            .map(|f| f.projector.consumer.clone())
            .collect();
    }

    /// Cuts over every held generation its gate lets through; forgets those
    /// no longer building (discarded, or replaced by another version).
    async fn cut_over_held(&self, held: &mut BTreeSet<String>) {
        for scope in held.clone() {
            let building = {
                let generations = self.generations.lock().await;
                generations.values().find_map(|g| {
                    g.building.as_ref().filter(|b| b.projector.scope == scope).map(|b| b.projector.consumer.clone())
                })
            };
            let Some(consumer) = building else {
                held.remove(&scope);
                continue;
            };
            let verdict = match &self.gate {
                Some(gate) => gate.may_cut_over(&consumer).await,
                None => Ok(()),
            };
            match verdict {
                Ok(()) => {
                    held.remove(&scope);
                    self.cut_over(&scope).await;
                }
                Err(waiting) => self.hold(&scope, waiting).await,
            }
        }
    }

    /// Records why the generation at `scope` waits (logged when it changes).
    async fn hold(&self, scope: &str, waiting: String) {
        let mut generations = self.generations.lock().await;
        let entry = generations.values_mut().find(|g| g.building.as_ref().is_some_and(|b| b.projector.scope == scope));
        if let Some(entry) = entry
            && entry.waiting.as_ref() != Some(&waiting)
        {
            tracing::info!(generation = scope, "caught up; the cutover waits: {waiting}");
            entry.waiting = Some(waiting);
        }
    }

    /// The generation at `scope` has caught up: compare, switch, drop the old.
    async fn cut_over(&self, scope: &str) {
        let mut generations = self.generations.lock().await;
        let Some((name, entry)) =
            generations.iter_mut().find(|(_, g)| g.building.as_ref().is_some_and(|b| b.projector.scope == scope))
        else {
            return;
        };
        let name = name.clone();
        let Some(building) = entry.building.take() else { return };
        let storage = self.storage.clone();
        let old_scope = active_scope(&storage, &name);
        let diff = match &old_scope {
            Some(old) => compare(&storage, old, scope),
            None => Ok(Diff {
                from: String::new(),
                to: scope.into(),
                equal: false,
                views_before: 0,
                views_after: 0,
                differing: Vec::new(),
                differing_count: 0,
            }),
        };
        let diff = match diff {
            Ok(diff) => diff,
            Err(error) => {
                tracing::error!(projection = %name, "comparing generations failed; not cutting over: {error}");
                entry.building = Some(building);
                return;
            }
        };
        let hash = building.projector.mounted.plugin.content_hash().to_string();
        if let Err(error) = storage.kv_set(ACTIVE, &name, hash.as_bytes()) {
            tracing::error!(projection = %name, "recording the cutover failed: {error}");
            entry.building = Some(building);
            return;
        }
        building.projector.promote();
        if let Some(old) = entry.active.replace(building) {
            discard(&storage, old).await;
        } else if let Some(old) = &old_scope {
            // A generation left by a version no longer loaded.
            let _ = storage.reset_projection(old, &format!("projection.{old}"));
        }
        tracing::info!(projection = %name, equal = diff.equal, differing = diff.differing_count, "cut over to the new generation");
        entry.last_diff = Some(diff);
        entry.waiting = None;
    }
}

/// Stops a generation between batches.
async fn stop(folding: Folding) {
    let _ = folding.stop.send(true);
    let _ = folding.task.await;
}

/// Stops a generation and deletes its views and checkpoint.
async fn discard(storage: &Storage, folding: Folding) {
    let scope = folding.projector.scope.clone();
    let consumer = folding.projector.consumer.clone();
    stop(folding).await;
    if let Err(error) = storage.reset_projection(&scope, &consumer) {
        tracing::error!(scope, "dropping a generation failed: {error}");
    }
}

/// Compares two generations view by view.
fn compare(storage: &Storage, from: &str, to: &str) -> Result<Diff, corral_storage::StorageError> {
    let before: BTreeMap<(String, String), Vec<u8>> = storage.scope_views(from)?;
    let after: BTreeMap<(String, String), Vec<u8>> = storage.scope_views(to)?;
    let mut differing: Vec<String> = before
        .iter()
        .filter(|(key, value)| after.get(*key) != Some(*value))
        .map(|((tenant, id), _)| format!("{tenant}/{id}"))
        .collect();
    differing
        .extend(after.keys().filter(|key| !before.contains_key(*key)).map(|(tenant, id)| format!("{tenant}/{id}")));
    let differing_count = differing.len();
    differing.truncate(20);
    Ok(Diff {
        from: from.into(),
        to: to.into(),
        equal: differing_count == 0,
        views_before: before.len(),
        views_after: after.len(),
        differing,
        differing_count,
    })
}
