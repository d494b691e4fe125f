//! `GET /cluster/plugins` (and `/cluster/plugins/NAME`, which `host
//! rollout status` shows): each plugin's desired state and rollout beside
//! what every live node reports it actually runs, whether each node has
//! converged on what it should run, and (for one plugin) the revisions the
//! deploys bucket keeps.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::record::{Desired, Version};
use super::report::{self, Report};
use super::{Fleet, FleetError};

impl Fleet {
    /// Every plugin's state across the cluster.
    pub async fn status(&self) -> Result<Value, FleetError> {
        let entries = self.cluster.desired().all().await.map_err(FleetError::Unavailable)?;
        let members = self.cluster.members().list().await.map_err(FleetError::Unavailable)?;
        let reports: Vec<(String, BTreeMap<String, Report>)> =
            members.iter().map(|m| (m.node_id.clone(), report::of_member(m))).collect();
        let plugins: Vec<Value> = entries
            .iter()
            .filter_map(|entry| {
                let desired = Desired::decode(entry.value.as_deref()?).ok()?;
                Some(plugin_status(&entry.plugin, entry.revision, &desired, &reports))
            })
            .collect();
        Ok(json!({ "node": self.node(), "plugins": plugins }))
    }

    /// One plugin's state across the cluster, with its history.
    pub async fn plugin_status(&self, plugin: &str) -> Result<Value, FleetError> {
        let (desired, revision) = self.current(plugin).await?;
        let desired = desired.ok_or_else(|| FleetError::NotFound { plugin: plugin.to_string() })?;
        let members = self.cluster.members().list().await.map_err(FleetError::Unavailable)?;
        let reports: Vec<(String, BTreeMap<String, Report>)> =
            members.iter().map(|m| (m.node_id.clone(), report::of_member(m))).collect();
        let mut status = plugin_status(plugin, revision, &desired, &reports);
        let history = self.cluster.desired().history(plugin).await.map_err(FleetError::Unavailable)?;
        status["history"] = history
            .iter()
            .map(|entry| match entry.value.as_deref().map(Desired::decode) {
                Some(Ok(past)) => json!({
                    "revision": entry.revision,
                    "hash": past.target.hash,
                    "version": past.target.version,
                    "phase": past.rollout.as_ref().map(|r| phase_name(&r.phase)),
                    "deployed_by": past.deployed_by,
                    "deployed_ms": past.deployed_ms,
                }),
                Some(Err(error)) => json!({"revision": entry.revision, "error": error}),
                None => json!({"revision": entry.revision, "removed": true}),
            })
            .collect();
        Ok(status)
    }
}

fn phase_name(phase: &super::record::Phase) -> &'static str {
    use super::record::Phase;
    match phase {
        Phase::Canary { .. } => "canary",
        Phase::Waves { .. } => "waves",
        Phase::Done => "done",
        Phase::RolledBack { .. } => "rolled_back",
        Phase::Aborted { .. } => "aborted",
    }
}

fn version(version: &Version) -> Value {
    json!({"hash": version.hash, "version": version.version, "world": version.world, "size": version.size,
        "sidecar": version.sidecar.is_some()})
}

/// A plugin's desired state beside each node's report.
fn plugin_status(
    plugin: &str,
    revision: u64,
    desired: &Desired,
    reports: &[(String, BTreeMap<String, Report>)],
) -> Value {
    let mut nodes = serde_json::Map::new();
    let mut converged = !desired.in_progress();
    for (node, plugins) in reports {
        let report = plugins.get(plugin).cloned().unwrap_or_default();
        let assigned = desired.assignment(node);
        let canary_ok = match (&assigned.canary, &report.canary) {
            (None, None) => true,
            (Some((version, _, trial)), Some(canary)) => canary.hash == version.hash && canary.trial == *trial,
            _ => false,
        };
        let node_converged = report.hash.as_deref() == Some(assigned.stable.hash.as_str()) && canary_ok;
        converged &= node_converged;
        let mut shown = serde_json::to_value(&report).unwrap_or_default();
        shown["converged"] = json!(node_converged);
        nodes.insert(node.clone(), shown);
    }
    let rollout = desired.rollout.as_ref().map(|rollout| {
        let mut shown = serde_json::to_value(rollout).unwrap_or_default();
        shown["in_progress"] = json!(desired.in_progress());
        shown
    });
    json!({
        "plugin": plugin,
        "revision": revision,
        "target": version(&desired.target),
        "previous": desired.previous.as_ref().map(version),
        "rollout": rollout,
        "deployed_by": desired.deployed_by,
        "deployed_ms": desired.deployed_ms,
        "nodes": nodes,
        "converged": converged,
    })
}
