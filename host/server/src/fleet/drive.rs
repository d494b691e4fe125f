//! The rollout driver: run by the one node holding the `rollouts` lease.
//! Every [`TICK`] it reads the plugins whose rollout is moving and the
//! members' reports, and takes the next step ([`next_step`], a pure
//! decision): a canary's window starts once every live node runs it, its
//! error rate is judged on all nodes' counts together (a breach rolls
//! every node back at once), then the waves switch one after the other,
//! each once the previous wave's nodes report running the new version and
//! the policy's pause has passed. A
//! node that refuses the new version rolls the rollout back too. Each
//! step is written expecting the revision it was computed from: a driver
//! that lost its lease (or an operator's abort) cannot be overwritten.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::record::{Desired, Phase, Rollout, plan};
use super::report::{self, Report};
use super::{Fleet, FleetError, now_ms};
use crate::shutdown::pause;

/// How often the driver looks at rollouts in progress.
const TICK: Duration = Duration::from_millis(200);
/// Canary requests (all nodes) before an error rate can roll back early.
const MIN_REQUESTS: u64 = 5;

impl Fleet {
    /// Drives rollouts until `halted` (the lease was lost, or the node stops).
    pub async fn drive(self: Arc<Self>, mut halted: watch::Receiver<bool>) {
        tracing::info!("driving the cluster's rollouts");
        loop {
            if let Err(error) = self.drive_once().await {
                tracing::warn!("a rollout step failed (tried again): {error}");
            }
            if pause(&mut halted, TICK).await {
                return;
            }
        }
    }

    async fn drive_once(&self) -> Result<(), FleetError> {
        let entries = self.cluster.desired().all().await.map_err(FleetError::Unavailable)?;
        let moving: Vec<_> = entries
            .into_iter()
            .filter_map(|entry| {
                let desired = Desired::decode(entry.value.as_deref()?).ok()?;
                desired.in_progress().then_some((entry.plugin, entry.revision, desired))
            })
            .collect();
        if moving.is_empty() {
            return Ok(());
        }
        let members = self.cluster.members().list().await.map_err(FleetError::Unavailable)?;
        for (plugin, revision, desired) in moving {
            let reports: BTreeMap<String, Report> = members
                .iter()
                .map(|m| (m.node_id.clone(), report::of_member(m).remove(&plugin).unwrap_or_default()))
                .collect();
            let Some((next, what)) = next_step(&desired, &reports, now_ms()) else { continue };
            match self.write(&plugin, &next, revision).await {
                Ok(revision) => match &next.rollout.as_ref().map(|r| &r.phase) {
                    Some(Phase::RolledBack { .. }) => tracing::warn!(plugin, revision, "rollout: {what}"),
                    _ => tracing::info!(plugin, revision, "rollout: {what}"),
                },
                // An operator (or another driver) changed it: look again next tick.
                Err(FleetError::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// The next state of a moving rollout given every live node's report of
/// the plugin (by node id), and what the step did; `None` to wait.
pub(crate) fn next_step(
    desired: &Desired,
    reports: &BTreeMap<String, Report>,
    now_ms: u64,
) -> Option<(Desired, String)> {
    let rollout = desired.rollout.as_ref()?;
    let target = &desired.target.hash;
    let back = |reason: String| {
        let next = desired.rolled_back(Phase::RolledBack { reason: reason.clone() }, now_ms)?;
        Some((next, format!("rolled back every node: {reason}")))
    };
    let refused =
        reports.iter().find_map(|(node, r)| r.refused.as_ref().filter(|f| &f.hash == target).map(|f| (node, f)));
    if let Some((node, refusal)) = refused {
        return back(format!("node {node} refused version {target}: {}", refusal.error));
    }
    let step = |phase: Phase, plan: Option<Vec<Vec<String>>>, what: String| {
        let plan = plan.unwrap_or_else(|| rollout.plan.clone());
        let rollout = Rollout { phase, plan, updated_ms: now_ms, ..rollout.clone() };
        Some((Desired { rollout: Some(rollout), ..desired.clone() }, what))
    };
    match &rollout.phase {
        Phase::Canary { since_ms } => {
            let counted = reports.values().filter_map(|r| r.canary.as_ref().filter(|c| c.trial == rollout.id));
            let (requests, errors) = counted.fold((0, 0), |(r, e), c| (r + c.requests, e + c.errors));
            let rate = if requests == 0 { 0.0 } else { errors as f64 / requests as f64 };
            let limit = rollout.policy.max_error_rate;
            let breach = || {
                format!("canary error rate {rate:.3} over {limit}: {errors} of {requests} requests failed on all nodes")
            };
            if requests >= MIN_REQUESTS && rate > limit {
                return back(breach());
            }
            let everywhere = !reports.is_empty()
                && reports.values().all(|r| r.canary.as_ref().is_some_and(|c| c.trial == rollout.id));
            match since_ms {
                None if everywhere => step(
                    Phase::Canary { since_ms: Some(now_ms) },
                    None,
                    format!("canary of {target} runs on all {} nodes: its window starts", reports.len()),
                ),
                Some(since) if now_ms.saturating_sub(*since) >= rollout.policy.window_ms => {
                    if rate > limit {
                        return back(breach());
                    }
                    let plan = plan(reports.keys().cloned().collect(), rollout.policy.waves);
                    let what = format!("canary passed ({errors} of {requests} requests failed): {} waves", plan.len());
                    step(Phase::Waves { switched: 1, since_ms: None }, Some(plan), what)
                }
                _ => None,
            }
        }
        Phase::Waves { switched, since_ms } => {
            let running = |node: &String| {
                // A node that left is not waited for.
                reports.get(node).is_none_or(|r| r.hash.as_ref() == Some(target) && r.canary.is_none())
            };
            if !rollout.plan.iter().take(*switched).flatten().all(running) {
                return None;
            }
            if *switched >= rollout.plan.len() {
                return step(Phase::Done, None, format!("every node runs {target}"));
            }
            let waves = rollout.plan.len();
            match since_ms {
                None if rollout.policy.pause_ms > 0 => {
                    let what = format!("wave {switched} of {waves} runs {target}: pausing before the next");
                    step(Phase::Waves { switched: *switched, since_ms: Some(now_ms) }, None, what)
                }
                Some(since) if now_ms.saturating_sub(*since) < rollout.policy.pause_ms => None,
                _ => {
                    let what = format!("wave {} of {waves} switches to {target}", switched + 1);
                    step(Phase::Waves { switched: switched + 1, since_ms: None }, None, what)
                }
            }
        }
        Phase::Done | Phase::RolledBack { .. } | Phase::Aborted { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::record::{Policy, Version};
    use crate::fleet::report::{CanaryReport, Refusal};

    fn version(hash: &str) -> Version {
        Version { hash: hash.into(), size: 1, sidecar: None, version: "1".into(), world: "route".into() }
    }

    fn rolling(phase: Phase, plan: Vec<Vec<String>>) -> Desired {
        let policy = Policy { waves: 2, canary_percent: 20, window_ms: 1000, max_error_rate: 0.1, pause_ms: 0 };
        let rollout = Rollout { id: "r1".into(), policy, phase, plan, started_ms: 0, updated_ms: 0 };
        Desired {
            target: version("new"),
            previous: Some(version("old")),
            rollout: Some(rollout),
            deployed_by: "a".into(),
            deployed_ms: 0,
        }
    }

    fn canary(requests: u64, errors: u64) -> Report {
        let canary = CanaryReport { hash: "new".into(), trial: "r1".into(), requests, errors };
        Report { revision: 1, hash: Some("old".into()), canary: Some(canary), refused: None }
    }

    fn running(hash: &str) -> Report {
        Report { revision: 1, hash: Some(hash.into()), canary: None, refused: None }
    }

    fn reports(of: &[(&str, Report)]) -> BTreeMap<String, Report> {
        of.iter().map(|(node, report)| (node.to_string(), report.clone())).collect()
    }

    fn phase(step: Option<(Desired, String)>) -> Phase {
        step.expect("a step").0.rollout.unwrap().phase
    }

    #[test]
    fn a_canary_window_starts_when_every_node_runs_it_and_ends_in_waves() {
        let waiting = rolling(Phase::Canary { since_ms: None }, Vec::new());
        let partly = reports(&[("a", canary(1, 0)), ("b", running("old"))]);
        assert!(next_step(&waiting, &partly, 10).is_none(), "b does not run the canary yet");
        let everywhere = reports(&[("a", canary(1, 0)), ("b", canary(0, 0))]);
        assert_eq!(phase(next_step(&waiting, &everywhere, 10)), Phase::Canary { since_ms: Some(10) });
        let started = rolling(Phase::Canary { since_ms: Some(10) }, Vec::new());
        assert!(next_step(&started, &everywhere, 500).is_none(), "inside the window");
        let (next, _) = next_step(&started, &everywhere, 1010).unwrap();
        let rollout = next.rollout.unwrap();
        assert_eq!(rollout.phase, Phase::Waves { switched: 1, since_ms: None });
        assert_eq!(rollout.plan, vec![vec!["a".to_string()], vec!["b".to_string()]]);
    }

    #[test]
    fn errors_summed_over_nodes_roll_every_node_back() {
        let started = rolling(Phase::Canary { since_ms: None }, Vec::new());
        // Each node alone is under MIN_REQUESTS; together they breach.
        let failing = reports(&[("a", canary(3, 2)), ("b", canary(3, 1))]);
        let (next, what) = next_step(&started, &failing, 5).unwrap();
        assert_eq!(next.target.hash, "old");
        assert!(matches!(next.rollout.unwrap().phase, Phase::RolledBack { .. }));
        assert!(what.contains("3 of 6"), "{what}");
        let healthy = reports(&[("a", canary(30, 1)), ("b", canary(30, 2))]);
        assert!(matches!(phase(next_step(&started, &healthy, 5)), Phase::Canary { since_ms: Some(5) }));
    }

    #[test]
    fn waves_switch_once_the_previous_wave_runs_the_new_version() {
        let plan = vec![vec!["a".to_string()], vec!["b".to_string()]];
        let first = rolling(Phase::Waves { switched: 1, since_ms: None }, plan.clone());
        assert!(next_step(&first, &reports(&[("a", running("old")), ("b", running("old"))]), 1).is_none());
        let a_switched = reports(&[("a", running("new")), ("b", running("old"))]);
        assert_eq!(phase(next_step(&first, &a_switched, 1)), Phase::Waves { switched: 2, since_ms: None });
        // With a pause, the wave bakes first.
        let mut baking = first.clone();
        baking.rollout.as_mut().unwrap().policy.pause_ms = 100;
        let paused = phase(next_step(&baking, &a_switched, 1));
        assert_eq!(paused, Phase::Waves { switched: 1, since_ms: Some(1) });
        baking.rollout.as_mut().unwrap().phase = paused;
        assert!(next_step(&baking, &a_switched, 50).is_none(), "still pausing");
        assert_eq!(phase(next_step(&baking, &a_switched, 101)), Phase::Waves { switched: 2, since_ms: None });
        let second = rolling(Phase::Waves { switched: 2, since_ms: None }, plan);
        assert!(next_step(&second, &a_switched, 1).is_none());
        assert_eq!(phase(next_step(&second, &reports(&[("a", running("new"))]), 1)), Phase::Done, "b left");
    }

    #[test]
    fn a_node_refusing_the_new_version_rolls_back() {
        let first = rolling(Phase::Waves { switched: 1, since_ms: None }, vec![vec!["a".to_string()]]);
        let refusal = Refusal { hash: "new".into(), kind: "hash_mismatch".into(), error: "corrupt".into() };
        let refused = reports(&[("a", Report { refused: Some(refusal), ..running("old") })]);
        let (next, what) = next_step(&first, &refused, 1).unwrap();
        assert_eq!(next.target.hash, "old");
        assert!(what.contains("node a refused"), "{what}");
    }
}
