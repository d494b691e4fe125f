//! A plugin's desired state in the cluster ([`Desired`]), as stored (JSON)
//! in the deploys bucket, and what it asks of one node ([`Assignment`]).
//!
//! The record names the version to run (`target`, by content hash, with its
//! sidecar), the version it replaced (`previous`, for canaries, waves and
//! rollback) and the rollout in progress. Every change of it is a new
//! revision written expecting the one it was computed from.

use serde::{Deserialize, Serialize};

/// One version of a plugin: a component by content hash and its sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// BLAKE3 of the component (hex): its name in the artifacts store.
    pub hash: String,
    /// The component's size in bytes.
    pub size: u64,
    /// The sidecar's text (`NAME.toml`), if it has one.
    pub sidecar: Option<String>,
    /// The version the component describes itself as.
    pub version: String,
    /// Its world (`route`, `event-handler`, …).
    pub world: String,
}

/// How a rollout proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Nodes switch to the new version in this many groups, one after the other.
    pub waves: u32,
    /// Share of every node's requests the new version gets first, for the
    /// window (0: no canary). Route plugins only.
    pub canary_percent: u8,
    /// How long the canary is judged, in milliseconds.
    pub window_ms: u64,
    /// Highest share of the canary's requests that may fail (5xx), summed
    /// over all nodes, before every node rolls back.
    pub max_error_rate: f64,
    /// How long a wave runs the new version before the next wave switches,
    /// in milliseconds (a bake time).
    #[serde(default)]
    pub pause_ms: u64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { waves: 1, canary_percent: 0, window_ms: 0, max_error_rate: 0.0, pause_ms: 0 }
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Every node sends a share of its requests to the new version. The
    /// window starts once every live node runs the canary (`since_ms`).
    Canary {
        /// When the last live node started the canary (ms since the epoch).
        since_ms: Option<u64>,
    },
    /// Wave by wave, nodes run the new version alone: those of the first
    /// `switched` waves of the plan do. The next wave switches once all of
    /// them report running it, and the policy's pause has passed.
    Waves {
        /// Waves told to run the new version.
        switched: usize,
        /// When all of them reported running it (ms since the epoch).
        #[serde(default)]
        since_ms: Option<u64>,
    },
    /// Every node runs the new version.
    Done,
    /// A breach (or an operator) sent every node back to the previous
    /// version, which is now the target.
    RolledBack {
        /// Why.
        reason: String,
    },
    /// An operator stopped the rollout; every node runs the previous
    /// version, which is now the target.
    Aborted {
        /// Who or what stopped it.
        reason: String,
    },
}

/// A rollout of `target` over `previous`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Tells this rollout's canary counts from another's.
    pub id: String,
    /// How it proceeds.
    pub policy: Policy,
    /// Where it is.
    #[serde(flatten)]
    pub phase: Phase,
    /// The waves, by node id, fixed when the waves start (the live nodes
    /// then); a node in none of them switches when the rollout is done.
    #[serde(default)]
    pub plan: Vec<Vec<String>>,
    /// When it started and last changed (ms since the epoch).
    pub started_ms: u64,
    /// When it last changed.
    pub updated_ms: u64,
}

/// A plugin's desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// What every node runs once the rollout is done.
    pub target: Version,
    /// What it replaces, while a rollout is in progress; after a rollback,
    /// the version rolled back from.
    pub previous: Option<Version>,
    /// The rollout, if there was one.
    pub rollout: Option<Rollout>,
    /// The node that took the deploy, and when (ms since the epoch).
    pub deployed_by: String,
    /// When.
    pub deployed_ms: u64,
}

/// What one node should serve of a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment<'a> {
    /// The version serving (all requests but the canary's share).
    pub stable: &'a Version,
    /// A version on trial: its share of requests (percent) and the
    /// rollout's id.
    pub canary: Option<(&'a Version, u8, &'a str)>,
}

impl Desired {
    /// Decodes a record from the deploys bucket.
    pub fn decode(bytes: &[u8]) -> Result<Desired, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("undecodable desired state: {e}"))
    }

    /// Encodes it for the deploys bucket.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether a rollout is still moving (canary or waves).
    pub fn in_progress(&self) -> bool {
        self.rollout.as_ref().is_some_and(|r| matches!(r.phase, Phase::Canary { .. } | Phase::Waves { .. }))
    }

    /// What `node` should serve.
    pub fn assignment(&self, node: &str) -> Assignment<'_> {
        let alone = Assignment { stable: &self.target, canary: None };
        let (Some(rollout), Some(previous)) = (&self.rollout, &self.previous) else { return alone };
        match &rollout.phase {
            Phase::Canary { .. } => Assignment {
                stable: previous,
                canary: Some((&self.target, rollout.policy.canary_percent, rollout.id.as_str())),
            },
            Phase::Waves { switched, .. } => {
                let switched = rollout.plan.iter().take(*switched).flatten().any(|n| n == node);
                if switched { alone } else { Assignment { stable: previous, canary: None } }
            }
            Phase::Done | Phase::RolledBack { .. } | Phase::Aborted { .. } => alone,
        }
    }

    /// The state after sending every node back to the previous version:
    /// it becomes the target, and the failed one is kept as `previous`.
    /// `None` when there is nothing to go back to.
    pub fn rolled_back(&self, phase: Phase, now_ms: u64) -> Option<Desired> {
        let previous = self.previous.clone()?;
        let rollout = self.rollout.clone().map(|r| Rollout { phase: phase.clone(), updated_ms: now_ms, ..r });
        let rollout = rollout.unwrap_or_else(|| Rollout {
            id: String::new(),
            policy: Policy::default(),
            phase,
            plan: Vec::new(),
            started_ms: now_ms,
            updated_ms: now_ms,
        });
        Some(Desired { target: previous, previous: Some(self.target.clone()), rollout: Some(rollout), ..self.clone() })
    }
}

/// Splits the live nodes into at most `waves` groups in node id order
/// (earlier waves get the extra node).
pub fn plan(mut nodes: Vec<String>, waves: u32) -> Vec<Vec<String>> {
    nodes.sort();
    nodes.dedup();
    let waves = (waves.max(1) as usize).min(nodes.len().max(1));
    let mut plan = vec![Vec::new(); waves];
    let (base, extra) = (nodes.len() / waves, nodes.len() % waves);
    let mut nodes = nodes.into_iter();
    for (index, wave) in plan.iter_mut().enumerate() {
        wave.extend(nodes.by_ref().take(base + usize::from(index < extra)));
    }
    plan.retain(|wave| !wave.is_empty());
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(hash: &str) -> Version {
        Version { hash: hash.into(), size: 1, sidecar: None, version: "1".into(), world: "route".into() }
    }

    fn rolling(phase: Phase, plan: Vec<Vec<String>>) -> Desired {
        Desired {
            target: version("new"),
            previous: Some(version("old")),
            rollout: Some(Rollout {
                id: "r1".into(),
                policy: Policy { waves: 2, canary_percent: 10, window_ms: 1000, max_error_rate: 0.1, pause_ms: 0 },
                phase,
                plan,
                started_ms: 0,
                updated_ms: 0,
            }),
            deployed_by: "a".into(),
            deployed_ms: 0,
        }
    }

    #[test]
    fn each_phase_assigns_what_a_node_serves() {
        let canary = rolling(Phase::Canary { since_ms: None }, Vec::new());
        let assigned = canary.assignment("a");
        assert_eq!(
            (assigned.stable.hash.as_str(), assigned.canary.map(|c| (c.0.hash.as_str(), c.1, c.2))),
            ("old", Some(("new", 10, "r1")))
        );
        let plan = vec![vec!["a".to_string()], vec!["b".to_string()]];
        let waves = rolling(Phase::Waves { switched: 1, since_ms: None }, plan);
        assert_eq!(waves.assignment("a").stable.hash, "new");
        assert_eq!(waves.assignment("b").stable.hash, "old");
        assert_eq!(waves.assignment("late").stable.hash, "old", "a node outside the plan switches when done");
        let done = rolling(Phase::Done, Vec::new());
        assert_eq!(done.assignment("b"), Assignment { stable: &version("new"), canary: None });
    }

    #[test]
    fn rolling_back_makes_the_previous_version_the_target() {
        let canary = rolling(Phase::Canary { since_ms: Some(5) }, Vec::new());
        let back = canary.rolled_back(Phase::RolledBack { reason: "errors".into() }, 9).unwrap();
        assert_eq!((back.target.hash.as_str(), back.previous.as_ref().unwrap().hash.as_str()), ("old", "new"));
        assert!(!back.in_progress());
        assert_eq!(back.assignment("a").stable.hash, "old");
        let decoded = Desired::decode(&back.encode()).unwrap();
        assert_eq!(decoded, back);
        let first = Desired { previous: None, rollout: None, ..canary };
        assert!(first.rolled_back(Phase::Aborted { reason: "x".into() }, 1).is_none());
    }

    #[test]
    fn plans_split_nodes_into_waves() {
        let nodes = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(plan(nodes(&["c", "a", "b"]), 2), vec![nodes(&["a", "b"]), nodes(&["c"])]);
        assert_eq!(plan(nodes(&["a", "b"]), 5), vec![nodes(&["a"]), nodes(&["b"])]);
        assert_eq!(plan(nodes(&["a", "b", "c"]), 1), vec![nodes(&["a", "b", "c"])]);
        assert!(plan(Vec::new(), 3).is_empty());
    }
}
