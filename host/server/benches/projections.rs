//! Projection throughput, wasm beside native in the same run: N events
//! folded by the `projection-count` component and by a native Rust fold of
//! the same logic, into the same LMDB views with the same batching and the
//! same bookkeeping (the runtime's `PendingViews` over the stored views;
//! views and checkpoint committed together per batch), at batch size 256 and
//! at one commit per event. The wasm projection folds each batch in one
//! instance (`batch-projector.fold`), as the host's runner does; for
//! reference, the per-event path (a fresh instance per event) is measured
//! too.
//!
//! Besides events/s, each fold's time without the commits is printed: the
//! commit (an fsync per batch) is the same for both and takes a large,
//! disk-dependent share, so the fold-only figures say what the guest costs.
//!
//! Run with `just bench-projections`. `BENCH_EVENTS` sets N, `BENCH_ROUNDS`
//! how many alternating rounds run (the best of each fold counts).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_runtime::types::Event;
use corral_runtime::{FoldStep, PendingViews, Plugin, Runtime, RuntimeConfig, ViewSource};
use corral_storage::log::NewRecord;
use corral_storage::{Storage, StorageOptions};

/// How a batch is folded.
#[derive(Clone, Copy)]
enum Folder<'a> {
    /// The native twin of `projection-count`.
    Native,
    /// The component, one instance per batch.
    Batched(&'a Plugin),
    /// The component, one fresh instance per event.
    PerEvent(&'a Plugin),
}

/// The native twin of `projection-count`'s `key` and `apply`.
fn native_fold(event: &Event, views: &PendingViews) {
    if event.topic.ends_with(".ignored") {
        return;
    }
    if event.payload == b"delete" {
        return views.set(&event.tenant, event.topic.clone(), None);
    }
    assert!(event.payload != b"poison", "no poison in the benchmark");
    let current = views.get(&event.tenant, &event.topic).unwrap();
    let count: u64 = match current {
        None => 0,
        Some(bytes) => String::from_utf8_lossy(&bytes).parse().expect("a number"),
    };
    views.set(&event.tenant, event.topic.clone(), Some((count + 1).to_string().into_bytes()));
}

struct Stored {
    storage: Storage,
    projection: String,
}

impl ViewSource for Stored {
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String> {
        self.storage.view_get(tenant, &self.projection, id).map_err(|e| e.to_string())
    }
}

/// What folding every batch took.
#[derive(Clone, Copy)]
struct Measured {
    events_per_s: f64,
    /// Microseconds per event, the commits left out.
    fold_us: f64,
}

impl Measured {
    const NONE: Measured = Measured { events_per_s: 0.0, fold_us: f64::INFINITY };

    fn best(self, other: Measured) -> Measured {
        Measured { events_per_s: self.events_per_s.max(other.events_per_s), fold_us: self.fold_us.min(other.fold_us) }
    }
}

async fn fold_all(storage: &Storage, projection: &str, folder: Folder<'_>, batches: &[Arc<[Event]>]) -> Measured {
    let consumer = format!("projection.{projection}");
    let started = Instant::now();
    let mut committing = Duration::ZERO;
    let mut events = 0;
    for batch in batches {
        let source = Stored { storage: storage.clone(), projection: projection.to_string() };
        let views = PendingViews::new(Arc::new(source));
        match folder {
            Folder::Native => batch.iter().for_each(|event| native_fold(event, &views)),
            Folder::Batched(plugin) => {
                let mut next = 0;
                while next < batch.len() {
                    let folded = plugin.fold_batch(batch, next, &views).await;
                    assert!(folded.stopped.is_none(), "{:?}", folded.stopped);
                    next += folded.folded;
                }
            }
            Folder::PerEvent(plugin) => {
                for event in batch.iter() {
                    match plugin.fold(event, async |id: &str| views.get(&event.tenant, id)).await.unwrap().value {
                        FoldStep::Put { id, value } => views.set(&event.tenant, id, Some(value)),
                        FoldStep::Delete { id } => views.set(&event.tenant, id, None),
                        FoldStep::Skip => {}
                    }
                }
            }
        }
        let changes = views.take_changes();
        let last = batch.last().map(|e| e.sequence).unwrap_or(0);
        let commit = Instant::now();
        storage.commit_views(projection, &consumer, last, &changes, &corral_query::Indexes::default()).unwrap();
        committing += commit.elapsed();
        events += batch.len();
    }
    let elapsed = started.elapsed();
    Measured {
        events_per_s: events as f64 / elapsed.as_secs_f64(),
        fold_us: (elapsed - committing).as_secs_f64() * 1e6 / events as f64,
    }
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
            storage.read_after(0, total).unwrap().iter().map(corral_server::events::to_event).collect();
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let plugin = runtime.load(Path::new(corral_fixtures::PROJECTION_COUNT), Default::default()).await.unwrap();
        assert!(plugin.folds_batches(), "projection-count is exported batched");

        println!("projection benchmark: {total} events, 3 tenants, 4 topics (1 skipped)\n");
        // Rounds alternate the folds and the best of each counts, so a
        // burst of load on a shared machine does not decide the ratio.
        let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
        for batch in [256, 1] {
            let sample = if batch == 1 { &events[..total.min(2000)] } else { &events[..] };
            let batches: Vec<Arc<[Event]>> = sample.chunks(batch).map(Arc::from).collect();
            let (mut native, mut wasm, mut fresh) = (Measured::NONE, Measured::NONE, Measured::NONE);
            for round in 0..rounds {
                let scope = |folder: &str| format!("{folder}-{batch}-{round}");
                native = native.best(fold_all(&storage, &scope("native"), Folder::Native, &batches).await);
                wasm = wasm.best(fold_all(&storage, &scope("wasm"), Folder::Batched(&plugin), &batches).await);
                fresh = fresh.best(fold_all(&storage, &scope("fresh"), Folder::PerEvent(&plugin), &batches).await);
                for tenant in ["acme", "globex", "initech"] {
                    let native = storage.view_list(tenant, &scope("native"), "", None, 10).unwrap();
                    for wasm in ["wasm", "fresh"] {
                        let wasm = storage.view_list(tenant, &scope(wasm), "", None, 10).unwrap();
                        assert_eq!(native, wasm, "every fold produces the same views");
                    }
                }
            }
            println!(
                "batch {batch:>3}: native {:>10.0} events/s   wasm {:>10.0} events/s   ratio {:.2}x",
                native.events_per_s,
                wasm.events_per_s,
                wasm.events_per_s / native.events_per_s
            );
            println!(
                "           (folding alone, commits left out: native {:.3} µs/event, wasm {:.3} µs/event)",
                native.fold_us, wasm.fold_us
            );
            println!(
                "           (wasm, fresh instance per event: {:>10.0} events/s   ratio {:.2}x)",
                fresh.events_per_s,
                fresh.events_per_s / native.events_per_s
            );
        }
        println!("\ntarget: wasm >= 0.6x native at batch 256");
    });
}
