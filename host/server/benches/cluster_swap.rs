//! Rollouts across a cluster against a single host's swap, in one run: the
//! time from a deploy's answer to the new version answering on **all three
//! nodes** of a cluster (on a real nats-server, the pinned one), p50 over
//! 20 rollouts, with a warm cache (versions every node has fetched and
//! compiled before) and a cold one (a component no node has seen: fetched
//! from the object store and compiled on each node); beside it, one host
//! on its own taking the same upload (`PUT /plugins/NAME` answers once it
//! serves), as the baseline of the deploy call itself.
//!
//! Run with `just bench-swap`. `BENCH_ROLLOUTS` sets the rollouts per case.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use corral_server::config::{ClusterConfig, ServerConfig};
use corral_server::serve::Detached;
use corral_test_support::http::{get, request, send};
use corral_test_support::nats::NatsCluster;
use corral_test_support::plugins::plugins_dir;

fn host(plugins: &Path, data: &Path, cluster: Option<ClusterConfig>) -> Detached {
    let mut config = ServerConfig::new(plugins.to_path_buf(), data.to_path_buf());
    config.cluster = cluster;
    Detached::start(config).unwrap()
}

/// `component` with a custom section naming `tag` appended: the same code
/// under another content hash, so no cache has it.
fn variant(component: &[u8], tag: &str) -> Vec<u8> {
    let mut payload = vec![tag.len() as u8];
    payload.extend_from_slice(tag.as_bytes());
    payload.extend_from_slice(b"corral-bench");
    let mut bytes = component.to_vec();
    bytes.push(0);
    bytes.push(payload.len() as u8);
    bytes.extend(payload);
    bytes
}

/// Deploys `bytes` through `admin`; returns how long the call took.
async fn deploy(admin: SocketAddr, bytes: &[u8]) -> Duration {
    let started = Instant::now();
    let reply = send(admin, request("PUT", admin, "/plugins/versioned", bytes)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    started.elapsed()
}

/// Waits until every node answers `expected`; returns how long it took.
async fn serving(publics: &[SocketAddr], expected: &str) -> Duration {
    let started = Instant::now();
    for public in publics {
        while get(*public, "/version").await.text() != expected {
            assert!(started.elapsed() < Duration::from_secs(60), "{public} never served {expected}");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
    started.elapsed()
}

/// Waits (untimed) until the rollout is recorded done on every node, so
/// the next deploy is not refused as concurrent.
async fn settled(admin: SocketAddr) {
    loop {
        let status = get(admin, "/cluster/plugins/versioned").await.json();
        if status["converged"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn p50(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let rollouts: usize = std::env::var("BENCH_ROLLOUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let nats = tokio::task::spawn_blocking(|| NatsCluster::start(1)).await.unwrap();
        let plugins = plugins_dir(&[("versioned", corral_fixtures::ROUTE_VERSION_A)], &[]);
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let (urls, path) = (nats.urls(), plugins.path().to_path_buf());
        let (nodes, alone) = tokio::task::spawn_blocking({
            let dirs: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
            move || {
                let node = |i: usize| Some(ClusterConfig::new(urls.clone(), "benchswap", &format!("node-{i}")));
                let nodes: Vec<Detached> = (0..3).map(|i| host(&path, &dirs[i], node(i))).collect();
                (nodes, host(&path, &dirs[3], None))
            }
        })
        .await
        .unwrap();
        let publics: Vec<SocketAddr> = nodes.iter().map(Detached::public_addr).collect();
        let admin = nodes[0].admin_addr();
        serving(&publics, "a").await;
        let a = std::fs::read(corral_fixtures::ROUTE_VERSION_A).unwrap();
        let b = std::fs::read(corral_fixtures::ROUTE_VERSION_B).unwrap();

        let mut cases = Vec::new();
        for (case, fresh) in [("warm", false), ("cold", true)] {
            let (mut calls, mut converged, mut single) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..rollouts {
                let (base, expected) = if i % 2 == 0 { (&b, "b") } else { (&a, "a") };
                let bytes = if fresh { variant(base, &format!("{case}-{i}")) } else { base.clone() };
                calls.push(deploy(admin, &bytes).await);
                converged.push(serving(&publics, expected).await);
                settled(admin).await;
                single.push(deploy(alone.admin_addr(), &bytes).await);
            }
            cases.push((case, p50(calls), p50(converged), p50(single)));
        }
        println!("rollouts across 3 nodes (1 wave, no canary), p50 of {rollouts} each:");
        for (case, call, converged, single) in cases {
            println!(
                "  {case:<5} deploy call {call:>7.1} ms   answer -> new version on all 3 nodes {converged:>7.1} ms   \
                 single host PUT (baseline) {single:>7.1} ms   cluster/single {:>5.2}x",
                (call + converged) / single
            );
        }
        drop(nodes);
        drop(alone);
        drop(nats);
    });
}
