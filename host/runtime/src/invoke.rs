//! One call = one store = one instance. Failures are classified into
//! [`InvokeError`] so the caller can answer 500, 503 or 504 with a reason.
//!
//! A call's deadline bounds it as a whole: the epoch callback traps a guest
//! that computes past it, and [`Session::bounded`] ends one that waits past
//! it (asleep on a WASI clock, or on a kv, emit or carts import) — the
//! call's future and its store are dropped at the deadline, which frees its
//! concurrency slot.
//!
//! CPU is shared fairly: a guest yields to the executor at every epoch
//! tick, and a call that has run past [`LONG_CALL`] runs only while it
//! holds one of the runtime's long-call permits (one fewer than the
//! cores), in slices of `LONG_SLICE`, so looping or heavy guests take turns
//! among themselves while short calls — almost every request — always find
//! a core. When every permit holder is suspended on I/O (none has run for
//! `LONG_WAIT`), a waiting long call runs anyway: slowed, never stalled.
//!
//! Nothing here builds an error value on the success path: with
//! `RUST_BACKTRACE=1` every error captures a backtrace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument as _;
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::call::{CallContext, Identity};
use crate::capped::{BodyTooLarge, Handle};
use crate::control::ControlPlane;
use crate::emit::Queued;
use crate::error::{InvokeError, InvokeErrorKind};
use crate::fair::Turn;
use crate::plugin::{Plugin, Pre};
use crate::store::HostState;
use crate::types::{Descriptor, Event, Failure, HttpRequest, HttpResponse, Mutation, Outcome};
use crate::warm::Pool;

pub use crate::fair::LONG_CALL;

/// A successful call's value and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Called<T> {
    /// What the guest returned.
    pub value: T,
    /// Fuel consumed (0 when metering is off).
    pub fuel_used: u64,
    /// Wall-clock time, instantiation included.
    pub elapsed: Duration,
}

/// What folding one event into a projection produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldStep {
    /// `key()` returned none: the event does not concern any view.
    Skip,
    /// Store `value` as the view `id`.
    Put {
        /// View id.
        id: String,
        /// New value.
        value: Vec<u8>,
    },
    /// Delete the view `id`.
    Delete {
        /// View id.
        id: String,
    },
}

/// A store for one call, holding a concurrency permit for as long as it lives.
pub(crate) struct Session {
    pub(crate) store: Store<HostState>,
    started: Instant,
    metering: bool,
    /// The call's span (plugin, version, world; fuel used and outcome when
    /// it ends): disabled unless traces are collected.
    span: tracing::Span,
    ran_long: Arc<AtomicBool>,
    _permit: OwnedSemaphorePermit,
}

/// When a call's time is up, and the span its guest code runs in.
pub(crate) struct Bound {
    at: tokio::time::Instant,
    pub(crate) span: tracing::Span,
}

impl Session {
    /// Runs `call` (a future over this session's store) until the call's
    /// deadline; past it, the call ends as an interrupt (a timeout).
    pub(crate) async fn bounded<T>(
        bound: &Bound,
        call: impl Future<Output = wasmtime::Result<T>>,
    ) -> wasmtime::Result<T> {
        match tokio::time::timeout_at(bound.at, call).instrument(bound.span.clone()).await {
            Ok(result) => result,
            Err(_) => Err(Trap::Interrupt.into()),
        }
    }

    /// When this call's time is up, and the span it runs in.
    pub(crate) fn deadline(&self) -> Bound {
        let at = tokio::time::Instant::from_std(self.started) + self.store.data().plugin.limits.timeout;
        Bound { at, span: self.span.clone() }
    }

    /// The events the call queued with `publish-on-success`, taken out of
    /// its store: published if it succeeds.
    pub(crate) fn take_queued(&mut self) -> Queued {
        std::mem::take(&mut self.store.data_mut().queued)
    }

    /// Ends the call: measures it and classifies a failure.
    pub(crate) fn finish<T>(self, result: wasmtime::Result<T>) -> Result<Called<T>, InvokeError> {
        self.finish_keeping_store(result).0
    }

    /// [`Session::finish`], giving the store back (for a warm instance).
    pub(crate) fn finish_keeping_store<T>(
        self,
        result: wasmtime::Result<T>,
    ) -> (Result<Called<T>, InvokeError>, Store<HostState>) {
        let outcome = self.outcome(result);
        (outcome, self.store)
    }

    fn outcome<T>(&self, result: wasmtime::Result<T>) -> Result<Called<T>, InvokeError> {
        let elapsed = self.started.elapsed();
        self.ran_long.store(elapsed >= LONG_CALL, Ordering::Relaxed);
        let identity = &self.store.data().plugin;
        // `get_fuel` errs when metering is off: ask only when it is on, so
        // no error value is built on the success path.
        let fuel_used = match self.metering {
            true => identity.limits.fuel.saturating_sub(self.store.get_fuel().unwrap_or(0)),
            false => 0,
        };
        self.span.record("fuel_used", fuel_used);
        match result {
            Ok(value) => {
                self.span.record("outcome", "ok");
                Ok(Called { value, fuel_used, elapsed })
            }
            Err(error) => {
                let kind = self.classify(&error);
                self.span.record("outcome", kind.label());
                self.span.record("otel.status_code", "error");
                Err(identity.error(kind))
            }
        }
    }

    fn classify(&self, error: &wasmtime::Error) -> InvokeErrorKind {
        let state = self.store.data();
        let limits = &state.plugin.limits;
        if state.limiter.exceeded {
            return InvokeErrorKind::MemoryLimit { limit: limits.memory_bytes };
        }
        if let Some(BodyTooLarge { bytes, limit }) = error.downcast_ref::<BodyTooLarge>() {
            return InvokeErrorKind::ResponseTooLarge { bytes: *bytes, limit: *limit };
        }
        let message = match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => return InvokeErrorKind::OutOfFuel { budget: limits.fuel },
            Some(Trap::Interrupt) => return InvokeErrorKind::Timeout(limits.timeout),
            Some(trap) => trap.to_string(),
            None => format!("{error:#}"),
        };
        match state.output.last_lines() {
            Some(output) => InvokeErrorKind::Trap(format!("{message}; guest output: {output}")),
            None => InvokeErrorKind::Trap(message),
        }
    }
}

impl Identity {
    pub(crate) fn error(&self, kind: InvokeErrorKind) -> InvokeError {
        InvokeError { plugin: self.name.clone(), version: self.version.clone(), kind }
    }

    /// Publishes what a successful call of this plugin queued, in one
    /// append where the log can; the call fails as `Unpublished` if the
    /// log cannot take them.
    pub(crate) async fn publish_queued(&self, control: &ControlPlane, queued: Queued) -> Result<(), InvokeError> {
        if queued.is_empty() {
            return Ok(());
        }
        match control.events.publish_all(queued.into_events()).await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.error(InvokeErrorKind::Unpublished(error.to_string()))),
        }
    }
}

impl Plugin {
    pub(crate) fn error(&self, kind: InvokeErrorKind) -> InvokeError {
        self.identity.error(kind)
    }

    /// A store for one call, its imports reaching `control`.
    pub(crate) fn session(&self, control: &Arc<ControlPlane>, call: CallContext) -> Result<Session, InvokeError> {
        let permit = self.permit()?;
        Ok(self.arm(self.fresh_store(control, call), permit))
    }

    /// One of the plugin's concurrency slots, or `Busy`.
    fn permit(&self) -> Result<OwnedSemaphorePermit, InvokeError> {
        match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => Err(self.error(InvokeErrorKind::Busy { max: self.identity.limits.max_concurrency })),
        }
    }

    /// A new store, its imports reaching `control`.
    fn fresh_store(&self, control: &Arc<ControlPlane>, call: CallContext) -> Store<HostState> {
        let state = HostState::new(self.identity.clone(), control.clone(), call);
        let mut store = Store::new(&self.engine, state);
        store.limiter_async(|state| &mut state.limiter);
        store
    }

    /// A session on one of `pool`'s warm instances when the plugin reuses
    /// them and one waits (its store set up for `call`), else on a fresh
    /// store; with that instance and the calls it served.
    fn session_from<I>(
        &self,
        pool: &Pool<I>,
        control: &Arc<ControlPlane>,
        call: CallContext,
    ) -> Result<(Session, Option<I>, u32), InvokeError> {
        let permit = self.permit()?;
        match self.identity.reuse.as_ref().and_then(|reuse| pool.take(reuse)) {
            Some(mut warm) => {
                warm.store.data_mut().begin_call(control.clone(), call);
                Ok((self.arm(warm.store, permit), Some(warm.instance), warm.calls))
            }
            None => Ok((self.arm(self.fresh_store(control, call), permit), None, 0)),
        }
    }

    /// Arms `store` for one call: fuel, the epoch callback (deadline,
    /// yields, long-call permits), the call's span; `permit` is held until
    /// the session ends.
    fn arm(&self, mut store: Store<HostState>, permit: OwnedSemaphorePermit) -> Session {
        let limits = &self.identity.limits;
        if self.metering {
            // Only fails when metering is off, which the branch excludes.
            let _ = store.set_fuel(limits.fuel);
        }
        // At every epoch tick the guest yields to the executor, so a long
        // call never holds a worker thread; past the deadline it traps. The
        // deadline lives in the store: a batched fold restarts it per segment.
        store.set_epoch_deadline(1);
        // A call past LONG_CALL (or past BIG_GROWTH of memory, see the
        // limiter) runs only while holding a long-call permit (`fair`).
        let turn = Turn::new(self.long_calls.clone(), self.long_ticked.clone())
            .long_from_start(self.ran_long.load(Ordering::Relaxed));
        store.data_mut().limiter.turn = Some(turn.clone());
        store.epoch_deadline_callback(move |mut store| {
            let state = store.data_mut();
            if state.batch.as_mut().is_some_and(|walk| walk.began_since_tick()) {
                // Another segment of a batch began since the last tick: its
                // time starts now, at most one tick late.
                state.deadline = Instant::now() + state.plugin.limits.timeout;
            }
            if Instant::now() >= state.deadline {
                return Err(Trap::Interrupt.into());
            }
            if !turn.is_long() || turn.running() {
                return Ok(UpdateDeadline::Yield(1));
            }
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(turn.clone().wait())))
        });
        let span = tracing::trace_span!(
            "call",
            plugin = %self.identity.name,
            version = %self.identity.version,
            world = %self.identity.world,
            fuel_used = tracing::field::Empty,
            outcome = tracing::field::Empty,
            "otel.status_code" = tracing::field::Empty,
        );
        let ran_long = self.ran_long.clone();
        Session { store, started: Instant::now(), metering: self.metering, span, ran_long, _permit: permit }
    }

    pub(crate) fn wrong_world(&self, wanted: &str) -> InvokeError {
        self.error(InvokeErrorKind::Host(format!("is a {} plugin, not a {wanted} plugin", self.identity.world)))
    }

    /// Calls `describe()`.
    pub async fn describe(&self, call: CallContext) -> Result<Called<Descriptor>, InvokeError> {
        if matches!(self.pre, Pre::WasiHttp(_)) {
            return Err(self.wrong_world("corral"));
        }
        let mut session = self.session(&ControlPlane::detached(), call)?;
        let deadline = session.deadline();
        let store = &mut session.store;
        let result = Session::bounded(&deadline, async {
            match &self.pre {
                Pre::Route(pre, _) => pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await,
                Pre::EventHandler(pre) => pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await,
                Pre::Projection(pre) => pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await,
                Pre::BatchedProjection(pre) => {
                    pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await
                }
                Pre::Cart(pre) => pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await,
                Pre::WasiHttp(_) => Err(wasmtime::format_err!("a wasi:http component exports no describe()")),
            }
        })
        .await;
        session.finish(result)
    }

    /// Handles an HTTP request with a `route` plugin, its imports reaching
    /// `control`, publishing what it queued; the body is not capped.
    pub async fn handle_http(
        &self,
        control: &Arc<ControlPlane>,
        call: CallContext,
        request: &HttpRequest,
    ) -> Result<Called<HttpResponse>, InvokeError> {
        let Called { value: (response, queued), fuel_used, elapsed } =
            self.handle_http_queued(control, call, request, u64::MAX).await?;
        self.publish_queued(control, queued).await?;
        Ok(Called { value: response, fuel_used, elapsed })
    }

    /// As [`Plugin::handle_http`], but leaves what the guest queued to the
    /// caller, who publishes it with [`Plugin::publish_queued`] once it
    /// accepts the response (and drops it if it refuses the response). A
    /// body over `max_body` bytes fails the call as
    /// [`InvokeErrorKind::ResponseTooLarge`] as it is lifted, uncopied.
    pub async fn handle_http_queued(
        &self,
        control: &Arc<ControlPlane>,
        call: CallContext,
        request: &HttpRequest,
        max_body: u64,
    ) -> Result<Called<(HttpResponse, Queued)>, InvokeError> {
        let Pre::Route(pre, index) = &self.pre else {
            return Err(self.wrong_world("route"));
        };
        let reuse = self.identity.reuse.as_ref();
        let (mut session, instance, calls) = self.session_from(&self.warm_routes, control, call)?;
        let deadline = session.deadline();
        let store = &mut session.store;
        let result = Session::bounded(&deadline, async {
            let handle = match instance {
                Some(handle) => handle,
                None => Handle::instantiate(pre, *index, &mut *store).await?,
            };
            Ok((handle.call(&mut *store, request, max_body).await?, handle))
        })
        .await;
        let queued = session.take_queued();
        let (outcome, store) = session.finish_keeping_store(result);
        let Called { value: (response, instance), fuel_used, elapsed } = outcome?;
        if let Some(reuse) = reuse {
            self.warm_routes.give_back(reuse, store, instance, calls + 1);
        }
        Ok(Called { value: (response, queued), fuel_used, elapsed })
    }

    /// Publishes what a successful call queued, in one append where the
    /// log can; fails as [`InvokeErrorKind::Unpublished`] if the log
    /// cannot take them (then none is assumed published).
    pub async fn publish_queued(&self, control: &ControlPlane, queued: Queued) -> Result<(), InvokeError> {
        self.identity.publish_queued(control, queued).await
    }

    /// Handles an event with an `event-handler` plugin; its imports reach
    /// `control`. Returns the events the handler queued with
    /// `publish-on-success`, for the caller to publish with the event's
    /// acknowledgement (a failed call's are dropped).
    pub async fn handle_event(
        &self,
        control: &Arc<ControlPlane>,
        call: CallContext,
        event: &Event,
    ) -> Result<Called<Queued>, InvokeError> {
        let Pre::EventHandler(pre) = &self.pre else {
            return Err(self.wrong_world("event-handler"));
        };
        let reuse = self.identity.reuse.as_ref();
        let (mut session, instance, calls) = self.session_from(&self.warm_handlers, control, call)?;
        let deadline = session.deadline();
        let store = &mut session.store;
        let result = Session::bounded(&deadline, async {
            let instance = match instance {
                Some(instance) => instance,
                None => pre.instantiate_async(&mut *store).await?,
            };
            let handled = instance.corral_plugin_event_consumer().call_handle(&mut *store, event).await?;
            Ok((handled, instance))
        })
        .await;
        let queued = session.take_queued();
        let (outcome, store) = session.finish_keeping_store(result);
        let Called { value: (handled, instance), fuel_used, elapsed } = outcome?;
        // A guest's own error recycles its instance too.
        if let (Some(reuse), Ok(())) = (reuse, &handled) {
            self.warm_handlers.give_back(reuse, store, instance, calls + 1);
        }
        let Called { value: (), fuel_used, elapsed } =
            self.guest_result(Called { value: handled, fuel_used, elapsed })?;
        Ok(Called { value: queued, fuel_used, elapsed })
    }

    /// Folds one event with a `projection` plugin: `key()`, then the current
    /// view from `read`, then `apply()`, in one fresh instance so nothing a
    /// guest keeps in memory can leak from one event into the next. This is
    /// the reference semantics a batched fold falls back to.
    pub async fn fold<F>(&self, event: &Event, read: F) -> Result<Called<FoldStep>, InvokeError>
    where
        F: AsyncFnOnce(&str) -> Result<Option<Vec<u8>>, String>,
    {
        if !matches!(self.pre, Pre::Projection(_) | Pre::BatchedProjection(_)) {
            return Err(self.wrong_world("projection"));
        }
        let mut session = self.session(&ControlPlane::detached(), CallContext::for_event(event))?;
        // Both worlds export `key` and `apply` with the same signatures, from
        // two generated interfaces.
        macro_rules! key_then_apply {
            ($pre:expr, $interface:ident) => {{
                let deadline = session.deadline();
                let store = &mut session.store;
                let instance = match Session::bounded(&deadline, $pre.instantiate_async(&mut *store)).await {
                    Ok(instance) => instance,
                    Err(e) => return session.finish(Err(e)),
                };
                let projector = instance.$interface();
                let id = match Session::bounded(&deadline, projector.call_key(&mut *store, event)).await {
                    Ok(Some(id)) => id,
                    Ok(None) => return session.finish(Ok(FoldStep::Skip)),
                    Err(e) => return session.finish(Err(e)),
                };
                if let Err(reason) = crate::views::check_view_id(&id) {
                    drop(session);
                    return Err(self.error(InvokeErrorKind::Guest { code: "invalid-view-id".into(), message: reason }));
                }
                let current = match read(&id).await {
                    Ok(current) => current,
                    Err(reason) => {
                        drop(session);
                        return Err(self.error(InvokeErrorKind::Host(format!("reading view {id:?}: {reason}"))));
                    }
                };
                (id, Session::bounded(&deadline, projector.call_apply(&mut *store, current.as_deref(), event)).await)
            }};
        }
        let (id, result) = match &self.pre {
            Pre::Projection(pre) => key_then_apply!(pre, corral_plugin_projector),
            Pre::BatchedProjection(pre) => key_then_apply!(pre, corral_plugin_batch_projector),
            _ => {
                drop(session);
                return Err(self.wrong_world("projection"));
            }
        };
        let called = session.finish(result)?;
        let Called { value, fuel_used, elapsed } = self.guest_result(called)?;
        let value = match value {
            Some(value) => FoldStep::Put { id, value },
            None => FoldStep::Delete { id },
        };
        Ok(Called { value, fuel_used, elapsed })
    }

    /// Applies a mutation with a `cart` plugin.
    pub async fn apply_mutation(
        &self,
        tenant: &str,
        state: Option<&[u8]>,
        mutation: &Mutation,
    ) -> Result<Called<Outcome>, InvokeError> {
        let Pre::Cart(pre) = &self.pre else {
            return Err(self.wrong_world("cart"));
        };
        let mut session = self.session(&ControlPlane::detached(), CallContext::for_mutation(mutation, tenant))?;
        let deadline = session.deadline();
        let store = &mut session.store;
        let result = Session::bounded(&deadline, async {
            let instance = pre.instantiate_async(&mut *store).await?;
            instance.corral_plugin_state_machine().call_apply(&mut *store, state, mutation).await
        })
        .await;
        let called = session.finish(result)?;
        self.guest_result(called)
    }

    /// Turns a guest's `result<_, failure>` into an [`InvokeError`] on `err`.
    fn guest_result<T>(&self, called: Called<Result<T, Failure>>) -> Result<Called<T>, InvokeError> {
        let Called { value, fuel_used, elapsed } = called;
        match value {
            Ok(value) => Ok(Called { value, fuel_used, elapsed }),
            Err(failure) => Err(self.error(InvokeErrorKind::Guest { code: failure.code, message: failure.message })),
        }
    }
}
