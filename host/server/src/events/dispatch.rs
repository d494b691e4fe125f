//! Keeps one dispatcher (and its schedules) running per event-handler
//! plugin in the current catalog. When a plugin's version changes, its
//! dispatcher is stopped between two events and restarted on the new
//! version from the same checkpoint: nothing is lost or delivered twice
//! by the swap itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use corral_runtime::ControlPlane;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::coordination::Leases;
use crate::events::delivery::{self, Subscription};
use crate::events::schedule;
use crate::events::stream::EventStream;
use crate::metrics::Metrics;
use crate::plugins::mounted::Mounted;
use crate::plugins::registry::Registry;

struct Running {
    mounted: Arc<Mounted>,
    subscription: Arc<Subscription>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The running subscriptions.
pub struct Dispatch {
    running: Mutex<HashMap<String, Running>>,
    /// What every handler's calls reach.
    control: Arc<ControlPlane>,
    /// In a cluster, a subscription runs on the node holding its lease.
    leases: Leases,
}

impl Dispatch {
    /// Dispatch whose handlers' imports reach `control`, each subscription
    /// (with its schedules) running where `leases` say.
    pub fn new(control: Arc<ControlPlane>, leases: Leases) -> Dispatch {
        Dispatch { running: Mutex::default(), control, leases }
    }

    /// The subscriptions running now.
    pub(crate) fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<_> = running.values().map(|r| r.subscription.clone()).collect();
        list.sort_by(|a, b| a.consumer().cmp(b.consumer()));
        list
    }

    /// The durable consumers running now (retention never trims past them).
    pub(crate) fn consumers(&self) -> Vec<String> {
        self.subscriptions().iter().map(|s| s.consumer().to_string()).collect()
    }

    /// Follows the registry until `stop`, then stops every dispatcher.
    pub(crate) async fn supervise(
        self: Arc<Self>,
        registry: Arc<Registry>,
        stream: Arc<dyn EventStream>,
        metrics: Arc<Metrics>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut changes = registry.changes();
        loop {
            self.reconcile(&registry, &stream, &metrics).await;
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
    }

    async fn reconcile(&self, registry: &Registry, stream: &Arc<dyn EventStream>, metrics: &Metrics) {
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
            let subscription = Arc::new(Subscription::for_plugin(
                mounted.clone(),
                self.control.clone(),
                metrics.delivery(&name, &mounted.topics),
            ));
            let (stop, stopped) = watch::channel(false);
            let work = {
                let (subscription, stream, schedules) =
                    (subscription.clone(), stream.clone(), mounted.schedules.clone());
                move |halted: watch::Receiver<bool>| {
                    let (subscription, stream, schedules) = (subscription.clone(), stream.clone(), schedules.clone());
                    async move {
                        let mut tasks = vec![tokio::spawn(delivery::run(subscription, stream.clone(), halted.clone()))];
                        for schedule in schedules {
                            tasks.push(tokio::spawn(schedule::run(schedule, stream.clone(), halted.clone())));
                        }
                        for task in tasks {
                            let _ = task.await;
                        }
                    }
                }
            };
            let leases = self.leases.clone();
            let lease = format!("subscriber.{name}");
            let task = tokio::spawn(async move { leases.run_while_held(&lease, stopped, work).await });
            running.insert(name, Running { mounted, subscription, stop, tasks: vec![task] });
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
