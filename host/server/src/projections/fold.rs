//! Projections: deterministic folds of events into views. Each projection
//! consumes its topics from its checkpoint; per event `key()` names the view,
//! the current value is read (pending batch first, then storage), `apply()`
//! returns the new one. A batched projection does this for a run of events
//! in one instance (`corral_runtime::batch`); a per-event one, and any event
//! a run stops at, get a fresh instance each. Views and the checkpoint are committed in one LMDB
//! transaction per batch, so a crash replays the batch and ends with the
//! same bytes. Events at or below the checkpoint are never fetched again,
//! so redelivery never double-applies.
//!
//! An `apply` that traps or fails is deterministic: retrying cannot help.
//! The event is quarantined (recorded with the error) and, per the sidecar,
//! the projection halts before it (default) or skips it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use corral_runtime::batch::ViewChange;
use corral_runtime::types::Event;
use corral_runtime::{FoldStep, InvokeErrorKind, PendingViews, ViewSource};
use corral_storage::Storage;
use corral_storage::log::EventRecord;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::events::stream::{EventStream, StreamError, to_event};
use crate::metrics::FoldMetrics;
use crate::plugins::mounted::Mounted;
use crate::plugins::sidecar::PoisonPolicy;
use crate::projections::quarantine::{self, Quarantined};
use crate::shutdown::pause;

/// Where a projection is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Folding events as they come.
    Running,
    /// Replaying the log after its views were cleared.
    Rebuilding,
    /// A new version's generation, built beside the active one.
    Building,
    /// Stopped before a quarantined event (policy `halt`).
    Halted,
}

/// A running projection and what the admin API shows of it.
pub(crate) struct Projector {
    pub(crate) mounted: Arc<Mounted>,
    /// Where this generation's views live (`NAME@HASH`).
    pub(crate) scope: String,
    pub(crate) consumer: String,
    /// Told once a building generation has caught up.
    caught_up: tokio::sync::mpsc::UnboundedSender<String>,
    /// Whether this generation has reached the head of the stream once.
    reached_head: AtomicBool,
    /// Why its last commit failed, until one succeeds again.
    failing: Mutex<Option<String>>,
    pub(crate) state: Mutex<State>,
    pub(crate) quarantined: Mutex<Vec<Quarantined>>,
    pub(crate) metrics: FoldMetrics,
}

impl Projector {
    pub(crate) fn new(
        mounted: Arc<Mounted>,
        scope: String,
        state: State,
        metrics: FoldMetrics,
        caught_up: tokio::sync::mpsc::UnboundedSender<String>,
        quarantined: Vec<Quarantined>,
    ) -> Projector {
        Projector {
            consumer: format!("projection.{scope}"),
            scope,
            caught_up,
            reached_head: AtomicBool::new(false),
            failing: Mutex::new(None),
            mounted,
            state: Mutex::new(state),
            quarantined: Mutex::new(quarantined),
            metrics,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.mounted.plugin.name()
    }

    pub(crate) fn state(&self) -> State {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_state(&self, state: State) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// Whether this generation has reached the head of the stream once (a
    /// building one is then ready to cut over).
    pub(crate) fn reached_head(&self) -> bool {
        self.reached_head.load(Ordering::Relaxed)
    }

    /// Why its commits fail, while they do.
    pub(crate) fn failing(&self) -> Option<String> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The generation is the active one now.
    pub(crate) fn promote(&self) {
        self.set_state(State::Running);
    }
}

/// How long an idle projection waits for events before it moves its
/// checkpoint past the events that matched none of its topics (and knows
/// it has caught up).
const IDLE: Duration = Duration::from_secs(2);

/// Folds until `stop` (or a halt).
pub(crate) async fn run(
    projector: Arc<Projector>,
    stream: Arc<dyn EventStream>,
    storage: Storage,
    mut stop: watch::Receiver<bool>,
) {
    let settings = projector.mounted.sidecar.projection.clone();
    let topics = projector.mounted.plugin.descriptor().topics.clone();
    let projection = projector.scope.clone();
    let mut announced = false;
    // From the checkpoint, again after anything went wrong: a batch that
    // was not committed is folded again (views and checkpoint commit
    // together, so nothing is applied twice).
    'resume: loop {
        if *stop.borrow() {
            return;
        }
        if !prepare_indexes(&projector, &storage).await {
            if pause(&mut stop, Duration::from_secs(1)).await {
                return;
            }
            continue;
        }
        let opened = match storage.checkpoint(&projector.consumer) {
            Ok(floor) => stream.reader(&topics, floor).map(|reader| (floor, reader)),
            Err(error) => Err(StreamError::Unavailable(error.to_string())),
        };
        let (mut floor, mut reader) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                tracing::error!(projection, "reading the checkpoint or the log failed: {error}");
                if pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        // Idle after a read found nothing new: then wait for events.
        let mut idle = false;
        loop {
            let wait = if idle { IDLE } else { Duration::ZERO };
            let head = stream.head().await.unwrap_or(u64::MAX);
            let first = tokio::select! {
                first = reader.next(settings.batch_size, wait) => first,
                _ = stop.changed() => return,
            };
            let mut events = match first {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(projection, "reading the log failed: {error}");
                    if pause(&mut stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue 'resume;
                }
            };
            if events.is_empty() {
                idle = true;
                let scanned = reader.scanned_to().await;
                if scanned > floor {
                    match storage.commit_views(
                        &projection,
                        &projector.consumer,
                        scanned,
                        &[],
                        &projector.mounted.indexes,
                    ) {
                        Ok(()) => floor = scanned,
                        Err(error) => tracing::error!(projection, "committing the checkpoint failed: {error}"),
                    }
                }
                // Caught up: nothing matched up to the head read before.
                if scanned < head {
                    continue;
                }
                projector.reached_head.store(true, Ordering::Relaxed);
                match projector.state() {
                    State::Rebuilding => {
                        projector.set_state(State::Running);
                        tracing::info!(projection, "rebuild caught up");
                    }
                    State::Building if !announced => {
                        announced = true;
                        let _ = projector.caught_up.send(projector.scope.clone());
                    }
                    _ => {}
                }
                continue;
            }
            idle = false;
            // Gather a batch: up to batch_size events, waiting at most
            // max_latency for a partial batch to fill.
            let deadline = Instant::now() + Duration::from_millis(settings.max_latency_ms);
            while events.len() < settings.batch_size {
                let left = deadline.saturating_duration_since(Instant::now());
                match reader.next(settings.batch_size - events.len(), left).await {
                    Ok(more) if !more.is_empty() => events.extend(more),
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(projection, "reading the log failed; folding what was read: {error}");
                        break;
                    }
                }
            }
            let scanned = reader.scanned_to().await.max(events.last().map_or(floor, |e| e.sequence));
            let span = tracing::trace_span!(
                "projection.batch",
                projection = projector.mounted.plugin.name(),
                generation = projection,
                events = events.len(),
                first = events.first().map_or(0, |e| e.sequence),
                last = events.last().map_or(0, |e| e.sequence),
            );
            if crate::traces::enabled() {
                for event in &events {
                    crate::traces::link(&span, event.traceparent.as_deref());
                }
            }
            match fold_batch(&projector, &storage, &events, settings.on_error).instrument(span.clone()).await {
                Folded::All(changes) => {
                    if !span.in_scope(|| commit(&projector, &storage, scanned, &changes, events.len())) {
                        continue 'resume;
                    }
                    floor = scanned;
                }
                Folded::Halted(changes, before) => {
                    // The events before the quarantined one were applied.
                    let applied = events.iter().take_while(|event| event.sequence <= before).count();
                    commit(&projector, &storage, before, &changes, applied);
                    projector.set_state(State::Halted);
                    tracing::error!(projection, sequence = before + 1, "projection halted before a quarantined event");
                    return;
                }
                Folded::Retry => {
                    if pause(&mut stop, Duration::from_millis(200)).await {
                        return;
                    }
                    continue 'resume;
                }
            }
        }
    }
}

/// Makes the generation's index entries agree with its declared indexes
/// (rebuilt from its views when the declaration changed) before anything
/// is folded; false if that failed (tried again).
async fn prepare_indexes(projector: &Arc<Projector>, storage: &Storage) -> bool {
    let (storage, scope, indexes) = (storage.clone(), projector.scope.clone(), projector.mounted.indexes.clone());
    let started = Instant::now();
    let prepared = tokio::task::spawn_blocking(move || storage.prepare_indexes(&scope, &indexes)).await;
    let projection = projector.scope.as_str();
    let failure = match prepared {
        Ok(Ok(rebuilt)) => {
            if let Some(views) = rebuilt {
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(projection, views, ms, "indexes rebuilt from the views for a changed declaration");
            }
            None
        }
        Ok(Err(error)) => Some(format!("preparing the indexes failed: {error}")),
        Err(error) => Some(format!("preparing the indexes failed: {error}")),
    };
    if let Some(failure) = &failure {
        tracing::error!(projection, "{failure}; trying again");
    }
    let ok = failure.is_none();
    *projector.failing.lock().unwrap_or_else(PoisonError::into_inner) = failure;
    ok
}

/// Commits a batch's views with the checkpoint; false if it failed (the
/// batch is folded again from the checkpoint).
fn commit(projector: &Projector, storage: &Storage, checkpoint: u64, changes: &[ViewChange], applied: usize) -> bool {
    let projection = projector.scope.as_str();
    let started = Instant::now();
    let result = storage.commit_views(projection, &projector.consumer, checkpoint, changes, &projector.mounted.indexes);
    *projector.failing.lock().unwrap_or_else(PoisonError::into_inner) = result.as_ref().err().map(|e| e.to_string());
    match result {
        Ok(()) => {
            projector.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
            projector.metrics.batch_size.observe(applied as f64);
            projector.metrics.applied.inc_by(applied as u64);
            true
        }
        Err(error) => {
            projector.metrics.commit_failures.inc();
            tracing::error!(projection, "committing views failed; the batch will be folded again: {error}");
            false
        }
    }
}

enum Folded {
    /// Every event folded: the changes to commit with the batch's end.
    All(Vec<ViewChange>),
    /// Halted before a quarantined event: commit these up to the sequence.
    Halted(Vec<ViewChange>, u64),
    /// A transient failure (timeout, busy, storage): fold the batch again.
    Retry,
}

/// A generation's stored views, read through by the batch's pending views.
struct StoredViews {
    storage: Storage,
    projection: String,
}

impl ViewSource for StoredViews {
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String> {
        self.storage.view_get(tenant, &self.projection, id).map_err(|e| e.to_string())
    }
}

/// Folds `records` in order into pending views. A batched projection folds
/// runs of them in one instance; the event a run stops at (and every event
/// of a per-event projection) is folded alone in a fresh instance, and that
/// verdict counts: quarantine, halt or skip are decided there only.
async fn fold_batch(projector: &Projector, storage: &Storage, records: &[EventRecord], policy: PoisonPolicy) -> Folded {
    let projection = projector.scope.as_str();
    let plugin = &projector.mounted.plugin;
    let source = StoredViews { storage: storage.clone(), projection: projection.to_string() };
    let views = PendingViews::new(Arc::new(source));
    let events: Arc<[Event]> = records.iter().map(to_event).collect();
    let mut next = 0;
    while next < events.len() {
        if plugin.folds_batches() {
            let batch = plugin.fold_batch(&events, next, &views).await;
            next += batch.folded;
            if batch.stopped.is_none() {
                continue;
            }
        }
        let (Some(record), Some(event)) = (records.get(next), events.get(next)) else { break };
        match plugin.fold(event, async |id: &str| views.get(&event.tenant, id)).await {
            Ok(called) => match called.value {
                FoldStep::Skip => {}
                FoldStep::Put { id, value } => views.set(&event.tenant, id, Some(value)),
                FoldStep::Delete { id } => views.set(&event.tenant, id, None),
            },
            Err(error) => match error.kind {
                InvokeErrorKind::Timeout(_) | InvokeErrorKind::Busy { .. } | InvokeErrorKind::Host(_) => {
                    tracing::warn!(
                        projection,
                        sequence = record.sequence,
                        "fold failed transiently, retrying: {}",
                        error.kind
                    );
                    return Folded::Retry;
                }
                _ => {
                    let quarantined = Quarantined {
                        sequence: record.sequence,
                        event_id: record.id.clone(),
                        topic: record.topic.clone(),
                        error: error.kind.to_string(),
                        at_ms: std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64),
                        halted: policy == PoisonPolicy::Halt,
                        skipped_by_operator: false,
                    };
                    tracing::error!(projection, sequence = record.sequence, "event quarantined: {}", error.kind);
                    quarantine::keep(storage, projection, &quarantined);
                    let mut list = projector.quarantined.lock().unwrap_or_else(PoisonError::into_inner);
                    list.retain(|q| q.sequence != quarantined.sequence);
                    list.push(quarantined);
                    if policy == PoisonPolicy::Halt {
                        return Folded::Halted(views.take_changes(), record.sequence - 1);
                    }
                }
            },
        }
        next += 1;
    }
    Folded::All(views.take_changes())
}
