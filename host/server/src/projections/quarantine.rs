//! Quarantined events, kept in storage — the kv bucket `system/quarantine`,
//! keyed by generation and sequence — so they survive a restart, `GET
//! /projections/NAME/quarantine` lists them, and an operator can deal with
//! the event a projection halted before: skip it, or fold it again (after
//! deploying a fix, or when it failed on a limit). A generation's records
//! go when its views are cleared (a rebuild folds everything again).

use corral_storage::Storage;

/// Where the records live.
const BUCKET: &str = "system/quarantine";
/// Records read per page when loading.
const PAGE: usize = 1000;

/// An event `apply` rejected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Quarantined {
    pub(crate) sequence: u64,
    pub(crate) event_id: String,
    pub(crate) topic: String,
    pub(crate) error: String,
    /// When it was quarantined (ms since the epoch).
    #[serde(default)]
    pub(crate) at_ms: u64,
    /// The projection halted before it (policy `halt`); else it was
    /// skipped by policy.
    #[serde(default)]
    pub(crate) halted: bool,
    /// An operator skipped it (the projection went on past it).
    #[serde(default)]
    pub(crate) skipped_by_operator: bool,
}

fn key(scope: &str, sequence: u64) -> String {
    format!("{scope}/{sequence:020}")
}

/// Stores (or replaces) the record of `scope`'s event.
pub(crate) fn keep(storage: &Storage, scope: &str, quarantined: &Quarantined) {
    let value = serde_json::to_vec(quarantined).unwrap_or_default();
    if let Err(error) = storage.kv_set(BUCKET, &key(scope, quarantined.sequence), &value) {
        tracing::error!(
            projection = scope,
            sequence = quarantined.sequence,
            "storing a quarantined event failed: {error}"
        );
    }
}

/// Drops the record of `scope`'s event `sequence`.
pub(crate) fn remove(storage: &Storage, scope: &str, sequence: u64) -> Result<(), String> {
    storage.kv_delete(BUCKET, &key(scope, sequence)).map(drop).map_err(|e| e.to_string())
}

/// Every record of `scope`, by sequence.
pub(crate) fn load(storage: &Storage, scope: &str) -> Vec<Quarantined> {
    let prefix = format!("{scope}/");
    let mut records = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match storage.kv_list(BUCKET, &prefix, cursor.as_deref(), PAGE) {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(projection = scope, "reading the quarantined events failed: {error}");
                return records;
            }
        };
        records.extend(page.0.iter().filter_map(|(_, value)| serde_json::from_slice(value).ok()));
        match page.1 {
            Some(next) => cursor = Some(next),
            None => return records,
        }
    }
}

/// Drops every record of `scope` (its views are being cleared).
pub(crate) fn clear(storage: &Storage, scope: &str) {
    for record in load(storage, scope) {
        if let Err(error) = remove(storage, scope, record.sequence) {
            tracing::warn!(projection = scope, "dropping a quarantined event's record failed: {error}");
        }
    }
}
