//! One cart's mailbox: the only writer of that cart. It takes whatever
//! commands are queued, applies the mutations one after another on the
//! in-memory state, commits them together, and answers each caller only
//! once its mutation is durable. A failed commit answers an error to every
//! mutation of the batch and reloads the cart from storage.
//!
//! In a cluster the mailbox first takes the cart's lease (or learns who
//! holds it: its callers are then answered [`CartError::Elsewhere`] and the
//! mailbox ends), renews it while it runs and gives it up when it ends. A
//! commit the journal refuses as stale means another node took the cart:
//! the round's callers are answered [`CartError::Moved`] and the mailbox
//! ends, so the next call is routed afresh.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use corral_cluster::ClusterError;
use corral_cluster::leases::Lease;
use corral_storage::carts::{Applied, CartCommit, CartKey, Recorded, Snapshot};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use crate::carts::answers::{self, Answer, Arrival};
use crate::carts::machine::{MachineError, Machines};
use crate::carts::owners::{Claim, Owners};
use crate::carts::request::{CartError, CartReply, MutateRequest};
use crate::carts::step::{apply, mutation_of, to_applied};
use crate::carts::store::{Admit, Budget, CartStore, StoreError};
use crate::metrics::CartMetrics;

/// A command for one cart's mailbox.
pub(super) enum Command {
    Mutate { request: MutateRequest, arrived: Instant, reply: oneshot::Sender<Result<CartReply, CartError>> },
    Get { forwarded: bool, reply: oneshot::Sender<Result<CartReply, CartError>> },
}

impl Command {
    fn forwarded(&self) -> bool {
        match self {
            Command::Mutate { request, .. } => request.forwarded,
            Command::Get { forwarded, .. } => *forwarded,
        }
    }

    fn answer(self, result: Result<CartReply, CartError>) {
        let (Command::Mutate { reply, .. } | Command::Get { reply, .. }) = self;
        let _ = reply.send(result);
    }
}

/// What every mailbox shares.
pub(super) struct Shared {
    pub(super) machines: Arc<dyn Machines>,
    pub(super) store: Arc<dyn CartStore>,
    /// In a cluster: the carts' leases.
    pub(super) owners: Option<Arc<Owners>>,
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
    /// Where the journal ends: what the next commit expects.
    position: u64,
    /// In a cluster, the node that wrote the journal's last message (as
    /// loaded; not kept up to date).
    writer: Option<String>,
}

/// How a round ended.
enum Round {
    /// Committed (or nothing to commit): the cart as it is now.
    Done(Loaded),
    /// The commit failed: load the cart again before the next round.
    Reload,
    /// Another node owns the cart now: the mailbox ends.
    Lost,
}

/// Runs until every sender is gone (the cart was evicted), or, in a
/// cluster, until the cart is found or becomes another node's.
pub(super) async fn run(
    shared: Arc<Shared>,
    key: CartKey,
    mut commands: mpsc::UnboundedReceiver<Command>,
    depth: Arc<AtomicUsize>,
    owned: Arc<AtomicU64>,
) {
    let mut cart: Option<Loaded> = None;
    let mut tenure: Option<Lease> = None;
    let mut queued: VecDeque<Command> = VecDeque::new();
    let mut received = Vec::with_capacity(MAX_BATCH);
    let every = shared.owners.as_ref().map_or(std::time::Duration::from_secs(3600), |o| o.renew_every());
    let mut renew = tokio::time::interval(every);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut renewed = Instant::now();
    // When this node took the cart, until it is loaded.
    let mut claimed: Option<Instant> = None;
    let settle = |count: usize| {
        depth.fetch_sub(count, Ordering::AcqRel);
        shared.metrics.mailbox_depth.sub(count as i64);
    };
    let ending = loop {
        if queued.is_empty() {
            tokio::select! {
                count = commands.recv_many(&mut received, MAX_BATCH) => {
                    if count == 0 {
                        break None;
                    }
                    queued.extend(received.drain(..));
                }
                _ = renew.tick(), if tenure.is_some() => {
                    let (Some(owners), Some(lease)) = (&shared.owners, &tenure) else { continue };
                    match owners.renew(lease).await {
                        Ok(fresh) => {
                            tenure = Some(fresh);
                            renewed = Instant::now();
                        }
                        Err(ClusterError::LeaseLost { .. }) => break Some("its lease was taken over".to_string()),
                        Err(error) if renewed.elapsed() >= owners.ttl() => {
                            break Some(format!("its lease could not be renewed within its TTL: {error}"));
                        }
                        Err(error) => tracing::warn!(plugin = %key.plugin, cart = %key.cart, "renewing the cart's lease failed, retrying: {error}"),
                    }
                    continue;
                }
            }
        }
        let before = queued.len();
        // Woken after a freeze (or cut off) past the lease's TTL: the cart
        // may be another node's by now; make sure before reading or writing.
        if let (Some(owners), Some(lease)) = (&shared.owners, &tenure)
            && renewed.elapsed() >= owners.ttl()
        {
            match owners.renew(lease).await {
                Ok(fresh) => {
                    tenure = Some(fresh);
                    renewed = Instant::now();
                }
                Err(error) => break Some(format!("its lease lapsed: {error}")),
            }
        }
        if let Some(owners) = &shared.owners
            && tenure.is_none()
        {
            let forwarded = queued.iter().any(Command::forwarded);
            match owners.claim(&key, forwarded).await {
                Ok(Claim::Mine(lease)) => {
                    shared.metrics.leases_held.inc();
                    owned.store(lease.epoch, Ordering::Release);
                    tenure = Some(lease);
                    renewed = Instant::now();
                    renew.reset();
                    cart = None;
                    claimed = Some(Instant::now());
                }
                Ok(Claim::Elsewhere(node)) => {
                    let elsewhere = CartError::Elsewhere { plugin: key.plugin.clone(), cart: key.cart.clone(), node };
                    settle(before);
                    queued.drain(..).for_each(|command| command.answer(Err(elsewhere.clone())));
                    break Some(elsewhere.to_string());
                }
                Err(error) => {
                    let failed = CartError::Storage(format!("finding the cart's owner failed: {error}"));
                    settle(before);
                    queued.drain(..).for_each(|command| command.answer(Err(failed.clone())));
                    continue;
                }
            }
        }
        let loaded = match cart.take() {
            Some(loaded) => Ok(loaded),
            None => load(&shared, &key).await,
        };
        if let (Ok(loaded), Some(owners)) = (&loaded, &shared.owners)
            && let Some(at) = claimed.take()
            && loaded.writer.as_deref().is_some_and(|writer| writer != owners.node())
        {
            shared.metrics.ownership_moves.inc();
            shared.metrics.takeover_seconds.observe(at.elapsed().as_secs_f64());
        }
        let epoch = tenure.as_ref().map_or(0, |lease| lease.epoch);
        let lost = match loaded {
            Ok(loaded) => match handle(&shared, &key, loaded, &mut queued, epoch, &settle).await {
                Round::Done(next) => {
                    cart = Some(next);
                    false
                }
                Round::Reload => false,
                Round::Lost => true,
            },
            Err(error) => {
                settle(queued.len());
                queued.drain(..).for_each(|command| command.answer(Err(error.clone())));
                false
            }
        };
        if lost {
            break Some("the journal moved on without this node".to_string());
        }
    };
    // Calls still queued, or sent before the channel closes, go elsewhere.
    commands.close();
    let orderly = ending.is_none();
    if let Some(detail) = ending {
        let moved = CartError::Moved { plugin: key.plugin.clone(), cart: key.cart.clone(), detail };
        let mut rest: Vec<Command> = queued.drain(..).collect();
        while let Ok(command) = commands.try_recv() {
            rest.push(command);
        }
        settle(rest.len());
        rest.into_iter().for_each(|command| command.answer(Err(moved.clone())));
    }
    // Given up in good order (evicted, or the node is leaving): leave a
    // snapshot behind, so the next owner replays nothing.
    if let (true, Some(loaded)) = (orderly, cart)
        && loaded.version > loaded.snapshot_version
        && let Some(state) = loaded.state
    {
        let snapshot = Snapshot { version: loaded.version, state };
        if let Err(error) = shared.store.keep_snapshot(&key, snapshot, loaded.position).await {
            tracing::warn!(plugin = %key.plugin, cart = %key.cart, "leaving a snapshot failed (the journal has it all): {error}");
        }
    }
    owned.store(0, Ordering::Release);
    if let (Some(owners), Some(lease)) = (&shared.owners, tenure) {
        shared.metrics.leases_held.dec();
        owners.release(lease).await;
    }
}

/// The latest snapshot plus a replay of the journal entries after it,
/// each checked against the digest recorded when it was first applied.
async fn load(shared: &Shared, key: &CartKey) -> Result<Loaded, CartError> {
    let stored = shared.store.load(key).await.map_err(|e| CartError::Storage(e.to_string()))?;
    let (stored, position, writer) = (stored.stored, stored.position, stored.writer);
    let snapshot_version = stored.snapshot.as_ref().map_or(0, |s| s.version);
    let state = stored.snapshot.map(|s| s.state);
    let mut loaded = Loaded { version: snapshot_version, state, snapshot_version, position, writer };
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
        if entry.version != loaded.version + 1 {
            return Err(diverged(format!("the journal skips from version {} to {}", loaded.version, entry.version)));
        }
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

/// Handles one round: takes commands from `queued` until it is empty or
/// the round's commit would hold more messages than the store takes (the
/// rest wait for the next round).
async fn handle(
    shared: &Shared,
    key: &CartKey,
    loaded: Loaded,
    queued: &mut VecDeque<Command>,
    epoch: u64,
    settle: &(dyn Fn(usize) + Sync),
) -> Round {
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
    let mut used = Budget::default();
    // The round's client ids are looked up together: in a cluster each is a
    // read from the stream's leader.
    let mut records = recorded(shared, key, queued).await;
    while let Some(command) = queued.pop_front() {
        let (request, arrived, reply) = match command {
            Command::Get { reply, .. } => {
                let current = CartReply { version, state: state.clone(), events: Vec::new(), repeated: false };
                answers.push(Answer::Ready(reply, Ok(current), None));
                continue;
            }
            Command::Mutate { request, arrived, reply } => (request, arrived, reply),
        };
        let arrival = Arrival { at: arrived, transport: request.transport };
        if let Some(id) = &request.client_id {
            if let Some(&index) = pending.get(id) {
                answers.push(Answer::Applied(reply, index, arrival, true));
                continue;
            }
            let found = match records.remove(id) {
                Some(found) => found,
                None => shared.store.recorded(key, id).await,
            };
            match found {
                Ok(Some(recorded)) => {
                    let reply_value = CartReply {
                        version: recorded.version,
                        state: Some(recorded.state),
                        events: recorded.events,
                        repeated: true,
                    };
                    answers.push(Answer::Ready(reply, Ok(reply_value), Some(arrival)));
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    answers.push(Answer::Ready(reply, Err(CartError::Storage(error.to_string())), Some(arrival)));
                    continue;
                }
            }
        }
        match apply(machine.as_deref(), key, state.as_deref(), &request).await {
            Ok((mutation, outcome, machine_version, every)) => {
                let done = to_applied(key, &request, mutation, &outcome, version + 1, machine_version);
                match shared.store.admit(&mut used, &done) {
                    Admit::Fits => {}
                    // Applied again at the start of the next round.
                    Admit::NextRound if !applied.is_empty() => {
                        queued.push_front(Command::Mutate { request, arrived, reply });
                        break;
                    }
                    Admit::NextRound => {
                        let message = "the mutation does not fit in a commit".to_string();
                        let rejected =
                            CartError::Rejected { plugin: key.plugin.clone(), code: "too-large".into(), message };
                        answers.push(Answer::Ready(reply, Err(rejected), Some(arrival)));
                        continue;
                    }
                    Admit::Never(message) => {
                        let rejected =
                            CartError::Rejected { plugin: key.plugin.clone(), code: "too-large".into(), message };
                        answers.push(Answer::Ready(reply, Err(rejected), Some(arrival)));
                        continue;
                    }
                }
                version += 1;
                snapshot_every = snapshot_every.min(every);
                if let Some(id) = &request.client_id {
                    pending.insert(id.clone(), applied.len());
                }
                answers.push(Answer::Applied(reply, applied.len(), arrival, false));
                applied.push(done);
                state = Some(outcome.state);
            }
            Err(error) => answers.push(Answer::Ready(reply, Err(error), Some(arrival))),
        }
    }
    if applied.is_empty() {
        settle(answers.len());
        answers::finish(&shared.metrics, key, answers, &[]);
        return Round::Done(loaded);
    }
    let snapshot = match version - loaded.snapshot_version >= snapshot_every {
        true => state.clone().map(|state| Snapshot { version, state }),
        false => None,
    };
    let snapshot_version = snapshot.as_ref().map_or(loaded.snapshot_version, |s| s.version);
    let commit = CartCommit { key: key.clone(), applied, snapshot };
    let started = Instant::now();
    let result = shared.store.commit(commit, loaded.position, epoch).await;
    shared.metrics.commit_seconds.with_label_values(&[shared.store.name()]).observe(started.elapsed().as_secs_f64());
    let error = match result {
        Ok((committed, position)) => {
            settle(answers.len());
            answers::finish(&shared.metrics, key, answers, &committed.applied);
            // Answered first: a snapshot outside the commit (the cluster's)
            // only shortens the next load.
            if let Some(snapshot) = committed.snapshot
                && let Err(error) = shared.store.keep_snapshot(key, snapshot, position).await
            {
                tracing::warn!(plugin = %key.plugin, cart = %key.cart, "storing a snapshot failed (the journal has it all): {error}");
            }
            return Round::Done(Loaded { version, state, snapshot_version, position, writer: None });
        }
        Err(error) => error,
    };
    let (failed, round) = match error {
        StoreError::Fenced(detail) => {
            tracing::warn!(plugin = %key.plugin, cart = %key.cart, "cart commit fenced: {detail}");
            shared.metrics.fenced.inc();
            (CartError::Moved { plugin: key.plugin.clone(), cart: key.cart.clone(), detail }, Round::Lost)
        }
        StoreError::Busy(detail) => {
            (CartError::Busy { plugin: key.plugin.clone(), cart: key.cart.clone(), detail }, Round::Done(loaded))
        }
        StoreError::Failed(detail) => {
            tracing::error!(plugin = %key.plugin, cart = %key.cart, "cart commit failed: {detail}");
            (CartError::Storage(detail), Round::Reload)
        }
    };
    settle(answers.len());
    answers::fail(&shared.metrics, key, answers, &failed);
    round
}

/// The recorded results of the queued mutations' client ids, read at once.
async fn recorded(
    shared: &Shared,
    key: &CartKey,
    queued: &VecDeque<Command>,
) -> HashMap<String, Result<Option<Recorded>, StoreError>> {
    let mut ids: Vec<&str> = queued
        .iter()
        .filter_map(|command| match command {
            Command::Mutate { request, .. } => request.client_id.as_deref(),
            Command::Get { .. } => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let found = futures_util::future::join_all(ids.iter().map(|id| shared.store.recorded(key, id))).await;
    ids.into_iter().map(str::to_string).zip(found).collect()
}
