//! Applying one mutation in the sandbox ([`apply`]) and what the journal
//! keeps of it ([`to_applied`]); also the mutation a journal entry
//! records, for replays ([`mutation_of`]).

use std::time::{SystemTime, UNIX_EPOCH};

use corral_runtime::types::{Mutation, Outcome};
use corral_storage::carts::{Applied, CartKey, JournalEntry};
use corral_storage::log::NewRecord;
use tracing::Instrument as _;

use crate::carts::machine::{Machine, MachineError};
use crate::carts::request::{CartError, MutateRequest};

/// The mutation a journal entry records.
pub(crate) fn mutation_of(key: &CartKey, entry: &JournalEntry) -> Mutation {
    Mutation {
        id: entry.id.clone(),
        entity: key.cart.clone(),
        kind: entry.kind.clone(),
        timestamp_ms: entry.timestamp_ms,
        payload: entry.payload.clone(),
    }
}

/// Applies one request to `state` with the round's version of the plugin,
/// in a span joined to the trace of whoever sent the mutation.
pub(super) async fn apply(
    machine: Option<&dyn Machine>,
    key: &CartKey,
    state: Option<&[u8]>,
    request: &MutateRequest,
) -> Result<(Mutation, Outcome, String, u64), CartError> {
    let span = tracing::trace_span!(
        "cart.mutation",
        plugin = %key.plugin,
        cart = %key.cart,
        kind = %request.kind,
        transport = request.transport.label(),
        outcome = tracing::field::Empty,
        "otel.status_code" = tracing::field::Empty,
    );
    crate::traces::adopt(&span, request.traceparent.as_deref());
    let result = apply_unobserved(machine, key, state, request).instrument(span.clone()).await;
    match &result {
        Ok(_) => span.record("outcome", "applied"),
        Err(error) => span.record("outcome", error.label()).record("otel.status_code", "error"),
    };
    result
}

async fn apply_unobserved(
    machine: Option<&dyn Machine>,
    key: &CartKey,
    state: Option<&[u8]>,
    request: &MutateRequest,
) -> Result<(Mutation, Outcome, String, u64), CartError> {
    let Some(machine) = machine else {
        return Err(CartError::UnknownPlugin { plugin: key.plugin.clone() });
    };
    if !machine.kinds().contains(&request.kind) {
        return Err(CartError::UnknownKind {
            plugin: key.plugin.clone(),
            kind: request.kind.clone(),
            declared: machine.kinds().to_vec(),
        });
    }
    let mutation = Mutation {
        id: request.client_id.clone().unwrap_or_else(assigned_id),
        entity: key.cart.clone(),
        kind: request.kind.clone(),
        timestamp_ms: now_ms(),
        payload: request.payload.clone(),
    };
    let outcome = match machine.apply(&key.tenant, state, &mutation).await {
        Ok(outcome) => outcome,
        Err(MachineError::Rejected { code, message }) => {
            return Err(CartError::Rejected { plugin: key.plugin.clone(), code, message });
        }
        Err(MachineError::Failed(error)) => return Err(CartError::Failed(error)),
    };
    if let Some(bad) = outcome.events.iter().find_map(|e| corral_runtime::topics::validate_topic(&e.topic).err()) {
        return Err(CartError::Rejected {
            plugin: key.plugin.clone(),
            code: "invalid-event".into(),
            message: format!("the outcome's event has an invalid topic: {bad}"),
        });
    }
    if let Err(violation) = machine.check_outcome(&outcome) {
        return Err(CartError::Mismatch { plugin: key.plugin.clone(), violation: Box::new(violation) });
    }
    Ok((mutation, outcome, machine.version().to_string(), machine.snapshot_every()))
}

pub(super) fn to_applied(
    key: &CartKey,
    request: &MutateRequest,
    mutation: Mutation,
    outcome: &Outcome,
    version: u64,
    applied_by: String,
) -> Applied {
    let outbox = outcome
        .events
        .iter()
        .map(|event| NewRecord {
            topic: event.topic.clone(),
            tenant: key.tenant.clone(),
            correlation_id: mutation.id.clone(),
            traceparent: request.traceparent.clone(),
            source: key.plugin.clone(),
            payload: event.payload.clone(),
        })
        .collect();
    Applied {
        entry: JournalEntry {
            version,
            id: mutation.id,
            kind: mutation.kind,
            timestamp_ms: mutation.timestamp_ms,
            payload: mutation.payload,
            state_digest: *blake3::hash(&outcome.state).as_bytes(),
            applied_by,
            events: Vec::new(),
        },
        state: outcome.state.clone(),
        client_id: request.client_id.is_some(),
        outbox,
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// An id for a mutation the client sent without one (recorded in the
/// journal, so a replay sees the same id and the same seeded randomness).
fn assigned_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
