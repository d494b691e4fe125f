//! What a store carries for one call ([`HostState`]): WASI, wasi:http, the
//! resource table, the memory limiter, who calls and for whom, the control
//! plane chosen for the call, and — in a batched fold only — the walk. It
//! only composes the per-interface contexts: each import module implements
//! its `Host` trait on a view that borrows what it needs from here.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::batch::walk::Walk;
use crate::call::{CallContext, Identity};
use crate::carts::CartsHost;
use crate::control::ControlPlane;
use crate::deterministic::{Inputs, StoppedTimersView};
use crate::emit::{EmitHost, Queued};
use crate::fair::Turn;
use crate::http_hooks::OutgoingHooks;
use crate::kv::KvHost;
use crate::log::LogHost;
use crate::stdio::OutputTail;
use crate::views::ViewsHost;

/// The `T` of every `Store<T>`.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutgoingHooks,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) plugin: Arc<Identity>,
    pub(crate) call: CallContext,
    control: Arc<ControlPlane>,
    pub(crate) output: OutputTail,
    /// Log lines written so far in this call (capped per call).
    log_lines: u32,
    /// Events queued with `publish-on-success`, for when the call succeeds.
    pub(crate) queued: Queued,
    /// What the deterministic clocks and randomness return right now.
    pub(crate) inputs: Inputs,
    /// When the running call (or segment of a batched fold) times out.
    pub(crate) deadline: Instant,
    /// Where a batched fold is; none in every other call.
    pub(crate) batch: Option<Walk>,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<Identity>, control: Arc<ControlPlane>, call: CallContext) -> Self {
        let output = OutputTail::default();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let inputs = Inputs::new(call.timestamp_ms, &call.seed);
        if plugin.world.is_deterministic() {
            crate::deterministic::stand_in(&mut wasi, &inputs);
        } else {
            for (key, value) in &plugin.env {
                wasi.env(key, value);
            }
        }
        let deadline = Instant::now() + plugin.limits.timeout;
        let hooks = OutgoingHooks { plugin: plugin.clone(), call: call.clone(), control: control.clone(), deadline };
        HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks,
            table: ResourceTable::new(),
            limiter: Limiter::new(plugin.limits.memory_bytes, plugin.limits.table_elements),
            plugin,
            call,
            control,
            output,
            log_lines: 0,
            queued: Queued::default(),
            inputs,
            deadline,
            batch: None,
        }
    }

    /// A warm instance's store begins another call: everything of the
    /// host's is the new call's (context, control plane, outgoing HTTP,
    /// queued events, log count, deadline, memory-growth count, output
    /// tail); only the guest's own memory carries over.
    pub(crate) fn begin_call(&mut self, control: Arc<ControlPlane>, call: CallContext) {
        let deadline = Instant::now() + self.plugin.limits.timeout;
        self.hooks =
            OutgoingHooks { plugin: self.plugin.clone(), call: call.clone(), control: control.clone(), deadline };
        self.call = call;
        self.control = control;
        self.queued = Queued::default();
        self.log_lines = 0;
        self.deadline = deadline;
        self.output.clear();
        self.limiter.begin_call();
    }

    /// A new segment of a batched fold begins: its log lines are counted afresh.
    pub(crate) fn restart_log(&mut self) {
        self.log_lines = 0;
    }

    /// The `kv` import's view.
    pub(crate) fn kv(&mut self) -> KvHost<'_> {
        KvHost { backend: &*self.control.kv, plugin: &self.plugin }
    }

    /// The `emit` import's view.
    pub(crate) fn emit(&mut self) -> EmitHost<'_> {
        EmitHost { sink: &*self.control.events, queued: &mut self.queued, plugin: &self.plugin, call: &self.call }
    }

    /// The `views` import's view.
    pub(crate) fn views(&mut self) -> ViewsHost<'_> {
        ViewsHost { reader: &*self.control.views, call: &self.call }
    }

    /// The `carts` import's view.
    pub(crate) fn carts(&mut self) -> CartsHost<'_> {
        CartsHost { client: &*self.control.carts, plugin: &self.plugin, call: &self.call }
    }

    /// The `log` import's view.
    pub(crate) fn log(&mut self) -> LogHost<'_> {
        LogHost {
            plugin: &self.plugin,
            call: &self.call,
            lines: &mut self.log_lines,
            inputs: &self.inputs,
            turn: self.limiter.turn.as_ref(),
        }
    }

    /// The deterministic worlds' `insecure-seed`.
    pub(crate) fn inputs(&mut self) -> &mut Inputs {
        &mut self.inputs
    }

    /// The deterministic worlds' monotonic clock.
    pub(crate) fn stopped_timers(&mut self) -> StoppedTimersView<'_> {
        StoppedTimersView { table: &mut self.table, inputs: &self.inputs }
    }
}

/// `corral:plugin/types` declares only types; its trait has nothing to do.
impl crate::bindings::types::Host for HostState {}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Memory and table limits of one store. Records that a limit was hit so the
/// resulting trap can be reported as a memory limit, not a generic trap.
pub(crate) struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    pub(crate) exceeded: bool,
    /// Bytes of memory grown during this call (the first size of each
    /// memory is not growth).
    grown: usize,
    /// Linear memory now, all memories together.
    size: usize,
    /// The call's share of the long-call permits, taken once it grows big.
    pub(crate) turn: Option<Turn>,
}

impl Limiter {
    fn new(memory_bytes: u64, table_elements: u32) -> Self {
        Limiter {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            table_elements: table_elements as usize,
            exceeded: false,
            grown: 0,
            size: 0,
            turn: None,
        }
    }

    /// Linear memory now, in bytes.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.size as u64
    }

    /// A warm instance's next call: growth is counted afresh.
    fn begin_call(&mut self) {
        self.exceeded = false;
        self.grown = 0;
        self.turn = None;
    }
}

#[async_trait::async_trait]
impl wasmtime::ResourceLimiterAsync for Limiter {
    async fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.exceeded |= !allowed;
        if allowed {
            self.size = self.size.saturating_add(desired.saturating_sub(current));
        }
        if allowed && current > 0 {
            self.grown = self.grown.saturating_add(desired.saturating_sub(current));
            if let Some(turn) = &self.turn {
                turn.before_growing(self.grown).await;
            }
        }
        Ok(allowed)
    }

    async fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.table_elements;
        self.exceeded |= !allowed;
        Ok(allowed)
    }
}
