//! The deterministic worlds' stand-ins for time and randomness (projection
//! and cart): clocks stopped at the input's timestamp, random streams
//! seeded by the input's id, timers ready at once. Same inputs, same bytes
//! out, on any machine — replay relies on it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// Points a WASI context's clocks and randomness at `inputs`: time is the
/// input's timestamp and randomness a stream derived from the input's id. A
/// batched fold moves `inputs` from segment to segment; `insecure-seed` and
/// the monotonic clock's timers are served by the deterministic linker
/// ([`Seeded`], [`StoppedTimers`]).
pub(crate) fn stand_in(wasi: &mut WasiCtxBuilder, inputs: &Inputs) {
    wasi.wall_clock(FrozenClock(inputs.clone()))
        .monotonic_clock(FrozenClock(inputs.clone()))
        .secure_random(SeededRandom { inputs: inputs.clone(), stream: Stream::Secure })
        .insecure_random(SeededRandom { inputs: inputs.clone(), stream: Stream::Insecure });
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
    pub(crate) fn new(timestamp_ms: u64, seed: &str) -> Self {
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

    /// Whether the input stands for several events; if so, notes a use
    /// that stands for one (a log line tagged with the event's id), as a
    /// read does.
    pub(crate) fn shared_use(&self) -> bool {
        let input = self.read();
        input.shared
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
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) inputs: &'a Inputs,
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
