//! `corral:plugin/batch`: the host's side of a batched fold
//! (`batch-projector.fold`). One instance folds a run of events; the host
//! follows the guest from event to event (`begin`, which also carries the
//! previous event's write), so each event gets its own clock, randomness,
//! fuel budget and deadline, and every view read is served from
//! [`PendingViews`]: the writes of the events before it over the stored
//! views.
//!
//! The reference semantics stay one event in one fresh instance
//! ([`Plugin::fold`]): a batch stops at the first event that fails, traps or
//! breaks the protocol, and the caller folds that event alone, whose verdict
//! counts. A batch therefore never quarantines an event a fresh instance
//! would have folded (a memory limit reached by earlier events, say).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, WasmList, WasmStr};

use crate::error::{InvokeError, InvokeErrorKind};
use crate::invoke::CallContext;
use crate::plugin::{Plugin, Pre};
use crate::state::HostState;
use crate::types::Event;
use crate::world::PACKAGE_VERSION;

/// Most event bytes one batched call hands the guest at once: they share the
/// guest's memory limit with whatever it allocates itself.
const CALL_BYTES: usize = 4 << 20;

/// Where the views a projection folds into are stored.
pub trait ViewSource: Send + Sync {
    /// The stored value of view `id` of `tenant`.
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String>;
}

/// A batch's view writes over a [`ViewSource`]: what the next event reads,
/// and, in first-write order, what the batch commits. Cheap to clone; the
/// clones share the writes.
#[derive(Clone)]
pub struct PendingViews(Arc<Mutex<Overlay>>);

struct Overlay {
    source: Arc<dyn ViewSource>,
    /// tenant → id → value (none: deleted).
    written: HashMap<String, HashMap<String, Option<Vec<u8>>>>,
    order: Vec<(String, String)>,
}

/// A view change to commit: `((tenant, id), value)`, none deletes.
pub type ViewChange = ((String, String), Option<Vec<u8>>);

impl PendingViews {
    /// No writes yet, reading through to `source`.
    pub fn new(source: Arc<dyn ViewSource>) -> Self {
        PendingViews(Arc::new(Mutex::new(Overlay { source, written: HashMap::new(), order: Vec::new() })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Overlay> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of view `id` of `tenant` as the writes so far left it.
    pub fn get(&self, tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String> {
        let overlay = self.lock();
        match overlay.written.get(tenant).and_then(|views| views.get(id)) {
            Some(value) => Ok(value.clone()),
            None => overlay.source.get(tenant, id),
        }
    }

    /// Writes view `id` of `tenant` (none deletes it).
    pub fn set(&self, tenant: &str, id: String, value: Option<Vec<u8>>) {
        self.write(tenant, &id, value);
    }

    /// [`set`](Self::set) for a borrowed id: copied only when the batch
    /// writes the view for the first time.
    fn write(&self, tenant: &str, id: &str, value: Option<Vec<u8>>) {
        let mut overlay = self.lock();
        let Overlay { written, order, .. } = &mut *overlay;
        let views = match written.get_mut(tenant) {
            Some(views) => views,
            None => written.entry(tenant.to_string()).or_default(),
        };
        match views.get_mut(id) {
            Some(written) => *written = value,
            None => {
                order.push((tenant.to_string(), id.to_string()));
                views.insert(id.to_string(), value);
            }
        }
    }

    /// The writes, in first-write order, leaving none behind.
    pub fn take_changes(&self) -> Vec<ViewChange> {
        let mut overlay = self.lock();
        let Overlay { written, order, .. } = &mut *overlay;
        let changes = order
            .drain(..)
            .filter_map(|(tenant, id)| {
                let value = written.get_mut(&tenant)?.remove(&id)?;
                Some(((tenant, id), value))
            })
            .collect();
        written.clear();
        changes
    }
}

/// What one batched call folded.
#[derive(Debug)]
pub struct BatchFolded {
    /// How many events, from the start, were folded; their writes are in
    /// the [`PendingViews`].
    pub folded: usize,
    /// Why the event after them was not: fold it alone with
    /// [`Plugin::fold`], whose verdict counts.
    pub stopped: Option<InvokeError>,
    /// Fuel consumed, instantiation included (0 when metering is off).
    pub fuel_used: u64,
    /// Wall-clock time, instantiation included.
    pub elapsed: Duration,
}

/// The guest broke the protocol of `corral:plugin/batch`, or the views
/// could not be read.
#[derive(Debug, thiserror::Error)]
enum WalkError {
    #[error("batch protocol: {0}")]
    Protocol(String),
    #[error("reading view {id:?}: {reason}")]
    Views { id: String, reason: String },
}

/// An event's write: view id and new value (none deletes the view).
type Write = (String, Option<Vec<u8>>);

/// Where a batched fold is; idle (no events) outside one.
#[derive(Default)]
pub(crate) struct Walk {
    events: Arc<[Event]>,
    start: usize,
    end: usize,
    views: Option<PendingViews>,
    /// Index (from `start`) of the event begun last.
    begun: Option<usize>,
    /// The view the begun event read with `current`.
    read: Option<String>,
    /// Id buffers of earlier reads and writes, kept for their allocations.
    spare: Vec<String>,
    metering: bool,
    /// Fuel the store was last filled with.
    granted: u64,
    /// Fuel used up to the last refill.
    fuel_used: u64,
    /// A view read failed: the host's fault, not the guest's.
    views_failed: Option<String>,
}

impl Walk {
    fn new(events: Arc<[Event]>, calls: std::ops::Range<usize>, views: PendingViews, granted: Option<u64>) -> Walk {
        let (metering, granted) = (granted.is_some(), granted.unwrap_or(0));
        Walk { events, start: calls.start, end: calls.end, views: Some(views), metering, granted, ..Walk::default() }
    }

    /// Books the fuel used since the last refill, `left` being what remains.
    fn book_fuel(&mut self, left: u64) {
        self.fuel_used += self.granted.saturating_sub(left);
    }

    fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    fn event(&self, index: usize) -> Option<&Event> {
        self.events.get(self.start + index).filter(|_| index < self.len())
    }

    /// An empty buffer for an id: one of an earlier id, if any is left.
    fn id_buffer(&mut self) -> String {
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer
    }

    /// Moves to event `index`: the previous event's write takes effect.
    fn begin(&mut self, index: u32, previous: Option<Write>) -> Result<&Event, WalkError> {
        let expected = self.begun.map_or(0, |begun| begun + 1);
        let index = index as usize;
        if index != expected || index >= self.len() {
            return Err(WalkError::Protocol(format!("begin({index}) where begin({expected}) was due")));
        }
        self.settle(previous)?;
        self.begun = Some(index);
        self.event(index).ok_or_else(|| WalkError::Protocol(format!("no event {index}")))
    }

    fn current(&mut self, id: String) -> Result<Option<Vec<u8>>, WalkError> {
        let (Some(index), None) = (self.begun, &self.read) else {
            return Err(WalkError::Protocol("current() before begin() or twice for one event".into()));
        };
        let (Some(event), Some(views)) = (self.event(index), &self.views) else {
            return Err(WalkError::Protocol("current() outside a batch".into()));
        };
        match views.get(&event.tenant, &id) {
            Ok(value) => {
                self.read = Some(id);
                Ok(value)
            }
            Err(reason) => {
                self.views_failed = Some(reason.clone());
                Err(WalkError::Views { id, reason })
            }
        }
    }

    /// Ends the begun event (if any) with its `write`, which must be to
    /// the view it read, if it read one.
    fn settle(&mut self, write: Option<Write>) -> Result<(), WalkError> {
        let read = self.read.take();
        let outcome = match (&read, write) {
            (None, None) => Ok(()),
            (Some(read), None) => {
                Err(WalkError::Protocol(format!("the event read view {read:?} and ended without writing it")))
            }
            (Some(read), Some((id, _))) if *read != id => {
                Err(WalkError::Protocol(format!("the event read view {read:?} and wrote view {id:?}")))
            }
            (_, Some((id, value))) => {
                match (self.begun.and_then(|index| self.event(index)), &self.views) {
                    (Some(event), Some(views)) => views.write(&event.tenant, &id, value),
                    _ => return Err(WalkError::Protocol("a write before begin(0)".into())),
                }
                self.spare.push(id);
                Ok(())
            }
        };
        self.spare.extend(read);
        outcome
    }

    /// How many events stand once the guest returned the last event's
    /// write (`Some`) or failed (`None`), and the protocol breach that
    /// stops the batch early, if any.
    fn finish(&mut self, last: Option<Option<Write>>) -> (usize, Option<WalkError>) {
        let begun = self.begun;
        let Some(write) = last else {
            return (begun.unwrap_or(0), None);
        };
        let Some(last) = begun else {
            return match self.len() {
                0 => (0, None),
                _ => (0, Some(WalkError::Protocol("returned before begin(0)".into()))),
            };
        };
        if let Err(breach) = self.settle(write) {
            return (last, Some(breach));
        }
        match last + 1 == self.len() {
            true => (last + 1, None),
            false => (last + 1, Some(WalkError::Protocol(format!("returned before begin({})", last + 1)))),
        }
    }
}

/// Adds `corral:plugin/batch` to the deterministic linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    type WasmWrite = (WasmStr, Option<WasmList<u8>>);
    let mut batch = linker.instance(&format!("corral:plugin/batch@{PACKAGE_VERSION}"))?;
    batch.func_wrap(
        "begin",
        |mut store: StoreContextMut<'_, HostState>, (index, previous): (u32, Option<WasmWrite>)| {
            // The id into a buffer of an earlier one: most writes allocate
            // nothing here.
            let previous = match previous {
                Some((id, value)) => {
                    let value = value.map(|value| value.as_le_slice(&store).to_vec());
                    let mut buffer = store.data_mut().walk.id_buffer();
                    buffer.push_str(&id.to_str(&store)?);
                    Some((buffer, value))
                }
                None => None,
            };
            // Each event starts with the whole budget, as in a fresh instance.
            if store.data().walk.metering {
                let budget = store.data().plugin.limits.fuel;
                let left = store.get_fuel()?;
                let walk = &mut store.data_mut().walk;
                walk.book_fuel(left);
                walk.granted = budget;
                store.set_fuel(budget)?;
            }
            let state = store.data_mut();
            let event = state.walk.begin(index, previous).map_err(wasmtime::Error::new)?;
            state.inputs.set(event.timestamp_ms, &event.id);
            state.call.request_id.clear();
            state.call.request_id.push_str(&event.id);
            state.log_lines = 0;
            state.begun += 1;
            Ok(())
        },
    )?;
    batch.func_wrap("current", |mut store: StoreContextMut<'_, HostState>, (id,): (WasmStr,)| {
        let mut buffer = store.data_mut().walk.id_buffer();
        buffer.push_str(&id.to_str(&store)?);
        store.data_mut().walk.current(buffer).map(|value| (value,)).map_err(wasmtime::Error::new)
    })?;
    Ok(())
}

impl Plugin {
    /// Whether the component folds batches (`batch-projector`).
    pub fn folds_batches(&self) -> bool {
        matches!(&self.pre, Pre::BatchedProjection(_))
    }

    /// Folds `events[start..]` in one instance of a batched projection,
    /// reading and writing `views`. Stops at the first event that fails, with
    /// the events before it folded: the caller folds that one alone. Folds
    /// fewer events without failing when they are too large to hand over at
    /// once: the caller goes on from where it stopped.
    pub async fn fold_batch(&self, events: &Arc<[Event]>, start: usize, views: &PendingViews) -> BatchFolded {
        let started = Instant::now();
        let stopped = |error: InvokeError| BatchFolded {
            folded: 0,
            stopped: Some(error),
            fuel_used: 0,
            elapsed: started.elapsed(),
        };
        let Pre::BatchedProjection(pre) = &self.pre else {
            return stopped(self.wrong_world("batched-projection"));
        };
        let Some(first) = events.get(start) else {
            return BatchFolded { folded: 0, stopped: None, fuel_used: 0, elapsed: started.elapsed() };
        };
        let mut session = match self.session(CallContext::for_batch(first)) {
            Ok(session) => session,
            Err(error) => return stopped(error),
        };
        let end = call_end(events, start);
        // Until `begin(0)`: instantiation and handing over every event, for
        // which a fresh instance per event would give each event a budget.
        let granted = self.metering.then(|| self.identity.limits.fuel.saturating_mul((end - start) as u64));
        if let Some(granted) = granted {
            // Only fails when metering is off, which the branch excludes.
            let _ = session.store.set_fuel(granted);
        }
        session.store.data_mut().walk = Walk::new(events.clone(), start..end, views.clone(), granted);
        let store = &mut session.store;
        let Some((text, encoded)) = encode(events.get(start..end).unwrap_or_default()) else {
            drop(session);
            return stopped(self.error(InvokeErrorKind::Host("an event too large to hand over".into())));
        };
        let mut result = match pre.instantiate_async(&mut *store).await {
            Ok(instance) => instance.corral_plugin_batch_projector().call_fold(&mut *store, &text, &encoded).await,
            Err(e) => Err(e),
        };
        let mut walk = std::mem::take(&mut session.store.data_mut().walk);
        if walk.metering {
            walk.book_fuel(session.store.get_fuel().unwrap_or(0));
        }
        let last = match &mut result {
            Ok(Ok(write)) => Some(write.take()),
            _ => None,
        };
        let (folded, breach) = walk.finish(last);
        let finished = session.finish(result);
        let stopped = match (walk.views_failed.take(), finished, breach) {
            (Some(reason), _, _) => Err(self.error(InvokeErrorKind::Host(format!("reading a view: {reason}")))),
            (None, Err(error), _) => Err(error),
            (None, Ok(_), Some(breach)) => Err(self.error(InvokeErrorKind::Trap(breach.to_string()))),
            (None, Ok(called), None) => match called.value {
                Ok(_) => Ok(()),
                Err(failure) => {
                    Err(self.error(InvokeErrorKind::Guest { code: failure.code, message: failure.message }))
                }
            },
        };
        BatchFolded { folded, stopped: stopped.err(), fuel_used: walk.fuel_used, elapsed: started.elapsed() }
    }
}

/// Where the call starting at `start` ends: at most [`CALL_BYTES`] of
/// events, and at least one event.
fn call_end(events: &[Event], start: usize) -> usize {
    let mut bytes = 0;
    for (index, event) in events.iter().enumerate().skip(start) {
        bytes += encoded_len(event);
        if bytes > CALL_BYTES && index > start {
            return index;
        }
    }
    events.len()
}

/// The bytes of `event` in `batch-projector.fold`'s encoding.
fn encoded_len(event: &Event) -> usize {
    let Event { id, topic, sequence: _, timestamp_ms: _, tenant, correlation_id, traceparent, payload } = event;
    8 + 8
        + 6 * 4
        + id.len()
        + topic.len()
        + tenant.len()
        + correlation_id.len()
        + traceparent.as_ref().map_or(0, String::len)
        + payload.len()
}

/// `events` as `batch-projector.fold` takes them (see its WIT): their
/// strings back to back, and the rest of each event after the strings'
/// lengths. None if a field is too long for a u32 length.
fn encode(events: &[Event]) -> Option<(String, Vec<u8>)> {
    fn len(field: &[u8]) -> Option<[u8; 4]> {
        u32::try_from(field.len()).ok().filter(|len| *len != u32::MAX).map(u32::to_le_bytes)
    }
    let mut text = String::with_capacity(events.iter().map(|e| encoded_len(e) - e.payload.len()).sum());
    let mut bytes = Vec::with_capacity(events.iter().map(|e| 8 + 8 + 6 * 4 + e.payload.len()).sum());
    for event in events {
        let Event { id, topic, sequence, timestamp_ms, tenant, correlation_id, traceparent, payload } = event;
        bytes.extend_from_slice(&sequence.to_le_bytes());
        bytes.extend_from_slice(&timestamp_ms.to_le_bytes());
        for field in [id, topic, tenant, correlation_id] {
            bytes.extend_from_slice(&len(field.as_bytes())?);
            text.push_str(field);
        }
        match traceparent {
            Some(traceparent) => {
                bytes.extend_from_slice(&len(traceparent.as_bytes())?);
                text.push_str(traceparent);
            }
            None => bytes.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
        bytes.extend_from_slice(&len(payload)?);
        bytes.extend_from_slice(payload);
    }
    Some((text, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stored;

    impl ViewSource for Stored {
        fn get(&self, _tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String> {
            match id {
                "broken" => Err("disk on fire".into()),
                _ => Ok(Some(format!("stored {id}").into_bytes())),
            }
        }
    }

    fn event(id: &str, tenant: &str) -> Event {
        Event {
            id: id.into(),
            topic: "t".into(),
            sequence: 1,
            timestamp_ms: 0,
            tenant: tenant.into(),
            correlation_id: String::new(),
            traceparent: None,
            payload: Vec::new(),
        }
    }

    fn walk(events: &[Event]) -> (Walk, PendingViews) {
        let views = PendingViews::new(Arc::new(Stored));
        (Walk::new(events.iter().cloned().collect(), 0..events.len(), views.clone(), None), views)
    }

    #[test]
    fn pending_views_read_through_and_keep_first_write_order() {
        let views = PendingViews::new(Arc::new(Stored));
        assert_eq!(views.get("a", "x").unwrap(), Some(b"stored x".to_vec()));
        views.set("a", "y".into(), Some(b"1".to_vec()));
        views.set("b", "x".into(), None);
        views.set("a", "y".into(), Some(b"2".to_vec()));
        assert_eq!(views.get("a", "y").unwrap(), Some(b"2".to_vec()));
        assert_eq!(views.get("b", "x").unwrap(), None, "a deletion hides the stored value");
        let changes = views.take_changes();
        assert_eq!(changes, vec![(("a".into(), "y".into()), Some(b"2".to_vec())), (("b".into(), "x".into()), None)]);
        assert!(views.take_changes().is_empty());
    }

    fn put(id: &str, value: &str) -> Option<Write> {
        Some((id.into(), Some(value.as_bytes().to_vec())))
    }

    #[test]
    fn a_later_event_reads_what_an_earlier_one_wrote_in_its_tenant() {
        let events = [event("e1", "a"), event("e2", "a"), event("e3", "b")];
        let (mut walk, views) = walk(&events);
        let mut previous = None;
        for (index, expected) in [(0, "stored v"), (1, "from e1"), (2, "stored v")] {
            walk.begin(index, previous).unwrap();
            let current = walk.current("v".into()).unwrap();
            assert_eq!(current.as_deref(), Some(expected.as_bytes()), "event {index}");
            previous = put("v", &format!("from e{}", index + 1));
        }
        assert_eq!(walk.finish(Some(previous)).0, 3);
        assert_eq!(views.get("a", "v").unwrap(), Some(b"from e2".to_vec()));
        assert_eq!(views.get("b", "v").unwrap(), Some(b"from e3".to_vec()));
    }

    #[test]
    fn events_write_delete_or_leave_views_alone() {
        let events = [event("e1", "a"), event("e2", "a"), event("e3", "a")];
        let (mut walk, views) = walk(&events);
        walk.begin(0, None).unwrap();
        walk.current("v".into()).unwrap();
        walk.begin(1, Some(("v".into(), None))).unwrap();
        assert_eq!(walk.current("v".into()).unwrap(), None, "deleted by event 0");
        walk.begin(2, put("v", "1")).unwrap();
        let (folded, breach) = walk.finish(Some(None));
        assert_eq!((folded, breach.is_none()), (3, true), "event 2 named no view");
        assert_eq!(views.take_changes(), vec![(("a".into(), "v".into()), Some(b"1".to_vec()))]);
    }

    #[test]
    fn an_event_may_write_a_view_it_kept_without_reading_it_again() {
        let events = [event("e1", "a"), event("e2", "a"), event("e3", "a")];
        let (mut walk, views) = walk(&events);
        walk.begin(0, None).unwrap();
        walk.current("v".into()).unwrap();
        walk.begin(1, put("v", "1")).unwrap();
        walk.begin(2, put("v", "2")).unwrap();
        assert_eq!(walk.finish(Some(put("w", "3"))).0, 3);
        let changes = views.take_changes();
        assert_eq!(
            changes,
            vec![(("a".into(), "v".into()), Some(b"2".to_vec())), (("a".into(), "w".into()), Some(b"3".to_vec()))]
        );
        assert!(walk.spare.len() >= 2, "id buffers are kept for reuse");
    }

    #[test]
    fn a_failing_event_leaves_the_ones_before_it_and_nothing_of_its_own() {
        let events = [event("e1", "a"), event("e2", "a"), event("e3", "a")];
        let (mut walk, views) = walk(&events);
        walk.begin(0, None).unwrap();
        walk.current("v".into()).unwrap();
        walk.begin(1, put("v", "1")).unwrap();
        walk.current("v".into()).unwrap();
        assert_eq!(walk.finish(None).0, 1, "event 1 failed");
        assert_eq!(views.get("a", "v").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn protocol_breaches_stop_the_batch_where_they_happen() {
        let events = [event("e1", "a"), event("e2", "a")];
        let (mut walk, _) = walk(&events);
        assert!(walk.current("v".into()).is_err(), "current before begin");
        assert!(walk.begin(1, None).is_err(), "an index skipped");
        assert!(walk.begin(0, put("v", "1")).is_err(), "a write before any event");
        walk.begin(0, None).unwrap();
        walk.current("v".into()).unwrap();
        assert!(walk.current("w".into()).is_err(), "a second read for one event");
        assert!(walk.begin(1, None).is_err(), "read a view and ended without writing it");

        let (mut walk, _) = self::walk(&events);
        walk.begin(0, None).unwrap();
        walk.current("v".into()).unwrap();
        let breach = walk.begin(1, put("w", "1")).unwrap_err();
        assert!(breach.to_string().contains("read view \"v\" and wrote view \"w\""), "{breach}");

        let (mut walk, _) = self::walk(&events);
        walk.begin(0, None).unwrap();
        let (folded, breach) = walk.finish(Some(None));
        assert_eq!(folded, 1);
        assert!(breach.unwrap().to_string().contains("returned before begin(1)"));

        let (mut walk, _) = self::walk(&events);
        walk.begin(0, None).unwrap();
        walk.current("v".into()).unwrap();
        let (folded, breach) = walk.finish(Some(None));
        assert_eq!((folded, breach.is_some()), (0, true), "read a view and returned without writing it");
    }

    #[test]
    fn events_are_encoded_as_their_strings_and_the_rest() {
        let mut first = event("e1", "acme");
        first.traceparent = Some("00-tp".into());
        first.payload = b"{}".to_vec();
        let (text, bytes) = encode(&[first.clone(), event("e2", "")]).unwrap();
        assert_eq!(text, "e1tacme00-tpe2t");
        let mut expected = Vec::new();
        for (sequence, lengths, payload) in [(1u64, [2, 1, 4, 0, 5], &b"{}"[..]), (1, [2, 1, 0, 0, u32::MAX], b"")] {
            expected.extend_from_slice(&sequence.to_le_bytes());
            expected.extend_from_slice(&0u64.to_le_bytes());
            lengths.iter().for_each(|len| expected.extend_from_slice(&len.to_le_bytes()));
            expected.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            expected.extend_from_slice(payload);
        }
        assert_eq!(bytes, expected);
        assert_eq!(text.len() + bytes.len(), encoded_len(&first) + encoded_len(&event("e2", "")));
    }

    #[test]
    fn a_call_hands_over_a_bounded_run_of_events() {
        let mut big = event("big", "a");
        big.payload = vec![0; CALL_BYTES];
        let events = [event("e1", "a"), big.clone(), event("e3", "a"), big, event("e5", "a")];
        assert_eq!(call_end(&events, 0), 1, "up to the event that crosses the limit");
        assert_eq!(call_end(&events, 1), 2, "at least one event, however large");
        assert_eq!(call_end(&events, 2), 3);
        assert_eq!(call_end(&events[..1], 0), 1);
    }

    #[test]
    fn a_failed_read_is_the_hosts_fault() {
        let events = [event("e1", "a")];
        let (mut walk, _) = walk(&events);
        walk.begin(0, None).unwrap();
        assert!(matches!(walk.current("broken".into()), Err(WalkError::Views { .. })));
        assert_eq!(walk.views_failed.as_deref(), Some("disk on fire"));
    }
}
