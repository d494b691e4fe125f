//! Rollouts across three hosts on three real nats-servers, under steady
//! traffic through every node (every non-2xx counted): a healthy version
//! goes through a canary and waves to every node with no failed request; a
//! canary failing half its requests is rolled back on every node within
//! its window plus a second, costing only its share of requests; a node
//! down during a rollout converges when it comes back (with the sidecar
//! that travelled with the component); of two concurrent deploys one wins
//! and the other gets a conflict naming the revision; a component whose
//! bytes do not match the recorded hash is refused by every node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corral_fixtures::{ROUTE_VERSION_A, ROUTE_VERSION_B, ROUTE_VERSION_FLAKY};
use corral_server::fleet::record::{Desired, Version};

use crate::cluster::{Node, futures_block, nodes, observer};
use crate::{eventually, get, plugins_dir, request, send};

/// Requests sent round-robin through every node until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Answer>>>,
}

/// One request's outcome: status (0: the connection failed), body, when.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
    at: Instant,
}

impl Load {
    /// `clients` clients per node, each on its own keep-alive connection,
    /// numbering requests from one counter (`GET /version?n=N`).
    fn start(nodes: &[Node], clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicU64::new(0));
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.host.public).collect();
        let tasks = addrs
            .iter()
            .flat_map(|addr| std::iter::repeat_n(*addr, clients))
            .map(|addr| tokio::spawn(client(addr, stop.clone(), counter.clone())))
            .collect();
        Load { stop, tasks }
    }

    async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        let mut answers = Vec::new();
        for task in self.tasks {
            answers.extend(task.await.unwrap());
        }
        answers
    }
}

async fn client(addr: SocketAddr, stop: Arc<AtomicBool>, counter: Arc<AtomicU64>) -> Vec<Answer> {
    use http_body_util::BodyExt as _;
    let mut answers = Vec::new();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    while !stop.load(Ordering::Relaxed) {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let request = http::Request::get(format!("/version?n={n}"))
            .header("host", addr.to_string())
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let (status, body) = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(body) => (status, String::from_utf8_lossy(&body.to_bytes()).into_owned()),
                    Err(error) => (0, error.to_string()),
                }
            }
            Err(error) => (0, error.to_string()),
        };
        answers.push(Answer { status, body, at: Instant::now() });
        if status == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    answers
}

async fn start_nodes(name: &'static str) -> (Vec<Node>, tempfile::TempDir) {
    let plugins = plugins_dir(&[("versioned", ROUTE_VERSION_A)], &[]);
    let path = plugins.path().to_path_buf();
    let nodes = tokio::task::spawn_blocking(move || nodes(name, 3, &path)).await.unwrap();
    for node in &nodes {
        assert_eq!(get(node.host.public, "/version").await.text(), "a", "the seeded version serves");
    }
    (nodes, plugins)
}

/// `PUT /plugins/versioned` with `component`, settings in `query`, and a
/// sidecar if given.
async fn deploy(node: &Node, component: &str, query: &str, sidecar: Option<&str>) -> crate::Reply {
    use base64::Engine as _;
    let admin = node.host.admin;
    let bytes = std::fs::read(component).unwrap();
    let mut put = request("PUT", admin, &format!("/plugins/versioned{query}"), &bytes);
    if let Some(sidecar) = sidecar {
        let encoded = base64::engine::general_purpose::STANDARD.encode(sidecar);
        put.headers_mut().insert("x-corral-sidecar", encoded.parse().unwrap());
    }
    send(admin, put).await
}

fn hash_of(component: &str) -> String {
    corral_runtime::content_hash(&std::fs::read(component).unwrap())
}

/// `GET /cluster/plugins/versioned` through `node`.
fn status(node: &Node) -> serde_json::Value {
    futures_block(get(node.host.admin, "/cluster/plugins/versioned")).json()
}

/// Every one of the three nodes reports running `hash` alone, and the
/// rollout (if any) is in `phase`.
fn settled(status: &serde_json::Value, hash: &str, phase: &str) -> bool {
    let nodes = status["nodes"].as_object().cloned().unwrap_or_default();
    nodes.len() == 3
        && nodes.values().all(|n| n["hash"] == hash && n["canary"].is_null() && n["converged"] == true)
        && status["rollout"]["phase"] == phase
        && status["converged"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healthy_version_rolls_out_through_a_canary_and_waves_with_no_failed_request() {
    let (nodes, _plugins) = start_nodes("rollout-healthy").await;
    let load = Load::start(&nodes, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deployed = deploy(&nodes[1], ROUTE_VERSION_B, "?canary=20&window=2s&max_error_rate=0.05&waves=3", None).await;
    assert_eq!(deployed.status, 200, "{}", deployed.text());
    let body = deployed.json();
    assert_eq!(body["outcome"], "rolling_out", "{body}");
    assert_eq!(body["rollout"]["phase"], "canary", "{body}");
    let b = hash_of(ROUTE_VERSION_B);
    let done = eventually(Duration::from_secs(60), "version b on every node", || {
        let status = status(&nodes[0]);
        settled(&status, &b, "done").then_some(status)
    })
    .await;
    assert_eq!(done["rollout"]["plan"].as_array().unwrap().len(), 3, "three waves: {done}");
    let answers = load.finish().await;
    let failed: Vec<&Answer> = answers.iter().filter(|a| !(200..300).contains(&a.status)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the rollout: {:?}",
        failed.len(),
        answers.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        answers.iter().any(|a| a.body == "a") && answers.iter().any(|a| a.body == "b"),
        "traffic saw both versions"
    );
    for node in &nodes {
        for _ in 0..10 {
            assert_eq!(get(node.host.public, "/version").await.text(), "b");
        }
    }
    let all = get(nodes[2].host.admin, "/cluster/plugins").await.json();
    let listed = &all["plugins"][0];
    assert_eq!(
        (listed["plugin"].as_str(), listed["target"]["hash"].as_str()),
        (Some("versioned"), Some(b.as_str())),
        "{all}"
    );
    assert_eq!(listed["previous"]["hash"], hash_of(ROUTE_VERSION_A), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_failing_half_its_requests_is_rolled_back_on_every_node_within_its_window() {
    let (nodes, _plugins) = start_nodes("rollout-breach").await;
    let load = Load::start(&nodes, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let window = Duration::from_secs(4);
    let query = format!("?canary=20&window={}s&max_error_rate=0.1", window.as_secs());
    let deployed = deploy(&nodes[0], ROUTE_VERSION_FLAKY, &query, None).await;
    assert_eq!(deployed.status, 200, "{}", deployed.text());
    let returned = Instant::now();
    let a = hash_of(ROUTE_VERSION_A);
    let back = eventually(Duration::from_secs(30), "every node back on version a", || {
        let status = status(&nodes[2]);
        settled(&status, &a, "rolled_back").then_some(status)
    })
    .await;
    let rolled_back = returned.elapsed();
    assert!(rolled_back <= window + Duration::from_secs(1), "rolled back everywhere after {rolled_back:?}: {back}");
    let reason = back["rollout"]["reason"].as_str().unwrap();
    assert!(reason.contains("error rate"), "{reason}");
    assert_eq!(back["target"]["hash"], a.as_str(), "the stable version is the target again: {back}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answers = load.finish().await;
    let failed: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    assert!(!failed.is_empty(), "the canary got traffic");
    assert!(
        failed.iter().all(|a| a.status == 500 && a.body.contains("fails every other")),
        "only the canary failed: {failed:?}"
    );
    // Only the canary's share failed: 20% of requests, half of those.
    let during: Vec<&Answer> = answers.iter().filter(|a| a.at >= returned && a.at <= returned + rolled_back).collect();
    let share = failed.len() as f64 / during.len().max(1) as f64;
    assert!(share <= 0.25, "{} of {} requests during the canary failed", failed.len(), during.len());
    assert!(answers.iter().filter(|a| a.at > returned + rolled_back).all(|a| a.body == "a"), "all traffic on a after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_down_during_a_rollout_converges_and_concurrent_deploys_conflict() {
    let (mut nodes, _plugins) = start_nodes("rollout-late").await;
    let down = nodes.pop().unwrap();
    let down = tokio::task::spawn_blocking(move || down.stop()).await.unwrap();
    // The sidecar travels with the component: a second route.
    let sidecar =
        "routes = [{ method = \"GET\", pattern = \"/version\" }, { method = \"GET\", pattern = \"/renamed\" }]\n";
    let deployed = deploy(&nodes[0], ROUTE_VERSION_B, "?waves=2", Some(sidecar)).await;
    assert_eq!(deployed.status, 200, "{}", deployed.text());
    let b = hash_of(ROUTE_VERSION_B);
    eventually(Duration::from_secs(60), "version b on the two live nodes", || {
        let status = status(&nodes[0]);
        let nodes = status["nodes"].as_object().cloned().unwrap_or_default();
        (status["rollout"]["phase"] == "done" && nodes.len() == 2 && nodes.values().all(|n| n["hash"] == b.as_str()))
            .then_some(())
    })
    .await;
    let late = tokio::task::spawn_blocking(move || down.start()).await.unwrap();
    nodes.push(late);
    eventually(Duration::from_secs(60), "the late node on version b", || {
        settled(&status(&nodes[0]), &b, "done").then_some(())
    })
    .await;
    for node in &nodes {
        assert_eq!(get(node.host.public, "/renamed").await.text(), "b", "the sidecar's route on every node");
    }

    // Two deploys of one plugin at once: one wins, the other conflicts.
    let revision = status(&nodes[0])["revision"].as_u64().unwrap();
    let (first, second) =
        tokio::join!(deploy(&nodes[0], ROUTE_VERSION_A, "", None), deploy(&nodes[1], ROUTE_VERSION_FLAKY, "", None));
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", first.text(), second.text());
    let conflict = if first.status == 409 { first.json() } else { second.json() };
    assert_eq!(conflict["error"], "conflict", "{conflict}");
    assert!(conflict["revision"].as_u64().is_some_and(|r| r > revision), "{conflict}");
    assert!(conflict["message"].as_str().unwrap().contains("revision"), "{conflict}");
    // A deploy expecting a stale revision is refused the same way.
    let stale = deploy(&nodes[2], ROUTE_VERSION_B, &format!("?expect_revision={revision}"), None).await;
    assert_eq!(stale.status, 409, "{}", stale.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_component_not_matching_its_recorded_hash_is_refused_by_every_node() {
    let (nodes, _plugins) = start_nodes("rollout-tampered").await;
    let observer = observer("rollout-tampered").await;
    let entry = observer.desired().get("versioned").await.unwrap();
    let current = Desired::decode(&entry.value.unwrap()).unwrap();
    // The artifact stored under b's hash holds other bytes.
    let b = hash_of(ROUTE_VERSION_B);
    observer.artifacts().replace(&b, &std::fs::read(ROUTE_VERSION_FLAKY).unwrap()).await.unwrap();
    let target = Version { hash: b.clone(), size: 1, sidecar: None, version: "b.0.0".into(), world: "route".into() };
    let tampered = Desired { target, previous: Some(current.target.clone()), rollout: None, ..current };
    observer.desired().write("versioned", &tampered.encode(), entry.revision).await.unwrap();
    let refused = eventually(Duration::from_secs(30), "every node refusing the tampered artifact", || {
        let status = status(&nodes[0]);
        let nodes = status["nodes"].as_object().cloned().unwrap_or_default();
        let all = nodes.len() == 3
            && nodes.values().all(|n| n["refused"]["hash"] == b.as_str() && n["refused"]["kind"] == "hash_mismatch");
        all.then_some(status)
    })
    .await;
    let error = refused["nodes"]["node-1"]["refused"]["error"].as_str().unwrap();
    assert!(error.contains("does not match"), "{error}");
    for node in &nodes {
        assert_eq!(get(node.host.public, "/version").await.text(), "a", "the previous version keeps serving");
    }
}
