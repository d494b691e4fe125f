//! Carts across three `host run --cluster` processes on three nats-servers,
//! under faults only real processes have: an owner killed with SIGKILL, an
//! owner frozen with SIGSTOP past its lease TTL and woken, and a rolling
//! restart (SIGTERM one node at a time). Clients send each mutation with a
//! unique client id until it is acknowledged (reusing the id, on another
//! node when theirs is gone); afterwards every acknowledged mutation is in
//! the journal exactly once at contiguous versions, `host cart verify`
//! passes for every cart, and each has exactly one outbox event.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use corral_cluster::{Cluster, ClusterOptions};
use corral_fixtures::CART_COUNTER;
use corral_test_support::http::{get, request, try_send};
use corral_test_support::plugins::plugins_dir;
use tokio::task::JoinSet;

use crate::{Host, nats};

const TTL_S: u64 = 3;

/// Where each node serves now (`None` while it is down).
type Table = Arc<Mutex<Vec<Option<(SocketAddr, SocketAddr)>>>>;

/// Three hosts of cluster `name` serving the counter cart.
struct Fleet {
    name: String,
    plugins: tempfile::TempDir,
    data: Vec<tempfile::TempDir>,
    hosts: Vec<Option<Host>>,
    table: Table,
}

impl Fleet {
    fn start(name: &str) -> Fleet {
        let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
        let data: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut fleet =
            Fleet { name: name.into(), plugins, data, hosts: Vec::new(), table: Arc::new(Mutex::new(vec![None; 3])) };
        for i in 0..3 {
            let host = fleet.launch(i);
            fleet.hosts.push(Some(host));
        }
        fleet
    }

    fn launch(&self, i: usize) -> Host {
        let (urls, node, ttl) = (nats().urls().join(","), format!("node-{i}"), TTL_S.to_string());
        let flags = ["--cluster", &urls, "--cluster-name", &self.name, "--node-id", &node, "--lease-ttl-s", &ttl];
        let host = Host::start(self.plugins.path(), self.data[i].path(), &flags);
        self.table.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some((host.public, host.admin));
        host
    }

    fn admin(&self, i: usize) -> SocketAddr {
        self.hosts[i].as_ref().unwrap().admin
    }

    /// Takes node `i` out of the clients' table, then hands its process over.
    fn take(&mut self, i: usize) -> Host {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)[i] = None;
        self.hosts[i].take().unwrap()
    }

    /// The carts each node owns now (by node).
    async fn owned(&self) -> Vec<Vec<String>> {
        let mut owned = Vec::new();
        for i in 0..3 {
            owned.push(held(self.admin(i)).await);
        }
        owned
    }

    fn up(&self) -> usize {
        self.hosts.iter().position(Option::is_some).unwrap()
    }
}

/// The carts node `admin` owns now.
async fn held(admin: SocketAddr) -> Vec<String> {
    tenures(admin).await.into_iter().map(|(cart, _)| cart).collect()
}

/// The carts node `admin` owns now, with the epoch of each.
async fn tenures(admin: SocketAddr) -> Vec<(String, u64)> {
    let body = get(admin, "/carts").await.json();
    let held = body["held"].as_array().unwrap().iter();
    held.map(|cart| (cart["cart"].as_str().unwrap().to_string(), cart["epoch"].as_u64().unwrap())).collect()
}

/// An acknowledged mutation: its client id, the version it made, when it
/// was first sent and when it was acknowledged.
#[derive(Debug, Clone)]
struct Ack {
    id: String,
    version: u64,
    sent: Instant,
    at: Instant,
}

/// Sends `add 1` with client id `id` to `cart` until acknowledged: on 503
/// or a failed connection, again with the same id, on the next node up.
/// `first_try`: any failure fails the test instead.
async fn acknowledge(table: &Table, prefer: usize, cart: &str, id: &str, first_try: bool) -> Ack {
    let body = serde_json::json!({"kind": "add", "payload": 1, "id": id}).to_string();
    let started = Instant::now();
    for attempt in 0.. {
        let nodes = table.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some((public, _)) = (0..3).filter_map(|k| nodes[(prefer + attempt + k) % 3]).next() else {
            panic!("no node up")
        };
        let outcome =
            try_send(public, request("POST", public, &format!("/carts/counter/{cart}"), body.as_bytes())).await;
        match outcome {
            Ok(reply) if reply.status == 200 => {
                let version = reply.json()["version"].as_u64().unwrap();
                return Ack { id: id.to_string(), version, sent: started, at: Instant::now() };
            }
            Ok(reply) if reply.status == 503 && !first_try => {}
            Err(_) if !first_try => {}
            Ok(reply) => panic!("{cart}/{id} via {public}: {} {}", reply.status, reply.text()),
            Err(error) => panic!("{cart}/{id} via {public}: {error}"),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{cart}/{id} not acknowledged within a minute");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

type Acks = Arc<Mutex<BTreeMap<String, Vec<Ack>>>>;

/// `clients` tasks per cart, each sending mutations until `stop`.
fn traffic(
    table: &Table,
    carts: &[String],
    clients: usize,
    first_try: bool,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> (JoinSet<()>, Acks) {
    let acks: Acks = Arc::default();
    let mut tasks = JoinSet::new();
    for (c, cart) in carts.iter().enumerate() {
        for client in 0..clients {
            let (table, acks, stop, cart) = (table.clone(), acks.clone(), stop.clone(), cart.clone());
            tasks.spawn(async move {
                let mut m = 0;
                while !*stop.borrow() {
                    let id = format!("{cart}-k{client}-m{m}");
                    let ack = acknowledge(&table, c + client, &cart, &id, first_try).await;
                    acks.lock().unwrap_or_else(PoisonError::into_inner).entry(cart.clone()).or_default().push(ack);
                    m += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    }
    (tasks, acks)
}

/// Stops the traffic and gives what was acknowledged.
async fn finish(
    stop: tokio::sync::watch::Sender<bool>,
    mut tasks: JoinSet<()>,
    acks: Acks,
) -> BTreeMap<String, Vec<Ack>> {
    stop.send(true).unwrap();
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    acks.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Every acknowledged mutation once: each cart's versions are exactly
/// 1..=n over its acknowledged ids, every node agrees, `host cart verify`
/// passes, and the stream holds one `counter.changed` per acknowledged id.
async fn assert_exactly_once(fleet: &Fleet, acks: &BTreeMap<String, Vec<Ack>>) {
    let admin = fleet.admin(fleet.up());
    let public = fleet.hosts[fleet.up()].as_ref().unwrap().public;
    for (cart, acked) in acks {
        let mut versions: Vec<u64> = acked.iter().map(|a| a.version).collect();
        versions.sort();
        let n = versions.len() as u64;
        assert_eq!(versions, (1..=n).collect::<Vec<_>>(), "{cart}: acknowledged versions are contiguous and unique");
        let state = get(public, &format!("/carts/counter/{cart}")).await.json();
        assert_eq!((state["version"].as_u64(), state["state"].as_u64()), (Some(n), Some(n)), "{cart}: {state}");
        let verified = Command::new(env!("CARGO_BIN_EXE_host"))
            .args(["cart", "verify", "counter", cart, "--admin", &format!("http://{admin}")])
            .output()
            .unwrap();
        assert!(verified.status.success(), "host cart verify {cart}: {}", String::from_utf8_lossy(&verified.stdout));
    }
    let observer = Cluster::connect(ClusterOptions::new(nats().urls(), &fleet.name, "observer")).await.unwrap();
    let mut reader = observer.events().reader(&["counter.changed".to_string()], 0).unwrap();
    let mut events: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let batch = reader.next(1000, Duration::from_millis(500)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        batch.into_iter().for_each(|e| *events.entry(e.correlation_id).or_default() += 1);
    }
    let acked: BTreeMap<String, usize> = acks.values().flatten().map(|a| (a.id.clone(), 1)).collect();
    assert_eq!(events, acked, "one outbox event per acknowledged mutation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_an_owner_loses_no_acknowledged_mutation_and_its_carts_move_within_the_ttl() {
    let mut fleet = tokio::task::spawn_blocking(|| Fleet::start("carts-kill")).await.unwrap();
    let carts: Vec<String> = (0..50).map(|c| format!("cart-{c}")).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (tasks, acks) = traffic(&fleet.table, &carts, 3, false, &stopped);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let owned = fleet.owned().await;
    let victim = (0..3).max_by_key(|i| owned[*i].len()).unwrap();
    assert!(!owned[victim].is_empty(), "{owned:?}");
    fleet.take(victim).kill_9();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let acks = finish(stop, tasks, acks).await;
    // Another node serves each of the victim's carts within TTL + a renewal
    // + 2 s: the first mutation sent after the kill is acknowledged by then.
    for cart in &owned[victim] {
        let first = acks[cart].iter().filter(|a| a.sent > killed_at).map(|a| a.at - killed_at).min();
        let first = first.unwrap_or_else(|| panic!("{cart} never served after the kill"));
        assert!(first < Duration::from_secs(TTL_S + 1 + 2), "{cart} served again only after {first:?}");
    }
    assert_exactly_once(&fleet, &acks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_owner_woken_after_its_ttl_writes_nothing_and_loses_nothing() {
    let mut fleet = tokio::task::spawn_blocking(|| Fleet::start("carts-freeze")).await.unwrap();
    let carts: Vec<String> = (0..9).map(|c| format!("cart-{c}")).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (tasks, acks) = traffic(&fleet.table, &carts, 2, false, &stopped);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let owned = fleet.owned().await;
    let frozen = (0..3).max_by_key(|i| owned[*i].len()).unwrap();
    let before = tenures(fleet.admin(frozen)).await;
    let host = fleet.take(frozen);
    let pid = host.pid().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    // A call already on its way to the frozen node: answered once it wakes.
    let (public, cart) = (host.public, owned[frozen][0].clone());
    let waiting = tokio::spawn(async move {
        let body = serde_json::json!({"kind": "add", "payload": 1, "id": "sent-to-the-frozen-node"}).to_string();
        try_send(public, request("POST", public, &format!("/carts/counter/{cart}"), body.as_bytes())).await
    });
    tokio::time::sleep(Duration::from_secs(2 * TTL_S + 1)).await;
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    let woken = waiting.await.unwrap().expect("the woken node answers");
    assert!(matches!(woken.status, 200 | 503), "{} {}", woken.status, woken.text());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The woken node owns none of its carts under its old tenures (it may
    // have taken some anew since, at a later epoch).
    let after = tenures(host.admin).await;
    assert!(after.iter().all(|tenure| !before.contains(tenure)), "before the freeze {before:?}, after {after:?}");
    let mut acks = finish(stop, tasks, acks).await;
    if woken.status == 200 {
        let version = woken.json()["version"].as_u64().unwrap();
        let ack = Ack { id: "sent-to-the-frozen-node".into(), version, sent: Instant::now(), at: Instant::now() };
        acks.get_mut(&owned[frozen][0]).unwrap().push(ack);
    }
    fleet.hosts[frozen] = Some(host);
    assert_exactly_once(&fleet, &acks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_steady_cart_traffic_fails_no_call() {
    let mut fleet = tokio::task::spawn_blocking(|| Fleet::start("carts-rolling")).await.unwrap();
    let carts: Vec<String> = (0..12).map(|c| format!("cart-{c}")).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Every call must succeed the first time.
    let (tasks, acks) = traffic(&fleet.table, &carts, 1, true, &stopped);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..3 {
        let host = fleet.take(i);
        // Clients stop picking the node (as a load balancer would on
        // readiness) before it is told to stop.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = tokio::task::spawn_blocking(move || host.terminate()).await.unwrap();
        assert!(status.success(), "node-{i} exited with {status}");
        let fleet_ref = &fleet;
        let host = tokio::task::block_in_place(|| fleet_ref.launch(i));
        fleet.hosts[i] = Some(host);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let acks = finish(stop, tasks, acks).await;
    assert!(acks.values().all(|a| a.len() > 20), "traffic flowed throughout");
    assert_exactly_once(&fleet, &acks).await;
}
