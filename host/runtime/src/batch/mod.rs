//! `corral:plugin/batch`: the host's side of a batched fold
//! (`batch-projector.fold`). One instance folds a run of events; the host
//! follows the guest in segments of events (`begin`), so each event gets
//! its own clock, randomness, fuel budget and deadline: a segment stands
//! for several events only while none of them reads the clocks or
//! randomness, logs, or needs more than one budget; otherwise the host
//! folds the run again from its last flush with one event per segment. The
//! guest keeps what its events write and hands the host the last value of
//! each view it wrote (`flush`); a view it has not written is read from
//! [`PendingViews`]: the flushed writes over the stored views.
//!
//! The reference semantics stay one event in one fresh instance
//! ([`Plugin::fold`]): a batch stops at the first event that fails, traps or
//! breaks the protocol, and the caller folds that event alone, whose verdict
//! counts. A batch therefore never quarantines an event a fresh instance
//! would have folded (a memory limit reached by earlier events, say).
//! Writes the guest had not flushed when it stopped are lost with the
//! instance: the host folds those events again, in a fresh instance.

mod encode;
mod pending;
pub(crate) mod walk;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::Instrument as _;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, WasmStr};

use crate::call::CallContext;
use crate::control::ControlPlane;
use crate::error::{InvokeError, InvokeErrorKind};
use crate::plugin::{Plugin, Pre};
use crate::store::HostState;
use crate::types::Event;
use crate::world::PACKAGE_VERSION;
use encode::{call_end, encode};
pub use pending::{PendingViews, ViewChange, ViewSource};
use walk::{Walk, WalkError, Write};

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
    /// Segments the host followed the guest in, over every instance.
    pub segments: usize,
    /// Wall-clock time, instantiation included.
    pub elapsed: Duration,
}

/// How one instance's walk through a run of events ended.
struct Run {
    /// Events, from the run's start, whose writes reached the views.
    flushed: usize,
    fuel_used: u64,
    segments: usize,
    ended: Ended,
}

enum Ended {
    /// Every event folded and flushed.
    Whole,
    /// Event `at` (from the run's start), alone in its segment, failed or
    /// trapped.
    Failed { at: usize, error: InvokeError },
    /// The guest broke the protocol, or the host could not read a view.
    Broken(InvokeError),
    /// The run stopped in a segment of several events, at an event not
    /// known, or after an event read an input its segment shared: fold it
    /// again one event per segment.
    Shared { error: InvokeError, segment: usize, misread: bool },
}

/// Adds `corral:plugin/batch` to the deterministic linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut batch = linker.instance(&format!("corral:plugin/batch@{PACKAGE_VERSION}"))?;
    batch.func_wrap("begin", |mut store: StoreContextMut<'_, HostState>, (index,): (u32,)| {
        // Each segment starts with the whole budget, as a fresh instance.
        if walk(store.data_mut())?.metering {
            let budget = store.data().plugin.limits.fuel;
            let left = store.get_fuel()?;
            let walk = walk(store.data_mut())?;
            walk.book_fuel(left);
            walk.granted = budget;
            store.set_fuel(budget)?;
        }
        let state = store.data_mut();
        let (event, next) = state.batch.as_mut().ok_or_else(outside)?.begin(index).map_err(wasmtime::Error::new)?;
        state.inputs.set(event.timestamp_ms, &event.id, next - index as usize > 1);
        state.call.request_id.clear();
        state.call.request_id.push_str(&event.id);
        state.restart_log();
        // At most the batch's length, which `encode` keeps within u32.
        Ok((u32::try_from(next).unwrap_or(u32::MAX),))
    })?;
    batch.func_wrap("current", |mut store: StoreContextMut<'_, HostState>, (index, id): (u32, WasmStr)| {
        // The id into a kept buffer: the guest's memory and the walk are
        // both in the store.
        let mut buffer = std::mem::take(&mut walk(store.data_mut())?.id);
        buffer.clear();
        buffer.push_str(&id.to_str(&store)?);
        let walk = walk(store.data_mut())?;
        let value = walk.current(index, &buffer);
        walk.id = buffer;
        value.map(|value| (value,)).map_err(wasmtime::Error::new)
    })?;
    batch.func_wrap("flush", |mut store: StoreContextMut<'_, HostState>, (writes, through): (Vec<Write>, u32)| {
        let state = store.data_mut();
        if state.inputs.misread() {
            // The writes may depend on what the segment's first event read.
            return Err(wasmtime::Error::new(WalkError::Misread));
        }
        walk(state)?.flush(writes, through).map_err(wasmtime::Error::new)
    })?;
    Ok(())
}

/// The walk of the batched fold a store runs.
fn walk(state: &mut HostState) -> wasmtime::Result<&mut Walk> {
    state.batch.as_mut().ok_or_else(outside)
}

/// `corral:plugin/batch` called by a store that folds no batch.
fn outside() -> wasmtime::Error {
    wasmtime::Error::new(WalkError::Protocol("the batch import was called outside a batched fold".into()))
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
        let end = call_end(events, start);
        let mut folded = BatchFolded { folded: 0, stopped: None, fuel_used: 0, segments: 0, elapsed: Duration::ZERO };
        let run = self.fold_run(events, start..end, views, self.stride.load(Ordering::Relaxed)).await;
        let (from, run) = match run.ended {
            Ended::Shared { ref error, segment, misread } => {
                // A guest that reads its inputs does so in every batch: walk
                // it event by event from now on. One that ran out of fuel or
                // time gets shorter segments.
                let shorter = match error.kind {
                    _ if misread => 1,
                    InvokeErrorKind::OutOfFuel { .. } | InvokeErrorKind::Timeout(_) => (segment / 4).max(1),
                    _ => usize::MAX,
                };
                self.stride.fetch_min(shorter, Ordering::Relaxed);
                folded.add(&run);
                let from = start + run.flushed;
                (from, self.fold_run(events, from..end, views, 1).await)
            }
            _ => (start, run),
        };
        self.settle(events, from, run, views, &mut folded).await;
        folded.elapsed = started.elapsed();
        folded
    }

    /// Adds the outcome of `run`, from event `from`, to `folded`. The events
    /// between its last flush and an event that failed went with the
    /// instance: they are folded again, in a fresh instance.
    async fn settle(
        &self,
        events: &Arc<[Event]>,
        from: usize,
        run: Run,
        views: &PendingViews,
        folded: &mut BatchFolded,
    ) {
        folded.add(&run);
        let (at, error) = match run.ended {
            Ended::Whole => return,
            Ended::Broken(error) | Ended::Shared { error, .. } => return folded.stopped = Some(error),
            Ended::Failed { at, error } => (at, error),
        };
        folded.stopped = Some(error);
        if at > run.flushed {
            let again = self.fold_run(events, from + run.flushed..from + at, views, 1).await;
            folded.add(&again);
            match again.ended {
                Ended::Whole => {}
                // Stopped again: whichever event it stopped at, the caller
                // folds that one alone, and its verdict counts as ever.
                Ended::Failed { error, .. } | Ended::Broken(error) | Ended::Shared { error, .. } => {
                    folded.stopped = Some(error);
                }
            }
        }
    }

    /// Walks `events[calls]` in one fresh instance, in segments of `stride`
    /// events.
    async fn fold_run(
        &self,
        events: &Arc<[Event]>,
        calls: std::ops::Range<usize>,
        views: &PendingViews,
        stride: usize,
    ) -> Run {
        let broken = |error: InvokeError| Run { flushed: 0, fuel_used: 0, segments: 0, ended: Ended::Broken(error) };
        let Pre::BatchedProjection(pre) = &self.pre else {
            return broken(self.wrong_world("batched-projection"));
        };
        let Some(first) = events.get(calls.start).filter(|_| !calls.is_empty()) else {
            return Run { flushed: 0, fuel_used: 0, segments: 0, ended: Ended::Whole };
        };
        let mut session = match self.session(&ControlPlane::detached(), CallContext::for_batch(first)) {
            Ok(session) => session,
            Err(error) => return broken(error),
        };
        // Until `begin(0)`: instantiation and handing over every event, for
        // which a fresh instance per event would give each event a budget.
        let granted = self.metering.then(|| self.identity.limits.fuel.saturating_mul(calls.len() as u64));
        if let Some(granted) = granted {
            // Only fails when metering is off, which the branch excludes.
            let _ = session.store.set_fuel(granted);
        }
        let Some((text, encoded)) = encode(events.get(calls.clone()).unwrap_or_default()) else {
            drop(session);
            return broken(self.error(InvokeErrorKind::Host("an event too large to hand over".into())));
        };
        session.store.data_mut().batch = Some(Walk::new(events.clone(), calls, views.clone(), stride, granted));
        let span = session.deadline().span;
        let store = &mut session.store;
        let result = async {
            let instance = pre.instantiate_async(&mut *store).await?;
            instance.corral_plugin_batch_projector().call_fold(&mut *store, &text, &encoded).await
        }
        .instrument(span)
        .await;
        let mut walk = session.store.data_mut().batch.take().unwrap_or_default();
        if walk.metering {
            walk.book_fuel(session.store.get_fuel().unwrap_or(0));
        }
        let misread = session.store.data().inputs.misread();
        let finished = session.finish(result);
        let (flushed, fuel_used, segments) = (walk.flushed, walk.fuel_used, walk.segments);
        let run = |ended: Ended| Run { flushed, fuel_used, segments, ended };
        if let Some(reason) = walk.views_failed.take() {
            return run(Ended::Broken(self.error(InvokeErrorKind::Host(format!("reading a view: {reason}")))));
        }
        let error = match finished {
            Err(error) if walk.broken => return run(Ended::Broken(error)),
            Err(error) => error,
            Ok(called) => match called.value {
                Err(failure) => self.error(InvokeErrorKind::Guest { code: failure.code, message: failure.message }),
                Ok(()) if flushed == walk.len() => return run(Ended::Whole),
                Ok(()) => {
                    let breach = WalkError::Protocol(format!(
                        "returned before flushing the writes of events {flushed}..{}",
                        walk.len()
                    ));
                    return run(Ended::Broken(self.error(InvokeErrorKind::Trap(breach.to_string()))));
                }
            },
        };
        // The guest stopped: the event it stopped at is known when it was
        // alone in its segment and read nothing its segment shared.
        match walk.begun {
            Some(begun) if misread || walk.shared() => {
                run(Ended::Shared { error, segment: walk.next - begun, misread })
            }
            Some(at) => run(Ended::Failed { at, error }),
            None => run(Ended::Broken(error)),
        }
    }
}

impl BatchFolded {
    /// Adds what `run` folded and used.
    fn add(&mut self, run: &Run) {
        self.folded += run.flushed;
        self.fuel_used += run.fuel_used;
        self.segments += run.segments;
    }
}
