//! Warm instances (opt-in per plugin, [`Reuse`]): a route or event-handler
//! plugin's instance serves many calls, one at a time, instead of one. What
//! carries over from one call to the next is the guest's own memory — its
//! globals, caches, heap — and nothing of the host's: each call gets its
//! own context (tenant, request id, correlation, traceparent, deadline),
//! fuel budget, queued events and log count (`HostState::begin_call`), so
//! kv, views, carts and outgoing HTTP are scoped to that call alone. An
//! instance is recycled after `max_calls`, after any failed call, once its
//! memory passes `max_memory_bytes`, and after `max_idle` without a call.
//! The deterministic worlds never reuse instances.

use std::sync::{Mutex, PoisonError};

/// What a warm instance keeps from one call to the next, as `GET /plugins`
/// and `host inspect` say it.
pub const REUSE_CARRIES_OVER: &str = "the guest's own memory (globals, caches, heap) of earlier calls, possibly \
     of other tenants; never the host's data: tenant, request id, deadline, fuel, kv, views, carts, events and \
     outgoing HTTP are each call's own";
use std::time::Instant;

use wasmtime::Store;

use crate::settings::Reuse;
use crate::store::HostState;

/// An instance between calls, and its store.
pub(crate) struct Warm<I> {
    pub(crate) store: Store<HostState>,
    pub(crate) instance: I,
    /// Calls it has served.
    pub(crate) calls: u32,
    idle_since: Instant,
}

/// A plugin's idle instances of one world's bindings.
pub(crate) struct Pool<I> {
    idle: Mutex<Vec<Warm<I>>>,
}

impl<I> Default for Pool<I> {
    fn default() -> Self {
        Pool { idle: Mutex::new(Vec::new()) }
    }
}

impl<I> Pool<I> {
    /// The most recently used idle instance still within `reuse`'s idle
    /// time; the ones past it are dropped.
    pub(crate) fn take(&self, reuse: &Reuse) -> Option<Warm<I>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|warm| warm.idle_since.elapsed() < reuse.max_idle);
        idle.pop()
    }

    /// Keeps an instance that served its call well, unless it has served
    /// enough calls or grown past the memory threshold.
    pub(crate) fn give_back(&self, reuse: &Reuse, store: Store<HostState>, instance: I, calls: u32) {
        if calls >= reuse.max_calls || store.data().limiter.memory_bytes() > reuse.max_memory_bytes {
            return;
        }
        let warm = Warm { store, instance, calls, idle_since: Instant::now() };
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(warm);
    }

    /// Instances waiting for a call.
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}
