//! What a node reports of its plugins with each heartbeat (under
//! `plugins` in its member entry): the version each actually serves, a
//! canary's counts, and a version it refused. The rollout driver judges
//! canaries and advances waves on these reports, and `GET
//! /cluster/plugins` shows them beside the desired state.

use std::collections::BTreeMap;

use corral_cluster::members::Member;
use serde::{Deserialize, Serialize};

use crate::plugins::Catalog;

/// One plugin on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The desired-state revision the node applied last.
    pub revision: u64,
    /// Content hash of the version serving, if any.
    pub hash: Option<String>,
    /// A version on trial beside it.
    pub canary: Option<CanaryReport>,
    /// A version the node could not run, and why.
    pub refused: Option<Refusal>,
}

/// A canary's counts on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryReport {
    /// Its content hash.
    pub hash: String,
    /// The rollout it belongs to.
    pub trial: String,
    /// Requests it served here, and how many failed (5xx).
    pub requests: u64,
    /// Failed ones.
    pub errors: u64,
}

/// A version a node refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Its content hash.
    pub hash: String,
    /// The [`crate::plugins::DeployError`] label.
    pub kind: String,
    /// What went wrong.
    pub error: String,
}

/// What `catalog` serves, with the applied revisions and refusals the
/// fleet keeps (by plugin).
pub(crate) fn of(catalog: &Catalog, applied: &BTreeMap<String, (u64, Option<Refusal>)>) -> BTreeMap<String, Report> {
    let mut reports = BTreeMap::new();
    for (stem, (revision, refused)) in applied {
        let slot = catalog.slot(stem);
        let canary = slot.and_then(|s| s.canary.as_ref()).map(|canary| {
            let (requests, errors) = canary.counts();
            let (hash, trial) = (canary.mounted.plugin.content_hash().to_string(), canary.trial().unwrap_or_default());
            CanaryReport { hash, trial: trial.to_string(), requests, errors }
        });
        let hash = slot.map(|s| s.mounted.plugin.content_hash().to_string());
        reports.insert(stem.clone(), Report { revision: *revision, hash, canary, refused: refused.clone() });
    }
    reports
}

/// What `member` reports of its plugins.
pub fn of_member(member: &Member) -> BTreeMap<String, Report> {
    serde_json::from_value(member.details["plugins"].clone()).unwrap_or_default()
}
