//! Indexed view queries against a full scan, in the same run, at growing
//! numbers of views: "orders of one customer over 100, newest first, 20 of
//! them" (`customer = 'cN' AND total > 100 ORDER BY placed_at DESC LIMIT
//! 20`) through the index `[customer, placed_at]`, and the same query over
//! a copy of the views without indexes. Each customer has about 1,000
//! orders at every size, so the answer is the same size and only the
//! number of views grows.
//!
//! Run with `just bench-queries`. `BENCH_VIEWS` sets the sizes
//! (comma-separated, default `10000,100000,1000000`), `BENCH_QUERIES` how
//! many indexed queries are timed per size (default 2000).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::time::{Duration, Instant};

use corral_query::{Filter, IndexSpec, Indexes, Order, Query};
use corral_storage::{Storage, StorageOptions};

const INDEXED: &str = "orders@indexed";
const PLAIN: &str = "orders@plain";
const TENANT: &str = "acme";

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(|n| n.trim().parse().unwrap()).collect()
}

/// A deterministic pseudo-random sequence (no dependency, same data every run).
fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

fn load(storage: &Storage, views: usize, indexes: &Indexes) -> Duration {
    let customers = (views / 1000).max(1) as u64;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for n in 0..views as u64 {
        let r = mix(n);
        let status = ["open", "paid", "shipped"][(r % 3) as usize];
        let view = serde_json::json!({
            "customer": format!("c{}", r % customers),
            "total": (r >> 20) % 500,
            "placed_at": 1_700_000_000_000u64 + (r >> 32) % 10_000_000,
            "status": status,
            "lines": (r >> 8) % 7 + 1,
        });
        batch.push(((TENANT.to_string(), format!("order-{n:08}")), Some(view.to_string().into_bytes())));
        if batch.len() == 10_000 || n + 1 == views as u64 {
            storage.commit_views(INDEXED, "c1", n, &batch, indexes).unwrap();
            storage.commit_views(PLAIN, "c2", n, &batch, &Indexes::default()).unwrap();
            batch.clear();
        }
    }
    started.elapsed()
}

fn query(customer: u64) -> Query {
    Query {
        filter: Filter::parse(&format!("customer = 'c{customer}' AND total > 100")).unwrap(),
        order: Order::parse("placed_at DESC").unwrap(),
        id_prefix: String::new(),
        limit: 20,
        after: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let sizes = env_list("BENCH_VIEWS", "10000,100000,1000000");
    let queries = env_list("BENCH_QUERIES", "2000")[0];
    let indexes = Indexes::declare(&[IndexSpec::Many(vec!["customer".into(), "placed_at".into()])]).unwrap();
    println!("views      load     indexed p50   p99      scanned   full scan p50   ratio");
    let mut first_p50 = None;
    for views in sizes {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        storage.prepare_indexes(INDEXED, &indexes).unwrap();
        let loaded = load(&storage, views, &indexes);
        let customers = (views / 1000).max(1) as u64;
        let mut timings = Vec::with_capacity(queries);
        let mut scanned = 0;
        for q in 0..queries as u64 {
            let query = query(mix(q + 7) % customers);
            let started = Instant::now();
            let page = storage.view_query(TENANT, INDEXED, &query, 10_000).unwrap();
            timings.push(started.elapsed());
            assert_eq!(page.index.as_deref(), Some("customer,placed_at"));
            assert!(page.views.len() <= 20);
            scanned += page.scanned;
        }
        timings.sort();
        // The same query, every view read: a few runs are enough to see it.
        let mut scans = Vec::new();
        for q in 0..5u64 {
            let query = query(mix(q + 7) % customers);
            let started = Instant::now();
            let page = storage.view_query(TENANT, PLAIN, &query, usize::MAX).unwrap();
            scans.push(started.elapsed());
            let indexed = storage.view_query(TENANT, INDEXED, &query, 10_000).unwrap();
            assert_eq!(page.views, indexed.views, "the scan and the index answer the same");
        }
        scans.sort();
        let p50 = percentile(&timings, 0.5);
        let scan = percentile(&scans, 0.5);
        first_p50.get_or_insert(p50);
        println!(
            "{views:<10} {:>6.1}s  {:>8.3} ms {:>8.3} ms  {:>6}    {:>10.1} ms   {:>8.0}x",
            loaded.as_secs_f64(),
            p50.as_secs_f64() * 1e3,
            percentile(&timings, 0.99).as_secs_f64() * 1e3,
            scanned / queries,
            scan.as_secs_f64() * 1e3,
            scan.as_secs_f64() / p50.as_secs_f64(),
        );
    }
    if let Some(first) = first_p50 {
        println!(
            "(indexed p50 at the smallest size: {:.3} ms; ratio = full scan / indexed)",
            first.as_secs_f64() * 1e3
        );
    }
}
