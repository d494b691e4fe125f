//! Hot swap: the [`Registry`] owns the served [`Catalog`] and changes it
//! while the host runs. A new version is read and hashed once, loaded
//! (compiled or taken from the cache), linked and validated — `describe()`,
//! route conflicts, sidecar — off the request path; only then is a new
//! catalog swapped in atomically. Calls already running finish on the
//! version they started with. A version that fails any step is rejected
//! with a [`DeployError`], recorded (`GET /plugins`), counted, and the old
//! one keeps serving. The previous version of each plugin is kept for
//! rollback.
//!
//! Changes of one plugin are serialised (a per-stem lock held from reading
//! the file to publishing the catalog); different plugins load side by side
//! and only the publication is serialised.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use corral_runtime::{Runtime, World};
use tokio::sync::{OwnedMutexGuard, watch};

use crate::metrics::Metrics;
use crate::plugins::canary::{Canary, Verdict};
use crate::plugins::catalog::{Admission, Catalog, Failure, Slot};
use crate::plugins::deploy::DeployError;
use crate::plugins::mounted::{Component, Mounted, Stamp, mount, stems};
use crate::plugins::sidecar::Sidecar;
use crate::plugins::versions::Versions;

/// What became of a deployment.
pub enum Deployed {
    /// The new version serves all traffic.
    Swapped(Arc<Mounted>),
    /// The new version serves a share of the traffic for a window.
    Canary(Arc<Mounted>),
    /// Nothing changed (same component and sidecar).
    Unchanged(Arc<Mounted>),
}

impl Deployed {
    /// The version concerned.
    pub fn mounted(&self) -> &Arc<Mounted> {
        match self {
            Deployed::Swapped(mounted) | Deployed::Canary(mounted) | Deployed::Unchanged(mounted) => mounted,
        }
    }

    /// `swapped`, `canary` or `unchanged`.
    pub fn label(&self) -> &'static str {
        match self {
            Deployed::Swapped(_) => "swapped",
            Deployed::Canary(_) => "canary",
            Deployed::Unchanged(_) => "unchanged",
        }
    }
}

/// The served plugins, swappable.
pub struct Registry {
    pub(super) runtime: Runtime,
    dir: PathBuf,
    versions: Versions,
    pub(super) metrics: Arc<Metrics>,
    pub(super) current: ArcSwap<Catalog>,
    /// Serialises publications; readers never wait on it.
    pub(super) publishing: tokio::sync::Mutex<()>,
    /// One lock per plugin file stem, held across a whole change of it.
    changing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    previous: Mutex<HashMap<String, Arc<Mounted>>>,
    generation: watch::Sender<u64>,
}

impl Registry {
    /// Loads every component in `dir`; one that fails is recorded and
    /// skipped. With `load` false the registry starts empty (a node of a
    /// cluster installs what the cluster's desired state says).
    pub async fn open(
        runtime: Runtime,
        dir: &Path,
        data_dir: &Path,
        metrics: Arc<Metrics>,
        load: bool,
    ) -> anyhow::Result<Arc<Registry>> {
        let versions = Versions::open(data_dir)?;
        let mut slots = Vec::new();
        let mut failures = Vec::new();
        let stems = if load { stems(dir)? } else { Vec::new() };
        for stem in stems {
            let file = dir.join(format!("{stem}.wasm"));
            let mounted = match Component::read(&file) {
                Ok(component) => mount(&runtime, &component, &Sidecar::path_for(&file), &metrics)
                    .await
                    .inspect(|_| versions.keep(&component)),
                Err(error) => Err(error),
            };
            match mounted {
                Ok(mounted) => slots.push(Slot::new(&stem, Arc::new(mounted))),
                Err(error) => {
                    tracing::error!(file = %file.display(), cause = error.label(), "plugin skipped: {error}");
                    failures.push(Failure::new(&file, &error));
                }
            }
        }
        let (catalog, rejected) = Catalog::build(slots, failures);
        for (stem, error) in rejected {
            tracing::error!(plugin = %stem, cause = error.label(), "plugin skipped: {error}");
        }
        let (generation, _) = watch::channel(0);
        Ok(Arc::new(Registry {
            runtime,
            dir: dir.to_path_buf(),
            versions,
            metrics,
            current: ArcSwap::from_pointee(catalog),
            publishing: tokio::sync::Mutex::new(()),
            changing: Mutex::default(),
            previous: Mutex::default(),
            generation,
        }))
    }

    /// The catalog now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.current.load_full()
    }

    /// The host's metrics.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The plugins folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Changes whenever the catalog does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub(super) fn publish(&self, catalog: Catalog) {
        self.current.store(Arc::new(catalog));
        self.generation.send_modify(|g| *g += 1);
    }

    /// Takes the lock of plugin `stem` for a whole change.
    pub(super) async fn change(&self, stem: &str) -> OwnedMutexGuard<()> {
        let lock = self.changing.lock().unwrap_or_else(PoisonError::into_inner).entry(stem.into()).or_default().clone();
        lock.lock_owned().await
    }

    /// Re-reads `NAME.wasm` (and `NAME.toml`): deploys it if present,
    /// unloads the plugin if the file is gone.
    pub async fn sync(self: &Arc<Self>, stem: &str) -> Result<Option<Deployed>, DeployError> {
        let _change = self.change(stem).await;
        let file = self.dir.join(format!("{stem}.wasm"));
        if !file.is_file() {
            self.unload(stem).await;
            return Ok(None);
        }
        let sidecar = Sidecar::path_for(&file);
        // The file as it was when the served version was read from it.
        if let Some(same) = self.served(stem, |m| m.stamp.is_some() && m.stamp == Stamp::of(&file), &sidecar) {
            return Ok(Some(Deployed::Unchanged(same)));
        }
        let component = match Component::read(&file) {
            Ok(component) => component,
            Err(error) => return Err(self.reject(stem, &file, error).await),
        };
        self.deploy(stem, component, &sidecar).await.map(Some)
    }

    /// Deploys an uploaded component as `NAME.wasm` (with the sidecar
    /// `NAME.toml` of the plugins folder): it is loaded and checked, and
    /// only if it would serve is it written into the folder (atomically)
    /// and swapped in. Loaded once, hashed once; the folder watcher then
    /// recognises the file it wrote.
    pub async fn upload(self: &Arc<Self>, stem: &str, bytes: Vec<u8>) -> Result<Deployed, DeployError> {
        let _change = self.change(stem).await;
        let file = self.dir.join(format!("{stem}.wasm"));
        let component = Component::uploaded(file.clone(), bytes);
        let sidecar = Sidecar::path_for(&file);
        if let Some(same) = self.served(stem, |m| m.plugin.content_hash() == component.hash, &sidecar) {
            return Ok(Deployed::Unchanged(same));
        }
        let mut mounted = match mount(&self.runtime, &component, &sidecar, &self.metrics).await {
            Ok(mounted) => mounted,
            Err(error) => return Err(self.reject(stem, &file, error).await),
        };
        if let Err(error) = self.fits(stem, &mounted) {
            return Err(self.reject(stem, &file, error).await);
        }
        let staged = self.dir.join(format!(".{stem}.wasm.upload"));
        let written = std::fs::write(&staged, &component.bytes).and_then(|()| std::fs::rename(&staged, &file));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&staged);
            return Err(DeployError::storage(&file, format!("writing the upload into the plugins folder: {error}")));
        }
        mounted.stamp = Stamp::of(&file);
        self.admit(stem, &component, mounted).await
    }

    /// The served version (or canary) of `stem`, if `same` says it is this
    /// one and its sidecar has not changed.
    fn served(&self, stem: &str, same: impl Fn(&Mounted) -> bool, sidecar: &Path) -> Option<Arc<Mounted>> {
        let catalog = self.catalog();
        let slot = catalog.slot(stem)?;
        let candidates = std::iter::once(&slot.mounted).chain(slot.canary.as_ref().map(|c| &c.mounted));
        let found = candidates.into_iter().find(|m| same(m))?;
        let sidecar = Sidecar::load(sidecar).ok()?;
        (found.sidecar == sidecar).then(|| slot.mounted.clone())
    }

    /// Loads and validates a version off the request path, then swaps it in
    /// (or starts it as a canary).
    async fn deploy(
        self: &Arc<Self>,
        stem: &str,
        component: Component,
        sidecar: &Path,
    ) -> Result<Deployed, DeployError> {
        if let Some(same) = self.served(stem, |m| m.plugin.content_hash() == component.hash, sidecar) {
            return Ok(Deployed::Unchanged(same));
        }
        match mount(&self.runtime, &component, sidecar, &self.metrics).await {
            Ok(mounted) => self.admit(stem, &component, mounted).await,
            Err(error) => Err(self.reject(stem, &component.path, error).await),
        }
    }

    /// Whether `mounted` fits beside every other served plugin as `stem`:
    /// its name is free, its routes conflict with none and its topics'
    /// schemas are theirs.
    pub(super) fn fits(&self, stem: &str, mounted: &Mounted) -> Result<(), DeployError> {
        let current = self.catalog();
        let mut admission = Admission::default();
        for (index, slot) in current.others(stem).enumerate() {
            let plugin = &slot.mounted.plugin;
            let _ = admission.admit(
                index,
                plugin.name(),
                plugin.path(),
                &slot.mounted.routes,
                slot.mounted.schemas.events(),
            );
        }
        let plugin = &mounted.plugin;
        admission.admit(usize::MAX, plugin.name(), plugin.path(), &mounted.routes, mounted.schemas.events())
    }

    /// Swaps a loaded version in (or starts its canary) if it fits.
    async fn admit(
        self: &Arc<Self>,
        stem: &str,
        component: &Component,
        mounted: Mounted,
    ) -> Result<Deployed, DeployError> {
        let mounted = Arc::new(mounted);
        let _publishing = self.publishing.lock().await;
        let current = self.catalog();
        let existing = current.slot(stem).cloned();
        let canary = match (&existing, mounted.canary) {
            (Some(slot), Some(policy))
                if mounted.plugin.world() == World::Route && slot.mounted.plugin.world() == World::Route =>
            {
                Some(Arc::new(Canary::new(mounted.clone(), policy)))
            }
            _ => None,
        };
        // The canary must also fit beside everything else.
        if let Err(error) = self.fits(stem, &mounted) {
            drop(_publishing);
            return Err(self.reject(stem, &component.path, error).await);
        }
        let candidate = match (&existing, &canary) {
            (Some(slot), Some(canary)) => Slot { canary: Some(canary.clone()), ..slot.clone() },
            _ => Slot::new(stem, mounted.clone()),
        };
        let (catalog, _) =
            Catalog::build(current.others(stem).chain([candidate]).collect(), current.failures_without(stem));
        self.versions.keep(component);
        self.publish(catalog);
        if let Some(canary) = canary {
            self.metrics.swap("canary");
            let (plugin, version, percent) = (mounted.plugin.name(), mounted.plugin.version(), canary.policy.percent);
            tracing::info!(plugin, version, percent, "canary started");
            tokio::spawn(self.clone().watch_canary(stem.to_string(), canary));
            return Ok(Deployed::Canary(mounted));
        }
        if let Some(slot) = existing {
            self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.to_string(), slot.mounted);
        }
        self.metrics.swap("swapped");
        let (plugin, version, hash) = (mounted.plugin.name(), mounted.plugin.version(), mounted.plugin.content_hash());
        tracing::info!(plugin, version, hash, "plugin swapped in");
        Ok(Deployed::Swapped(mounted))
    }

    /// Syncs every plugin file with what is served: catches changes made
    /// between loading and the watcher starting.
    pub async fn rescan(self: &Arc<Self>) -> Result<(), DeployError> {
        let mut stems = stems(&self.dir)?;
        stems.extend(self.catalog().slots.iter().map(|s| s.stem.clone()));
        stems.sort();
        stems.dedup();
        for stem in stems {
            if let Err(error) = self.sync(&stem).await {
                tracing::warn!(plugin = %stem, cause = error.label(), "{error}");
            }
        }
        Ok(())
    }

    /// Records a rejected version; the old one keeps serving.
    pub(super) async fn reject(&self, stem: &str, file: &Path, error: DeployError) -> DeployError {
        self.metrics.swap("rejected");
        tracing::error!(file = %file.display(), cause = error.label(), "new version rejected, the previous one keeps serving: {error}");
        let _publishing = self.publishing.lock().await;
        let current = self.catalog();
        let mut failures = current.failures_without(stem);
        failures.push(Failure::new(file, &error));
        let (catalog, _) = Catalog::build(current.slots.clone(), failures);
        self.publish(catalog);
        error
    }

    /// Unloads a plugin and removes its component from the plugins folder:
    /// new calls get 404, running calls finish. False if it was not served.
    pub async fn remove(&self, stem: &str) -> Result<bool, DeployError> {
        let _change = self.change(stem).await;
        let file = self.dir.join(format!("{stem}.wasm"));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(DeployError::storage(&file, error)),
        }
        Ok(self.unload(stem).await)
    }

    /// Drops `stem` from the catalog (its failures too).
    pub(super) async fn unload(&self, stem: &str) -> bool {
        let _publishing = self.publishing.lock().await;
        let current = self.catalog();
        let Some(slot) = current.slot(stem).cloned() else {
            if current.failures.iter().any(|f| f.is_of(stem)) {
                let (catalog, _) = Catalog::build(current.slots.clone(), current.failures_without(stem));
                self.publish(catalog);
            }
            return false;
        };
        let (catalog, _) = Catalog::build(current.others(stem).collect(), current.failures_without(stem));
        self.publish(catalog);
        self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.to_string(), slot.mounted.clone());
        self.metrics.swap("removed");
        tracing::info!(plugin = slot.mounted.plugin.name(), "plugin unloaded");
        true
    }

    /// Swaps the previous version back in, and puts its component back in
    /// the plugins folder so a restart keeps it.
    pub async fn rollback(&self, stem: &str) -> Result<Arc<Mounted>, DeployError> {
        let _change = self.change(stem).await;
        let _publishing = self.publishing.lock().await;
        let current = self.catalog();
        let previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner).remove(stem);
        let previous = previous.ok_or_else(|| DeployError::NoPrevious { plugin: stem.to_string() })?;
        let restored = Slot::new(stem, previous.clone());
        let (catalog, rejected) =
            Catalog::build(current.others(stem).chain([restored]).collect(), current.failures_without(stem));
        if let Some((_, error)) = rejected.into_iter().next() {
            self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.to_string(), previous);
            return Err(error);
        }
        if let Err(error) = self.versions.restore(previous.plugin.content_hash(), &self.dir, stem) {
            tracing::warn!(plugin = %stem, "rolled back in memory, but the plugins folder was not updated: {error}");
        }
        if let Some(slot) = current.slot(stem) {
            self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.to_string(), slot.mounted.clone());
        }
        self.publish(catalog);
        self.metrics.swap("rolled_back");
        tracing::info!(plugin = previous.plugin.name(), version = previous.plugin.version(), "rolled back");
        Ok(previous)
    }

    /// Watches a canary until it is promoted or rolled back.
    async fn watch_canary(self: Arc<Self>, stem: String, canary: Arc<Canary>) {
        let on_trial = |catalog: &Catalog| {
            catalog.slot(&stem).and_then(|s| s.canary.clone()).is_some_and(|c| Arc::ptr_eq(&c, &canary))
        };
        let verdict = loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if !on_trial(&self.catalog()) {
                return;
            }
            if let Some(verdict) = canary.verdict() {
                break verdict;
            }
        };
        let _publishing = self.publishing.lock().await;
        let current = self.catalog();
        let Some(slot) = current.slot(&stem).cloned().filter(|_| on_trial(&current)) else { return };
        let (requests, errors) = canary.counts();
        let plugin = canary.mounted.plugin.name();
        let (next, outcome) = match verdict {
            Verdict::Promote => {
                self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.clone(), slot.mounted.clone());
                tracing::info!(plugin, requests, errors, "canary promoted");
                (Slot::new(&stem, canary.mounted.clone()), "canary_promoted")
            }
            Verdict::RollBack => {
                tracing::warn!(plugin, requests, errors, "canary rolled back: error rate over the limit");
                if let Err(error) = self.versions.restore(slot.mounted.plugin.content_hash(), &self.dir, &stem) {
                    tracing::warn!(plugin, "the plugins folder still holds the failed version: {error}");
                }
                (Slot::new(&stem, slot.mounted.clone()), "canary_rolled_back")
            }
        };
        let (catalog, _) =
            Catalog::build(current.others(&stem).chain([next]).collect(), current.failures_without(&stem));
        self.publish(catalog);
        // Counted once every request goes to the version the verdict chose.
        self.metrics.swap(outcome);
    }
}
