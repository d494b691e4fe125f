//! Hot swap: the [`Registry`] owns the served [`Catalog`] and changes it
//! while the host runs. A new version is loaded (compiled or taken from the
//! cache), linked and validated — `describe()`, route conflicts, sidecar —
//! off the request path; only then is a new catalog swapped in atomically.
//! Calls already running finish on the version they started with. A version
//! that fails any step is rejected, recorded (`GET /plugins`), counted, and
//! the old one keeps serving. The previous version of each plugin is kept
//! for rollback.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use corral_runtime::{Runtime, World};
use tokio::sync::watch;

use crate::canary::{Canary, Verdict};
use crate::metrics::Metrics;
use crate::plugins::{self, Catalog, Failure, Mounted, Slot};

/// The served plugins, swappable.
pub(crate) struct Registry {
    runtime: Runtime,
    dir: PathBuf,
    /// Content-addressed copies of every version served, for rollback.
    versions: PathBuf,
    metrics: Arc<Metrics>,
    current: ArcSwap<Catalog>,
    /// Serialises changes; readers never wait on it.
    changing: tokio::sync::Mutex<()>,
    previous: Mutex<HashMap<String, Arc<Mounted>>>,
    generation: watch::Sender<u64>,
}

/// What became of a deployment.
pub(crate) enum Deployed {
    /// The new version serves all traffic.
    Swapped(Arc<Mounted>),
    /// The new version serves a share of the traffic for a window.
    Canary(Arc<Mounted>),
    /// Nothing changed (same component and sidecar).
    Unchanged(Arc<Mounted>),
}

impl Registry {
    /// Loads every component in `dir`.
    pub(crate) async fn open(
        runtime: Runtime,
        dir: &Path,
        data_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Registry>> {
        let versions = data_dir.join("versions");
        std::fs::create_dir_all(&versions).with_context(|| format!("creating {}", versions.display()))?;
        let mut slots = Vec::new();
        let mut failures = Vec::new();
        for stem in plugins::stems(dir)? {
            let file = dir.join(format!("{stem}.wasm"));
            match plugins::load(&runtime, &file, None, &metrics).await {
                Ok(mounted) => {
                    keep_version(&versions, &mounted);
                    slots.push(Slot { stem, mounted: Arc::new(mounted), canary: None });
                }
                Err(error) => {
                    let error = format!("{error:#}");
                    tracing::error!(file = %file.display(), "plugin skipped: {error}");
                    failures.push(Failure { file, error });
                }
            }
        }
        let (catalog, rejected) = Catalog::build(slots, failures);
        for (stem, error) in rejected {
            tracing::error!(plugin = %stem, "plugin skipped: {error}");
        }
        let (generation, _) = watch::channel(0);
        Ok(Arc::new(Registry {
            runtime,
            dir: dir.to_path_buf(),
            versions,
            metrics,
            current: ArcSwap::from_pointee(catalog),
            changing: tokio::sync::Mutex::new(()),
            previous: Mutex::new(HashMap::new()),
            generation,
        }))
    }

    /// The catalog now.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.current.load_full()
    }

    /// The plugins folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Changes whenever the catalog does.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn publish(&self, catalog: Catalog) {
        self.current.store(Arc::new(catalog));
        self.generation.send_modify(|g| *g += 1);
    }

    /// Re-reads `NAME.wasm` (and `NAME.toml`): deploys it if present,
    /// unloads the plugin if the file is gone.
    pub(crate) async fn sync(self: &Arc<Self>, stem: &str) -> Result<Option<Deployed>, String> {
        let file = self.dir.join(format!("{stem}.wasm"));
        if !file.is_file() {
            self.remove(stem).await;
            return Ok(None);
        }
        self.deploy(stem, &file, None).await.map(Some)
    }

    /// Loads and validates a new version off the request path, then swaps
    /// it in (or starts it as a canary). `sidecar` defaults to the file's.
    pub(crate) async fn deploy(
        self: &Arc<Self>,
        stem: &str,
        file: &Path,
        sidecar: Option<&Path>,
    ) -> Result<Deployed, String> {
        if let Some(same) = self.unchanged(stem, file, sidecar) {
            return Ok(Deployed::Unchanged(same));
        }
        let loaded = plugins::load(&self.runtime, file, sidecar, &self.metrics).await.map_err(|e| format!("{e:#}"));
        let _changing = self.changing.lock().await;
        let current = self.catalog();
        let mounted = match loaded {
            Ok(mounted) => Arc::new(mounted),
            Err(error) => return Err(self.reject(&current, stem, file, error)),
        };
        let existing = current.slot(stem).cloned();
        if let Some(slot) = &existing {
            let same = |other: &Mounted| {
                other.plugin.content_hash() == mounted.plugin.content_hash() && other.sidecar == mounted.sidecar
            };
            if same(&slot.mounted) || slot.canary.as_ref().is_some_and(|c| same(&c.mounted)) {
                return Ok(Deployed::Unchanged(slot.mounted.clone()));
            }
        }
        let canary = match (&existing, mounted.canary) {
            (Some(slot), Some(policy))
                if mounted.plugin.world() == World::Route && slot.mounted.plugin.world() == World::Route =>
            {
                Some(Arc::new(Canary::new(mounted.clone(), policy)))
            }
            _ => None,
        };
        let candidate = match (&existing, &canary) {
            (Some(slot), Some(canary)) => {
                Slot { stem: stem.into(), mounted: slot.mounted.clone(), canary: Some(canary.clone()) }
            }
            _ => Slot { stem: stem.into(), mounted: mounted.clone(), canary: None },
        };
        // The canary must also fit beside everything else.
        let probe = Slot { stem: stem.into(), mounted: mounted.clone(), canary: None };
        let (_, rejected) = Catalog::build(others(&current, stem).chain([probe]).collect(), Vec::new());
        if let Some((_, error)) = rejected.into_iter().next() {
            return Err(self.reject(&current, stem, file, error));
        }
        let (catalog, _) =
            Catalog::build(others(&current, stem).chain([candidate]).collect(), failures_without(&current, stem));
        keep_version(&self.versions, &mounted);
        self.publish(catalog);
        if let Some(canary) = canary {
            self.metrics.swap("canary");
            tracing::info!(
                plugin = mounted.plugin.name(),
                version = mounted.plugin.version(),
                percent = canary.policy.percent,
                "canary started"
            );
            tokio::spawn(self.clone().watch_canary(stem.to_string(), canary));
            return Ok(Deployed::Canary(mounted));
        }
        if let Some(slot) = existing {
            self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.to_string(), slot.mounted);
        }
        self.metrics.swap("swapped");
        tracing::info!(
            plugin = mounted.plugin.name(),
            version = mounted.plugin.version(),
            hash = mounted.plugin.content_hash(),
            "plugin swapped in"
        );
        Ok(Deployed::Swapped(mounted))
    }

    /// Checks that `file` (with `sidecar`) would deploy as plugin `stem` —
    /// it loads, describes itself, and fits beside the others — without
    /// changing anything. Uploads are checked before they reach the folder.
    pub(crate) async fn validate(&self, stem: &str, file: &Path, sidecar: &Path) -> Result<(), String> {
        let mounted =
            plugins::load(&self.runtime, file, Some(sidecar), &self.metrics).await.map_err(|e| format!("{e:#}"))?;
        let current = self.catalog();
        let probe = Slot { stem: stem.into(), mounted: Arc::new(mounted), canary: None };
        let (_, rejected) = Catalog::build(others(&current, stem).chain([probe]).collect(), Vec::new());
        match rejected.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// The served version, if `file` and its sidecar are exactly what it was
    /// loaded from: checked by hash, without compiling anything.
    fn unchanged(&self, stem: &str, file: &Path, sidecar: Option<&Path>) -> Option<Arc<Mounted>> {
        let catalog = self.catalog();
        let slot = catalog.slot(stem)?;
        let bytes = std::fs::read(file).ok()?;
        let hash = blake3::hash(&bytes).to_hex().to_string();
        let sidecar_path = sidecar.map(Path::to_path_buf).unwrap_or_else(|| crate::sidecar::Sidecar::path_for(file));
        let sidecar = crate::sidecar::Sidecar::load(&sidecar_path).ok()?;
        let same = |m: &Mounted| m.plugin.content_hash() == hash && m.sidecar == sidecar;
        (same(&slot.mounted) || slot.canary.as_ref().is_some_and(|c| same(&c.mounted))).then(|| slot.mounted.clone())
    }

    /// Syncs every plugin file with what is served: catches changes made
    /// between loading and the watcher starting.
    pub(crate) async fn rescan(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut stems = plugins::stems(&self.dir)?;
        stems.extend(self.catalog().slots.iter().map(|s| s.stem.clone()));
        stems.sort();
        stems.dedup();
        for stem in stems {
            if let Err(error) = self.sync(&stem).await {
                tracing::warn!(plugin = %stem, "{error}");
            }
        }
        Ok(())
    }

    /// Records a rejected version; the old one keeps serving.
    fn reject(&self, current: &Catalog, stem: &str, file: &Path, error: String) -> String {
        self.metrics.swap("rejected");
        tracing::error!(file = %file.display(), "new version rejected, the previous one keeps serving: {error}");
        let mut failures = failures_without(current, stem);
        failures.push(Failure { file: file.to_path_buf(), error: error.clone() });
        let (catalog, _) = Catalog::build(current.slots.clone(), failures);
        self.publish(catalog);
        error
    }

    /// Unloads a plugin: new calls get 404, running calls finish.
    pub(crate) async fn remove(&self, stem: &str) -> bool {
        let _changing = self.changing.lock().await;
        let current = self.catalog();
        let Some(slot) = current.slot(stem).cloned() else {
            if current.failures.iter().any(|f| f.file.file_stem().is_some_and(|s| s == stem)) {
                let (catalog, _) = Catalog::build(current.slots.clone(), failures_without(&current, stem));
                self.publish(catalog);
            }
            return false;
        };
        let (catalog, _) = Catalog::build(others(&current, stem).collect(), failures_without(&current, stem));
        self.publish(catalog);
        self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.to_string(), slot.mounted.clone());
        self.metrics.swap("removed");
        tracing::info!(plugin = slot.mounted.plugin.name(), "plugin unloaded");
        true
    }

    /// Swaps the previous version back in, and puts its component back in
    /// the plugins folder so a restart keeps it.
    pub(crate) async fn rollback(&self, stem: &str) -> Result<Arc<Mounted>, String> {
        let _changing = self.changing.lock().await;
        let current = self.catalog();
        let previous = self
            .previous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(stem)
            .ok_or_else(|| format!("plugin {stem} has no previous version to roll back to"))?;
        let restored = Slot { stem: stem.into(), mounted: previous.clone(), canary: None };
        let (catalog, rejected) =
            Catalog::build(others(&current, stem).chain([restored]).collect(), failures_without(&current, stem));
        if let Some((_, error)) = rejected.into_iter().next() {
            return Err(error);
        }
        if let Err(error) = self.restore_file(stem, &previous) {
            tracing::warn!(plugin = %stem, "rolled back in memory, but the plugins folder was not updated: {error:#}");
        }
        if let Some(slot) = current.slot(stem) {
            self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.to_string(), slot.mounted.clone());
        }
        self.publish(catalog);
        self.metrics.swap("rolled_back");
        tracing::info!(plugin = previous.plugin.name(), version = previous.plugin.version(), "rolled back");
        Ok(previous)
    }

    fn restore_file(&self, stem: &str, mounted: &Mounted) -> anyhow::Result<()> {
        let kept = self.versions.join(format!("{}.wasm", mounted.plugin.content_hash()));
        let staged = self.dir.join(format!(".{stem}.wasm.rollback"));
        std::fs::copy(&kept, &staged).with_context(|| format!("copying {}", kept.display()))?;
        std::fs::rename(&staged, self.dir.join(format!("{stem}.wasm"))).context("renaming into the plugins folder")?;
        Ok(())
    }

    /// Watches a canary until it is promoted or rolled back.
    async fn watch_canary(self: Arc<Self>, stem: String, canary: Arc<Canary>) {
        let verdict = loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let still_running =
                self.catalog().slot(&stem).and_then(|s| s.canary.clone()).is_some_and(|c| Arc::ptr_eq(&c, &canary));
            if !still_running {
                return;
            }
            if let Some(verdict) = canary.verdict() {
                break verdict;
            }
        };
        let _changing = self.changing.lock().await;
        let current = self.catalog();
        let Some(slot) = current.slot(&stem).cloned() else { return };
        if !slot.canary.as_ref().is_some_and(|c| Arc::ptr_eq(c, &canary)) {
            return;
        }
        let (requests, errors) = canary.counts();
        let plugin = canary.mounted.plugin.name();
        let (next, outcome) = match verdict {
            Verdict::Promote => {
                self.previous.lock().unwrap_or_else(PoisonError::into_inner).insert(stem.clone(), slot.mounted.clone());
                tracing::info!(plugin, requests, errors, "canary promoted");
                (Slot { stem: stem.clone(), mounted: canary.mounted.clone(), canary: None }, "canary_promoted")
            }
            Verdict::RollBack => {
                tracing::warn!(plugin, requests, errors, "canary rolled back: error rate over the limit");
                if let Err(error) = self.restore_file(&stem, &slot.mounted) {
                    tracing::warn!(plugin, "the plugins folder still holds the failed version: {error:#}");
                }
                (Slot { stem: stem.clone(), mounted: slot.mounted.clone(), canary: None }, "canary_rolled_back")
            }
        };
        let (catalog, _) =
            Catalog::build(others(&current, &stem).chain([next]).collect(), failures_without(&current, &stem));
        self.publish(catalog);
        // Counted once every request goes to the version the verdict chose.
        self.metrics.swap(outcome);
    }
}

fn others<'a>(catalog: &'a Catalog, stem: &'a str) -> impl Iterator<Item = Slot> + 'a {
    catalog.slots.iter().filter(move |s| s.stem != stem).cloned()
}

fn failures_without(catalog: &Catalog, stem: &str) -> Vec<Failure> {
    catalog.failures.iter().filter(|f| f.file.file_stem().is_none_or(|s| s != stem)).cloned().collect()
}

/// Keeps a copy of the component, named by content hash, for rollback. The
/// file may have been replaced since it was loaded, so the copy is checked.
fn keep_version(versions: &Path, mounted: &Mounted) {
    let hash = mounted.plugin.content_hash();
    let kept = versions.join(format!("{hash}.wasm"));
    if kept.is_file() {
        return;
    }
    let staged = versions.join(format!(".{hash}.partial"));
    let copied = std::fs::copy(mounted.plugin.path(), &staged)
        .and_then(|_| std::fs::read(&staged))
        .map(|bytes| blake3::hash(&bytes).to_hex().to_string() == hash);
    match copied {
        Ok(true) => {
            if let Err(error) = std::fs::rename(&staged, &kept) {
                tracing::warn!(plugin = mounted.plugin.name(), "cannot keep a copy for rollback: {error}");
            }
        }
        Ok(false) => {
            let _ = std::fs::remove_file(&staged);
            tracing::warn!(plugin = mounted.plugin.name(), "the file changed before a copy was kept; no rollback copy");
        }
        Err(error) => tracing::warn!(plugin = mounted.plugin.name(), "cannot keep a copy for rollback: {error}"),
    }
}
