//! Cluster mode: three hosts on three real nats-servers (one JetStream
//! cluster per test binary, one Corral cluster name per test), each host
//! reaching NATS through TCP proxies the test can cut. Events are handled
//! once per subscriber across the nodes, kv is shared and its
//! compare-and-swap has one winner, a cron schedule ticks once across the
//! nodes, projections hold the same bytes everywhere (and after a
//! partition heals) and cut over to a new version only once every node has
//! caught up, a node cut off from NATS turns not ready and refuses writes,
//! and nodes answer the gRPC control plane (Ping, Negotiate).

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use corral_cluster::{Cluster, ClusterOptions};
use corral_fixtures::*;
use corral_server::config::ClusterConfig;
use corral_server::http::cluster::proto::control_plane_client::ControlPlaneClient;
use corral_server::http::peer_auth::PeerKey;
use corral_test_support::nats::NatsCluster;
use corral_test_support::proxy::TcpProxy;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Host, eventually, get, plugins_dir, post};

/// One JetStream cluster of three servers for the whole test binary.
pub(crate) fn nats() -> &'static NatsCluster {
    static NATS: OnceLock<NatsCluster> = OnceLock::new();
    NATS.get_or_init(|| NatsCluster::start(3))
}

/// A node: a host, and the proxies it reaches the three servers through.
pub(crate) struct Node {
    pub(crate) host: Host,
    proxies: Vec<TcpProxy>,
    _data: tempfile::TempDir,
    plugins: std::path::PathBuf,
    cluster: ClusterConfig,
}

/// A node stopped gracefully, its data and proxies kept to start it again.
pub(crate) struct Stopped {
    proxies: Vec<TcpProxy>,
    data: tempfile::TempDir,
    plugins: std::path::PathBuf,
    cluster: ClusterConfig,
}

impl Stopped {
    /// Starts the node again on its data (blocking).
    pub(crate) fn start(self) -> Node {
        let cluster = self.cluster.clone();
        let host = Host::start_with(&self.plugins, self.data.path(), |c| c.cluster = Some(cluster));
        Node { host, proxies: self.proxies, _data: self.data, plugins: self.plugins, cluster: self.cluster }
    }
}

impl Node {
    /// Stops the host gracefully (blocking): it leaves the cluster.
    pub(crate) fn stop(self) -> Stopped {
        self.host.stop();
        Stopped { proxies: self.proxies, data: self._data, plugins: self.plugins, cluster: self.cluster }
    }

    pub(crate) fn cut(&self) {
        self.proxies.iter().for_each(TcpProxy::cut);
    }

    pub(crate) fn restore(&self) {
        self.proxies.iter().for_each(TcpProxy::restore);
    }
}

/// Starts `count` nodes of cluster `name` serving the plugins in `plugins`.
pub(crate) fn nodes(name: &str, count: usize, plugins: &std::path::Path) -> Vec<Node> {
    nodes_with(name, count, plugins, |_| {})
}

/// As [`nodes`], with each node's configuration changed by `configure`
/// last (its `cluster` is set by then).
pub(crate) fn nodes_with(
    name: &str,
    count: usize,
    plugins: &std::path::Path,
    configure: impl Fn(&mut corral_server::config::ServerConfig),
) -> Vec<Node> {
    (0..count)
        .map(|i| {
            let proxies: Vec<TcpProxy> = (0..3).map(|s| TcpProxy::start(nats().client_addr(s))).collect();
            let urls = proxies.iter().map(|p| format!("nats://{}", p.addr())).collect();
            let data = tempfile::tempdir().unwrap();
            let mut cluster = ClusterConfig::new(urls, name, &format!("node-{i}"));
            cluster.lease_ttl = Duration::from_secs(3);
            cluster.only_listed_servers = true;
            let host = Host::start_with(plugins, data.path(), |c| {
                c.cluster = Some(cluster.clone());
                configure(c);
            });
            Node { host, proxies, _data: data, plugins: plugins.to_path_buf(), cluster }
        })
        .collect()
}

/// A client of the cluster's JetStream, as the test's own eyes.
pub(crate) async fn observer(name: &str) -> Cluster {
    let options = ClusterOptions::new(nats().urls(), name, "observer");
    Cluster::connect(options).await.unwrap()
}

/// The recorder's log: `(sequence, payload)` per event it handled, in order.
async fn recorded(cluster: &Cluster) -> Vec<(u64, String)> {
    let bucket = cluster.kv("plugin/kv-recorder").await.unwrap();
    let log = bucket.get_latest("log").await.unwrap().unwrap_or_default();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_are_handled_once_per_subscriber_across_the_nodes() {
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER), ("recorder", EVENT_KV_RECORDER)], &[]);
    let nodes = tokio::task::spawn_blocking(move || {
        let nodes = nodes("events-once", 3, plugins.path());
        (nodes, plugins)
    })
    .await
    .unwrap();
    let (nodes, _plugins) = nodes;
    let total = 30;
    // Every tenth event makes the handler queue one (`publish-on-success`).
    let payload = |i: usize| if i.is_multiple_of(10) { format!("e{i}+queue") } else { format!("e{i}") };
    for i in 0..total {
        let node = &nodes[i % 3];
        let reply = post(node.host.public, "/emit/orders.created", payload(i).as_bytes()).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let observer = observer("events-once").await;
    let log = eventually(Duration::from_secs(30), "every event handled", || {
        let log = futures_block(recorded(&observer));
        (log.len() >= total).then_some(log)
    })
    .await;
    let payloads: BTreeSet<&str> = log.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(log.len(), total, "each event handled once across three nodes: {log:?}");
    assert_eq!(payloads.len(), total);
    assert!(log.windows(2).all(|w| w[0].0 < w[1].0), "in stream order: {log:?}");
    // What the handler queued is in the stream once per event handled, with
    // an id made of the consumer and the event (what makes a repeat after a
    // crash before the acknowledgement stored once).
    let mut reader = observer.events().reader(&["audit.queued".to_string()], 0).unwrap();
    let queued = reader.next(3, Duration::from_secs(5)).await.unwrap();
    let queued_payloads: Vec<String> = queued.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect();
    assert_eq!(queued_payloads, ["e0+queue", "e10+queue", "e20+queue"]);
    for (event, (sequence, _)) in queued.iter().zip(log.iter().filter(|(_, p)| p.ends_with("+queue"))) {
        assert_eq!(event.id, format!("handler.kv-recorder-{sequence}-0"));
    }

    // One node holds the subscriber's lease; /cluster shows it (as of the
    // members' last heartbeats), and never two.
    let admin = nodes[0].host.admin;
    eventually(Duration::from_secs(10), "the holder in /cluster", || {
        let view = futures_block(get(admin, "/cluster")).json();
        let members = view["members"].as_array().unwrap().clone();
        // Membership is advice: under load a heartbeat may be late.
        if members.len() != 3 {
            return None;
        }
        let holders = members
            .iter()
            .filter(|m| m["details"]["leases"].as_array().unwrap().iter().any(|l| l == "subscriber.kv-recorder"))
            .count();
        assert!(holders <= 1, "two holders of one subscriber: {view}");
        (holders == 1).then_some(())
    })
    .await;
    drop(nodes);
}

/// Runs a future to completion from a synchronous closure (the test's
/// polling closures are synchronous).
pub(crate) fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv_is_shared_and_a_compare_and_swap_race_has_one_winner() {
    let plugins = plugins_dir(&[("counter", ROUTE_KV_COUNTER)], &[]);
    let (nodes, _plugins) =
        tokio::task::spawn_blocking(move || (nodes("kv-shared", 3, plugins.path()), plugins)).await.unwrap();
    let reply = send_put(nodes[0].host.public, "/kv/greeting", b"hello").await;
    assert_eq!(reply, 200);
    for node in &nodes[1..] {
        let public = node.host.public;
        let seen = eventually(Duration::from_secs(10), "the value on another node", || {
            let reply = futures_block(get(public, "/kv/greeting"));
            (reply.status == 200).then(|| reply.text())
        })
        .await;
        assert_eq!(seen, "hello");
    }

    for round in 0..10 {
        let key = format!("/claim/k{round}");
        let claims = nodes.iter().map(|node| {
            let (public, key) = (node.host.public, key.clone());
            tokio::spawn(async move { post(public, &key, format!("{public}").as_bytes()).await.text() })
        });
        let mut answers = Vec::new();
        for claim in claims {
            answers.push(claim.await.unwrap());
        }
        assert_eq!(answers.iter().filter(|a| *a == "won").count(), 1, "round {round}: {answers:?}");
        assert_eq!(answers.iter().filter(|a| *a == "lost").count(), 2, "round {round}: {answers:?}");
    }

    // Increments from every node at once lose none.
    let mut increments = Vec::new();
    for node in &nodes {
        let public = node.host.public;
        increments.push(tokio::spawn(async move {
            for _ in 0..10 {
                assert_eq!(post(public, "/counter/hits", b"").await.status, 200);
            }
        }));
    }
    for increment in increments {
        increment.await.unwrap();
    }
    let observer = observer("kv-shared").await;
    let hits = observer.kv("plugin/kv-counter").await.unwrap().get_latest("hits").await.unwrap().unwrap();
    assert_eq!(String::from_utf8(hits).unwrap(), "30");
}

async fn send_put(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> u16 {
    crate::send(addr, crate::request("PUT", addr, path, body)).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_ticks_once_per_second_across_the_nodes() {
    let plugins = plugins_dir(
        &[("recorder", EVENT_KV_RECORDER)],
        &[("recorder", "topics = []\nschedules = [{ name = \"tick\", cron = \"* * * * * *\" }]\n")],
    );
    let (nodes, _plugins) =
        tokio::task::spawn_blocking(move || (nodes("ticks", 3, plugins.path()), plugins)).await.unwrap();
    let observer = observer("ticks").await;
    // Wait for the first tick, then count over a window.
    eventually(Duration::from_secs(20), "a first tick", || {
        (!futures_block(recorded(&observer)).is_empty()).then_some(())
    })
    .await;
    let before = recorded(&observer).await.len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = recorded(&observer).await.len();
    let ticks = after - before;
    assert!((4..=8).contains(&ticks), "about one tick a second across three nodes, got {ticks} in 6 s");
    let log = recorded(&observer).await;
    let sequences: BTreeSet<u64> = log.iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences.len(), log.len(), "no tick handled twice: {log:?}");
    drop(nodes);
}

/// The digest of a projection generation on a node, and its checkpoint.
fn digest_of(node: &Node, scope: &str) -> (String, u64) {
    let storage = node.host.storage();
    let checkpoint = storage.checkpoint(&format!("projection.{scope}")).unwrap();
    (storage.views_digest(scope).unwrap().0, checkpoint)
}

fn generation(name: &str, component: &str) -> String {
    let hash = blake3::hash(&std::fs::read(component).unwrap()).to_hex().to_string();
    format!("{name}@{}", &hash[..12])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projections_are_byte_identical_on_every_node_and_after_a_partition_heals() {
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER), ("count", PROJECTION_COUNT)], &[]);
    let (nodes, _plugins) =
        tokio::task::spawn_blocking(move || (nodes("projections", 3, plugins.path()), plugins)).await.unwrap();
    let scope = generation("count", PROJECTION_COUNT);
    let topics = ["orders.created", "orders.paid", "orders.shipped"];
    for i in 0..30 {
        let reply = post(nodes[i % 3].host.public, &format!("/emit/{}", topics[i % 3]), b"{}").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let observer = observer("projections").await;
    let head = observer.events().head().await.unwrap();
    let same = |nodes: &[Node], head: u64| {
        let digests: Vec<(String, u64)> = nodes.iter().map(|n| digest_of(n, &scope)).collect();
        (digests.iter().all(|(_, checkpoint)| *checkpoint >= head) && digests.windows(2).all(|w| w[0].0 == w[1].0))
            .then_some(digests)
    };
    let digests = eventually(Duration::from_secs(30), "the same views everywhere", || same(&nodes, head)).await;
    assert_ne!(digests[0].0, blake3::hash(b"").to_hex().to_string());

    // Partition node 2, go on writing elsewhere, heal: it catches up.
    nodes[2].cut();
    for i in 0..12 {
        let reply = post(nodes[i % 2].host.public, "/emit/orders.paid", b"{}").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let head = observer.events().head().await.unwrap();
    let cut_off = digest_of(&nodes[2], &scope);
    assert!(cut_off.1 < head, "the partitioned node cannot have folded the new events");
    nodes[2].restore();
    eventually(Duration::from_secs(60), "the healed node on the same digest", || same(&nodes, head)).await;
    let view = get(nodes[0].host.admin, "/cluster").await.json();
    assert_eq!(view["divergent"], serde_json::json!([]), "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_projection_version_cuts_over_once_every_node_has_caught_up() {
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER), ("count", PROJECTION_COUNT)], &[]);
    let path = plugins.path().to_path_buf();
    let nodes = tokio::task::spawn_blocking(move || nodes("cutover", 3, &path)).await.unwrap();
    for i in 0..12 {
        let reply = post(nodes[i % 3].host.public, "/emit/orders.created", b"{}").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let counted = |node: &Node| futures_block(get(node.host.public, "/views/count/orders.created")).text();
    eventually(Duration::from_secs(30), "version 1 folded everywhere", || {
        nodes.iter().all(|n| counted(n) == "12").then_some(())
    })
    .await;

    // Version 2 (ten per event) rolls out in three waves, each running it
    // 6 s before the next switches: node 0 runs it first, its generation
    // catches up there, but the cutover waits for the other two nodes.
    let v2_bytes = std::fs::read(PROJECTION_COUNT_V2).unwrap();
    let deploy = crate::request("PUT", nodes[0].host.admin, "/plugins/count?waves=3&pause=6s", &v2_bytes);
    let deployed = crate::send(nodes[0].host.admin, deploy).await;
    assert_eq!(deployed.status, 200, "{}", deployed.text());
    let v2 = generation("count", PROJECTION_COUNT_V2);
    let admin = nodes[0].host.admin;
    let waiting = eventually(Duration::from_secs(30), "version 2 caught up on node 0", || {
        let list = futures_block(get(admin, "/projections")).json();
        let building = list.as_array().unwrap().iter().find(|p| p["generation"] == v2.as_str()).cloned()?;
        assert_eq!(building["active"], false, "cut over while nodes 1 and 2 run version 1: {list}");
        // Node 0's own report of its copy reaches the member list with its
        // next heartbeat; from then on only the other two hold it back.
        let reason = building["cutover_waits_for"].as_str().unwrap_or("node-0").to_string();
        (building["caught_up"] == true && !reason.contains("node-0")).then_some(reason)
    })
    .await;
    assert!(waiting.contains("node-1") && waiting.contains("node-2"), "{waiting}");
    // Several heartbeats and gate retries later it still waits (node 2
    // switches 12 s after node 0 at the earliest), and every node still
    // answers from version 1.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(nodes.iter().all(|n| counted(n) == "12"), "a node served version 2 before all had caught up");

    // The other waves get version 2 too: all three cut over.
    eventually(Duration::from_secs(60), "version 2 active everywhere", || {
        nodes.iter().all(|n| counted(n) == "120").then_some(())
    })
    .await;
    for node in &nodes {
        let list = get(node.host.admin, "/projections").await.json();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 1, "the old generation is gone: {list:?}");
        assert_eq!(list[0]["generation"], v2.as_str());
        assert_eq!(list[0]["last_diff"]["equal"], false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_cut_off_from_nats_is_not_ready_and_refuses_writes_until_it_is_back() {
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER)], &[]);
    let (nodes, _plugins) =
        tokio::task::spawn_blocking(move || (nodes("cut-off", 1, plugins.path()), plugins)).await.unwrap();
    let node = &nodes[0];
    assert_eq!(get(node.host.admin, "/readyz").await.status, 200);
    assert_eq!(post(node.host.public, "/emit/orders.created", b"before").await.status, 200);
    node.cut();
    let admin = node.host.admin;
    eventually(Duration::from_secs(20), "not ready", || {
        (futures_block(get(admin, "/readyz")).status == 503).then_some(())
    })
    .await;
    let refused = post(node.host.public, "/emit/orders.created", b"during").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.json()["error"], "cut_off");
    assert!(refused.headers.contains_key("retry-after"));
    node.restore();
    eventually(Duration::from_secs(30), "ready again", || {
        (futures_block(get(admin, "/readyz")).status == 200).then_some(())
    })
    .await;
    let after = post(node.host.public, "/emit/orders.created", b"after").await;
    assert_eq!(after.status, 200, "{}", after.text());
    let observer = observer("cut-off").await;
    assert_eq!(observer.events().head().await.unwrap(), 2, "the refused write never reached the stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_nats_server_stalls_writes_and_loses_nothing_acknowledged() {
    // A JetStream cluster of its own: this test kills one of its servers.
    let mut nats = tokio::task::spawn_blocking(|| NatsCluster::start(3)).await.unwrap();
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let mut cluster = ClusterConfig::new(nats.urls(), "nats-kill", "node-0");
    cluster.replicas = 3;
    let (plugins_path, data_path) = (plugins.path().to_path_buf(), data.path().to_path_buf());
    let host =
        tokio::task::spawn_blocking(move || Host::start_with(&plugins_path, &data_path, |c| c.cluster = Some(cluster)))
            .await
            .unwrap();
    let public = host.public;
    let writer = tokio::spawn(async move {
        let (mut acknowledged, mut refused) = (Vec::new(), 0);
        for i in 0..200 {
            let payload = format!("w{i}");
            match post(public, "/emit/orders.created", payload.as_bytes()).await.status {
                200 => acknowledged.push(payload),
                _ => refused += 1,
            }
        }
        (acknowledged, refused)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let nats = tokio::task::spawn_blocking(move || {
        nats.kill(0);
        std::thread::sleep(Duration::from_secs(3));
        nats.restart(0);
        nats
    })
    .await
    .unwrap();
    let (acknowledged, refused) = writer.await.unwrap();
    assert!(acknowledged.len() >= 100, "writes resume after the stall ({refused} refused)");

    let observer = Cluster::connect(ClusterOptions::new(nats.urls(), "nats-kill", "observer")).await.unwrap();
    let mut reader = observer.events().reader(&["orders.>".to_string()], 0).unwrap();
    let mut stored: Vec<String> = Vec::new();
    loop {
        let events = reader.next(500, Duration::from_secs(2)).await.unwrap();
        if events.is_empty() {
            break;
        }
        stored.extend(events.into_iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()));
    }
    for payload in &acknowledged {
        let copies = stored.iter().filter(|s| *s == payload).count();
        assert_eq!(copies, 1, "{payload} was acknowledged: stored exactly once ({stored:?})");
    }
    drop(host);
}

/// A control-plane client of the node at `address` that signs its calls as
/// a peer of cluster `name` would (with the secret the nodes created).
pub(crate) async fn peer_client(
    name: &str,
    address: std::net::SocketAddr,
) -> ControlPlaneClient<InterceptedService<Channel, impl Interceptor + Clone>> {
    let secret = observer(name).await.peer_secret([0; 32]).await.unwrap();
    assert_ne!(secret, [0; 32], "the nodes created the secret");
    let key = Arc::new(PeerKey::new(secret, "test"));
    let channel = Channel::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    ControlPlaneClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
        key.attach(request.metadata_mut());
        Ok(request)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_answer_ping_and_negotiate_over_the_control_plane_to_peers_only() {
    use corral_server::http::cluster::PROTOCOL_VERSION;
    use corral_server::http::cluster::proto::{GetCartIdsRequest, NegotiateRequest, PingRequest};
    use corral_server::http::grpc::proto::GetStateRequest;
    use corral_server::http::grpc::proto::cart_actor_client::CartActorClient;

    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER)], &[]);
    let (nodes, _plugins) =
        tokio::task::spawn_blocking(move || (nodes("control-plane", 3, plugins.path()), plugins)).await.unwrap();
    let ids: BTreeSet<String> = (0..3).map(|i| format!("node-{i}")).collect();

    // A client without the cluster's secret is no peer: the control plane
    // refuses it, and so does a cart call it marks as forwarded.
    let public = format!("http://{}", nodes[0].host.public);
    let mut stranger = ControlPlaneClient::connect(public.clone()).await.unwrap();
    let refused = stranger.get_cart_ids(GetCartIdsRequest { from_node: "x".into() }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let forged_key = PeerKey::new([9; 32], "node-1");
    let mut forged = tonic::Request::new(PingRequest { from_node: "node-1".into() });
    forged_key.attach(forged.metadata_mut());
    assert_eq!(stranger.ping(forged).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    let mut carts = CartActorClient::connect(public).await.unwrap();
    let mut marked =
        tonic::Request::new(GetStateRequest { plugin: "p".into(), cart_id: "c".into(), tenant: String::new() });
    marked.metadata_mut().insert("x-corral-forwarded-by", "node-1".parse().unwrap());
    let refused = carts.get_state(marked).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("x-corral-peer"), "the refusal names what is missing: {refused:?}");

    for (i, node) in nodes.iter().enumerate() {
        let mut client = peer_client("control-plane", node.host.public).await;
        let ping = client.ping(PingRequest { from_node: "test".into() }).await.unwrap().into_inner();
        assert_eq!(ping.node_id, format!("node-{i}"));
        assert!(ping.incarnation > 0, "the incarnation is the node's start time: {ping:?}");
        let skew = ping
            .time_ms
            .abs_diff(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64);
        assert!(skew < 60_000, "a clock on this machine: {ping:?}");

        // Every node comes to see the same three members.
        let asking = |version| NegotiateRequest {
            from_node: "test".into(),
            protocol_version: version,
            members: ids.iter().cloned().collect(),
        };
        let reply = eventually(Duration::from_secs(20), "three members", || {
            let reply = futures_block(client.clone().negotiate(asking(PROTOCOL_VERSION))).unwrap().into_inner();
            (reply.members.iter().cloned().collect::<BTreeSet<_>>() == ids).then_some(reply)
        })
        .await;
        assert_eq!(reply.node_id, format!("node-{i}"));
        assert_eq!(reply.protocol_version, PROTOCOL_VERSION);
        assert!(reply.compatible);

        // A newer peer is answered with the version both speak; one that
        // speaks no version this node knows is told it is not compatible.
        let newer = client.negotiate(asking(PROTOCOL_VERSION + 5)).await.unwrap().into_inner();
        assert_eq!((newer.protocol_version, newer.compatible), (PROTOCOL_VERSION, true));
        let ancient = client.negotiate(asking(0)).await.unwrap().into_inner();
        assert!(!ancient.compatible, "{ancient:?}");
    }
}
