//! One cart's mailbox: the only writer of that cart. It takes whatever
//! commands are queued, applies the mutations one after another on the
//! in-memory state, commits them together, and answers each caller only
//! once its mutation is durable. A failed commit answers an error to every
//! mutation of the batch and reloads the cart from storage.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use corral_runtime::types::{Mutation, Outcome};
use corral_storage::carts::{Applied, CartCommit, CartKey, JournalEntry, Snapshot};
use corral_storage::log::NewRecord;
use tokio::sync::{mpsc, oneshot};

use corral_storage::Storage;
use corral_storage::journal::Journal;

use crate::carts::machine::{Machine, MachineError, Machines};
use crate::carts::request::{CartError, CartReply, MutateRequest};
use crate::metrics::CartMetrics;

/// A command for one cart's mailbox.
pub(super) enum Command {
    Mutate { request: MutateRequest, arrived: Instant, reply: oneshot::Sender<Result<CartReply, CartError>> },
    Get { reply: oneshot::Sender<Result<CartReply, CartError>> },
}

/// What every mailbox shares.
pub(super) struct Shared {
    pub(super) machines: Arc<dyn Machines>,
    pub(super) storage: Storage,
    pub(super) journal: Journal,
    pub(super) metrics: CartMetrics,
}

/// Most commands handled in one round (one commit).
const MAX_BATCH: usize = 256;

/// The cart as the mailbox holds it.
struct Loaded {
    version: u64,
    state: Option<Vec<u8>>,
    /// Version of the latest stored snapshot.
    snapshot_version: u64,
}

type Reply = oneshot::Sender<Result<CartReply, CartError>>;

/// How a command of the round is answered, once the round is committed.
enum Answer {
    /// Known already (a read, an error, a recorded result).
    Ready(Reply, Result<CartReply, CartError>, Option<Instant>),
    /// The `n`th mutation applied in this round (`true`: a repeat of its
    /// client id within the round).
    Applied(Reply, usize, Instant, bool),
}

/// Runs until every sender is gone (the cart was evicted).
pub(super) async fn run(
    shared: Arc<Shared>,
    key: CartKey,
    mut commands: mpsc::UnboundedReceiver<Command>,
    depth: Arc<AtomicUsize>,
) {
    let mut cart: Option<Loaded> = None;
    let mut round = Vec::with_capacity(MAX_BATCH);
    while commands.recv_many(&mut round, MAX_BATCH).await > 0 {
        let count = round.len();
        let loaded = match cart.take() {
            Some(loaded) => Ok(loaded),
            None => load(&shared, &key).await,
        };
        match loaded {
            Ok(loaded) => cart = handle(&shared, &key, loaded, round.drain(..)).await,
            Err(error) => {
                for command in round.drain(..) {
                    let reply = match command {
                        Command::Mutate { reply, .. } | Command::Get { reply } => reply,
                    };
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        depth.fetch_sub(count, Ordering::AcqRel);
        shared.metrics.mailbox_depth.sub(count as i64);
    }
}

/// The latest snapshot plus a replay of the journal entries after it,
/// each checked against the digest recorded when it was first applied.
async fn load(shared: &Shared, key: &CartKey) -> Result<Loaded, CartError> {
    let stored = shared.storage.cart_stored(key).map_err(|e| CartError::Storage(e.to_string()))?;
    let snapshot_version = stored.snapshot.as_ref().map_or(0, |s| s.version);
    let mut loaded = Loaded { version: snapshot_version, state: stored.snapshot.map(|s| s.state), snapshot_version };
    if stored.entries.is_empty() {
        return Ok(loaded);
    }
    let Some(machine) = shared.machines.machine(&key.plugin) else {
        return Err(CartError::UnknownPlugin { plugin: key.plugin.clone() });
    };
    let replays = shared.metrics.replays.with_label_values(&[key.plugin.as_str()]);
    for entry in stored.entries {
        let diverged = |detail: String| CartError::Diverged {
            plugin: key.plugin.clone(),
            cart: key.cart.clone(),
            version: entry.version,
            detail,
        };
        let mutation = mutation_of(key, &entry);
        let outcome = match machine.apply(&key.tenant, loaded.state.as_deref(), &mutation).await {
            Ok(outcome) => outcome,
            Err(MachineError::Rejected { code, message }) => {
                return Err(diverged(format!("the replay was rejected: {code}: {message}")));
            }
            Err(MachineError::Failed(error)) => return Err(diverged(format!("the replay failed: {error}"))),
        };
        if *blake3::hash(&outcome.state).as_bytes() != entry.state_digest {
            return Err(diverged("the state differs from the one recorded".into()));
        }
        replays.inc();
        loaded.version = entry.version;
        loaded.state = Some(outcome.state);
    }
    Ok(loaded)
}

/// The mutation a journal entry records.
pub(super) fn mutation_of(key: &CartKey, entry: &JournalEntry) -> Mutation {
    Mutation {
        id: entry.id.clone(),
        entity: key.cart.clone(),
        kind: entry.kind.clone(),
        timestamp_ms: entry.timestamp_ms,
        payload: entry.payload.clone(),
    }
}

/// Handles one round; returns the cart's new in-memory state, or none when
/// the commit failed and the cart must be reloaded.
async fn handle(
    shared: &Shared,
    key: &CartKey,
    loaded: Loaded,
    commands: impl Iterator<Item = Command>,
) -> Option<Loaded> {
    let mut version = loaded.version;
    let mut state = loaded.state.clone();
    let mut applied: Vec<Applied> = Vec::new();
    let mut answers: Vec<Answer> = Vec::new();
    // Client ids applied in this round, so a repeat within it is caught too.
    let mut pending: HashMap<String, usize> = HashMap::new();
    // One version of the plugin applies the whole round (a swap takes
    // effect at the next round), looked up once rather than per mutation.
    let machine = shared.machines.machine(&key.plugin);
    let mut snapshot_every = u64::MAX;
    for command in commands {
        let (request, arrived, reply) = match command {
            Command::Get { reply } => {
                let current = CartReply { version, state: state.clone(), events: Vec::new(), repeated: false };
                answers.push(Answer::Ready(reply, Ok(current), None));
                continue;
            }
            Command::Mutate { request, arrived, reply } => (request, arrived, reply),
        };
        if let Some(id) = &request.client_id {
            if let Some(&index) = pending.get(id) {
                answers.push(Answer::Applied(reply, index, arrived, true));
                continue;
            }
            match shared.storage.cart_recorded(key, id) {
                Ok(Some(recorded)) => {
                    let reply_value = CartReply {
                        version: recorded.version,
                        state: Some(recorded.state),
                        events: recorded.events,
                        repeated: true,
                    };
                    answers.push(Answer::Ready(reply, Ok(reply_value), Some(arrived)));
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    answers.push(Answer::Ready(reply, Err(CartError::Storage(error.to_string())), Some(arrived)));
                    continue;
                }
            }
        }
        match apply(machine.as_deref(), key, state.as_deref(), &request).await {
            Ok((mutation, outcome, machine_version, every)) => {
                version += 1;
                snapshot_every = snapshot_every.min(every);
                if let Some(id) = &request.client_id {
                    pending.insert(id.clone(), applied.len());
                }
                answers.push(Answer::Applied(reply, applied.len(), arrived, false));
                applied.push(to_applied(key, &request, mutation, &outcome, version, machine_version));
                state = Some(outcome.state);
            }
            Err(error) => answers.push(Answer::Ready(reply, Err(error), Some(arrived))),
        }
    }
    if applied.is_empty() {
        finish(shared, key, answers, &[]);
        return Some(loaded);
    }
    let snapshot = match version - loaded.snapshot_version >= snapshot_every {
        true => state.clone().map(|state| Snapshot { version, state }),
        false => None,
    };
    let snapshot_version = snapshot.as_ref().map_or(loaded.snapshot_version, |s| s.version);
    let commit = CartCommit { key: key.clone(), applied, snapshot };
    match shared.journal.commit(vec![commit]).await {
        Ok(mut committed) => {
            let applied = committed.pop().map(|c| c.applied).unwrap_or_default();
            finish(shared, key, answers, &applied);
            Some(Loaded { version, state, snapshot_version })
        }
        Err(error) => {
            tracing::error!(plugin = %key.plugin, cart = %key.cart, "cart commit failed: {error}");
            let failed = CartError::Storage(error.to_string());
            for answer in answers {
                let (reply, result) = match answer {
                    Answer::Ready(reply, Ok(_), _) | Answer::Applied(reply, ..) => (reply, Err(failed.clone())),
                    Answer::Ready(reply, result, _) => (reply, result),
                };
                let _ = reply.send(result);
            }
            shared.metrics.mutations.with_label_values(&[key.plugin.as_str(), "failed"]).inc();
            None
        }
    }
}

/// Applies one request to `state` with the round's version of the plugin.
async fn apply(
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
    Ok((mutation, outcome, machine.version().to_string(), machine.snapshot_every()))
}

fn to_applied(
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

/// Answers every caller of a committed round and records the metrics.
fn finish(shared: &Shared, key: &CartKey, answers: Vec<Answer>, applied: &[Applied]) {
    let plugin = key.plugin.as_str();
    let latency = shared.metrics.latency.with_label_values(&[plugin]);
    for answer in answers {
        let (reply, result, arrived, outcome) = match answer {
            Answer::Applied(reply, index, arrived, repeated) => {
                let Some(done) = applied.get(index) else { continue };
                let value = CartReply {
                    version: done.entry.version,
                    state: Some(done.state.clone()),
                    events: done.entry.events.clone(),
                    repeated,
                };
                (reply, Ok(value), Some(arrived), if repeated { "repeated" } else { "applied" })
            }
            Answer::Ready(reply, result, arrived) => {
                let outcome = match &result {
                    Ok(value) if value.repeated => "repeated",
                    Ok(_) => "read",
                    Err(CartError::Rejected { .. } | CartError::UnknownKind { .. } | CartError::Invalid(_)) => {
                        "rejected"
                    }
                    Err(_) => "failed",
                };
                (reply, result, arrived, outcome)
            }
        };
        if let Some(arrived) = arrived {
            latency.observe(arrived.elapsed().as_secs_f64());
            shared.metrics.mutations.with_label_values(&[plugin, outcome]).inc();
        }
        let _ = reply.send(result);
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
