//! What only a real `host` process shows: a graceful exit on SIGTERM, and
//! recovery after `kill -9` mid-stream for carts, event delivery and
//! projections. Everything else runs in-process in the server's tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use corral_fixtures::*;
use corral_storage::{Storage, StorageOptions};
use corral_test_support::http::{Reply, get, post, request, send};
use corral_test_support::plugins::plugins_dir;
use corral_test_support::wait::eventually;

use crate::Host;

fn mutation(kind: &str, payload: serde_json::Value, id: Option<&str>) -> Vec<u8> {
    let mut body = serde_json::json!({"kind": kind, "payload": payload});
    if let Some(id) = id {
        body["id"] = id.into();
    }
    body.to_string().into_bytes()
}

fn open(data: &Path) -> Storage {
    Storage::open(&data.join("lmdb"), &StorageOptions::default()).unwrap()
}

/// The recorder's `log`: `(sequence, payload)` in the order it handled them.
fn handled(storage: &Storage, plugin: &str) -> Vec<(u64, String)> {
    let log = storage.kv_get(&format!("plugin/{plugin}"), "log").unwrap().unwrap_or_default();
    String::from_utf8(log)
        .unwrap()
        .split(';')
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (sequence, payload) = entry.split_once(':').unwrap();
            (sequence.parse().unwrap(), payload.to_string())
        })
        .collect()
}

async fn publish_for(host: &Host, tenant: &str, topic: &str, payload: &str) {
    let mut request = request("POST", host.admin, &format!("/events/{topic}"), payload.as_bytes());
    request.headers_mut().insert("x-corral-tenant", tenant.parse().unwrap());
    assert_eq!(send(host.admin, request).await.status, 200);
}

async fn publish(host: &Host, topic: &str, payload: &str) {
    publish_for(host, "", topic, payload).await;
}

async fn view(host: &Host, tenant: &str, path: &str) -> Reply {
    let mut request = request("GET", host.public, path, b"");
    request.headers_mut().insert("x-corral-tenant", tenant.parse().unwrap());
    send(host.public, request).await
}

/// Waits until the projection has folded everything and is `state`.
async fn settled(host: &Host, projection: &str, state: &str) {
    let started = Instant::now();
    loop {
        let list = get(host.admin, "/projections").await.json();
        let status = list.as_array().unwrap().iter().find(|p| p["projection"] == projection).cloned();
        if status.is_some_and(|status| status["state"] == state && status["lag"] == 0) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{projection} never settled as {state}: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn digest(data: &Path, generation: &str) -> (String, usize) {
    open(data).views_digest(generation).unwrap()
}

/// The storage scope (`NAME@HASH`) of a component's generation.
fn generation(name: &str, component: &str) -> String {
    let hash = blake3::hash(&std::fs::read(component).unwrap()).to_hex().to_string();
    format!("{name}@{}", &hash[..12])
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_slow_request_finish() {
    let plugins = plugins_dir(&[("slow", ROUTE_SLOW)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path(), &[]);
    let addr = host.public;
    let slow = tokio::spawn(get(addr, "/slow?ms=1500"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = host.pid();
    let status = tokio::task::spawn_blocking(move || host.terminate()).await.unwrap();
    let reply = slow.await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "slept 1500"), "pid {pid}");
    assert!(status.success(), "exit code 0 after a graceful shutdown: {status}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_keeps_every_acknowledged_mutation() {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[("counter", "[cart]\nsnapshot_every = 5\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path(), &[]);
    let public = host.public;
    let (acked_tx, mut acked) = tokio::sync::mpsc::unbounded_channel();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8u64 {
        let acked_tx = acked_tx.clone();
        writers.spawn(async move {
            for n in 0.. {
                let id = format!("w{writer}-{n}");
                let body = mutation("add", (writer * 1000 + n + 1).into(), Some(&id));
                let Ok(Ok(stream)) =
                    tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(public)).await
                else {
                    return;
                };
                let Ok((mut sender, connection)) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
                else {
                    return;
                };
                tokio::spawn(connection);
                let request = request("POST", public, "/carts/counter/durable", &body);
                let Ok(response) = sender.send_request(request).await else { return };
                if response.status() != 200 {
                    return;
                }
                use http_body_util::BodyExt as _;
                let Ok(body) = response.into_body().collect().await else { return };
                let json: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap();
                let _ = acked_tx.send((id, json["version"].as_u64().unwrap(), json["state"].as_u64().unwrap()));
            }
        });
    }
    drop(acked_tx);
    // Let some mutations through, then kill the host while others are in flight.
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 60 {
        acknowledged.push(acked.recv().await.unwrap());
    }
    host.kill_9();
    while let Some(result) = writers.join_next().await {
        result.unwrap();
    }
    while let Ok(more) = acked.try_recv() {
        acknowledged.push(more);
    }

    let host = Host::start(plugins.path(), data.path(), &[]);
    let state = get(host.public, "/carts/counter/durable").await.json();
    let version = state["version"].as_u64().unwrap();
    assert!(version >= acknowledged.iter().map(|(_, v, _)| *v).max().unwrap(), "an acknowledged version was lost");
    // Every acknowledged mutation is in the journal: repeating its id
    // returns the recorded result instead of applying it again.
    for (id, acked_version, acked_state) in &acknowledged {
        let repeat = post(host.public, "/carts/counter/durable", &mutation("add", 1_000_000.into(), Some(id))).await;
        let json = repeat.json();
        assert_eq!(json["repeated"], true, "{id} was acknowledged but is not in the journal");
        assert_eq!((json["version"].as_u64(), json["state"].as_u64()), (Some(*acked_version), Some(*acked_state)));
    }
    let after = get(host.public, "/carts/counter/durable").await.json();
    assert_eq!(after, state, "repeats changed nothing");
    let verify = post(host.admin, "/carts/counter/durable/verify", b"").await;
    assert_eq!(verify.status, 200, "the state after the crash equals a replay: {}", verify.text());
    assert_eq!(verify.json()["version"].as_u64(), Some(version));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_stream_resumes_from_the_checkpoint_without_skipping() {
    // A backlog first (no subscriber yet), so the crash surely lands mid-stream.
    let total = 150u64;
    let data = tempfile::tempdir().unwrap();
    let empty = plugins_dir(&[], &[]);
    let host = Host::start(empty.path(), data.path(), &[]);
    for i in 1..=total {
        publish(&host, "orders.created", &i.to_string()).await;
    }
    assert!(tokio::task::spawn_blocking(move || host.terminate()).await.unwrap().success());

    let plugins = plugins_dir(&[("recorder", EVENT_KV_RECORDER)], &[]);
    let host = Host::start(plugins.path(), data.path(), &[]);
    let storage = open(data.path());
    eventually(Duration::from_secs(20), "some progress", || {
        (handled(&storage, "kv-recorder").len() >= 5).then_some(())
    })
    .await;
    host.kill_9();
    let before = handled(&storage, "kv-recorder").len() as u64;
    assert!(before < total, "killed mid-stream ({before} of {total} handled)");

    let _host = Host::start(plugins.path(), data.path(), &[]);
    let sequences = eventually(Duration::from_secs(60), "every event", || {
        let sequences: BTreeSet<u64> = handled(&storage, "kv-recorder").into_iter().map(|(s, _)| s).collect();
        (sequences.len() as u64 == total).then_some(sequences)
    })
    .await;
    assert_eq!(sequences, (1..=total).collect(), "no event skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_batch_a_restart_and_a_rebuild_all_give_the_same_bytes() {
    let data = tempfile::tempdir().unwrap();
    let empty = plugins_dir(&[], &[]);
    let host = Host::start(empty.path(), data.path(), &[]);
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for i in 0..240u64 {
        let tenant = ["acme", "globex", "initech"][(i % 3) as usize];
        let topic = ["orders.created", "orders.paid", "orders.shipped", "orders.returned"][(i % 4) as usize];
        publish_for(&host, tenant, topic, "{}").await;
        *expected.entry((tenant.to_string(), topic.to_string())).or_default() += 1;
    }
    assert!(tokio::task::spawn_blocking(move || host.terminate()).await.unwrap().success());

    let plugins = plugins_dir(&[("count", PROJECTION_COUNT)], &[("count", "[projection]\nbatch_size = 8\n")]);
    let host = Host::start(plugins.path(), data.path(), &[]);
    let storage = Storage::open(&data.path().join("lmdb"), &StorageOptions::default()).unwrap();
    let count = generation("count", PROJECTION_COUNT);
    let consumer = format!("projection.{count}");
    let started = Instant::now();
    while storage.checkpoint(&consumer).unwrap() == 0 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    host.kill_9();
    let at_crash = storage.checkpoint(&consumer).unwrap();
    assert!(at_crash < 240, "killed mid-stream (checkpoint {at_crash})");
    drop(storage);

    let host = Host::start(plugins.path(), data.path(), &[]);
    settled(&host, "count", "running").await;
    for ((tenant, topic), count) in &expected {
        assert_eq!(
            view(&host, tenant, &format!("/views/count/{topic}")).await.text(),
            count.to_string(),
            "{tenant} {topic}"
        );
    }
    let after_crash = digest(data.path(), &count);
    assert_eq!(after_crash.1, expected.len());

    // A restart redelivers nothing: the checkpoint gates it.
    assert!(tokio::task::spawn_blocking(move || host.terminate()).await.unwrap().success());
    let host = Host::start(plugins.path(), data.path(), &[]);
    settled(&host, "count", "running").await;
    assert_eq!(digest(data.path(), &count), after_crash);

    // A rebuild from scratch is an uninterrupted run over the same log.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["projection", "rebuild", "count", "--admin", &format!("http://{}", host.admin)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    settled(&host, "count", "running").await;
    assert_eq!(digest(data.path(), &count), after_crash, "byte-identical views");
}
