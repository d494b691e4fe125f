//! Keeps one dispatcher (and its schedules) running per event-handler
//! plugin, and one fold per projection, in the current catalog. When a plugin's version changes, its
//! dispatcher is stopped between two events and restarted on the new
//! version from the same checkpoint: nothing is lost or delivered twice
//! by the swap itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use corral_storage::stream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use corral_runtime::World;

use crate::events::{self, Subscription};
use crate::metrics::Metrics;
use crate::plugins::Mounted;
use crate::projections::{self, Projector, State};
use crate::registry::Registry;
use crate::schedule;

struct Running {
    mounted: Arc<Mounted>,
    subscription: Arc<Subscription>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Folding {
    projector: Arc<Projector>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The running subscriptions and projections.
pub(crate) struct Dispatch {
    stream: Arc<stream::Embedded>,
    metrics: Arc<Metrics>,
    running: Mutex<HashMap<String, Running>>,
    folding: tokio::sync::Mutex<HashMap<String, Folding>>,
    /// The projections' consumers, readable without waiting (retention).
    projection_consumers: Mutex<Vec<String>>,
}

/// kv bucket where the host remembers which version built each projection.
const BUILT_BY: &str = "system/projections";

impl Dispatch {
    pub(crate) fn new(stream: Arc<stream::Embedded>, metrics: Arc<Metrics>) -> Dispatch {
        Dispatch {
            stream,
            metrics,
            running: Mutex::default(),
            folding: tokio::sync::Mutex::default(),
            projection_consumers: Mutex::default(),
        }
    }

    /// The projections running (or halted) now.
    pub(crate) async fn projectors(&self) -> Vec<Arc<Projector>> {
        let mut list: Vec<_> = self.folding.lock().await.values().map(|f| f.projector.clone()).collect();
        list.sort_by(|a, b| a.name().cmp(b.name()));
        list
    }

    /// Clears a projection's views and checkpoint and replays the log.
    pub(crate) async fn rebuild(&self, name: &str) -> Result<(), String> {
        let mut folding = self.folding.lock().await;
        let current = folding.remove(name).ok_or_else(|| format!("no projection named {name:?} is loaded"))?;
        let mounted = current.projector.mounted.clone();
        stop_folding(current).await;
        let started = self.start_projection(mounted, true).await;
        folding.insert(name.to_string(), started);
        Ok(())
    }

    /// Starts a projection; `reset` (or views built by another version)
    /// clears its views first and replays the log from the start.
    async fn start_projection(&self, mounted: Arc<Mounted>, reset: bool) -> Folding {
        let name = mounted.plugin.name().to_string();
        let storage = self.stream.storage().clone();
        let hash = mounted.plugin.content_hash().to_string();
        let built_by = storage.kv_get(BUILT_BY, &name).ok().flatten();
        let stale = built_by.as_deref() != Some(hash.as_bytes());
        let mut state = State::Running;
        if reset || stale {
            let consumer = format!("projection.{name}");
            let cleared = tokio::task::spawn_blocking(move || {
                let cleared = storage.reset_projection(&name, &consumer)?;
                storage.kv_set(BUILT_BY, &name, hash.as_bytes())?;
                Ok::<_, corral_storage::StorageError>(cleared)
            })
            .await;
            match cleared {
                Ok(Ok(views)) => {
                    tracing::info!(projection = mounted.plugin.name(), views, "rebuilding from the start of the log")
                }
                Ok(Err(error)) => tracing::error!(projection = mounted.plugin.name(), "clearing views failed: {error}"),
                Err(join) => tracing::error!(projection = mounted.plugin.name(), "clearing views failed: {join}"),
            }
            state = State::Rebuilding;
        }
        let projector = Arc::new(Projector::new(mounted.clone(), state, self.metrics.applied(mounted.plugin.name())));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(projections::run(projector.clone(), self.stream.clone(), stopped));
        Folding { projector, stop, task }
    }

    async fn reconcile_projections(&self, registry: &Registry) {
        let catalog = registry.catalog();
        let desired: HashMap<String, Arc<Mounted>> = catalog
            .slots
            .iter()
            .filter(|s| s.mounted.plugin.world() == World::Projection)
            .map(|s| (s.mounted.plugin.name().to_string(), s.mounted.clone()))
            .collect();
        let mut folding = self.folding.lock().await;
        let stale: Vec<String> = folding
            .iter()
            .filter(|(name, f)| desired.get(*name).is_none_or(|m| !Arc::ptr_eq(m, &f.projector.mounted)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(old) = folding.remove(&name) {
                stop_folding(old).await;
            }
        }
        for (name, mounted) in desired {
            if let std::collections::hash_map::Entry::Vacant(slot) = folding.entry(name) {
                slot.insert(self.start_projection(mounted, false).await);
            }
        }
        *self.projection_consumers.lock().unwrap_or_else(PoisonError::into_inner) =
            folding.values().map(|f| f.projector.consumer.clone()).collect();
    }

    /// The subscriptions running now.
    pub(crate) fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<_> = running.values().map(|r| r.subscription.clone()).collect();
        list.sort_by(|a, b| a.consumer().cmp(b.consumer()));
        list
    }

    /// The durable consumers running now, handlers and projections:
    /// retention never trims past any of them.
    pub(crate) fn consumers(&self) -> Vec<String> {
        let mut consumers: Vec<String> = self.subscriptions().iter().map(|s| s.consumer().to_string()).collect();
        consumers.extend(self.projection_consumers.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned());
        consumers
    }

    /// Follows the registry until `stop`, then stops every dispatcher.
    pub(crate) async fn supervise(
        self: Arc<Self>,
        registry: Arc<Registry>,
        stream: Arc<stream::Embedded>,
        metrics: Arc<Metrics>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut changes = registry.changes();
        loop {
            self.reconcile(&registry, &stream, &metrics).await;
            self.reconcile_projections(&registry).await;
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { break },
                _ = stop.changed() => break,
            }
        }
        let all: Vec<Running> =
            self.running.lock().unwrap_or_else(PoisonError::into_inner).drain().map(|(_, r)| r).collect();
        for running in all {
            stop_running(running).await;
        }
        let folding: Vec<Folding> = self.folding.lock().await.drain().map(|(_, f)| f).collect();
        for folding in folding {
            stop_folding(folding).await;
        }
    }

    async fn reconcile(&self, registry: &Registry, stream: &Arc<stream::Embedded>, metrics: &Metrics) {
        let catalog = registry.catalog();
        let desired: HashMap<String, Arc<Mounted>> = catalog
            .slots
            .iter()
            .filter(|s| !s.mounted.topics.is_empty())
            .map(|s| (s.mounted.plugin.name().to_string(), s.mounted.clone()))
            .collect();
        let stale: Vec<Running> = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            let names: Vec<String> = running
                .iter()
                .filter(|(name, r)| desired.get(*name).is_none_or(|m| !Arc::ptr_eq(m, &r.mounted)))
                .map(|(name, _)| name.clone())
                .collect();
            names.into_iter().filter_map(|name| running.remove(&name)).collect()
        };
        for running in stale {
            stop_running(running).await;
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, mounted) in desired {
            if running.contains_key(&name) {
                continue;
            }
            let subscription = Arc::new(Subscription::for_plugin(mounted.clone(), metrics.delivery(&name)));
            let (stop, stopped) = watch::channel(false);
            let mut tasks = vec![tokio::spawn(events::run(subscription.clone(), stream.clone(), stopped.clone()))];
            for schedule in &mounted.schedules {
                tasks.push(tokio::spawn(schedule::run(schedule.clone(), stream.clone(), stopped.clone())));
            }
            running.insert(name, Running { mounted, subscription, stop, tasks });
        }
    }
}

/// Stops a dispatcher between events and waits for it.
async fn stop_running(running: Running) {
    let _ = running.stop.send(true);
    for task in running.tasks {
        let _ = task.await;
    }
}

/// Stops a projection between batches and waits for it.
async fn stop_folding(folding: Folding) {
    let _ = folding.stop.send(true);
    let _ = folding.task.await;
}
