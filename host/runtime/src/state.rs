//! What a store carries for one call: WASI, the call's context, the limits
//! and the control plane; plus the deterministic stand-ins for clocks and
//! randomness used by the projection and cart worlds.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::invoke::CallContext;
use crate::plugin::Identity;
use crate::runtime::ControlPlane;
use crate::stdio::OutputTail;

/// The `T` of every `Store<T>`.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutgoingHttp,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) plugin: Arc<Identity>,
    pub(crate) control: Arc<ControlPlane>,
    pub(crate) call: CallContext,
    pub(crate) output: OutputTail,
    /// Log lines written so far in this call (capped per call).
    pub(crate) log_lines: u32,
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
        if plugin.world.is_deterministic() {
            // Same inputs, same bytes out: time is the input's timestamp and
            // randomness is a stream derived from the input's id.
            let at = Duration::from_millis(call.timestamp_ms);
            wasi.wall_clock(FrozenClock(at))
                .monotonic_clock(FrozenClock(at))
                .secure_random(SeededRandom::new(&call.seed, b"secure"))
                .insecure_random(SeededRandom::new(&call.seed, b"insecure"))
                .insecure_random_seed(SeededRandom::seed_u128(&call.seed));
        } else {
            for (key, value) in &plugin.env {
                wasi.env(key, value);
            }
        }
        HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: DenyOutgoingHttp,
            table: ResourceTable::new(),
            limiter: Limiter::new(plugin.limits.memory_bytes, plugin.limits.table_elements),
            plugin,
            control,
            call,
            output,
            log_lines: 0,
        }
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

/// Outgoing HTTP is the host's job: a plugin's `wasi:http/outgoing-handler`
/// requests are refused.
struct DenyOutgoingHttp;

impl wasmtime_wasi_http::WasiHttpHooks for DenyOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Memory and table limits of one store. Records that a limit was hit so the
/// resulting trap can be reported as a memory limit, not a generic trap.
pub(crate) struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    pub(crate) exceeded: bool,
}

impl Limiter {
    fn new(memory_bytes: u64, table_elements: u32) -> Self {
        Limiter {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            table_elements: table_elements as usize,
            exceeded: false,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.exceeded |= !allowed;
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.table_elements;
        self.exceeded |= !allowed;
        Ok(allowed)
    }
}

/// A clock stopped at the input's timestamp.
struct FrozenClock(Duration);

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Randomness derived from the input's id with BLAKE3 in XOF mode: the stream
/// depends on nothing but the id and a domain label, so it is stable across
/// machines and host versions.
struct SeededRandom(blake3::OutputReader);

impl SeededRandom {
    fn new(seed: &str, domain: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(domain).update(&[0]).update(seed.as_bytes());
        SeededRandom(hasher.finalize_xof())
    }

    fn seed_u128(seed: &str) -> u128 {
        let mut bytes = [0; 16];
        SeededRandom::new(seed, b"insecure-seed").0.fill(&mut bytes);
        u128::from_le_bytes(bytes)
    }
}

impl rand::TryRng for SeededRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0; 4];
        self.0.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0; 8];
        self.0.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dest);
        Ok(())
    }
}
