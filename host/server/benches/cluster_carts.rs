//! Carts in a cluster against their baselines, in one run, on a real
//! nats-server (the pinned one, on a free loopback port): the same
//! `add` mutations (each with a client id, so each commit is a journal
//! message, a client-id record and one outbox event) sent over gRPC at the
//! same concurrency to
//!
//! - the cart's owner (local): lease held, one atomic batch per round;
//! - another node, which forwards each call once to the owner (forwarded);
//! - a host on its own (embedded): LMDB group commit;
//! - and, as the engine's limit, plain async-nats atomic batches of the
//!   same three messages with the same expectations (raw).
//!
//! Run with `just bench-cluster`. `BENCH_CART_MUTATIONS` sets the count per
//! load; `BENCH_CART_CLIENTS` the concurrency (one cart per client).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use corral_server::config::{ClusterConfig, ServerConfig};
use corral_server::http::grpc::proto::MutateRequest;
use corral_server::http::grpc::proto::cart_actor_client::CartActorClient;
use corral_server::serve::Detached;
use corral_test_support::nats::NatsCluster;
use corral_test_support::plugins::plugins_dir;

struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl Run {
    fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Run {
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Run { per_second: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(0.5), p99: at(0.99) }
    }

    /// The run of tasks that each give their calls' latencies.
    async fn of_tasks(mut tasks: tokio::task::JoinSet<Vec<Duration>>, started: Instant) -> Run {
        let mut latencies = Vec::new();
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done.unwrap());
        }
        Run::of(latencies, started.elapsed())
    }

    fn print(&self, what: &str) {
        println!(
            "  {what:<44} {:>8.0} mutations/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            self.per_second,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        );
    }
}

fn host(plugins: &Path, data: &Path, cluster: Option<ClusterConfig>) -> Detached {
    let mut config = ServerConfig::new(plugins.to_path_buf(), data.to_path_buf());
    config.cluster = cluster;
    Detached::start(config).unwrap()
}

/// `clients` tasks, each sending `per_client` mutations to its own cart at `addr`.
async fn load(addr: SocketAddr, carts: &[String], per_client: usize, tag: &str) -> Run {
    let client = CartActorClient::connect(format!("http://{addr}")).await.unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for cart in carts {
        let (mut client, cart, tag) = (client.clone(), cart.clone(), tag.to_string());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for n in 0..per_client {
                let request = MutateRequest {
                    plugin: "counter".into(),
                    cart_id: cart.clone(),
                    kind: "add".into(),
                    payload: b"1".to_vec(),
                    client_id: format!("{tag}-{n}"),
                    tenant: String::new(),
                };
                let sent = Instant::now();
                client.mutate(request).await.unwrap();
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    Run::of_tasks(tasks, started).await
}

/// The same commits as plain async-nats atomic batches: a journal message
/// expecting the subject's last sequence, a record expecting an empty
/// subject, an event; one batch at a time per subject.
async fn raw(urls: &[String], subjects: usize, per_subject: usize) -> Run {
    let client = async_nats::connect(urls.join(",")).await.unwrap();
    let context = async_nats::jetstream::new(client.clone());
    let config = async_nats::jetstream::stream::Config {
        name: "RAW_CARTS".into(),
        subjects: vec!["raw.>".into()],
        allow_atomic_publish: true,
        ..Default::default()
    };
    context.create_stream(config).await.unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..subjects {
        let client = client.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_subject);
            let mut last = 0u64;
            for n in 0..per_subject {
                let sent = Instant::now();
                let batch = format!("{:032x}", rand::random::<u128>());
                let message = |i: usize, commit: bool| {
                    let mut headers = HeaderMap::new();
                    headers.insert("Nats-Batch-Id", batch.as_str());
                    headers.insert("Nats-Batch-Sequence", i.to_string().as_str());
                    if commit {
                        headers.insert("Nats-Batch-Commit", "1");
                    }
                    headers
                };
                let mut first = message(1, false);
                first.insert("Nats-Expected-Last-Subject-Sequence", last.to_string().as_str());
                let inbox = client.new_inbox();
                client
                    .publish_with_reply_and_headers(
                        format!("raw.j.{s}"),
                        inbox.clone(),
                        first,
                        b"entry".as_ref().into(),
                    )
                    .await
                    .unwrap();
                let mut record = message(2, false);
                record.insert("Nats-Expected-Last-Subject-Sequence", "0");
                client
                    .publish_with_reply_and_headers(format!("raw.i.{s}.{n}"), inbox, record, b"record".as_ref().into())
                    .await
                    .unwrap();
                let ack = client
                    .request_with_headers(format!("raw.e.{s}"), message(3, true), b"event".as_ref().into())
                    .await
                    .unwrap();
                let ack: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap();
                let sequence = ack["seq"].as_u64().unwrap_or_else(|| panic!("batch refused: {ack}"));
                last = sequence - 2;
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    Run::of_tasks(tasks, started).await
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    tokio.block_on(async {
        let total: usize = std::env::var("BENCH_CART_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
        let clients: usize = std::env::var("BENCH_CART_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
        let per_client = total.div_ceil(clients);
        let nats = tokio::task::spawn_blocking(|| NatsCluster::start(1)).await.unwrap();
        let plugins = plugins_dir(&[("counter", corral_fixtures::CART_COUNTER)], &[]);
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let (urls, path) = (nats.urls(), plugins.path().to_path_buf());
        let (owner, other, alone) = tokio::task::spawn_blocking({
            let dirs: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
            move || {
                let node = |i: usize| Some(ClusterConfig::new(urls.clone(), "benchcarts", &format!("node-{i}")));
                (host(&path, &dirs[0], node(0)), host(&path, &dirs[1], node(1)), host(&path, &dirs[2], None))
            }
        })
        .await
        .unwrap();
        // Both nodes must see each other before carts are placed.
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Carts the first node owns: touch many through it, keep its own.
        let candidates: Vec<String> = (0..clients * 4).map(|c| format!("cart-{c}")).collect();
        load(owner.public_addr(), &candidates, 1, "warm").await;
        let held = corral_test_support::http::get(owner.admin_addr(), "/carts").await.json();
        let owned: Vec<String> =
            held["held"].as_array().unwrap().iter().map(|c| c["cart"].as_str().unwrap().to_string()).collect();
        assert!(owned.len() >= clients, "node 0 owns only {} of {} carts", owned.len(), candidates.len());
        let carts = &owned[..clients];

        println!(
            "cluster cart benchmark: {} mutations per load, {clients} concurrent clients (one cart each), over gRPC;\n\
             one nats-server (sync_interval: always) on loopback\n",
            per_client * clients
        );
        let local = load(owner.public_addr(), carts, per_client, "local").await;
        let forwarded = load(other.public_addr(), carts, per_client, "forwarded").await;
        let embedded = load(alone.public_addr(), carts, per_client, "embedded").await;
        let engine = raw(&nats.urls(), clients, per_client).await;
        local.print("owner local (cluster)");
        forwarded.print("forwarded once to the owner (cluster)");
        embedded.print("embedded (LMDB group commit)");
        engine.print("raw async-nats atomic batches, same 3 messages");
        println!(
            "  ratios: local / raw {:.2}x   forwarded / local {:.2}x   local / embedded {:.2}x",
            local.per_second / engine.per_second,
            forwarded.per_second / local.per_second,
            local.per_second / embedded.per_second
        );
        for server in [owner, other, alone] {
            tokio::task::spawn_blocking(move || server.stop().unwrap()).await.unwrap();
        }
    });
}
