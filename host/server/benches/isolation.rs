//! Isolation: a well-behaved neighbour route measured alone, then while
//! adversarial plugins on the same host are hammered — a guest that loops
//! until its fuel runs out, one that grows its memory to the limit, one
//! that answers a response far over the cap, one that floods the log
//! (1,000 lines a call, over its default budget of lines a second; and
//! the same with the budget lifted, to show what the budget buys) —
//! printing the neighbour's p50/p99 under each attack beside its figures
//! alone, and the ratio (goal: p99 under attack at most 3× alone on a
//! 2-core machine).
//!
//! Run with `just bench-isolation`. `BENCH_REQUESTS` sets the neighbour's
//! sequential requests per case; `BENCH_CASES` (e.g. `huge,log`) picks cases by path; `BENCH_ATTACKERS` the attacking
//! connections.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corral_fixtures::{ROUTE_ENDLESS_LOOP, ROUTE_HELLO, ROUTE_HUGE_RESPONSE, ROUTE_LOGGER, ROUTE_MEMORY_HOG};
use corral_server::config::ServerConfig;
use corral_server::serve::Detached;
use corral_test_support::http::get;
use corral_test_support::plugins::plugins_dir;

struct Latency {
    p50: Duration,
    p99: Duration,
}

/// The neighbour's latency over `requests` sequential calls.
async fn neighbour(public: SocketAddr, requests: usize) -> Latency {
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let reply = get(public, "/hello").await;
        samples.push(started.elapsed());
        assert_eq!(reply.status, 200, "the neighbour failed: {}", reply.text());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Latency { p50: at(0.5), p99: at(0.99) }
}

/// `attackers` connections calling `path` back to back until stopped;
/// returns how many calls they made.
fn attack(
    public: SocketAddr,
    path: &'static str,
    attackers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..attackers)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let calls = AtomicU64::new(0);
                while !stop.load(Ordering::Relaxed) {
                    let _ = corral_test_support::http::try_send(
                        public,
                        corral_test_support::http::request("GET", public, path, b""),
                    )
                    .await;
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                calls.load(Ordering::Relaxed)
            })
        })
        .collect()
}

fn main() {
    let requests: usize = std::env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let attackers: usize = std::env::var("BENCH_ATTACKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    // Log lines are formatted (into a sink) as a host would write them.
    tracing_subscriber::fmt().with_writer(std::io::sink).with_env_filter("info").init();
    let plugins = plugins_dir(
        &[
            ("hello", ROUTE_HELLO),
            ("loop", ROUTE_ENDLESS_LOOP),
            ("hog", ROUTE_MEMORY_HOG),
            ("huge", ROUTE_HUGE_RESPONSE),
            ("logger", ROUTE_LOGGER),
            ("unbudgeted", ROUTE_LOGGER),
        ],
        &[(
            "unbudgeted",
            "name = \"logger-unbudgeted\"\nroutes = [{ method = \"GET\", pattern = \"/log-unbudgeted/:what\" }]\n\
             [limits]\nlog_lines_per_second = 4000000000\n",
        )],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Detached::start(ServerConfig::new(plugins.path().to_path_buf(), data.path().to_path_buf())).unwrap();
    let public = host.public_addr();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        neighbour(public, requests / 10).await;
        let alone = neighbour(public, requests).await;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!("neighbour GET /hello, {requests} sequential calls, {attackers} attacking connections per case:");
        println!("  alone                        p50 {:>7.2} ms   p99 {:>7.2} ms", ms(alone.p50), ms(alone.p99));
        for (what, path) in [
            ("fuel-exhausting loop", "/loop"),
            ("memory to the limit", "/hog"),
            ("response over the cap", "/huge"),
            ("log flood", "/log/flood?lines=1000"),
            ("log flood, no budget", "/log-unbudgeted/flood?lines=1000"),
        ] {
            if std::env::var("BENCH_CASES").is_ok_and(|cases| !cases.split(',').any(|case| path.contains(case))) {
                continue;
            }
            let stop = Arc::new(AtomicBool::new(false));
            let tasks = attack(public, path, attackers, stop.clone());
            tokio::time::sleep(Duration::from_millis(200)).await;
            let under = neighbour(public, requests).await;
            stop.store(true, Ordering::Relaxed);
            let mut calls = 0;
            for task in tasks {
                calls += task.await.unwrap();
            }
            println!(
                "  under {what:<24} p50 {:>7.2} ms   p99 {:>7.2} ms   p99 {:>5.1}x alone   ({calls} attacking calls)",
                ms(under.p50),
                ms(under.p99),
                under.p99.as_secs_f64() / alone.p99.as_secs_f64()
            );
        }
    });
    drop(host);
}
