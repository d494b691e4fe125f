//! A node following the desired state: it watches the deploys bucket and
//! applies each change, and — since a watch can miss changes around
//! reconnects — reconciles in full when it starts, after every reconnect
//! and every [`RECONCILE_EVERY`]. Applying a plugin's state means staging
//! the versions its [`Assignment`](super::record::Assignment) names in the
//! local artifact cache (fetched from the object store once, refused when
//! the bytes do not hash to what was recorded) and installing them in the
//! registry, off the request path.

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use corral_cluster::ClusterError;
use corral_cluster::desired::Entry;
use futures_util::StreamExt as _;
use tokio::sync::watch;

use super::record::{Desired, Version};
use super::report::Refusal;
use super::{Fleet, valid_plugin_name};
use crate::plugins::DeployError;
use crate::plugins::install::{Trial, Wanted};
use crate::shutdown::pause;

/// How often a node reads the whole desired state even without changes.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// Why a version could not be staged.
enum Unstaged {
    /// The version is at fault (not stored, corrupt): refused until the
    /// desired state changes.
    Refused(DeployError),
    /// NATS could not be read: tried again at the next reconcile.
    Unavailable(ClusterError),
}

impl Fleet {
    /// Follows the desired state until `stop`.
    pub async fn follow(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut connection = self.cluster.connection();
        loop {
            if let Err(error) = self.reconcile_all().await {
                tracing::warn!("reading the cluster's desired state failed (tried again shortly): {error}");
            }
            let changes = match self.cluster.desired().changes().await {
                Ok(changes) => changes,
                Err(error) => {
                    tracing::warn!("watching the cluster's desired state failed (tried again shortly): {error}");
                    if pause(&mut stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            let mut changes = std::pin::pin!(changes);
            let mut every = tokio::time::interval(RECONCILE_EVERY);
            every.tick().await;
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    change = changes.next() => match change {
                        Some(Ok(plugin)) => self.reconcile(&plugin).await,
                        Some(Err(error)) => {
                            tracing::warn!("the desired state's watch broke ({error}); watching again");
                            break;
                        }
                        None => break,
                    },
                    _ = every.tick() => {
                        if let Err(error) = self.reconcile_all().await {
                            tracing::warn!("reading the cluster's desired state failed: {error}");
                        }
                    }
                    changed = connection.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if *connection.borrow() {
                            tracing::info!("reconnected to NATS: reconciling the desired state in full");
                            break;
                        }
                    }
                }
            }
            if pause(&mut stop, Duration::from_millis(200)).await {
                return;
            }
        }
    }

    /// Applies every plugin's desired state and unloads the plugins that
    /// have none; returns how many plugins the cluster wants.
    pub async fn reconcile_all(&self) -> Result<usize, ClusterError> {
        let entries = self.cluster.desired().all().await?;
        for entry in &entries {
            self.apply(entry).await;
        }
        let wanted: BTreeSet<&str> = entries.iter().map(|e| e.plugin.as_str()).collect();
        let served: Vec<String> = self.registry.catalog().slots.iter().map(|s| s.stem.clone()).collect();
        for stem in served.iter().filter(|stem| !wanted.contains(stem.as_str())) {
            self.unload(stem).await;
        }
        Ok(entries.len())
    }

    async fn reconcile(&self, plugin: &str) {
        match self.cluster.desired().get(plugin).await {
            Ok(entry) => self.apply(&entry).await,
            Err(error) => {
                tracing::warn!(plugin, "reading the desired state failed (retried at the next reconcile): {error}")
            }
        }
    }

    /// Serves what `entry` asks of this node.
    async fn apply(&self, entry: &Entry) {
        let (plugin, revision) = (entry.plugin.as_str(), entry.revision);
        if !valid_plugin_name(plugin) {
            tracing::error!(plugin, revision, "ignoring a desired state whose plugin name is not a file name");
            return;
        }
        let Some(value) = &entry.value else {
            self.unload(plugin).await;
            return;
        };
        let desired = match Desired::decode(value) {
            Ok(desired) => desired,
            Err(error) => {
                tracing::error!(plugin, revision, "{error}; this node keeps serving what it serves");
                return;
            }
        };
        let assignment = desired.assignment(self.node());
        let key = match assignment.canary {
            Some((canary, percent, trial)) => {
                format!("{} {} {percent} {trial}", key_of(assignment.stable), key_of(canary))
            }
            None => key_of(assignment.stable),
        };
        let done = self.installed.lock().unwrap_or_else(PoisonError::into_inner).get(plugin) == Some(&key);
        if done {
            self.keep_refusal(plugin, revision);
            return;
        }
        let staged = match self.stage(plugin, assignment.stable).await {
            Ok(stable) => match assignment.canary {
                Some((canary, percent, id)) => self
                    .stage(plugin, canary)
                    .await
                    .map(|wanted| (stable, Some(Trial { wanted, percent, id: id.to_string() })))
                    .map_err(|e| (canary.hash.clone(), e)),
                None => Ok((stable, None)),
            },
            Err(error) => Err((assignment.stable.hash.clone(), error)),
        };
        let (stable, trial) = match staged {
            Ok(staged) => staged,
            Err((hash, Unstaged::Refused(error))) => return self.refuse(plugin, revision, key, hash, &error),
            Err((hash, Unstaged::Unavailable(error))) => {
                tracing::warn!(plugin, revision, hash, "fetching the component failed (retried shortly): {error}");
                return;
            }
        };
        match self.registry.install(plugin, &stable, trial.as_ref()).await {
            Ok(_) => {
                self.installed.lock().unwrap_or_else(PoisonError::into_inner).insert(plugin.to_string(), key);
                self.applied(plugin, revision, None);
            }
            Err(refused) => self.refuse(plugin, revision, key, refused.hash, &refused.error),
        }
    }

    /// Records a refused version (not tried again until the desired state
    /// changes, unless the host's own files failed).
    fn refuse(&self, plugin: &str, revision: u64, key: String, hash: String, error: &DeployError) {
        tracing::error!(plugin, revision, hash, cause = error.label(), "this node refuses the version: {error}");
        if error.is_rejection() {
            self.installed.lock().unwrap_or_else(PoisonError::into_inner).insert(plugin.to_string(), key);
        }
        let refusal = Refusal { hash, kind: error.label().to_string(), error: error.to_string() };
        self.applied(plugin, revision, Some(refusal));
    }

    /// A new revision that asks for what is installed: the refusal (if
    /// any) still stands.
    fn keep_refusal(&self, plugin: &str, revision: u64) {
        let refused = self.applied.lock().unwrap_or_else(PoisonError::into_inner).get(plugin).and_then(|a| a.1.clone());
        self.applied(plugin, revision, refused);
    }

    async fn unload(&self, plugin: &str) {
        if self.registry.unmount(plugin).await {
            tracing::info!(plugin, "removed from the cluster's desired state: unloaded");
        }
        self.installed.lock().unwrap_or_else(PoisonError::into_inner).remove(plugin);
        self.applied.lock().unwrap_or_else(PoisonError::into_inner).remove(plugin);
    }

    /// Puts `version` of `plugin` in the local cache (fetched once,
    /// checked against its hash) with its sidecar.
    async fn stage(&self, plugin: &str, version: &Version) -> Result<Wanted, Unstaged> {
        let file = self.cache.join(&version.hash).join(format!("{plugin}.wasm"));
        if !file.is_file() {
            let bytes = match self.cluster.artifacts().get(&version.hash).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    let reason = format!(
                        "artifact {} is not in the cluster's object store (deleted, or the deploy was written by hand): deploy the component again",
                        version.hash
                    );
                    return Err(Unstaged::Refused(DeployError::Storage { path: file, reason }));
                }
                Err(error) => return Err(Unstaged::Unavailable(error)),
            };
            let actual = corral_runtime::content_hash(&bytes);
            if actual != version.hash {
                return Err(Unstaged::Refused(DeployError::HashMismatch {
                    path: file,
                    expected: version.hash.clone(),
                    actual,
                }));
            }
            write_atomically(&file, &bytes).map_err(Unstaged::Refused)?;
        }
        let sidecar = self.sidecar_file(plugin, version.sidecar.as_deref()).map_err(Unstaged::Refused)?;
        Ok(Wanted { component: file, hash: version.hash.clone(), sidecar })
    }
}

/// What identifies a version as installed: its hash and its sidecar's.
fn key_of(version: &Version) -> String {
    let sidecar = version.sidecar.as_deref().map(|text| blake3::hash(text.as_bytes()).to_hex().to_string());
    format!("{}+{}", version.hash, sidecar.unwrap_or_default())
}

/// Writes `bytes` to `path` through a staging file and a rename.
pub(super) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), DeployError> {
    let dir = path.parent().unwrap_or(path);
    std::fs::create_dir_all(dir).map_err(|e| DeployError::storage(dir, e))?;
    let staged = path.with_extension("partial");
    let written = std::fs::write(&staged, bytes).and_then(|()| std::fs::rename(&staged, path));
    written.map_err(|error| {
        let _ = std::fs::remove_file(&staged);
        DeployError::storage(path, error)
    })
}
