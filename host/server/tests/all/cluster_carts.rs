//! Carts across three hosts on three real nats-servers: one owner per cart
//! (a lease), calls reaching any node forwarded to it, every round one
//! fenced atomic batch in the cluster's stream. Shown: concurrent clients
//! through every node apply each mutation exactly once with contiguous
//! versions and one outbox event each; a node that leaves gracefully hands
//! its carts over with no failed call; a node cut off from NATS past the
//! lease TTL loses its carts to the others, and after healing neither its
//! stale state nor its old lease writes anything.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_fixtures::CART_COUNTER;
use corral_server::http::cluster::proto::{CartRef, ConfirmOwnerRequest, GetCartIdsRequest};
use corral_server::http::grpc::proto::MutateRequest;
use corral_server::http::grpc::proto::cart_actor_client::CartActorClient;
use tokio::task::JoinSet;

use crate::cluster::{futures_block, nodes, observer};
use crate::{eventually, get, plugins_dir, post};

fn add(id: &str) -> Vec<u8> {
    serde_json::json!({"kind": "add", "payload": 1, "id": id}).to_string().into_bytes()
}

/// Sends the mutation until it is acknowledged, reusing its client id, as
/// a client should on 503; any other answer fails the test. Returns how
/// many 503s it took.
async fn add_until_acknowledged(public: std::net::SocketAddr, cart: &str, id: &str) -> (serde_json::Value, usize) {
    let mut refusals = 0;
    loop {
        let reply = post(public, &format!("/carts/counter/{cart}"), &add(id)).await;
        match reply.status {
            200 => return (reply.json(), refusals),
            503 => {
                refusals += 1;
                assert!(refusals < 600, "{cart}/{id} refused for a minute: {}", reply.text());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            status => panic!("{cart}/{id}: {status} {}", reply.text()),
        }
    }
}

/// Every node answers the cart at `version`, and verification (a replay of
/// the cluster journal, each step's digest checked) passes on one.
async fn assert_cart(nodes: &[crate::cluster::Node], cart: &str, version: u64) {
    for node in nodes {
        let reply = get(node.host.public, &format!("/carts/counter/{cart}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body = reply.json();
        assert_eq!(body["version"], version, "{cart} on {}: {body}", node.host.public);
        assert_eq!(body["state"], version, "each acknowledged add applied once: {cart}: {body}");
    }
    let verified = post(nodes[0].host.admin, &format!("/carts/counter/{cart}/verify"), b"").await;
    assert_eq!(verified.status, 200, "{}", verified.text());
    let verification = verified.json();
    assert_eq!(verification["ok"], true, "{verification}");
    assert_eq!(verification["replayed"], version, "{verification}");
}

/// How many `counter.changed` events the cluster's stream holds per cart
/// state value seen, read by an observer.
async fn outbox_events(name: &str) -> Vec<String> {
    let observer = observer(name).await;
    let mut reader = observer.events().reader(&["counter.changed".to_string()], 0).unwrap();
    let mut payloads = Vec::new();
    loop {
        let batch = reader.next(1000, Duration::from_millis(500)).await.unwrap();
        if batch.is_empty() {
            return payloads;
        }
        payloads
            .extend(batch.into_iter().map(|e| format!("{}:{}", e.correlation_id, String::from_utf8_lossy(&e.payload))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_on_every_node_reach_one_writer_per_cart() {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let (nodes, _plugins) =
        tokio::task::spawn_blocking(move || (nodes("carts-one-writer", 3, plugins.path()), plugins)).await.unwrap();
    let (carts, per_client) = (12, 6);
    let mut tasks = JoinSet::new();
    for cart in 0..carts {
        for (client, node) in nodes.iter().enumerate() {
            let public = node.host.public;
            tasks.spawn(async move {
                for m in 0..per_client {
                    let (body, _) =
                        add_until_acknowledged(public, &format!("cart-{cart}"), &format!("k{client}-m{m}")).await;
                    assert_eq!(body["repeated"], false, "{body}");
                }
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let version = 3 * per_client as u64;
    for cart in 0..carts {
        assert_cart(&nodes, &format!("cart-{cart}"), version).await;
    }
    // A refusal by the plugin reads the same through every node, the owner
    // or not (over HTTP and over gRPC).
    for node in &nodes {
        let bad = serde_json::json!({"kind": "add", "payload": "three"}).to_string();
        let refused = post(node.host.public, "/carts/counter/cart-0", bad.as_bytes()).await;
        assert_eq!(
            (refused.status, refused.json()["code"].as_str()),
            (422, Some("not-a-number")),
            "{}",
            refused.text()
        );
        let mut client = CartActorClient::connect(format!("http://{}", node.host.public)).await.unwrap();
        let request = MutateRequest {
            plugin: "counter".into(),
            cart_id: "cart-0".into(),
            kind: "add".into(),
            payload: b"three".to_vec(),
            client_id: String::new(),
            tenant: String::new(),
        };
        let status = client.mutate(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    }
    // A repeat of a client id through another node is answered from the
    // record, not applied again.
    let (repeat, _) = add_until_acknowledged(nodes[2].host.public, "cart-0", "k0-m0").await;
    assert_eq!(repeat["repeated"], true, "{repeat}");
    assert_cart(&nodes, "cart-0", version).await;
    // One outbox event per applied mutation, stored with it.
    let events = outbox_events("carts-one-writer").await;
    assert_eq!(events.len(), carts * 3 * per_client, "{events:?}");
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &events {
        *per_id.entry(event.split(':').next().unwrap()).or_default() += 1;
    }
    assert!(per_id.values().all(|count| *count == carts), "each client id once per cart: {per_id:?}");
    // The carts are spread over the nodes (rendezvous placement).
    let held: Vec<u64> = nodes
        .iter()
        .map(|node| {
            let metrics = futures_block(get(node.host.admin, "/metrics")).text();
            metrics.lines().find_map(|l| l.strip_prefix("corral_cart_leases_held ")).unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(held.iter().sum::<u64>(), carts as u64, "one lease per cart in use: {held:?}");
    assert!(held.iter().all(|h| *h > 0), "every node owns some carts: {held:?}");

    // The control plane says the same: each cart is on one node's list,
    // and that node alone confirms it owns the cart under its epoch.
    let mut owners: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(crate::cluster::peer_client("carts-one-writer", node.host.public).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let listed = client.get_cart_ids(GetCartIdsRequest { from_node: "test".into() }).await.unwrap().into_inner();
        for cart in listed.carts {
            assert!(owners.insert(cart.cart_id.clone(), (i, cart.epoch)).is_none(), "{} listed twice", cart.cart_id);
        }
    }
    assert_eq!(owners.len(), carts, "{owners:?}");
    for (cart, (owner, epoch)) in &owners {
        for (i, client) in clients.iter_mut().enumerate() {
            let asked =
                CartRef { tenant: String::new(), plugin: "counter".into(), cart_id: cart.clone(), epoch: *epoch };
            let request = ConfirmOwnerRequest { from_node: "test".into(), cart: Some(asked) };
            let answer = client.confirm_owner(request).await.unwrap().into_inner();
            assert_eq!(answer.owner, i == *owner, "{cart} asked of node {i}: {answer:?}");
        }
        let stale =
            CartRef { tenant: String::new(), plugin: "counter".into(), cart_id: cart.clone(), epoch: epoch + 1 };
        let request = ConfirmOwnerRequest { from_node: "test".into(), cart: Some(stale) };
        assert!(!clients[*owner].confirm_owner(request).await.unwrap().into_inner().owner, "another epoch");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_leaves_hands_its_carts_over_without_a_failed_call() {
    // Snapshots only when a node gives a cart up.
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[("counter", "[cart]\nsnapshot_every = 100000\n")]);
    let (mut nodes, _plugins) =
        tokio::task::spawn_blocking(move || (nodes("carts-leave", 3, plugins.path()), plugins)).await.unwrap();
    let carts = 9;
    let publics: Vec<_> = nodes.iter().take(2).map(|node| node.host.public).collect();
    // Steady traffic through the two staying nodes; each call must succeed
    // the first time.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    for cart in 0..carts {
        let (public, stopped) = (publics[cart % 2], stopped.clone());
        tasks.spawn(async move {
            let mut sent = 0u64;
            while !*stopped.borrow() {
                let reply = post(public, &format!("/carts/counter/cart-{cart}"), &add(&format!("m{sent}"))).await;
                assert_eq!(reply.status, 200, "cart-{cart} call {sent}: {}", reply.text());
                sent += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leaving = nodes.pop().unwrap();
    tokio::task::spawn_blocking(move || leaving.host.stop()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true).unwrap();
    let mut sent = Vec::new();
    while let Some(done) = tasks.join_next().await {
        sent.push(done.unwrap());
    }
    assert!(sent.iter().all(|n| *n > 10), "traffic kept flowing: {sent:?}");
    let total: u64 = sent.iter().sum();
    let mut versions = 0;
    for cart in 0..carts {
        let body = get(nodes[0].host.public, &format!("/carts/counter/cart-{cart}")).await.json();
        versions += body["version"].as_u64().unwrap();
        let verified = post(nodes[1].host.admin, &format!("/carts/counter/cart-{cart}/verify"), b"").await.json();
        assert_eq!(verified["ok"], true, "{verified}");
    }
    assert_eq!(versions, total, "every acknowledged call applied once");
    // The staying nodes took the leaving node's carts over, from the
    // snapshots it left: nothing to replay.
    let (mut moves, mut replayed) = (0, 0);
    for node in &nodes {
        let metrics = get(node.host.admin, "/metrics").await.text();
        let value = |name: &str| -> u64 {
            metrics.lines().find_map(|l| l.strip_prefix(name)).map_or(0, |v| v.trim().parse().unwrap())
        };
        moves += value("corral_cart_ownership_moves_total ");
        replayed += value("corral_cart_replayed_mutations_total{plugin=\"counter\"} ");
    }
    assert!(moves > 0, "no cart moved");
    assert_eq!(replayed, 0, "the leaving node left a snapshot of each cart");
}

/// The carts `node` owns now, from its admin API.
async fn held(node: &crate::cluster::Node) -> Vec<String> {
    let body = get(node.host.admin, "/carts").await.json();
    body["held"].as_array().unwrap().iter().map(|cart| cart["cart"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_owner_loses_its_carts_and_cannot_write_after_healing() {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let (nodes, _plugins) =
        tokio::task::spawn_blocking(move || (nodes("carts-partition", 3, plugins.path()), plugins)).await.unwrap();
    let carts: Vec<String> = (0..12).map(|cart| format!("cart-{cart}")).collect();
    for (i, cart) in carts.iter().enumerate() {
        add_until_acknowledged(nodes[i % 3].host.public, cart, "before").await;
    }
    let moving = held(&nodes[2]).await;
    assert!(!moving.is_empty(), "node 2 owns some of the carts (rendezvous placement)");
    nodes[2].cut();
    let cut_at = std::time::Instant::now();
    // Through the other nodes, node 2's carts are refused (503) until its
    // leases expire, then served by their new owners.
    let mut tasks = JoinSet::new();
    for (i, cart) in moving.iter().enumerate() {
        let (public, cart) = (nodes[i % 2].host.public, cart.clone());
        tasks.spawn(async move {
            let mut refused = 0;
            for m in 0..3 {
                refused += add_until_acknowledged(public, &cart, &format!("during-{m}")).await.1;
            }
            (std::time::Instant::now(), refused)
        });
    }
    let cut_off = post(nodes[2].host.public, &format!("/carts/counter/{}", moving[0]), &add("cut-off")).await;
    assert_eq!(cut_off.status, 503, "a node cut off from NATS refuses: {}", cut_off.text());
    let mut served_after = Duration::ZERO;
    while let Some(done) = tasks.join_next().await {
        let (done, _) = done.unwrap();
        served_after = served_after.max(done - cut_at);
    }
    // TTL (3 s) + a renewal (1 s) + 2 s.
    assert!(served_after < Duration::from_secs(6 + 3), "node 2's carts were served elsewhere after {served_after:?}");
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(cut_at.elapsed())).await;
    nodes[2].restore();
    // Healed: node 2 owns none of its old carts; its calls reach the new
    // owners, and each cart has had one writer throughout.
    eventually(Duration::from_secs(20), "node 2 serving again", || {
        let reply = futures_block(post(nodes[2].host.public, &format!("/carts/counter/{}", moving[0]), &add("after")));
        (reply.status == 200).then_some(())
    })
    .await;
    for cart in &moving {
        assert!(!held(&nodes[2]).await.contains(cart) || cart == &moving[0], "{cart} still on node 2");
    }
    for cart in &carts {
        let expected = match moving.iter().position(|m| m == cart) {
            Some(0) => 5,
            Some(_) => 4,
            None => 1,
        };
        assert_cart(&nodes, cart, expected).await;
    }
}
