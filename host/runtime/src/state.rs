//! What a store carries for one call: WASI, the call's context, the limits
//! and the control plane; plus the deterministic stand-ins for clocks and
//! randomness used by the projection and cart worlds.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable};
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
    /// What the deterministic clocks and randomness return right now.
    pub(crate) inputs: Inputs,
    /// When the running call (or batched event) times out.
    pub(crate) deadline: Instant,
    /// Events a batched fold has begun, and how many the deadline has seen:
    /// the epoch callback restarts the deadline when they differ, so an
    /// event does not pay for reading the clock.
    pub(crate) begun: u64,
    pub(crate) deadline_begun: u64,
    /// Where a batched fold is (idle outside one).
    pub(crate) walk: crate::batch::Walk,
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
            // Same inputs, same bytes out: time is the input's timestamp and
            // randomness is a stream derived from the input's id. They read
            // `inputs`, which a batched fold moves from segment to segment;
            // `insecure-seed` is served by the deterministic linker from it.
            wasi.wall_clock(FrozenClock(inputs.clone()))
                .monotonic_clock(FrozenClock(inputs.clone()))
                .secure_random(SeededRandom { inputs: inputs.clone(), stream: Stream::Secure })
                .insecure_random(SeededRandom { inputs: inputs.clone(), stream: Stream::Insecure });
        } else {
            for (key, value) in &plugin.env {
                wasi.env(key, value);
            }
        }
        let deadline = Instant::now() + plugin.limits.timeout;
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
            inputs,
            deadline,
            begun: 0,
            deadline_begun: 0,
            walk: crate::batch::Walk::default(),
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

/// The input the deterministic stand-ins answer for: its timestamp and the
/// seed of its random streams. Shared by the clocks and random sources inside
/// the WASI context and by the host, which points it at the next segment of
/// a batch; the streams are derived lazily, on the first read of an input.
///
/// An input that stands for a segment of several events answers for the
/// first only, so a read of it there is noted: the batch is then folded
/// again, one event per segment.
#[derive(Clone)]
pub(crate) struct Inputs(Arc<Mutex<Input>>);

struct Input {
    at: Duration,
    seed: String,
    secure: Option<blake3::OutputReader>,
    insecure: Option<blake3::OutputReader>,
    /// It stands for several events.
    shared: bool,
    /// It was read while it stood for several events.
    misread: bool,
}

/// Which random stream of an input.
#[derive(Clone, Copy)]
enum Stream {
    Secure,
    Insecure,
}

impl Inputs {
    fn new(timestamp_ms: u64, seed: &str) -> Self {
        let input = Input {
            at: Duration::ZERO,
            seed: String::new(),
            secure: None,
            insecure: None,
            shared: false,
            misread: false,
        };
        let inputs = Inputs(Arc::new(Mutex::new(input)));
        inputs.set(timestamp_ms, seed, false);
        inputs
    }

    /// Answers for another input from now on; its streams start afresh.
    /// `shared`: it stands for several events, and must not be read.
    pub(crate) fn set(&self, timestamp_ms: u64, seed: &str, shared: bool) {
        let mut input = self.lock();
        input.at = Duration::from_millis(timestamp_ms);
        input.seed.clear();
        input.seed.push_str(seed);
        input.secure = None;
        input.insecure = None;
        input.shared = shared;
    }

    /// Notes a use that stands for one event, as a read does (a log line,
    /// tagged with the event's id).
    pub(crate) fn note_use(&self) {
        drop(self.read());
    }

    /// Whether the input was read while it stood for several events.
    pub(crate) fn misread(&self) -> bool {
        self.lock().misread
    }

    /// The input, its read noted.
    fn read(&self) -> std::sync::MutexGuard<'_, Input> {
        let mut input = self.lock();
        input.misread |= input.shared;
        input
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Input> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Duration {
        self.read().at
    }

    fn fill(&self, stream: Stream, dest: &mut [u8]) {
        let mut input = self.read();
        let Input { seed, secure, insecure, .. } = &mut *input;
        let reader = match stream {
            Stream::Secure => secure.get_or_insert_with(|| reader(seed, b"secure")),
            Stream::Insecure => insecure.get_or_insert_with(|| reader(seed, b"insecure")),
        };
        reader.fill(dest);
    }

    /// What `wasi:random/insecure-seed` returns for the current input, split
    /// the way wasmtime-wasi splits its `u128`.
    pub(crate) fn insecure_seed(&self) -> (u64, u64) {
        let mut bytes = [0; 16];
        let input = self.read();
        reader(&input.seed, b"insecure-seed").fill(&mut bytes);
        drop(input);
        let seed = u128::from_le_bytes(bytes);
        (seed as u64, (seed >> 64) as u64)
    }
}

/// `wasi:random/insecure-seed` of the deterministic worlds, from [`Inputs`].
pub(crate) struct Seeded;

impl wasmtime::component::HasData for Seeded {
    type Data<'a> = &'a mut Inputs;
}

impl wasmtime_wasi::p2::bindings::random::insecure_seed::Host for Inputs {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        Ok(Inputs::insecure_seed(self))
    }
}

/// `wasi:clocks/monotonic-clock` of the deterministic worlds: `now` is the
/// input's timestamp, like [`FrozenClock`], and every timer is ready at
/// once. Timers that became ready in real time would let a guest count its
/// polls until one fires and so observe the machine's speed.
pub(crate) struct StoppedTimers;

impl wasmtime::component::HasData for StoppedTimers {
    type Data<'a> = StoppedTimersView<'a>;
}

/// What [`StoppedTimers`] needs of a store: its resource table and inputs.
pub(crate) struct StoppedTimersView<'a> {
    table: &'a mut ResourceTable,
    inputs: &'a Inputs,
}

impl HostState {
    pub(crate) fn stopped_timers(&mut self) -> StoppedTimersView<'_> {
        StoppedTimersView { table: &mut self.table, inputs: &self.inputs }
    }
}

impl StoppedTimersView<'_> {
    fn ready(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(Ready)?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }
}

impl monotonic_clock::Host for StoppedTimersView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(HostMonotonicClock::now(&FrozenClock(self.inputs.clone())))
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(HostMonotonicClock::resolution(&FrozenClock(self.inputs.clone())))
    }

    fn subscribe_instant(&mut self, _when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>> {
        self.ready()
    }

    fn subscribe_duration(&mut self, _after: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        self.ready()
    }
}

/// A pollable that is always ready.
struct Ready;

#[async_trait::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

/// A BLAKE3 stream in XOF mode of a seed and a domain label: it depends on
/// nothing else, so it is stable across machines and host versions.
fn reader(seed: &str, domain: &[u8]) -> blake3::OutputReader {
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain).update(&[0]).update(seed.as_bytes());
    hasher.finalize_xof()
}

/// A clock stopped at the input's timestamp.
struct FrozenClock(Inputs);

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.0.now()
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.now().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One of the input's random streams.
struct SeededRandom {
    inputs: Inputs,
    stream: Stream,
}

impl rand::TryRng for SeededRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0; 4];
        self.inputs.fill(self.stream, &mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0; 8];
        self.inputs.fill(self.stream, &mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.inputs.fill(self.stream, dest);
        Ok(())
    }
}
