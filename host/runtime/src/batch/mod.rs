//! `corral:plugin/batch`: the host's side of a batched fold
//! (`batch-projector.fold`). One instance folds a run of events; the host
//! follows the guest from event to event (`begin`), so each event gets its
//! own clock, randomness, fuel budget and deadline. The guest keeps what its
//! events write and hands the host the last value of each view it wrote
//! (`flush`); a view it has not written is read from [`PendingViews`]: the
//! flushed writes over the stored views.
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
mod walk;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, WasmStr};

use crate::error::{InvokeError, InvokeErrorKind};
use crate::invoke::CallContext;
use crate::plugin::{Plugin, Pre};
use crate::state::HostState;
use crate::types::Event;
use crate::world::PACKAGE_VERSION;
use encode::{call_end, encode};
pub use pending::{PendingViews, ViewChange, ViewSource};
pub(crate) use walk::Walk;
use walk::{WalkError, Write};

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

/// How one instance's walk through a run of events ended.
struct Run {
    /// Events, from the run's start, whose writes reached the views.
    flushed: usize,
    stopped: Option<InvokeError>,
    /// The event (from the run's start) that failed or trapped, when the
    /// guest, not the protocol or the host, stopped the run.
    failed: Option<usize>,
    fuel_used: u64,
}

/// Adds `corral:plugin/batch` to the deterministic linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut batch = linker.instance(&format!("corral:plugin/batch@{PACKAGE_VERSION}"))?;
    batch.func_wrap("begin", |mut store: StoreContextMut<'_, HostState>, (index,): (u32,)| {
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
        let event = state.walk.begin(index).map_err(wasmtime::Error::new)?;
        state.inputs.set(event.timestamp_ms, &event.id);
        state.call.request_id.clear();
        state.call.request_id.push_str(&event.id);
        state.log_lines = 0;
        state.begun += 1;
        Ok(())
    })?;
    batch.func_wrap("current", |mut store: StoreContextMut<'_, HostState>, (id,): (WasmStr,)| {
        // The id into a kept buffer: the guest's memory and the walk are
        // both in the store.
        let mut buffer = std::mem::take(&mut store.data_mut().walk.id);
        buffer.clear();
        buffer.push_str(&id.to_str(&store)?);
        let walk = &mut store.data_mut().walk;
        let value = walk.current(&buffer);
        walk.id = buffer;
        value.map(|value| (value,)).map_err(wasmtime::Error::new)
    })?;
    batch.func_wrap("flush", |mut store: StoreContextMut<'_, HostState>, (writes, through): (Vec<Write>, u32)| {
        store.data_mut().walk.flush(writes, through).map_err(wasmtime::Error::new)
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
        let end = call_end(events, start);
        let run = self.fold_run(events, start..end, views).await;
        let mut folded = BatchFolded {
            folded: run.flushed,
            stopped: run.stopped,
            fuel_used: run.fuel_used,
            elapsed: started.elapsed(),
        };
        if let Some(failed) = run.failed.filter(|failed| *failed > run.flushed) {
            // The events between the last flush and the one that failed
            // folded, but their writes went with the instance.
            let again = self.fold_run(events, start + run.flushed..start + failed, views).await;
            folded.fuel_used += again.fuel_used;
            match again.stopped {
                None => folded.folded = failed,
                // Stopped again: whichever event it stopped at, the caller
                // folds that one alone, and its verdict counts as ever.
                Some(error) => {
                    folded.folded = run.flushed + again.flushed;
                    folded.stopped = Some(error);
                }
            }
        }
        folded.elapsed = started.elapsed();
        folded
    }

    /// Walks `events[calls]` in one fresh instance.
    async fn fold_run(&self, events: &Arc<[Event]>, calls: std::ops::Range<usize>, views: &PendingViews) -> Run {
        let stopped = |error: InvokeError| Run { flushed: 0, stopped: Some(error), failed: None, fuel_used: 0 };
        let Pre::BatchedProjection(pre) = &self.pre else {
            return stopped(self.wrong_world("batched-projection"));
        };
        let Some(first) = events.get(calls.start).filter(|_| !calls.is_empty()) else {
            return Run { flushed: 0, stopped: None, failed: None, fuel_used: 0 };
        };
        let mut session = match self.session(CallContext::for_batch(first)) {
            Ok(session) => session,
            Err(error) => return stopped(error),
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
            return stopped(self.error(InvokeErrorKind::Host("an event too large to hand over".into())));
        };
        session.store.data_mut().walk = Walk::new(events.clone(), calls, views.clone(), granted);
        let store = &mut session.store;
        let result = match pre.instantiate_async(&mut *store).await {
            Ok(instance) => instance.corral_plugin_batch_projector().call_fold(&mut *store, &text, &encoded).await,
            Err(e) => Err(e),
        };
        let mut walk = std::mem::take(&mut session.store.data_mut().walk);
        if walk.metering {
            walk.book_fuel(session.store.get_fuel().unwrap_or(0));
        }
        let finished = session.finish(result);
        let (flushed, fuel_used) = (walk.flushed, walk.fuel_used);
        let failed = |error: InvokeError| Run { flushed, stopped: Some(error), failed: walk.begun, fuel_used };
        let broken = |error: InvokeError| Run { flushed, stopped: Some(error), failed: None, fuel_used };
        if let Some(reason) = walk.views_failed.take() {
            return broken(self.error(InvokeErrorKind::Host(format!("reading a view: {reason}"))));
        }
        match finished {
            Err(error) if walk.broken => broken(error),
            Err(error) => failed(error),
            Ok(called) => match called.value {
                Err(failure) => {
                    failed(self.error(InvokeErrorKind::Guest { code: failure.code, message: failure.message }))
                }
                Ok(()) if flushed == walk.len() => Run { flushed, stopped: None, failed: None, fuel_used },
                Ok(()) => {
                    let breach = WalkError::Protocol(format!(
                        "returned before flushing the writes of events {flushed}..{}",
                        walk.len()
                    ));
                    broken(self.error(InvokeErrorKind::Trap(breach.to_string())))
                }
            },
        }
    }
}
