//! Invocation costs, each beside its baseline in the same run:
//!
//! - fresh instance + call of the hello route through the runtime, against
//!   instantiating an empty component on the same engine (the floor);
//! - a CPU-bound guest with fuel metering, against the same guest without.
//!
//! Run with `cargo bench -p corral-runtime --bench invoke` (or `just bench`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_runtime::memory::{MemoryEvents, MemoryKv, MemoryViews};
use corral_runtime::types::HttpRequest;
use corral_runtime::{CallContext, ControlPlane, Runtime, RuntimeConfig};

fn runtime(metering: bool) -> Runtime {
    Runtime::new(RuntimeConfig { metering, ..RuntimeConfig::default() }).unwrap()
}

/// In-memory backends, as the plugin test kit uses.
fn control() -> Arc<ControlPlane> {
    Arc::new(ControlPlane {
        kv: Arc::new(MemoryKv::default()),
        events: Arc::new(MemoryEvents::default()),
        views: Arc::new(MemoryViews::default()),
        carts: Arc::new(corral_runtime::Unavailable("no carts in this benchmark")),
        http: Arc::new(corral_runtime::Unavailable("no outgoing HTTP in this benchmark")),
    })
}

fn request(path: &str, query: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        headers: Vec::new(),
        params: Vec::new(),
        body: Vec::new(),
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Stats { p50: at(0.50), p99: at(0.99), mean }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print(name: &str, s: &Stats) {
    println!(
        "{name:<44} p50 {:>8.1} µs   p99 {:>8.1} µs   mean {:>8.1} µs",
        micros(s.p50),
        micros(s.p99),
        micros(s.mean)
    );
}

async fn measure<F: AsyncFnMut()>(iterations: usize, mut f: F) -> Stats {
    for _ in 0..iterations / 10 {
        f().await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        f().await;
        samples.push(started.elapsed());
    }
    stats(samples)
}

fn main() {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio.block_on(async {
        let iterations = std::env::var("BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
        println!("corral-runtime invoke benchmark ({iterations} iterations per case)\n");

        // Hello route through the runtime vs the empty-component floor.
        let control = control();
        let metered = runtime(true);
        let hello = metered.load(Path::new(corral_fixtures::ROUTE_HELLO), Default::default()).await.unwrap();
        let req = request("/hello", "");
        let route = measure(iterations, async || {
            let out = hello.handle_http(&control, CallContext::internal("bench"), &req).await.unwrap();
            assert_eq!(out.value.status, 200);
        })
        .await;

        let engine = metered.engine().clone();
        let empty = wasmtime::component::Component::new(&engine, "(component)").unwrap();
        let linker = wasmtime::component::Linker::<()>::new(&engine);
        let pre = linker.instantiate_pre(&empty).unwrap();
        let floor = measure(iterations, async || {
            let mut store = wasmtime::Store::new(&engine, ());
            store.set_fuel(u64::MAX).unwrap();
            store.set_epoch_deadline(1_000_000);
            pre.instantiate_async(&mut store).await.unwrap();
        })
        .await;
        // A second floor: the smallest component that has what every real
        // guest has — a core module with a linear memory — instantiated and
        // called through the same engine, with nothing else.
        let minimal = wasmtime::component::Component::new(
            &engine,
            r#"(component
                (core module $m (memory (export "memory") 17) (func (export "run") (result i32) i32.const 7))
                (core instance $i (instantiate $m))
                (func (export "run") (result s32) (canon lift (core func $i "run"))))"#,
        )
        .unwrap();
        let minimal_pre = linker.instantiate_pre(&minimal).unwrap();
        let with_memory = measure(iterations, async || {
            let mut store = wasmtime::Store::new(&engine, ());
            store.set_fuel(u64::MAX).unwrap();
            store.set_epoch_deadline(1_000_000);
            let instance = minimal_pre.instantiate_async(&mut store).await.unwrap();
            let run = instance.get_typed_func::<(), (i32,)>(&mut store, "run").unwrap();
            assert_eq!(run.call_async(&mut store, ()).await.unwrap().0, 7);
        })
        .await;
        print("hello route: fresh instance + call", &route);
        print("floor: instantiate an empty component", &floor);
        print("floor: core module + 1 MiB memory, call", &with_memory);
        println!(
            "  ratio hello / empty floor (p50): {:.2}x   target: p50 <= 25 µs and <= 4x",
            micros(route.p50) / micros(floor.p50)
        );
        println!(
            "  ratio hello / memory floor (p50): {:.2}x   (the host's own overhead over raw wasmtime)\n",
            micros(route.p50) / micros(with_memory.p50)
        );

        // CPU-bound guest, fuel on vs off.
        let unmetered = runtime(false);
        let cpu_on = metered.load(Path::new(corral_fixtures::ROUTE_CPU), Default::default()).await.unwrap();
        let cpu_off = unmetered.load(Path::new(corral_fixtures::ROUTE_CPU), Default::default()).await.unwrap();
        let cpu_req = request("/cpu", "n=2000000");
        let cpu_iterations = (iterations / 100).max(20);
        let with_fuel = measure(cpu_iterations, async || {
            cpu_on.handle_http(&control, CallContext::internal("bench"), &cpu_req).await.unwrap();
        })
        .await;
        let without_fuel = measure(cpu_iterations, async || {
            cpu_off.handle_http(&control, CallContext::internal("bench"), &cpu_req).await.unwrap();
        })
        .await;
        print("cpu (2M rounds) with fuel", &with_fuel);
        print("cpu (2M rounds) without fuel", &without_fuel);
        println!(
            "  ratio with / without fuel (p50): {:.2}x   target: <= 1.3x",
            micros(with_fuel.p50) / micros(without_fuel.p50)
        );
    });
}
