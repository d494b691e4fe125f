//! Cart throughput and latency, wasm beside native in the same run: the
//! example shop's cart plugin and the very same cart logic compiled
//! natively (`examples/shop/plugins/cart/src/cart.rs`), both behind the same
//! mailboxes, journal and group commit, each in its own LMDB environment.
//!
//! Three loads: one cart with one sequential client; one cart with 64
//! concurrent clients; 64 carts with one sequential client each.
//!
//! Run with `just bench-carts`. `BENCH_MUTATIONS` sets the mutations per load.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

#[allow(dead_code, unreachable_pub, reason = "shared with the guest; the bench uses part of it")]
#[path = "../../../examples/shop/plugins/cart/src/cart.rs"]
mod cart;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_runtime::types::{Mutation, Outcome, OutgoingEvent};
use corral_runtime::{InvokeErrorKind, Plugin, Runtime, RuntimeConfig};
use corral_server::carts::{Carts, Machine, MachineError, Machines, MutateRequest};
use corral_server::config::CartSettings;
use corral_storage::carts::CartKey;
use corral_storage::{Storage, StorageOptions};

/// The default `[cart] snapshot_every`: a snapshot with every mutation.
const SNAPSHOT_EVERY: u64 = 1;

/// The cart logic, natively.
struct Native;

#[async_trait::async_trait]
impl Machine for Native {
    fn version(&self) -> &str {
        "native"
    }

    fn kinds(&self) -> &[String] {
        static KINDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        KINDS.get_or_init(|| cart::KINDS.iter().map(|k| k.to_string()).collect())
    }

    fn snapshot_every(&self) -> u64 {
        SNAPSHOT_EVERY
    }

    async fn apply(&self, _tenant: &str, state: Option<&[u8]>, m: &Mutation) -> Result<Outcome, MachineError> {
        match cart::apply(state, &m.entity, &m.id, &m.kind, &m.payload, m.timestamp_ms) {
            Ok(applied) => Ok(Outcome {
                state: applied.state,
                events: applied.events.into_iter().map(|(topic, payload)| OutgoingEvent { topic, payload }).collect(),
            }),
            Err(rejection) => Err(MachineError::Rejected { code: rejection.code, message: rejection.message }),
        }
    }
}

/// The cart plugin, through the runtime.
struct Wasm(Plugin);

#[async_trait::async_trait]
impl Machine for Wasm {
    fn version(&self) -> &str {
        self.0.version()
    }

    fn kinds(&self) -> &[String] {
        &self.0.descriptor().mutation_kinds
    }

    fn snapshot_every(&self) -> u64 {
        SNAPSHOT_EVERY
    }

    async fn apply(&self, tenant: &str, state: Option<&[u8]>, m: &Mutation) -> Result<Outcome, MachineError> {
        match self.0.apply_mutation(tenant, state, m).await {
            Ok(called) => Ok(called.value),
            Err(error) => match error.kind {
                InvokeErrorKind::Guest { code, message } => Err(MachineError::Rejected { code, message }),
                _ => Err(MachineError::Failed(error)),
            },
        }
    }
}

struct One(Arc<dyn Machine>);

impl Machines for One {
    fn machine(&self, plugin: &str) -> Option<Arc<dyn Machine>> {
        (plugin == "cart").then(|| self.0.clone())
    }
}

fn add_item(n: usize) -> MutateRequest {
    let sku = format!("sku-{:02}", n % 50);
    let payload = serde_json::json!({"sku": sku, "name": "Item", "quantity": 1, "unit_price_cents": 199});
    MutateRequest { kind: "add_item".into(), payload: payload.to_string().into_bytes(), ..MutateRequest::default() }
}

/// Which cart a client writes to.
type CartOf = fn(usize) -> String;

struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `clients` tasks, each sending `per_client` mutations one after another
/// to the cart `cart_of(client)`.
async fn load(carts: &Arc<Carts>, clients: usize, per_client: usize, cart_of: CartOf) -> Run {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let carts = carts.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for n in 0..per_client {
                // 50 SKUs, at most 99 of each: reset the cart before it fills.
                let cart = format!("{}-{}", cart_of(client), n / 4000);
                let key = CartKey { tenant: String::new(), plugin: "cart".into(), cart };
                let sent = Instant::now();
                carts.mutate(key, add_item(n)).await.unwrap();
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Run { per_second: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(0.5), p99: at(0.99) }
}

fn carts_over(machine: Arc<dyn Machine>, dir: &Path) -> Arc<Carts> {
    let storage = Storage::open(dir, &StorageOptions::default()).unwrap();
    let metrics = corral_server::metrics::Metrics::new().unwrap();
    Carts::embedded(Arc::new(One(machine)), storage, |_| {}, metrics.carts(), CartSettings::default()).unwrap()
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    tokio.block_on(async {
        let total: usize = std::env::var("BENCH_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2048);
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let plugin = runtime.load(Path::new(corral_fixtures::EXAMPLE_CART), Default::default()).await.unwrap();
        let (native_dir, wasm_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let native = carts_over(Arc::new(Native), native_dir.path());
        let wasm = carts_over(Arc::new(Wasm(plugin)), wasm_dir.path());

        println!("cart benchmark: {total} add_item mutations per load, each acknowledged after its durable commit\n");
        let loads: [(&str, usize, CartOf); 3] = [
            ("1 cart, 1 sequential client", 1, |_| "solo".to_string()),
            ("1 cart, 64 concurrent clients", 64, |_| "shared".to_string()),
            ("64 carts, 1 sequential client each", 64, |client| format!("cart-{client}")),
        ];
        for (name, clients, cart_of) in loads {
            let per_client = total / clients;
            let n = load(&native, clients, per_client, cart_of).await;
            let w = load(&wasm, clients, per_client, cart_of).await;
            println!("{name}:");
            println!("  native {:>8.0} mutations/s  p50 {:>7.0?}  p99 {:>7.0?}", n.per_second, n.p50, n.p99);
            println!(
                "  wasm   {:>8.0} mutations/s  p50 {:>7.0?}  p99 {:>7.0?}   ratio {:.2}x",
                w.per_second,
                w.p50,
                w.p99,
                w.per_second / n.per_second
            );
        }
        let key = |cart: &str| CartKey { tenant: String::new(), plugin: "cart".into(), cart: cart.into() };
        let (a, b) = (native.state(key("solo-0")).await.unwrap(), wasm.state(key("solo-0")).await.unwrap());
        assert_eq!(a.version, b.version);
        assert_eq!(strip_times(&a.state.unwrap()), strip_times(&b.state.unwrap()), "both apply the same logic");
        println!("\ntarget: wasm >= 0.5x native for every load");
    });
}

/// The state without its timestamps, which differ between the two runs.
fn strip_times(state: &[u8]) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_slice(state).unwrap();
    value["updated_at_ms"] = serde_json::Value::Null;
    value
}
