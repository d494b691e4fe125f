//! Cluster mode against its baselines, in one run, on a real nats-server
//! (the pinned one, started here on a free loopback port):
//!
//! - events delivered to a wasm handler (`event-counter`, its kv in memory so
//!   the delivery is what is measured) by the real dispatcher: from the
//!   cluster's stream (a JetStream reader, a fenced checkpoint in JetStream
//!   KV after each event) vs from the embedded log (an LMDB checkpoint after
//!   each event) vs a plain async-nats ordered consumer reading the same
//!   stream with no handler and no checkpoint (the engine's own limit);
//! - kv `get` and `set` through the cluster's kv backend vs plain
//!   async-nats KV on a bucket of the same settings, at the same
//!   concurrency.
//!
//! Run with `just bench-cluster` (`cargo bench -p corral-server --bench
//! cluster`). `BENCH_EVENTS` and `BENCH_KV_OPS` set the counts.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_cluster::{Cluster, ClusterOptions};
use corral_runtime::memory::MemoryKv;
use corral_runtime::{Bucket, ControlPlane, KvBackend, Runtime, RuntimeConfig};
use corral_server::control::ClusterKv;
use corral_server::events::jetstream::ClusterStream;
use corral_server::events::{EventStream, Handler, Subscription, delivery};
use corral_server::metrics::Metrics;
use corral_storage::log::NewRecord;
use corral_storage::{Storage, StorageOptions, stream};
use corral_test_support::nats::NatsCluster;
use futures_util::StreamExt as _;

#[path = "support/wasm_handler.rs"]
mod wasm_handler;
use wasm_handler::Wasm;

fn record(i: u64) -> NewRecord {
    NewRecord {
        topic: "orders.created".into(),
        tenant: String::new(),
        correlation_id: format!("bench-{i}"),
        traceparent: None,
        source: "bench".into(),
        payload: b"{\"n\":1}".to_vec(),
    }
}

/// Publishes `total` events in batches.
async fn fill(stream: &dyn EventStream, total: u64) {
    let mut i = 0;
    while i < total {
        let batch: Vec<NewRecord> = (i..(i + 500).min(total)).map(record).collect();
        i += batch.len() as u64;
        stream.publish(batch).await.unwrap();
    }
}

/// Events per second the dispatcher hands to `handler` from `stream`, from
/// the start to its checkpoint reaching `total`.
async fn drain(name: &str, handler: Arc<dyn Handler>, stream: Arc<dyn EventStream>, total: u64) -> f64 {
    let metrics = Metrics::new().unwrap();
    let subscription = Arc::new(Subscription::new(
        handler,
        vec!["orders.>".into()],
        1,
        Duration::from_millis(1),
        metrics.delivery(name, &["orders.>".to_string()]),
    ));
    let consumer = subscription.consumer().to_string();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(delivery::run(subscription, stream.clone(), stopped));
    while stream.checkpoint(&consumer).await.unwrap().sequence < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    let _ = task.await;
    total as f64 / elapsed.as_secs_f64()
}

/// Events per second a plain async-nats ordered consumer reads from the
/// cluster's stream.
async fn raw_read(urls: &[String], stream_name: &str, subject: &str, total: u64) -> f64 {
    let client = async_nats::connect(urls.join(",")).await.unwrap();
    let context = async_nats::jetstream::new(client);
    let stream = context.get_stream(stream_name).await.unwrap();
    let config = async_nats::jetstream::consumer::pull::OrderedConfig {
        filter_subject: subject.to_string(),
        ..Default::default()
    };
    let started = Instant::now();
    let consumer = stream.create_consumer(config).await.unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut read = 0;
    while read < total {
        messages.next().await.unwrap().unwrap();
        read += 1;
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Operations per second of `op` run `ops` times by `concurrency` tasks.
async fn rate<F, Fut>(ops: usize, concurrency: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in (t..ops).step_by(concurrency) {
                    op(i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    tokio.block_on(async {
        let total: u64 = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
        let ops: usize = std::env::var("BENCH_KV_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(4000);
        let nats = tokio::task::spawn_blocking(|| NatsCluster::start(1)).await.unwrap();
        let cluster = Cluster::connect(ClusterOptions::new(nats.urls(), "bench", "bench-node")).await.unwrap();
        let shared: Arc<dyn EventStream> = Arc::new(ClusterStream::new(cluster.clone()));
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("lmdb"), &StorageOptions::default()).unwrap();
        let embedded: Arc<dyn EventStream> = Arc::new(stream::Embedded::new(storage, true).unwrap());

        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let counter = Path::new(corral_fixtures::EVENT_COUNTER);
        let plane = || {
            let memory = Arc::new(MemoryKv::default());
            let none = Arc::new(corral_runtime::Unavailable("not used by this benchmark"));
            Arc::new(ControlPlane {
                kv: memory,
                events: none.clone(),
                views: none.clone(),
                carts: none.clone(),
                http: none,
            })
        };
        fill(shared.as_ref(), total).await;
        fill(embedded.as_ref(), total).await;

        println!("cluster benchmark: {total} events, one nats-server (sync_interval: always) on loopback\n");
        let in_cluster = drain(
            "cluster",
            Arc::new(Wasm(runtime.load(counter, Default::default()).await.unwrap(), plane())),
            shared,
            total,
        )
        .await;
        let on_one_node = drain(
            "embedded",
            Arc::new(Wasm(runtime.load(counter, Default::default()).await.unwrap(), plane())),
            embedded,
            total,
        )
        .await;
        let raw = raw_read(&nats.urls(), "CORRAL_bench", "bench.ev.>", total).await;
        println!("events to a wasm handler, checkpoint after each:");
        println!("  cluster (JetStream reader + fenced kv checkpoint)  {in_cluster:>10.0} events/s");
        println!("  embedded (LMDB log + checkpoint)                   {on_one_node:>10.0} events/s");
        println!("  plain async-nats ordered consumer, no handler      {raw:>10.0} events/s");
        println!(
            "  ratios: cluster / embedded {:.2}x   cluster / raw consumer {:.3}x\n",
            in_cluster / on_one_node,
            in_cluster / raw
        );

        let metrics = Arc::new(Metrics::new().unwrap());
        let kv = Arc::new(ClusterKv::new(cluster.clone(), metrics));
        let bucket = Bucket::Plugin("bench".into());
        let concurrency = 32;
        let corral_set = {
            let (kv, bucket) = (kv.clone(), bucket.clone());
            rate(ops, concurrency, move |i| {
                let (kv, bucket) = (kv.clone(), bucket.clone());
                async move { kv.set(&bucket, &format!("k{}", i % 500), b"value".to_vec()).await.unwrap() }
            })
            .await
        };
        let corral_get = {
            let (kv, bucket) = (kv.clone(), bucket.clone());
            rate(ops, concurrency, move |i| {
                let (kv, bucket) = (kv.clone(), bucket.clone());
                async move {
                    kv.get(&bucket, &format!("k{}", i % 500)).await.unwrap();
                }
            })
            .await
        };
        let client = async_nats::connect(nats.urls().join(",")).await.unwrap();
        let context = async_nats::jetstream::new(client);
        let raw_bucket = context
            .create_key_value(async_nats::jetstream::kv::Config { bucket: "raw-bench".into(), ..Default::default() })
            .await
            .unwrap();
        let raw_set = {
            let bucket = raw_bucket.clone();
            rate(ops, concurrency, move |i| {
                let bucket = bucket.clone();
                async move {
                    bucket.put(format!("k{}", i % 500), bytes::Bytes::from_static(b"value")).await.unwrap();
                }
            })
            .await
        };
        let raw_get = {
            let bucket = raw_bucket.clone();
            rate(ops, concurrency, move |i| {
                let bucket = bucket.clone();
                async move {
                    bucket.get(format!("k{}", i % 500)).await.unwrap();
                }
            })
            .await
        };
        println!("kv, {ops} operations from {concurrency} concurrent tasks:");
        println!(
            "  set: cluster kv backend {corral_set:>8.0}/s   plain async-nats KV {raw_set:>8.0}/s   ratio {:.2}x",
            corral_set / raw_set
        );
        println!(
            "  get: cluster kv backend {corral_get:>8.0}/s   plain async-nats KV {raw_get:>8.0}/s   ratio {:.2}x",
            corral_get / raw_get
        );
        drop(nats);
    });
}
