//! What checking payloads against their declared schemas costs, each beside
//! the same work without a schema, measured in turns in the same run (the
//! ratio is the median of the rounds):
//!
//! - `emit`: a route plugin (`route-emitter`) publishing one order event per
//!   call, durable before the call answers, on a topic with and without a
//!   schema (the same plugin, two control planes);
//! - a cart mutation: the example shop's cart applying `add_item` through
//!   the real mailboxes, journal and group commit, with its sidecar's
//!   schemas (each kind's payload) and with the same sidecar without them;
//! - the check alone: one order event against its schema, in-process.
//!
//! Run with `just bench-schemas`. `BENCH_CALLS` sets the calls per turn.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use corral_runtime::types::HttpRequest;
use corral_runtime::{CallContext, ControlPlane, Runtime, RuntimeConfig};
use corral_server::carts::{Carts, Machines, MutateRequest};
use corral_server::config::CartSettings;
use corral_server::control::{Embedded as Control, StreamSink};
use corral_server::metrics::Metrics;
use corral_server::plugins::Registry;
use corral_storage::carts::CartKey;
use corral_storage::stream;
use corral_storage::{Storage, StorageOptions};

const ROUNDS: usize = 3;

/// An order as a shop would publish it.
const ORDER: &str = r#"{"id": "o-1042", "customer": "ada", "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450}, {"sku": "mug", "quantity": 1, "unit_price_cents": 1400}], "total_cents": 2300}"#;

/// Its schema, as a sidecar declares it.
const ORDER_SCHEMA: &str = r#"
[schemas.events."orders.placed"]
type = "object"
required = ["id", "customer", "items", "total_cents"]
properties.id = { type = "string", minLength = 1 }
properties.customer = { type = "string" }
properties.total_cents = { type = "integer", minimum = 0 }
properties.items = { type = "array", minItems = 1, items = { type = "object", required = ["sku", "quantity"], properties = { sku = { type = "string" }, quantity = { type = "integer", minimum = 1 }, unit_price_cents = { type = "integer", minimum = 0 } } } }
"#;

/// A folder holding `component` as `stem.wasm` with `sidecar`.
fn folder(stem: &str, component: &str, sidecar: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(component, dir.path().join(format!("{stem}.wasm"))).unwrap();
    std::fs::write(dir.path().join(format!("{stem}.toml")), sidecar).unwrap();
    dir
}

async fn open_registry(plugins: &Path, data: &Path, metrics: &Arc<Metrics>) -> Arc<Registry> {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let registry = Registry::open(runtime, plugins, data, metrics.clone(), true).await.unwrap();
    assert!(registry.catalog().failures.is_empty(), "{:?}", registry.catalog().failures);
    registry
}

/// Calls per second of `n` sequential `POST /emit/orders.placed`.
async fn emits(registry: &Registry, plane: &Arc<ControlPlane>, n: usize) -> f64 {
    let catalog = registry.catalog();
    let plugin = &catalog.slots[0].mounted.plugin;
    let request = HttpRequest {
        method: "POST".into(),
        path: "/emit/orders.placed".into(),
        query: String::new(),
        headers: Vec::new(),
        params: vec![("topic".into(), "orders.placed".into())],
        body: ORDER.as_bytes().to_vec(),
    };
    let started = Instant::now();
    for call in 0..n {
        let called = plugin.handle_http_queued(plane, CallContext::internal(&format!("b{call}")), &request, 1 << 20);
        let (response, _) = called.await.unwrap().value;
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Mutations per second of `n` sequential `add_item`s, a new cart every
/// thousand (a cart holds at most 99 of one item).
async fn mutations(carts: &Carts, round: usize, n: usize) -> f64 {
    let started = Instant::now();
    for call in 0..n {
        let key = CartKey { tenant: String::new(), plugin: "cart".into(), cart: format!("c-{round}-{}", call / 1000) };
        let payload = serde_json::json!({"sku": format!("sku-{:02}", call % 50), "name": "Item", "quantity": 1, "unit_price_cents": 199});
        let request = MutateRequest {
            kind: "add_item".into(),
            payload: payload.to_string().into_bytes(),
            ..MutateRequest::default()
        };
        carts.mutate(key, request).await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Rates measured in turns, without a schema and with.
#[derive(Default)]
struct Turns {
    without: Vec<f64>,
    with: Vec<f64>,
}

impl Turns {
    fn push(&mut self, without: f64, with: f64) {
        self.without.push(without);
        self.with.push(with);
    }

    fn print(&self, what: &str, unit: &str) {
        let ratios: Vec<f64> = self.with.iter().zip(&self.without).map(|(w, wo)| w / wo).collect();
        println!("{what}:");
        println!("  no schema {:>9.0} {unit} (rounds: {})", median(&self.without), list(&self.without));
        println!("  schema    {:>9.0} {unit} (rounds: {})", median(&self.with), list(&self.with));
        println!("  ratio     {:>9.3}x (median of the rounds' ratios: {})\n", median(&ratios), list3(&ratios));
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn list3(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(", ")
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    tokio.block_on(async {
        let n: usize = std::env::var("BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        println!("schema benchmark: {n} calls per turn, {ROUNDS} rounds in turns, each durable before it answers\n");
        let metrics = Arc::new(Metrics::new().unwrap());

        // emit: one plugin, two control planes over one log.
        let (data, plugins) =
            (tempfile::tempdir().unwrap(), folder("emitter", corral_fixtures::ROUTE_EMITTER, ORDER_SCHEMA));
        let registry = open_registry(plugins.path(), data.path(), &metrics).await;
        let storage = Storage::open(&data.path().join("lmdb"), &StorageOptions::default()).unwrap();
        let log = Arc::new(stream::Embedded::new(storage.clone(), true).unwrap());
        let control = Arc::new(Control::new(storage, metrics.clone()).unwrap());
        let plane = |sink: StreamSink| {
            Arc::new(ControlPlane {
                kv: control.clone(),
                events: Arc::new(sink),
                views: control.clone(),
                carts: Arc::new(corral_runtime::Unavailable("no carts in this benchmark")),
                http: Arc::new(corral_runtime::Unavailable("no outgoing HTTP in this benchmark")),
            })
        };
        let plain = plane(StreamSink::new(log.clone(), metrics.clone()));
        let checked = plane(StreamSink::new(log.clone(), metrics.clone()).checking(&registry));
        let mut turns = Turns::default();
        for _ in 0..ROUNDS {
            let without = emits(&registry, &plain, n).await;
            turns.push(without, emits(&registry, &checked, n).await);
        }
        turns.print("emit (a route publishing one ~200-byte order per call)", "calls/s");

        // Cart mutations: the shop's cart with its sidecar, and without its [schemas].
        let sidecar = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/plugins/cart/cart.toml"),
        )
        .unwrap();
        let bare = &sidecar[..sidecar.find("[schemas").expect("the shop's cart declares schemas")];
        let sides = [bare, sidecar.as_str()]
            .map(|text| (folder("cart", corral_fixtures::EXAMPLE_CART, text), tempfile::tempdir().unwrap()));
        let mut carts = Vec::new();
        for (plugins, data) in &sides {
            let registry = open_registry(plugins.path(), data.path(), &metrics).await;
            let storage = Storage::open(&data.path().join("lmdb"), &StorageOptions::default()).unwrap();
            let machines: Arc<dyn Machines> = registry;
            carts.push(Carts::embedded(machines, storage, |_| {}, metrics.carts(), CartSettings::default()).unwrap());
        }
        let mut turns = Turns::default();
        for round in 0..ROUNDS {
            let without = mutations(&carts[0], round, n).await;
            turns.push(without, mutations(&carts[1], round, n).await);
        }
        turns.print("cart mutation (the shop's cart, add_item, one sequential client)", "mutations/s");

        // The check alone.
        let section: corral_server::plugins::Sidecar = toml::from_str(ORDER_SCHEMA).unwrap();
        let document = section.schemas.events["orders.placed"].0.clone();
        let schema = corral_schemas::Schema::compile("bench/events/orders.placed".into(), document).unwrap();
        let checks = 200_000;
        let started = Instant::now();
        for _ in 0..checks {
            schema.check(ORDER.as_bytes()).unwrap();
        }
        let each = started.elapsed() / checks;
        println!("the check alone (parse + validate one order): {each:?}");
    });
}

fn list(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", ")
}
