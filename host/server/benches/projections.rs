//! Projection throughput, wasm beside native in the same run: N events
//! folded by the `projection-count` component and by a native Rust fold of
//! the same logic, into the same LMDB views with the same batching (views
//! and checkpoint committed together per batch), at batch size 256 and at
//! one commit per event.
//!
//! Run with `just bench-projections`. `BENCH_EVENTS` sets N.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use corral_runtime::memory::{MemoryEvents, MemoryKv, MemoryViews};
use corral_runtime::types::Event;
use corral_runtime::{ControlPlane, FoldStep, Plugin, Runtime, RuntimeConfig};
use corral_storage::log::NewRecord;
use corral_storage::{Storage, StorageOptions};

/// The native twin of `projection-count`.
fn native_fold(current: Option<&[u8]>, event: &Event) -> FoldStep {
    if event.topic.ends_with(".ignored") {
        return FoldStep::Skip;
    }
    let count: u64 = current.and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse().ok()).unwrap_or(0);
    FoldStep::Put { id: event.topic.clone(), value: (count + 1).to_string().into_bytes() }
}

async fn fold_all(storage: &Storage, projection: &str, plugin: Option<&Plugin>, events: &[Event], batch: usize) -> f64 {
    let consumer = format!("projection.{projection}");
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let mut pending: HashMap<(String, String), Option<Vec<u8>>> = HashMap::new();
        for event in chunk {
            let read = |id: &str| match pending.get(&(event.tenant.clone(), id.to_string())) {
                Some(value) => value.clone(),
                None => storage.view_get(&event.tenant, projection, id).unwrap(),
            };
            let step = match plugin {
                Some(plugin) => plugin.fold(event, async |id: &str| Ok(read(id))).await.unwrap().value,
                None => {
                    let current = read(&event.topic);
                    native_fold(current.as_deref(), event)
                }
            };
            match step {
                FoldStep::Put { id, value } => {
                    pending.insert((event.tenant.clone(), id), Some(value));
                }
                FoldStep::Delete { id } => {
                    pending.insert((event.tenant.clone(), id), None);
                }
                FoldStep::Skip => {}
            }
        }
        let changes: Vec<_> = pending.into_iter().collect();
        let last = chunk.last().map(|e| e.sequence).unwrap_or(0);
        storage.commit_views(projection, &consumer, last, &changes).unwrap();
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio.block_on(async {
        let total: usize = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        let records: Vec<NewRecord> = (0..total)
            .map(|i| NewRecord {
                topic: ["orders.created", "orders.paid", "orders.shipped", "orders.x.ignored"][i % 4].into(),
                tenant: ["acme", "globex", "initech"][i % 3].into(),
                correlation_id: String::new(),
                traceparent: None,
                source: "bench".into(),
                payload: b"{}".to_vec(),
            })
            .collect();
        storage.append(&records).unwrap();
        let events: Vec<Event> =
            storage.read_after(0, total).unwrap().iter().map(corral_host::events::to_event).collect();
        let control = ControlPlane {
            kv: Arc::new(MemoryKv::default()),
            events: Arc::new(MemoryEvents::default()),
            views: Arc::new(MemoryViews::default()),
        };
        let runtime = Runtime::new(RuntimeConfig::default(), control).unwrap();
        let plugin = runtime.load(Path::new(corral_fixtures::PROJECTION_COUNT), Default::default()).await.unwrap();

        println!("projection benchmark: {total} events, 3 tenants, 4 topics (1 skipped)\n");
        for batch in [256, 1] {
            let sample = if batch == 1 { &events[..total.min(2000)] } else { &events[..] };
            let native = fold_all(&storage, &format!("native-{batch}"), None, sample, batch).await;
            let wasm = fold_all(&storage, &format!("wasm-{batch}"), Some(&plugin), sample, batch).await;
            println!(
                "batch {batch:>3}: native {native:>10.0} events/s   wasm {wasm:>10.0} events/s   ratio {:.2}x",
                wasm / native
            );
            for tenant in ["acme", "globex", "initech"] {
                let native = storage.view_list(tenant, &format!("native-{batch}"), "", None, 10).unwrap();
                let wasm = storage.view_list(tenant, &format!("wasm-{batch}"), "", None, 10).unwrap();
                assert_eq!(native, wasm, "both folds produce the same views");
            }
        }
        println!("\ntarget: wasm >= 0.6x native at batch 256");
    });
}
