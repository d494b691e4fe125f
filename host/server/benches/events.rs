//! Event throughput on the real dispatcher and the real LMDB log, each
//! beside its baseline in the same run:
//!
//! - N events through a wasm handler (`event-counter`: one kv increment per
//!   event) vs a native Rust handler doing the same increment through the
//!   same kv backend, on the same dispatcher (ack after each event);
//! - durable `emit` throughput from concurrent publishers, with group commit
//!   (one transaction for all queued appends) vs one transaction each;
//! - durable kv sets from concurrent writers, the same two ways.
//!
//! Run with `just bench-events` (`cargo bench -p corral-server --bench events`).
//! `BENCH_EVENTS` sets N.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_runtime::{Bucket, ControlPlane, KvBackend, Runtime, RuntimeConfig};
use corral_server::control::{Embedded as Control, StreamSink};
use corral_server::events::EventStream as _;
use corral_server::events::{Handler, HandlerError, Subscription, delivery};
use corral_server::metrics::Metrics;
use corral_storage::log::{EventRecord, NewRecord};
use corral_storage::stream;
use corral_storage::{Storage, StorageOptions};

#[path = "support/wasm_handler.rs"]
mod wasm_handler;
use wasm_handler::Wasm;

struct Native(Arc<Control>);

#[async_trait::async_trait]
impl Handler for Native {
    fn name(&self) -> &str {
        "native"
    }

    async fn handle(&self, record: &EventRecord) -> Result<Vec<NewRecord>, HandlerError> {
        let bucket = Bucket::Plugin("native".into());
        self.0
            .increment(&bucket, &format!("seen.{}", record.topic), 1)
            .await
            .map(|_| Vec::new())
            .map_err(|e| HandlerError { cause: "kv", message: e.to_string() })
    }
}

fn record(topic: &str) -> NewRecord {
    NewRecord {
        topic: topic.into(),
        tenant: String::new(),
        correlation_id: "bench".into(),
        traceparent: None,
        source: "bench".into(),
        payload: b"{\"n\":1}".to_vec(),
    }
}

async fn drain(handler: Arc<dyn Handler>, stream: Arc<stream::Embedded>, metrics: &Metrics, total: u64) -> f64 {
    let subscription = Arc::new(Subscription::new(
        handler.clone(),
        vec!["orders.>".into()],
        1,
        Duration::from_millis(1),
        metrics.delivery(handler.name(), &["orders.>".to_string()]),
    ));
    let consumer = subscription.consumer().to_string();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(delivery::run(subscription, stream.clone(), stopped));
    while stream.checkpoint(&consumer).await.unwrap().sequence < total {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    let _ = task.await;
    total as f64 / elapsed.as_secs_f64()
}

async fn emit_rate(dir: &Path, group_commit: bool, publishers: usize, each: usize) -> f64 {
    let storage = Storage::open(dir, &StorageOptions::default()).unwrap();
    let stream = Arc::new(stream::Embedded::new(storage, group_commit).unwrap());
    let started = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|_| {
            let stream = stream.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    stream.publish(vec![record("orders.created")]).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (publishers * each) as f64 / started.elapsed().as_secs_f64()
}

/// kv sets per second from `writers` concurrent tasks, each durable when
/// it returns: group-committed (`KvWrites`) or one transaction each.
async fn kv_rate(dir: &Path, grouped: bool, writers: usize, each: usize) -> f64 {
    let storage = Storage::open(dir, &StorageOptions::default()).unwrap();
    let writes = Arc::new(corral_storage::kv_writes::KvWrites::new(storage.clone()).unwrap());
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (storage, writes) = (storage.clone(), writes.clone());
            tokio::spawn(async move {
                for i in 0..each {
                    let (key, value) = (format!("w{w}.{i}"), vec![b'v'; 64]);
                    if grouped {
                        writes.set("bench".into(), key, value).await.unwrap();
                    } else {
                        let storage = storage.clone();
                        tokio::task::spawn_blocking(move || storage.kv_set("bench", &key, &value))
                            .await
                            .unwrap()
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (writers * each) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    tokio.block_on(async {
        let total: u64 = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("lmdb"), &StorageOptions::default()).unwrap();
        let stream = Arc::new(stream::Embedded::new(storage, true).unwrap());
        let metrics = Arc::new(Metrics::new().unwrap());
        let control = Arc::new(Control::new(stream.storage().clone(), metrics.clone()).unwrap());
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let plane = Arc::new(ControlPlane {
            kv: control.clone(),
            events: Arc::new(StreamSink::new(stream.clone(), metrics.clone())),
            views: control.clone(),
            carts: Arc::new(corral_runtime::Unavailable("no carts in this benchmark")),
            http: Arc::new(corral_runtime::Unavailable("no outgoing HTTP in this benchmark")),
        });
        let plugin = runtime.load(Path::new(corral_fixtures::EVENT_COUNTER), Default::default()).await.unwrap();
        for _ in 0..total / 500 {
            stream.publish((0..500).map(|_| record("orders.created")).collect()).await.unwrap();
        }
        let total = stream.head().await.unwrap();

        println!("event benchmark: {total} events, one kv increment each, ack after each\n");
        let native = drain(Arc::new(Native(control.clone())), stream.clone(), &metrics, total).await;
        let wasm = drain(Arc::new(Wasm(plugin, plane)), stream.clone(), &metrics, total).await;
        println!("native Rust handler              {native:>10.0} events/s");
        println!("wasm handler (fresh instance)    {wasm:>10.0} events/s");
        println!("  ratio wasm / native: {:.2}x   target >= 0.5x\n", wasm / native);

        let (publishers, each) = (64, 50);
        let grouped = emit_rate(&dir.path().join("grouped"), true, publishers, each).await;
        let single = emit_rate(&dir.path().join("single"), false, publishers, each).await;
        println!("durable emit, {publishers} concurrent publishers:");
        println!("  with group commit              {grouped:>10.0} events/s");
        println!("  one transaction per event      {single:>10.0} events/s");
        println!("  ratio: {:.1}x", grouped / single);

        let grouped = kv_rate(&dir.path().join("kv-grouped"), true, publishers, each).await;
        let single = kv_rate(&dir.path().join("kv-single"), false, publishers, each).await;
        println!("durable kv sets, {publishers} concurrent writers:");
        println!("  with group commit              {grouped:>10.0} sets/s");
        println!("  one transaction per set        {single:>10.0} sets/s");
        println!("  ratio: {:.1}x", grouped / single);
    });
}
