//! What checking payloads against their declared schemas costs, each beside
//! the same work without a schema in the same run, one call of each in
//! turn (the ratio is of the p50s):
//!
//! - `emit`: a route plugin (`route-emitter`) publishing one order event per
//!   call, durable before the call answers, on a topic with and without a
//!   schema (the same plugin, two control planes);
//! - a cart mutation: the example shop's cart applying `add_item` through
//!   the real mailboxes, journal and group commit, with its sidecar's
//!   schemas (each kind's payload) and with the same sidecar without them;
//! - the check alone: one order event against its schema, in-process.
//!
//! Run with `just bench-schemas`. `BENCH_CALLS` sets the calls each way.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_runtime::types::HttpRequest;
use corral_runtime::{CallContext, ControlPlane, Plugin, Runtime, RuntimeConfig};
use corral_server::carts::{Carts, Machines, MutateRequest};
use corral_server::config::CartSettings;
use corral_server::control::{Embedded as Control, StreamSink};
use corral_server::metrics::Metrics;
use corral_server::plugins::Registry;
use corral_storage::carts::CartKey;
use corral_storage::stream;
use corral_storage::{Storage, StorageOptions};

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

/// The time of one `POST /emit/orders.placed`, durable before it answers.
async fn emit_once(plugin: &Plugin, plane: &Arc<ControlPlane>, call: usize) -> Duration {
    let request = HttpRequest {
        method: "POST".into(),
        path: "/emit/orders.placed".into(),
        query: String::new(),
        headers: Vec::new(),
        params: vec![("topic".into(), "orders.placed".into())],
        body: ORDER.as_bytes().to_vec(),
    };
    let started = Instant::now();
    let called = plugin.handle_http_queued(plane, CallContext::internal(&format!("b{call}")), &request, 1 << 20);
    let (response, _) = called.await.unwrap().value;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    started.elapsed()
}

/// The time of one `add_item`, a new cart every thousand calls (a cart
/// holds at most 99 of one item).
async fn mutate_once(carts: &Carts, call: usize) -> Duration {
    let key = CartKey { tenant: String::new(), plugin: "cart".into(), cart: format!("c-{}", call / 1000) };
    let payload = serde_json::json!({"sku": format!("sku-{:02}", call % 50), "name": "Item", "quantity": 1, "unit_price_cents": 199});
    let request = MutateRequest {
        kind: "add_item".into(),
        payload: payload.to_string().into_bytes(),
        ..MutateRequest::default()
    };
    let started = Instant::now();
    carts.mutate(key, request).await.unwrap();
    started.elapsed()
}

/// Call times without a schema and with, taken one of each in turn (which
/// goes first alternating), so the machine's drift and the disk's fall on
/// both alike.
#[derive(Default)]
struct Paired {
    without: Vec<Duration>,
    with: Vec<Duration>,
}

impl Paired {
    fn push(&mut self, without: Duration, with: Duration) {
        self.without.push(without);
        self.with.push(with);
    }

    fn print(&mut self, what: &str) {
        self.without.sort();
        self.with.sort();
        let at = |times: &[Duration], q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!("{what}:");
        for (name, times) in [("no schema", &self.without), ("schema", &self.with)] {
            println!("  {name:<10} p50 {:>9.1?}  p90 {:>9.1?}", at(times, 0.5), at(times, 0.9));
        }
        let ratio = at(&self.without, 0.5).as_secs_f64() / at(&self.with, 0.5).as_secs_f64();
        println!("  ratio      {ratio:.3}x (calls per second with a schema over without, from the p50s)\n");
    }
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    tokio.block_on(async {
        let n: usize = std::env::var("BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        println!("schema benchmark: {n} calls each way, one of each in turn, each durable before it answers\n");
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
        let catalog = registry.catalog();
        let plugin = &catalog.slots[0].mounted.plugin;
        let mut paired = Paired::default();
        for call in 0..n {
            // Which goes first alternates, so neither pays for the other.
            if call % 2 == 0 {
                let without = emit_once(plugin, &plain, call).await;
                paired.push(without, emit_once(plugin, &checked, call).await);
            } else {
                let with = emit_once(plugin, &checked, call).await;
                paired.push(emit_once(plugin, &plain, call).await, with);
            }
        }
        paired.print("emit (a route publishing one ~200-byte order per call)");

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
        let mut paired = Paired::default();
        for call in 0..n {
            if call % 2 == 0 {
                let without = mutate_once(&carts[0], call).await;
                paired.push(without, mutate_once(&carts[1], call).await);
            } else {
                let with = mutate_once(&carts[1], call).await;
                paired.push(mutate_once(&carts[0], call).await, with);
            }
        }
        paired.print("cart mutation (the shop's cart, add_item, one sequential client)");

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
