//! `host cart verify`: replays a cart's whole journal from an empty state
//! with the current plugin and compares every step with the digest recorded
//! when the mutation was first applied, and the result with the stored
//! snapshot. A difference means the plugin is not deterministic, or is not
//! compatible with the version that wrote the journal.

use corral_storage::carts::CartKey;
use serde::Serialize;

use crate::carts::machine::{Machine, MachineError};
use crate::carts::request::CartError;
use crate::carts::step::mutation_of;
use crate::carts::store::CartStore;

/// The first journal entry whose replay did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// The entry's version.
    pub version: u64,
    /// What differed.
    pub reason: String,
}

/// The result of verifying one cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Tenant.
    pub tenant: String,
    /// Plugin.
    pub plugin: String,
    /// Cart id.
    pub cart: String,
    /// The stored version (entries in the journal).
    pub version: u64,
    /// Entries replayed.
    pub replayed: u64,
    /// The plugin version that replayed them.
    pub replayed_with: String,
    /// True when every step reproduced the recorded state.
    pub ok: bool,
    /// BLAKE3 (hex) of the recorded latest state.
    pub stored_digest: Option<String>,
    /// BLAKE3 (hex) of the replayed state.
    pub replayed_digest: Option<String>,
    /// The first difference, if any.
    pub divergence: Option<Divergence>,
}

pub(super) async fn run(
    store: &dyn CartStore,
    machine: &dyn Machine,
    key: &CartKey,
) -> Result<Verification, CartError> {
    let (entries, snapshot) = store.journal(key).await.map_err(|e| CartError::Storage(e.to_string()))?;
    let mut state: Option<Vec<u8>> = None;
    let mut replayed = 0;
    let mut divergence = None;
    for (expected, entry) in (1..).zip(&entries) {
        let diverged = |reason: String| Some(Divergence { version: entry.version, reason });
        if entry.version != expected {
            divergence = diverged(format!("the journal skips from version {} to {}", expected - 1, entry.version));
            break;
        }
        let outcome = match machine.apply(&key.tenant, state.as_deref(), &mutation_of(key, entry)).await {
            Ok(outcome) => outcome,
            Err(MachineError::Rejected { code, message }) => {
                divergence =
                    diverged(format!("the replay was rejected ({code}: {message}) but was applied originally"));
                break;
            }
            Err(MachineError::Failed(error)) => {
                divergence = diverged(format!("the replay failed: {error}"));
                break;
            }
        };
        replayed += 1;
        let digest = blake3::hash(&outcome.state);
        if *digest.as_bytes() != entry.state_digest {
            divergence = diverged(format!(
                "the replayed state (digest {}) differs from the recorded one (digest {}) after mutation {} ({})",
                short(digest.as_bytes()),
                short(&entry.state_digest),
                entry.id,
                entry.kind
            ));
            break;
        }
        if let Some(snapshot) = snapshot.as_ref().filter(|s| s.version == entry.version)
            && snapshot.state != outcome.state
        {
            divergence = diverged("the stored snapshot differs from the replayed state".into());
            break;
        }
        state = Some(outcome.state);
    }
    if divergence.is_none()
        && let Some(snapshot) = &snapshot
        && snapshot.version > entries.last().map_or(0, |e| e.version)
    {
        divergence = Some(Divergence {
            version: snapshot.version,
            reason: "the stored snapshot is newer than the journal".into(),
        });
    }
    let replayed_digest =
        if divergence.is_none() { state.as_ref().map(|s| blake3::hash(s).to_hex().to_string()) } else { None };
    Ok(Verification {
        tenant: key.tenant.clone(),
        plugin: key.plugin.clone(),
        cart: key.cart.clone(),
        version: entries.last().map_or(0, |e| e.version),
        replayed,
        replayed_with: machine.version().to_string(),
        ok: divergence.is_none(),
        stored_digest: entries.last().map(|e| blake3::Hash::from_bytes(e.state_digest).to_hex().to_string()),
        replayed_digest,
        divergence,
    })
}

fn short(digest: &[u8; 32]) -> String {
    blake3::Hash::from_bytes(*digest).to_hex()[..16].to_string()
}
