//! Changing the desired state: deploys, rollbacks, aborts and removals,
//! each written expecting the revision it was computed from, so a change
//! that raced another fails with [`FleetError::Conflict`] naming the
//! revisions instead of overwriting it; and seeding an empty cluster from
//! a plugins folder.

use std::path::Path;
use std::time::Duration;

use corral_cluster::ClusterError;
use corral_runtime::World;

use super::follow::write_atomically;
use super::record::{Desired, Phase, Policy, Rollout, Version, plan};
use super::{Fleet, now_ms};
use crate::plugins::DeployError;
use crate::plugins::install::Wanted;
use crate::plugins::mounted::stems;
use crate::plugins::sidecar::{Sidecar, parse_duration};

/// The canary window when neither the sidecar nor the deploy sets one.
const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
/// The canary's error limit when neither the sidecar nor the deploy sets one.
const DEFAULT_MAX_ERROR_RATE: f64 = 0.05;
/// Most waves a rollout may have.
const MAX_WAVES: u32 = 100;

/// A component deployed to the cluster.
pub struct DeployRequest {
    /// The plugin (file stem) it is deployed as.
    pub plugin: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// The sidecar's text; `None` keeps the sidecar of the version it replaces.
    pub sidecar: Option<String>,
    /// Rollout settings given with the deploy (they win over the sidecar's).
    pub flags: PolicyFlags,
    /// Refuse unless the plugin's desired state is at this revision.
    pub expect_revision: Option<u64>,
}

/// Rollout settings of `host deploy` (`--waves`, `--canary`, `--window`,
/// `--max-error-rate`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyFlags {
    /// Waves.
    pub waves: Option<u32>,
    /// Canary percent.
    pub canary: Option<u8>,
    /// Canary window.
    pub window: Option<Duration>,
    /// Canary error limit.
    pub max_error_rate: Option<f64>,
    /// Pause between waves.
    pub pause: Option<Duration>,
}

/// Why the desired state was not changed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The component (or its sidecar, or a setting) cannot serve.
    #[error(transparent)]
    Rejected(DeployError),
    /// Another change got there first, or a rollout is in progress.
    #[error("plugin {plugin}: {message}")]
    Conflict {
        /// The plugin.
        plugin: String,
        /// The desired state's revision now.
        revision: u64,
        /// What happened, and what to do.
        message: String,
    },
    /// The plugin has no desired state in the cluster.
    #[error("plugin {plugin} is not deployed to this cluster")]
    NotFound {
        /// The plugin.
        plugin: String,
    },
    /// There is nothing to roll back to, or no rollout to abort.
    #[error("plugin {plugin}: {reason}")]
    Nothing {
        /// The plugin.
        plugin: String,
        /// What is missing.
        reason: String,
    },
    /// NATS could not be reached: nothing was changed, try again.
    #[error(transparent)]
    Unavailable(ClusterError),
}

impl FleetError {
    /// A short stable label for JSON bodies.
    pub fn label(&self) -> &'static str {
        match self {
            FleetError::Rejected(error) => error.label(),
            FleetError::Conflict { .. } => "conflict",
            FleetError::NotFound { .. } => "not_found",
            FleetError::Nothing { .. } => "nothing_to_do",
            FleetError::Unavailable(_) => "unavailable",
        }
    }
}

/// A change written to the desired state.
pub struct Accepted {
    /// Its revision.
    pub revision: u64,
    /// The state now.
    pub desired: Desired,
    /// True when the deploy asked for what was already desired (nothing written).
    pub unchanged: bool,
}

impl Fleet {
    /// Validates a component on this node, stores it in the object store
    /// and records it as the plugin's desired version, with a rollout over
    /// the version it replaces.
    pub async fn deploy(&self, request: DeployRequest) -> Result<Accepted, FleetError> {
        let plugin = request.plugin.as_str();
        let (existing, revision) = self.current(plugin).await?;
        if let Some(expected) = request.expect_revision
            && expected != revision
        {
            let message = format!("its desired state is at revision {revision}, not the expected {expected}");
            return Err(FleetError::Conflict { plugin: plugin.to_string(), revision, message });
        }
        if let Some(existing) = existing.as_ref().filter(|d| d.in_progress()) {
            let message = format!(
                "a rollout to {} is in progress (revision {revision}): wait for it to finish, or stop it with `host rollout abort {plugin}`",
                existing.target.hash
            );
            return Err(FleetError::Conflict { plugin: plugin.to_string(), revision, message });
        }
        let sidecar = request.sidecar.clone().or_else(|| existing.as_ref().and_then(|d| d.target.sidecar.clone()));
        let hash = corral_runtime::content_hash(&request.bytes);
        let component = self.cache.join(&hash).join(format!("{plugin}.wasm"));
        if !component.is_file() {
            write_atomically(&component, &request.bytes).map_err(FleetError::Rejected)?;
        }
        let sidecar_path = self.sidecar_file(plugin, sidecar.as_deref()).map_err(FleetError::Rejected)?;
        let wanted = Wanted { component, hash: hash.clone(), sidecar: sidecar_path.clone() };
        let mounted = self.registry.validate(plugin, &wanted).await.map_err(FleetError::Rejected)?;
        let world = mounted.plugin.world();
        let target = Version {
            hash: hash.clone(),
            size: request.bytes.len() as u64,
            sidecar,
            version: mounted.plugin.version().to_string(),
            world: world.name().to_string(),
        };
        if let Some(existing) =
            existing.as_ref().filter(|d| d.target.hash == target.hash && d.target.sidecar == target.sidecar)
        {
            return Ok(Accepted { revision, desired: existing.clone(), unchanged: true });
        }
        let policy = policy(&request.flags, &mounted.sidecar)
            .map_err(|reason| FleetError::Rejected(DeployError::Sidecar { path: sidecar_path.clone(), reason }))?;
        self.cluster.artifacts().put(&hash, &request.bytes).await.map_err(FleetError::Unavailable)?;
        let now = now_ms();
        let previous = existing.map(|d| d.target);
        let rollout = match &previous {
            None => None,
            Some(previous) => {
                let canary =
                    policy.canary_percent > 0 && world == World::Route && previous.world == World::Route.name();
                let policy = Policy { canary_percent: if canary { policy.canary_percent } else { 0 }, ..policy };
                let (phase, plan) = if canary {
                    (Phase::Canary { since_ms: None }, Vec::new())
                } else {
                    (Phase::Waves { switched: 1, since_ms: None }, plan(self.live_nodes().await?, policy.waves))
                };
                let id = format!("{:016x}", rand::random::<u64>());
                Some(Rollout { id, policy, phase, plan, started_ms: now, updated_ms: now })
            }
        };
        let desired = Desired { target, previous, rollout, deployed_by: self.node().to_string(), deployed_ms: now };
        let revision = self.write(plugin, &desired, revision).await?;
        tracing::info!(plugin, revision, hash, "deployed to the cluster");
        Ok(Accepted { revision, desired, unchanged: false })
    }

    /// Sends every node back to the plugin's previous version.
    pub async fn rollback(&self, plugin: &str) -> Result<Accepted, FleetError> {
        let (existing, revision) = self.current(plugin).await?;
        let existing = existing.ok_or_else(|| FleetError::NotFound { plugin: plugin.to_string() })?;
        let phase = Phase::RolledBack { reason: "rolled back by an operator".into() };
        let desired = existing.rolled_back(phase, now_ms()).ok_or_else(|| FleetError::Nothing {
            plugin: plugin.to_string(),
            reason: "it has no previous version to roll back to".into(),
        })?;
        let revision = self.write(plugin, &desired, revision).await?;
        tracing::warn!(plugin, revision, hash = desired.target.hash, "rolled back by an operator");
        Ok(Accepted { revision, desired, unchanged: false })
    }

    /// Stops the rollout in progress: every node runs the previous version.
    pub async fn abort(&self, plugin: &str) -> Result<Accepted, FleetError> {
        let (existing, revision) = self.current(plugin).await?;
        let existing = existing.ok_or_else(|| FleetError::NotFound { plugin: plugin.to_string() })?;
        let nothing = || FleetError::Nothing { plugin: plugin.to_string(), reason: "no rollout is in progress".into() };
        if !existing.in_progress() {
            return Err(nothing());
        }
        let phase = Phase::Aborted { reason: "aborted by an operator".into() };
        let desired = existing.rolled_back(phase, now_ms()).ok_or_else(nothing)?;
        let revision = self.write(plugin, &desired, revision).await?;
        tracing::warn!(plugin, revision, hash = desired.target.hash, "rollout aborted by an operator");
        Ok(Accepted { revision, desired, unchanged: false })
    }

    /// Removes the plugin from the desired state: every node unloads it.
    pub async fn remove(&self, plugin: &str) -> Result<u64, FleetError> {
        let (existing, revision) = self.current(plugin).await?;
        if existing.is_none() {
            return Err(FleetError::NotFound { plugin: plugin.to_string() });
        }
        match self.cluster.desired().remove(plugin, revision).await {
            Ok(()) => Ok(revision),
            Err(ClusterError::Fenced { .. }) => Err(self.conflict(plugin, revision).await),
            Err(error) => Err(FleetError::Unavailable(error)),
        }
    }

    /// Publishes the components of `dir` (with their sidecars) as the
    /// desired state if the cluster has none; otherwise leaves the cluster
    /// as it is. Says which in the log.
    pub async fn seed(&self, dir: &Path) -> anyhow::Result<()> {
        let existing = self.cluster.desired().all().await?;
        if !existing.is_empty() {
            let folder = dir.display();
            tracing::info!(plugins = existing.len(), %folder, "following the cluster's desired state; the plugins folder is not read");
            return Ok(());
        }
        let stems = stems(dir)?;
        tracing::info!(components = stems.len(), folder = %dir.display(), "the cluster has no plugins yet: publishing the plugins folder as its desired state");
        for stem in stems {
            let file = dir.join(format!("{stem}.wasm"));
            if let Err(error) = self.seed_one(&stem, &file).await {
                tracing::error!(file = %file.display(), "not published to the cluster: {error}");
            }
        }
        Ok(())
    }

    async fn seed_one(&self, stem: &str, file: &Path) -> Result<(), FleetError> {
        let bytes = std::fs::read(file).map_err(|e| FleetError::Rejected(DeployError::storage(file, e)))?;
        let sidecar_path = Sidecar::path_for(file);
        let sidecar = match std::fs::read_to_string(&sidecar_path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(FleetError::Rejected(DeployError::storage(&sidecar_path, error))),
        };
        let hash = corral_runtime::content_hash(&bytes);
        let wanted = Wanted { component: file.to_path_buf(), hash: hash.clone(), sidecar: sidecar_path };
        let mounted = self.registry.validate(stem, &wanted).await.map_err(FleetError::Rejected)?;
        self.cluster.artifacts().put(&hash, &bytes).await.map_err(FleetError::Unavailable)?;
        let target = Version {
            hash,
            size: bytes.len() as u64,
            sidecar,
            version: mounted.plugin.version().to_string(),
            world: mounted.plugin.world().name().to_string(),
        };
        let desired = Desired {
            target,
            previous: None,
            rollout: None,
            deployed_by: self.node().to_string(),
            deployed_ms: now_ms(),
        };
        match self.write(stem, &desired, 0).await {
            Ok(revision) => tracing::info!(plugin = stem, revision, "published to the cluster"),
            Err(FleetError::Conflict { .. }) => tracing::info!(plugin = stem, "another node published it first"),
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// The plugin's desired state (if any, and readable) and its revision.
    pub(super) async fn current(&self, plugin: &str) -> Result<(Option<Desired>, u64), FleetError> {
        let entry = self.cluster.desired().get(plugin).await.map_err(FleetError::Unavailable)?;
        let existing = entry.value.as_deref().and_then(|value| {
            Desired::decode(value)
                .inspect_err(|error| tracing::warn!(plugin, revision = entry.revision, "{error}; it will be replaced"))
                .ok()
        });
        Ok((existing, entry.revision))
    }

    /// Writes `desired` expecting `expected`.
    pub(super) async fn write(&self, plugin: &str, desired: &Desired, expected: u64) -> Result<u64, FleetError> {
        match self.cluster.desired().write(plugin, &desired.encode(), expected).await {
            Ok(revision) => Ok(revision),
            Err(ClusterError::Fenced { .. }) => Err(self.conflict(plugin, expected).await),
            Err(error) => Err(FleetError::Unavailable(error)),
        }
    }

    /// The conflict of a write that expected `expected`, naming what won.
    async fn conflict(&self, plugin: &str, expected: u64) -> FleetError {
        let (now, revision) = self.current(plugin).await.unwrap_or((None, expected));
        let winner = now.map_or_else(
            || "it was removed".to_string(),
            |d| format!("now {} deployed by {}", d.target.hash, d.deployed_by),
        );
        let message = format!(
            "its desired state moved past revision {expected} while this change was prepared (revision {revision}: {winner}); \
             another deploy or rollout step won: check `host rollout status {plugin}`, then try again if it is still wanted"
        );
        FleetError::Conflict { plugin: plugin.to_string(), revision, message }
    }

    /// The live members' node ids (this node's at least).
    pub(super) async fn live_nodes(&self) -> Result<Vec<String>, FleetError> {
        let members = self.cluster.members().list().await.map_err(FleetError::Unavailable)?;
        let mut nodes: Vec<String> = members.into_iter().map(|m| m.node_id).collect();
        if !nodes.iter().any(|n| n == self.node()) {
            nodes.push(self.node().to_string());
        }
        Ok(nodes)
    }
}

/// The rollout policy: the deploy's flags, else the sidecar's `[rollout]`,
/// else its `canary`, else one wave and no canary.
fn policy(flags: &PolicyFlags, sidecar: &Sidecar) -> Result<Policy, String> {
    let section = sidecar.rollout.clone().unwrap_or_default();
    let canary = sidecar.canary.as_ref();
    let waves = flags.waves.or(section.waves).unwrap_or(1);
    let percent = flags.canary.or(section.canary).or(canary.map(|c| c.percent)).unwrap_or(0);
    let window = match (flags.window, section.window.as_deref().or(canary.map(|c| c.window.as_str()))) {
        (Some(window), _) => window,
        (None, Some(text)) => parse_duration(text).map_err(|e| format!("rollout.window: {e}"))?,
        (None, None) => DEFAULT_WINDOW,
    };
    let pause = match (flags.pause, section.pause.as_deref()) {
        (Some(pause), _) => pause,
        (None, Some(text)) => parse_duration(text).map_err(|e| format!("rollout.pause: {e}"))?,
        (None, None) => Duration::ZERO,
    };
    let max_error_rate = flags
        .max_error_rate
        .or(section.max_error_rate)
        .or(canary.map(|c| c.max_error_rate))
        .unwrap_or(DEFAULT_MAX_ERROR_RATE);
    if !(1..=MAX_WAVES).contains(&waves) {
        return Err(format!("rollout.waves must be 1 to {MAX_WAVES}, got {waves}"));
    }
    if percent > 100 {
        return Err(format!("rollout.canary must be 0 to 100 (percent), got {percent}"));
    }
    if !(0.0..=1.0).contains(&max_error_rate) {
        return Err(format!("rollout.max_error_rate must be 0.0 to 1.0, got {max_error_rate}"));
    }
    let (window_ms, pause_ms) = (window.as_millis() as u64, pause.as_millis() as u64);
    Ok(Policy { waves, canary_percent: percent, window_ms, max_error_rate, pause_ms })
}
