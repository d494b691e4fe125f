//! The [`Runtime`]: one engine for every plugin, tuned for a fresh instance
//! per call, and the linkers every world is linked against (built once).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ArtifactCache;
use crate::deterministic::{Seeded, StoppedTimers};
use crate::log_budget::LogBudget;
use crate::store::HostState;

/// How the engine is set up. The defaults suit a server.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where precompiled artifacts are kept; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Fuel metering. On in production: the deterministic worlds rely on it
    /// and it is what stops an endless loop cheaply. Off only to measure it.
    pub metering: bool,
    /// Period of the epoch ticker that enforces wall-clock deadlines.
    pub epoch_tick: Duration,
    /// Instances that may exist at once across all plugins (pool size).
    pub max_instances: u32,
    /// The largest linear memory any plugin may be given, in bytes.
    pub max_memory_bytes: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            metering: true,
            epoch_tick: Duration::from_millis(2),
            max_instances: 1000,
            max_memory_bytes: 1 << 30,
        }
    }
}

/// The sandbox: engine, linkers and artifact cache. The control plane a
/// call reaches is chosen per call, not here.
pub struct Runtime {
    pub(crate) engine: Engine,
    /// route, event-handler and wasi:http: WASI (no network), wasi:http
    /// (outgoing requests refused) and the whole control plane.
    pub(crate) linker: Linker<HostState>,
    /// projection and cart: WASI with deterministic stand-ins, and `log` only.
    pub(crate) deterministic_linker: Linker<HostState>,
    pub(crate) cache: Option<ArtifactCache>,
    pub(crate) config: RuntimeConfig,
    /// Calls that have run past [`LONG_CALL`](crate::invoke::LONG_CALL)
    /// share these permits (one fewer than the cores, at least one), so
    /// long-running guests never take every core from short calls.
    pub(crate) long_calls: Arc<tokio::sync::Semaphore>,
    /// When a permit holder last ran a tick (ms since the Unix epoch).
    pub(crate) long_ticked: Arc<std::sync::atomic::AtomicU64>,
    /// Each plugin name's log budget, kept across its versions.
    log_budgets: std::sync::Mutex<std::collections::HashMap<String, Arc<LogBudget>>>,
}

impl Runtime {
    /// Builds the engine and linkers and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Runtime> {
        let engine = Engine::new(&engine_config(&config)).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let linker = full_linker(&engine).map_err(|e| anyhow::anyhow!("building the linker: {e:#}"))?;
        let deterministic_linker =
            deterministic_linker(&engine).map_err(|e| anyhow::anyhow!("building the linker: {e:#}"))?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                ArtifactCache::open(dir, &engine)
                    .map_err(|e| anyhow::anyhow!("opening the artifact cache {}: {e}", dir.display()))?,
            ),
            None => None,
        };
        start_epoch_ticker(&engine, config.epoch_tick)
            .map_err(|e| anyhow::anyhow!("starting the epoch ticker: {e}"))?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let long_calls = Arc::new(tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1)));
        let long_ticked = Arc::default();
        Ok(Runtime {
            engine,
            linker,
            deterministic_linker,
            cache,
            config,
            long_calls,
            long_ticked,
            log_budgets: Default::default(),
        })
    }

    /// The log budget of plugin `name`, the same for all its versions.
    pub(crate) fn log_budget(&self, name: &str) -> Arc<LogBudget> {
        let mut budgets = self.log_budgets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        budgets.entry(name.to_string()).or_default().clone()
    }

    /// The settings this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The engine, for baselines that must run on exactly these settings
    /// (benchmarks); plugins never need it.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn engine_config(settings: &RuntimeConfig) -> Config {
    let instances = settings.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        // A Rust component is a handful of core instances; componentize-py
        // and componentize-js ones are a dozen or more, each with a memory.
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX))
        // Reset reused slots with memset on the pages actually touched
        // (PAGEMAP_SCAN where the kernel has it) instead of madvise: no page
        // faults and no TLB shootdowns on the next instantiation.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .consume_fuel(settings.metering)
        .epoch_interruption(true)
        // Determinism for projections and carts (and harmless elsewhere).
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true);
    // Threads and shared memory stay off: wasmtime is built without the
    // `threads` feature, so no guest can observe scheduling.
    config
}

fn full_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state)?;
    crate::log::add_to_linker(&mut linker, HostState::log)?;
    crate::emit::add_to_linker(&mut linker, HostState::emit)?;
    crate::kv::add_to_linker(&mut linker, HostState::kv)?;
    crate::views::add_to_linker(&mut linker, HostState::views)?;
    crate::carts::add_to_linker(&mut linker, HostState::carts)?;
    Ok(linker)
}

fn deterministic_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    crate::bindings::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state)?;
    crate::log::add_to_linker(&mut linker, HostState::log)?;
    crate::batch::add_to_linker(&mut linker)?;
    // `insecure-seed` answers for the current input, not for the input the
    // WASI context was built with: a batched fold moves from event to event.
    // Timers are ready at once instead of in real time.
    linker.allow_shadowing(true);
    wasmtime_wasi::p2::bindings::random::insecure_seed::add_to_linker::<HostState, Seeded>(
        &mut linker,
        HostState::inputs,
    )?;
    wasmtime_wasi::p2::bindings::clocks::monotonic_clock::add_to_linker::<HostState, StoppedTimers>(
        &mut linker,
        HostState::stopped_timers,
    )?;
    linker.allow_shadowing(false);
    Ok(linker)
}

/// Advances the engine's epoch every `tick` until the engine is dropped.
fn start_epoch_ticker(engine: &Engine, tick: Duration) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("corral-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .map(drop)
}
