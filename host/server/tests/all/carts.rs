//! Carts over the real binary: one writer per cart under concurrency (HTTP
//! and gRPC), durability across kill -9, idempotency, eviction and reload,
//! `cart verify`, and outbox events committed with their mutation. The
//! scenarios that do not read the node's LMDB run twice: on a host on its
//! own, and on a one-node cluster (journal in JetStream).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use corral_fixtures::{CART_COUNTER, CART_COUNTER_V2, CART_TIMER_POLL, EXAMPLE_CART, EXAMPLE_ORDERS, EXAMPLE_SHOP_API};
use corral_server::http::grpc::proto::cart_actor_client::CartActorClient;
use corral_server::http::grpc::proto::{GetStateRequest, MutateRequest};
use corral_storage::{Storage, StorageOptions};

use crate::{Host, get, plugins_dir, post};

/// Where a scenario's carts keep their journals.
#[derive(Clone, Copy)]
enum Backend {
    /// The host's own LMDB.
    Embedded,
    /// A one-node cluster on the test binary's nats-servers.
    Cluster,
}

impl Backend {
    /// A host on this backend; in a cluster of its own, named after its
    /// data folder (so a restart on the same folder rejoins it).
    fn start(
        self,
        plugins: &Path,
        data: &Path,
        configure: impl FnOnce(&mut corral_server::config::ServerConfig),
    ) -> Host {
        Host::start_with(plugins, data, |config| {
            if let Backend::Cluster = self {
                let digest = blake3::hash(data.as_os_str().as_encoded_bytes()).to_hex();
                let name = format!("carts-{}", &digest[..16]);
                let urls = crate::cluster::nats().urls();
                config.cluster = Some(corral_server::config::ClusterConfig::new(urls, &name, "node-0"));
            }
            configure(config);
        })
    }
}

/// Runs `scenario` on both backends, as two tests.
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                super::$scenario(super::Backend::Embedded).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn cluster() {
                super::$scenario(super::Backend::Cluster).await
            }
        }
    };
}

fn mutation(kind: &str, payload: serde_json::Value, id: Option<&str>) -> Vec<u8> {
    let mut body = serde_json::json!({"kind": kind, "payload": payload});
    if let Some(id) = id {
        body["id"] = id.into();
    }
    body.to_string().into_bytes()
}

async fn grpc(addr: SocketAddr) -> CartActorClient<tonic::transport::Channel> {
    CartActorClient::connect(format!("http://{addr}")).await.unwrap()
}

fn grpc_add(cart: &str, amount: u64, client_id: &str) -> MutateRequest {
    MutateRequest {
        plugin: "counter".into(),
        cart_id: cart.into(),
        kind: "add".into(),
        payload: amount.to_string().into_bytes(),
        client_id: client_id.into(),
        tenant: String::new(),
    }
}

/// The events in the stopped host's log.
fn log_events(data: &Path) -> Vec<corral_storage::log::EventRecord> {
    let storage = Storage::open(&data.join("lmdb"), &StorageOptions { map_size: 1 << 30 }).unwrap();
    storage.read_after(0, 100_000).unwrap()
}

on_both_backends!(concurrent_mutations_on_one_cart_over_http_and_grpc_apply_one_at_a_time);
async fn concurrent_mutations_on_one_cart_over_http_and_grpc_apply_one_at_a_time(backend: Backend) {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |_| {});
    let mut client = grpc(host.public).await;
    let mut tasks = tokio::task::JoinSet::new();
    // Amounts 1..=100, half over HTTP, half over gRPC, all at once.
    for amount in 1..=100u64 {
        let public = host.public;
        let mut client = client.clone();
        tasks.spawn(async move {
            if amount % 2 == 0 {
                let reply = post(public, "/carts/counter/c1", &mutation("add", amount.into(), None)).await;
                assert_eq!(reply.status, 200, "{}", reply.text());
                let json = reply.json();
                (amount, json["version"].as_u64().unwrap(), json["state"].as_u64().unwrap())
            } else {
                let state = client.mutate(grpc_add("c1", amount, "")).await.unwrap().into_inner();
                let value: u64 = String::from_utf8(state.state.unwrap()).unwrap().parse().unwrap();
                (amount, state.version, value)
            }
        });
    }
    let mut by_version = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (amount, version, state) = result.unwrap();
        assert!(by_version.insert(version, (amount, state)).is_none(), "two mutations got version {version}");
    }
    // Versions 1..=100, each state = previous state + its own amount: a
    // strictly sequential application in the recorded order.
    assert_eq!(by_version.keys().copied().collect::<Vec<_>>(), (1..=100).collect::<Vec<_>>());
    let mut expected = 0;
    for (version, (amount, state)) in &by_version {
        expected += amount;
        assert_eq!(*state, expected, "state after version {version}");
    }
    assert_eq!(expected, 5050);
    let state = client
        .get_state(GetStateRequest { plugin: "counter".into(), cart_id: "c1".into(), tenant: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((state.version, state.state.as_deref()), (100, Some(&b"5050"[..])));
    let verify = post(host.admin, "/carts/counter/c1/verify", b"").await;
    assert_eq!(verify.status, 200, "{}", verify.text());
    assert_eq!(verify.json()["replayed"], 100);
}

on_both_backends!(many_carts_apply_in_parallel_each_in_its_own_order);
async fn many_carts_apply_in_parallel_each_in_its_own_order(backend: Backend) {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |_| {});
    let client = grpc(host.public).await;
    let mut tasks = tokio::task::JoinSet::new();
    for cart in 0..25 {
        for amount in 1..=8u64 {
            let mut client = client.clone();
            tasks.spawn(async move { client.mutate(grpc_add(&format!("cart-{cart}"), amount, "")).await.unwrap() });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    for cart in 0..25 {
        let reply = get(host.public, &format!("/carts/counter/cart-{cart}")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["version"], 8);
        assert_eq!(reply.json()["state"], 36, "cart-{cart}");
    }
    let other_tenant = crate::send(
        host.public,
        http::Request::get("/carts/counter/cart-0")
            .header("host", host.public.to_string())
            .header("x-corral-tenant", "other")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(other_tenant.json()["version"], 0, "carts are per tenant");
}

on_both_backends!(a_repeated_client_id_is_applied_once);
async fn a_repeated_client_id_is_applied_once(backend: Backend) {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |_| {});
    let first = post(host.public, "/carts/counter/c", &mutation("add", 5.into(), Some("once"))).await.json();
    assert_eq!(
        (first["version"].clone(), first["state"].clone(), first["repeated"].clone()),
        (1.into(), 5.into(), false.into())
    );
    let again = post(host.public, "/carts/counter/c", &mutation("add", 5.into(), Some("once"))).await.json();
    assert_eq!(
        (again["version"].clone(), again["state"].clone(), again["repeated"].clone()),
        (1.into(), 5.into(), true.into())
    );
    let mut client = grpc(host.public).await;
    let over_grpc = client.mutate(grpc_add("c", 5, "once")).await.unwrap().into_inner();
    assert!(over_grpc.repeated);
    assert_eq!(over_grpc.version, 1);
    let other = post(host.public, "/carts/counter/c", &mutation("add", 2.into(), Some("twice"))).await.json();
    assert_eq!((other["version"].clone(), other["state"].clone()), (2.into(), 7.into()));
    let metrics = get(host.admin, "/metrics").await.text();
    let counted = |outcome: &str, transport: &str, n: u32| {
        let line = format!(
            "corral_cart_mutations_total{{outcome=\"{outcome}\",plugin=\"counter\",transport=\"{transport}\"}} {n}"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    };
    counted("repeated", "http", 1);
    counted("repeated", "grpc", 1);
    counted("applied", "http", 2);
}

on_both_backends!(an_evicted_cart_reloads_from_snapshot_and_journal_to_the_same_state);
async fn an_evicted_cart_reloads_from_snapshot_and_journal_to_the_same_state(backend: Backend) {
    let plugins = plugins_dir(&[("cart", EXAMPLE_CART)], &[("cart", "[cart]\nsnapshot_every = 3\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |_| {});
    let item = |sku: &str, quantity: u32| serde_json::json!({"sku": sku, "name": sku, "quantity": quantity, "unit_price_cents": 250});
    for (kind, payload) in [
        ("add_item", item("tea", 2)),
        ("add_item", item("cake", 1)),
        ("change_quantity", serde_json::json!({"sku": "tea", "quantity": 4})),
        ("add_item", item("jam", 1)),
        ("remove_item", serde_json::json!({"sku": "cake"})),
        ("set_pickup_point", serde_json::json!({"id": "pp-7"})),
        ("set_delivery", serde_json::json!({"method": "express", "address": "1 Main St"})),
    ] {
        let reply = post(host.public, "/carts/cart/basket", &mutation(kind, payload, None)).await;
        assert_eq!(reply.status, 200, "{kind}: {}", reply.text());
    }
    let before = get(host.public, "/carts/cart/basket").await.json();
    assert_eq!(before["version"], 7);
    assert_eq!(before["state"]["total_cents"], 5 * 250 + 990);
    assert_eq!(get(host.admin, "/carts").await.json()["active"], 1);
    let evicted = post(host.admin, "/carts/evict", b"").await.json();
    assert_eq!(evicted["evicted"], 1);
    assert_eq!(get(host.admin, "/carts").await.json()["active"], 0);
    let after = get(host.public, "/carts/cart/basket").await.json();
    assert_eq!(after, before, "reloaded from the snapshot at 6 and a replay of 7");
    let metrics = get(host.admin, "/metrics").await.text();
    // In a cluster the evicted mailbox also leaves a snapshot at 7 as it
    // gives the cart up; the reload may come before it.
    let replayed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("corral_cart_replayed_mutations_total{plugin=\"cart\"} "))
        .map_or(0, |v| v.parse().unwrap());
    let expected = match backend {
        Backend::Embedded => 1..=1,
        Backend::Cluster => 0..=1,
    };
    assert!(expected.contains(&replayed), "replayed {replayed}: {metrics}");
    assert!(metrics.contains("corral_cart_evictions_total 1"), "{metrics}");

    // Idle eviction by timeout, with a restart in between: still the same.
    drop(host);
    let host = backend.start(plugins.path(), data.path(), |c| c.carts.idle = Duration::ZERO);
    let reloaded = get(host.public, "/carts/cart/basket").await.json();
    assert_eq!(reloaded, before);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(host.admin, "/carts").await.json()["active"] != 0 {
        assert!(std::time::Instant::now() < deadline, "the idle cart was not evicted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(host.public, "/carts/cart/basket").await.json(), before);
}

on_both_backends!(cart_verify_passes_for_a_deterministic_cart_and_fails_for_a_version_that_is_not_replay_compatible);
async fn cart_verify_passes_for_a_deterministic_cart_and_fails_for_a_version_that_is_not_replay_compatible(
    backend: Backend,
) {
    let plugins = plugins_dir(&[("counter", CART_COUNTER), ("spinner", CART_TIMER_POLL)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |_| {});
    for n in 1..=4 {
        post(host.public, "/carts/counter/v", &mutation("add", n.into(), None)).await;
        let spin = post(host.public, "/carts/spinner/v", &mutation("spin", serde_json::Value::Null, None)).await;
        assert_eq!(spin.status, 200, "{}", spin.text());
    }
    let admin = host.admin;
    let verify = |plugin: &str| {
        let path = format!("/carts/{plugin}/v/verify");
        async move { post(admin, &path, b"").await }
    };
    let good = verify("counter").await;
    assert_eq!(good.status, 200, "{}", good.text());
    let report = good.json();
    assert_eq!((report["ok"].clone(), report["replayed"].clone()), (true.into(), 4.into()));
    assert_eq!(report["stored_digest"], report["replayed_digest"]);
    // A cart that waits on timers replays too: time stands still in it.
    let timers = verify("spinner").await;
    assert_eq!(timers.status, 200, "{}", timers.text());
    assert_eq!(get(host.public, "/carts/spinner/v").await.json()["state"], "0;0;0;0;");

    // A new version whose `add` means something else cannot replay the
    // journal (deployed through the admin API: in a cluster the plugins
    // folder only seeds the desired state).
    let upload = std::fs::read(CART_COUNTER_V2).unwrap();
    let deployed = crate::send(admin, crate::request("PUT", admin, "/plugins/counter", &upload)).await;
    assert_eq!(deployed.status, 200, "{}", deployed.text());
    let started = std::time::Instant::now();
    while get(host.admin, "/plugins").await.json().as_array().unwrap().iter().all(|p| p["version"] != "2.0.0") {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "version 2 was never loaded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let bad = verify("counter").await;
    assert_eq!(bad.status, 409, "verify must fail for a version that is not replay-compatible: {}", bad.text());
    let report = bad.json();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["divergence"]["version"], 1, "the very first replay differs: {report}");
    assert!(report["divergence"]["reason"].as_str().unwrap().contains("differs from the recorded one"), "{report}");
}

#[tokio::test]
async fn outbox_events_are_published_once_with_their_commit() {
    let plugins = plugins_dir(&[("cart", EXAMPLE_CART)], &[("cart", "[cart]\nsnapshot_every = 100\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let refused = post(host.public, "/carts/cart/o1", &mutation("checkout", serde_json::json!({}), None)).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert_eq!(refused.json()["code"], "empty-cart");
    let item =
        serde_json::json!({"sku": "tea", "name": "Tea", "quantity": 3, "unit_price_cents": 400, "customer": "ada"});
    post(host.public, "/carts/cart/o1", &mutation("add_item", item, None)).await;
    post(host.public, "/carts/cart/o1", &mutation("set_pickup_point", serde_json::json!({"id": "pp-1"}), None)).await;
    let checkout =
        post(host.public, "/carts/cart/o1", &mutation("checkout", serde_json::json!({}), Some("co-1"))).await;
    assert_eq!(checkout.status, 200, "{}", checkout.text());
    let checkout = checkout.json();
    let sequences: Vec<u64> = serde_json::from_value(checkout["events"].clone()).unwrap();
    assert_eq!(sequences.len(), 1);
    let repeat = post(host.public, "/carts/cart/o1", &mutation("checkout", serde_json::json!({}), Some("co-1"))).await;
    assert_eq!(repeat.json()["events"], checkout["events"], "a repeat reports, and does not publish, the events");
    let closed = post(host.public, "/carts/cart/o1", &mutation("add_item", serde_json::json!({}), None)).await;
    assert_eq!(closed.json()["code"], "cart-closed");
    // Evict and restart: loading replays the journal, which publishes nothing.
    post(host.admin, "/carts/evict", b"").await;
    assert_eq!(get(host.public, "/carts/cart/o1").await.json()["version"], 3);
    host.stop();
    let host = Host::start(plugins.path(), data.path());
    let done = post(host.public, "/carts/cart/o1", &mutation("complete_order", serde_json::Value::Null, None)).await;
    assert_eq!(done.status, 200, "{}", done.text());
    host.stop();

    let events = log_events(data.path());
    let checked_out: Vec<_> = events.iter().filter(|e| e.topic == "cart.checked_out").collect();
    assert_eq!(checked_out.len(), 1, "published exactly once");
    assert_eq!(checked_out[0].sequence, sequences[0]);
    assert_eq!(checked_out[0].correlation_id, "co-1");
    assert_eq!(checked_out[0].source, "cart");
    let order: serde_json::Value = serde_json::from_slice(&checked_out[0].payload).unwrap();
    assert_eq!(
        (order["cart"].clone(), order["customer"].clone(), order["total_cents"].clone()),
        ("o1".into(), "ada".into(), 1200.into())
    );
    assert_eq!(events.iter().filter(|e| e.topic == "cart.order_completed").count(), 1);
    let topics: BTreeSet<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    assert_eq!(
        topics,
        BTreeSet::from(["cart.opened", "cart.checked_out", "cart.order_completed"]),
        "rejected mutations publish nothing"
    );
    assert_eq!(events.iter().filter(|e| e.topic == "cart.opened").count(), 1, "opened by its first accepted mutation");
}

on_both_backends!(unknown_plugins_kinds_and_bad_requests_are_client_errors);
async fn unknown_plugins_kinds_and_bad_requests_are_client_errors(backend: Backend) {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |c| c.http.max_request_bytes = 4096);
    let huge = post(host.public, "/carts/counter/c", &mutation("add", "9".repeat(8192).into(), None)).await;
    assert_eq!(huge.status, 413, "{}", huge.text());
    let unknown_plugin = post(host.public, "/carts/nope/c", &mutation("add", 1.into(), None)).await;
    assert_eq!(unknown_plugin.status, 404);
    assert!(unknown_plugin.text().contains("no cart plugin named \\\"nope\\\""), "{}", unknown_plugin.text());
    let unknown_kind = post(host.public, "/carts/counter/c", &mutation("multiply", 2.into(), None)).await;
    assert_eq!(unknown_kind.status, 400);
    assert!(unknown_kind.text().contains("it accepts: add, reset"), "{}", unknown_kind.text());
    let not_json = post(host.public, "/carts/counter/c", b"add 1").await;
    assert_eq!(not_json.status, 400);
    let rejected = post(host.public, "/carts/counter/c", &mutation("add", "three".into(), None)).await;
    assert_eq!(rejected.status, 422);
    assert_eq!(rejected.json()["code"], "not-a-number");
    assert_eq!(get(host.public, "/carts/counter/c").await.json()["version"], 0, "nothing was applied");

    let mut client = grpc(host.public).await;
    let mut request = grpc_add("c", 1, "");
    request.plugin = "nope".into();
    assert_eq!(client.mutate(request).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let mut request = grpc_add("c", 1, "");
    request.kind = "multiply".into();
    let status = client.mutate(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("multiply"), "{}", status.message());
    let mut request = grpc_add("c", 1, "");
    request.payload = b"three".to_vec();
    assert_eq!(client.mutate(request).await.unwrap_err().code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn a_shop_checkout_reaches_the_order_history_through_the_log_and_the_projection() {
    let plugins =
        plugins_dir(&[("cart", EXAMPLE_CART), ("orders", EXAMPLE_ORDERS), ("shop-api", EXAMPLE_SHOP_API)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for (cart, customer, quantity) in [("c1", "ada", 2), ("c2", "ada", 1), ("c3", "bob", 4)] {
        let item = serde_json::json!({"sku": "tea", "name": "Tea", "quantity": quantity, "unit_price_cents": 650, "customer": customer});
        post(host.public, &format!("/carts/cart/{cart}"), &mutation("add_item", item, None)).await;
        post(
            host.public,
            &format!("/carts/cart/{cart}"),
            &mutation("set_pickup_point", serde_json::json!({"id": "pp"}), None),
        )
        .await;
        let checkout =
            post(host.public, &format!("/carts/cart/{cart}"), &mutation("checkout", serde_json::json!({}), None)).await;
        assert_eq!(checkout.status, 200, "{}", checkout.text());
    }
    post(host.public, "/carts/cart/c1", &mutation("complete_order", serde_json::Value::Null, None)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let sales = loop {
        let sales = get(host.public, "/api/sales").await.json();
        if sales["orders"] == 3 {
            break sales;
        }
        assert!(std::time::Instant::now() < deadline, "the projection never caught up: {sales}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sales, serde_json::json!({"customers": 2, "orders": 3, "revenue_cents": 7 * 650}));
    let ada = loop {
        let ada = get(host.public, "/api/customers/ada/orders").await.json();
        if ada["orders"][0]["status"] == "completed" {
            break ada;
        }
        assert!(std::time::Instant::now() < deadline, "the completion never arrived: {ada}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((ada["order_count"].clone(), ada["spent_cents"].clone()), (2.into(), (3 * 650).into()));
    assert_eq!(ada["orders"][1]["cart"], "c2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mutation_whose_keys_cannot_be_stored_is_refused_and_fails_no_other() {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let public = host.public;
    let long_cart = "c".repeat(250);
    let long_id = "k".repeat(256);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (cart, id) = match i {
            // A 250-byte cart id with a 256-byte client id: no storage key holds both.
            20 => (long_cart.clone(), Some(long_id.as_str())),
            _ => (format!("c{i}"), None),
        };
        let body = mutation("add", 1.into(), id);
        tasks.spawn(async move { (i, post(public, &format!("/carts/counter/{cart}"), &body).await) });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, reply) = done.unwrap();
        if i == 20 {
            assert_eq!(reply.status, 400, "{}", reply.text());
            assert!(
                reply.json()["message"].as_str().unwrap().contains("the client id is 256 bytes"),
                "{}",
                reply.text()
            );
        } else {
            assert_eq!(reply.status, 200, "cart c{i}: {}", reply.text());
        }
    }
}

on_both_backends!(a_cart_with_its_most_commands_queued_refuses_more_and_applies_what_it_took);
async fn a_cart_with_its_most_commands_queued_refuses_more_and_applies_what_it_took(backend: Backend) {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |c| c.carts.max_queued = 2);
    overloads_a_queue(host.public).await;
}

on_both_backends!(a_sequential_client_is_never_refused_by_a_queue_of_one);
async fn a_sequential_client_is_never_refused_by_a_queue_of_one(backend: Backend) {
    // A command counts against the queue until its round settles it, which
    // happens before it is answered: the client's next call, sent the
    // moment it has its answer, never finds its own last one still counted.
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[("counter", "[cart]\nmax_queue = 1\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |_| {});
    for i in 0..100 {
        let reply = post(host.public, "/carts/counter/solo", &mutation("add", 1.into(), None)).await;
        assert_eq!(reply.status, 200, "call {i}: {}", reply.text());
        let state = get(host.public, "/carts/counter/solo").await;
        assert_eq!(state.status, 200, "read {i}: {}", state.text());
    }
}

on_both_backends!(a_plugins_own_queue_bound_refuses_over_http_and_grpc);
async fn a_plugins_own_queue_bound_refuses_over_http_and_grpc(backend: Backend) {
    // The host allows long queues; the plugin's sidecar does not.
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[("counter", "[cart]\nmax_queue = 2\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = backend.start(plugins.path(), data.path(), |c| c.carts.max_queued = 100_000);
    let message = overloads_a_queue(host.public).await;
    assert!(message.contains("2 commands queued") && message.contains("max_queue"), "{message}");
    // One HTTP/2 connection, 300 calls at once.
    let client = grpc(host.public).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let mut client = client.clone();
        tasks.spawn(async move { client.mutate(grpc_add("hot-grpc", 1, "")).await });
    }
    let mut exhausted = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::ResourceExhausted => exhausted.push(status),
            // A commit that failed under a loaded machine (the cluster's
            // stream): retryable, and not what this test is about.
            Err(status) if status.code() == tonic::Code::Unavailable => {}
            Err(status) => panic!("{status:?}"),
        }
    }
    assert!(!exhausted.is_empty(), "300 gRPC calls at once never filled a queue of 2");
    assert!(exhausted[0].message().contains("max_queue"), "{:?}", exhausted[0]);
}

/// Sends 300 mutations to one cart at once: some are refused (503,
/// `overloaded`, a retry hint), and exactly the accepted ones are applied.
/// Returns a refusal's message.
async fn overloads_a_queue(public: SocketAddr) -> String {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        tasks.spawn(async move { post(public, "/carts/counter/hot", &mutation("add", 1.into(), None)).await });
    }
    let (mut applied, mut refused) = (0u64, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let reply = done.unwrap();
        match reply.status {
            200 => applied += 1,
            503 => {
                let body = reply.json();
                assert_eq!(body["error"], "overloaded", "{body}");
                assert_eq!(reply.headers["retry-after"], "1");
                refused.push(body["message"].as_str().unwrap_or_default().to_string());
            }
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert!(!refused.is_empty(), "300 at once never filled a queue of 2");
    let state = get(public, "/carts/counter/hot").await.json();
    assert_eq!(state["version"], applied, "every accepted mutation applied, no refused one: {state}");
    assert_eq!(state["state"], applied);
    refused.swap_remove(0)
}

/// A gRPC `GetState` sent as raw HTTP/2 with `grpc-timeout: 1m` (a tonic
/// client would enforce the deadline itself): the `grpc-status` and
/// `grpc-message` the server answered with.
async fn get_state_within_1ms(addr: SocketAddr, cart: &str) -> (String, String) {
    use http_body_util::BodyExt as _;
    use prost::Message as _;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(connection);
    let message =
        GetStateRequest { plugin: "counter".into(), cart_id: cart.into(), tenant: String::new() }.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend(message);
    let request = http::Request::post(format!("http://{addr}/corral.cart.v1.CartActor/GetState"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "1m")
        .body(http_body_util::Full::new(bytes::Bytes::from(frame)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let headers = response.headers().clone();
    let trailers = response.into_body().collect().await.unwrap().trailers().cloned().unwrap_or_default();
    let field = |name: &str| {
        let value = headers.get(name).or_else(|| trailers.get(name));
        value.map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    };
    (field("grpc-status"), field("grpc-message"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grpc_callers_timeout_bounds_its_call() {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Backend::Embedded.start(plugins.path(), data.path(), |c| c.carts.max_queued = 100_000);
    // Keep the cart's mailbox busy, so a read waits behind mutations.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (public, stop) = (host.public, stop.clone());
        flood.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                post(public, "/carts/counter/busy", &mutation("add", 1.into(), None)).await;
            }
        });
    }
    let mut exceeded = Vec::new();
    for _ in 0..200 {
        let (status, message) = get_state_within_1ms(host.public, "busy").await;
        match status.as_str() {
            "0" => {}
            "4" => exceeded.push(message),
            other => panic!("grpc-status {other}: {message}"),
        }
        if exceeded.len() >= 3 {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while flood.join_next().await.is_some() {}
    assert!(!exceeded.is_empty(), "no read behind a busy mailbox outlasted a 1 ms grpc-timeout");
    assert!(exceeded[0].contains("grpc-timeout"), "{exceeded:?}");
    // Without a deadline the same read is answered.
    let request = GetStateRequest { plugin: "counter".into(), cart_id: "busy".into(), tenant: String::new() };
    assert!(grpc(host.public).await.get_state(request).await.is_ok());
}
