//! The fleet: plugins across a cluster's nodes. A deploy stores the
//! component once in the object store under its content hash and writes
//! the plugin's desired state (a [`record::Desired`]) expecting the
//! revision it read, so racing deploys conflict; every node follows the
//! desired state (fetching, verifying the hash, validating and swapping
//! off the request path), reports what it actually runs, and one node —
//! the holder of the `rollouts` lease — drives each rollout: the canary on
//! every node judged on all nodes' counts, then wave by wave, and back to
//! the previous version everywhere on a breach.
//!
//! - `record`: the desired state and what it asks of one node.
//! - `report`: what nodes report of their plugins.
//! - `follow`: a node following the desired state ([`Fleet::follow`]).
//! - `publish`: deploys, rollbacks, aborts and removals ([`FleetError`]);
//!   seeding an empty cluster from a plugins folder.
//! - `drive`: the rollout driver and its decisions.
//! - `status`: `GET /cluster/plugins`.

mod drive;
mod follow;
pub mod publish;
pub mod record;
pub mod report;
mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use corral_cluster::Cluster;

pub use publish::{Accepted, DeployRequest, FleetError, PolicyFlags};
use report::Refusal;

use crate::plugins::mounted::valid_stem as valid_plugin_name;
use crate::plugins::{DeployError, Registry};

/// This node's part in the fleet.
pub struct Fleet {
    cluster: Cluster,
    registry: Arc<Registry>,
    /// `DATA/artifacts`: components by hash, sidecars by digest.
    cache: PathBuf,
    /// Per plugin: the desired revision applied last and a version refused.
    applied: Mutex<BTreeMap<String, (u64, Option<Refusal>)>>,
    /// What was last installed per plugin (so an unchanged assignment is
    /// not installed again), by a key of hashes, percent and trial.
    installed: Mutex<BTreeMap<String, String>>,
}

impl Fleet {
    /// The fleet of `cluster`, serving through `registry`, caching
    /// artifacts under `data_dir`.
    pub fn new(cluster: Cluster, registry: Arc<Registry>, data_dir: &Path) -> anyhow::Result<Fleet> {
        let cache = data_dir.join("artifacts");
        std::fs::create_dir_all(&cache)
            .map_err(|e| anyhow::anyhow!("creating the artifact cache {}: {e}", cache.display()))?;
        Ok(Fleet { cluster, registry, cache, applied: Mutex::default(), installed: Mutex::default() })
    }

    /// This node's id.
    fn node(&self) -> &str {
        &self.cluster.options().node_id
    }

    /// What this node reports of its plugins with its heartbeat.
    pub fn reports(&self) -> serde_json::Value {
        let applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner).clone();
        serde_json::to_value(report::of(&self.registry.catalog(), &applied)).unwrap_or_default()
    }

    /// Whether a canary of a cluster rollout is on trial here (its counts
    /// are then reported more often).
    pub fn on_trial(&self) -> bool {
        self.registry.catalog().slots.iter().any(|slot| slot.canary.as_ref().is_some_and(|c| c.trial().is_some()))
    }

    /// Changes whenever what this node serves does.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.registry.changes()
    }

    /// The sidecar file of `plugin` with `text` in the cache (written once,
    /// named by its digest); with no text, a path where none is.
    fn sidecar_file(&self, plugin: &str, text: Option<&str>) -> Result<PathBuf, DeployError> {
        let sidecars = self.cache.join("sidecars");
        let Some(text) = text else { return Ok(sidecars.join("none").join(format!("{plugin}.toml"))) };
        let digest = blake3::hash(text.as_bytes()).to_hex();
        let path = sidecars.join(&digest[..32]).join(format!("{plugin}.toml"));
        if !path.is_file() {
            follow::write_atomically(&path, text.as_bytes())?;
        }
        Ok(path)
    }

    fn applied(&self, plugin: &str, revision: u64, refused: Option<Refusal>) {
        self.applied.lock().unwrap_or_else(PoisonError::into_inner).insert(plugin.to_string(), (revision, refused));
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
