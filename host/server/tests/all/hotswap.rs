//! Hot swap on a running host: replacing, breaking, removing, canaries and
//! rollbacks, under traffic.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corral_fixtures::*;

use crate::{Host, get, plugins_dir, send};

/// Deploys the safe way: write beside, rename in.
fn place(dir: &Path, fixture: &str) {
    let staged = dir.join(".versioned.wasm.partial");
    std::fs::copy(fixture, &staged).unwrap();
    std::fs::rename(&staged, dir.join("versioned.wasm")).unwrap();
}

/// Waits until `GET /version` answers `expected`; returns how long it took.
async fn until_serving(host: &Host, expected: &str) -> Duration {
    let started = Instant::now();
    loop {
        let reply = get(host.public, "/version").await;
        if reply.status == 200 && reply.text() == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never served {expected:?} (last: {} {})",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (at most 10 s) until `/metrics` shows `line`.
async fn until_metric(host: &Host, line: &str) {
    let started = Instant::now();
    while !get(host.admin, "/metrics").await.text().contains(line) {
        assert!(started.elapsed() < Duration::from_secs(10), "never saw {line}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client task; yields every `(status, body)` it saw.
type Client = tokio::task::JoinHandle<Vec<(u16, String)>>;

/// Clients hammering `GET /version` over keep-alive connections until
/// stopped; returns every answer (a transport error is status 0).
fn traffic(host: &Host, clients: usize) -> (Arc<AtomicBool>, Vec<Client>) {
    use http_body_util::BodyExt as _;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..clients)
        .map(|_| {
            let stop = stop.clone();
            let addr = host.public;
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
                tokio::spawn(connection);
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let request = http::Request::get("/version")
                        .header("host", addr.to_string())
                        .body(http_body_util::Full::new(bytes::Bytes::new()))
                        .unwrap();
                    let answer = match sender.send_request(request).await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            match response.into_body().collect().await {
                                Ok(body) => (status, String::from_utf8_lossy(&body.to_bytes()).into_owned()),
                                Err(error) => (0, error.to_string()),
                            }
                        }
                        Err(error) => (0, error.to_string()),
                    };
                    let broken = answer.0 == 0;
                    seen.push(answer);
                    if broken {
                        break;
                    }
                }
                seen
            })
        })
        .collect();
    (stop, tasks)
}

async fn collect(stop: Arc<AtomicBool>, tasks: Vec<Client>) -> Vec<(u16, String)> {
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_swaps_and_a_broken_file_under_steady_traffic_fail_no_request() {
    let plugins = plugins_dir(&[("versioned", ROUTE_VERSION_A)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let (stop, clients) = traffic(&host, 4);
    for swap in 0..20 {
        let (fixture, version) = if swap % 2 == 0 { (ROUTE_VERSION_B, "b") } else { (ROUTE_VERSION_A, "a") };
        place(plugins.path(), fixture);
        until_serving(&host, version).await;
        let expected = version;
        if swap == 10 {
            std::fs::write(plugins.path().join(".versioned.wasm.partial"), b"\0asm garbage").unwrap();
            std::fs::rename(plugins.path().join(".versioned.wasm.partial"), plugins.path().join("versioned.wasm"))
                .unwrap();
            let rejected = async {
                loop {
                    let list = get(host.admin, "/plugins").await.json();
                    let entry = list.as_array().unwrap().iter().find(|p| p["name"] == "versioned").cloned().unwrap();
                    if entry["error"].is_string() {
                        return entry;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            let entry =
                tokio::time::timeout(Duration::from_secs(10), rejected).await.expect("the broken file is reported");
            assert!(entry["error"].as_str().unwrap().contains("does not compile"), "{entry}");
            assert_eq!(entry["version"], format!("{expected}.0.0"), "the last good version keeps serving");
            assert_eq!(get(host.public, "/version").await.text(), expected);
        }
    }
    let answers = collect(stop, clients).await;
    assert!(answers.len() > 100, "steady traffic: {} requests", answers.len());
    let failed: Vec<_> = answers.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        answers.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(answers.iter().all(|(_, body)| body == "a" || body == "b"));
    assert!(answers.iter().any(|(_, body)| body == "a") && answers.iter().any(|(_, body)| body == "b"));
    let metrics = get(host.admin, "/metrics").await.text();
    assert!(metrics.contains("corral_plugin_swaps_total{outcome=\"swapped\"} 20"), "{metrics}");
    assert!(metrics.contains("corral_plugin_swaps_total{outcome=\"rejected\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_request_started_before_a_swap_finishes_on_the_old_version() {
    let plugins = plugins_dir(&[("versioned", ROUTE_VERSION_A)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let slow = tokio::spawn(get(host.public, "/version?sleep_ms=1500"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    place(plugins.path(), ROUTE_VERSION_B);
    until_serving(&host, "b").await;
    let reply = slow.await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "a"));
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_the_file_unloads_the_plugin_after_in_flight_calls_end() {
    let plugins = plugins_dir(&[("versioned", ROUTE_VERSION_A)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let slow = tokio::spawn(get(host.public, "/version?sleep_ms=1000"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::remove_file(plugins.path().join("versioned.wasm")).unwrap();
    let started = Instant::now();
    while get(host.public, "/version").await.status != 404 {
        assert!(started.elapsed() < Duration::from_secs(10), "never unloaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reply = slow.await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "a"), "the in-flight call finished");
    // And it comes back when the file does.
    place(plugins.path(), ROUTE_VERSION_B);
    until_serving(&host, "b").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_canary_is_rolled_back_and_a_healthy_one_promoted() {
    let canary = "canary = { percent = 50, window = \"2s\", max_error_rate = 0.2 }\n";
    let plugins = plugins_dir(&[("versioned", ROUTE_VERSION_A)], &[("versioned", canary)]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());

    let (stop, clients) = traffic(&host, 2);
    place(plugins.path(), ROUTE_VERSION_BROKEN);
    // Some requests hit the broken canary, then it is rolled back.
    until_metric(&host, "corral_plugin_swaps_total{outcome=\"canary_rolled_back\"} 1").await;
    // Rolled back on its error rate, not promoted at the end of its window
    // (no wall-clock bound here: compiling the canary under load varies).
    let metrics = get(host.admin, "/metrics").await.text();
    assert!(!metrics.contains("outcome=\"canary_promoted\""), "the broken canary was promoted: {metrics}");
    let during = collect(stop, clients).await;
    assert!(during.iter().any(|(status, _)| *status == 500), "the canary got traffic");
    assert!(during.iter().any(|(status, body)| *status == 200 && body == "a"), "the stable version kept serving");
    for _ in 0..20 {
        assert_eq!(get(host.public, "/version").await.text(), "a", "all traffic back on the stable version");
    }
    let kept = std::fs::read(plugins.path().join("versioned.wasm")).unwrap();
    assert_eq!(kept, std::fs::read(ROUTE_VERSION_A).unwrap(), "the plugins folder holds the stable version again");

    // A healthy canary shares traffic for its window, then takes it all.
    let (stop, clients) = traffic(&host, 2);
    place(plugins.path(), ROUTE_VERSION_B);
    until_metric(&host, "corral_plugin_swaps_total{outcome=\"canary_promoted\"} 1").await;
    let during = collect(stop, clients).await;
    assert!(during.iter().all(|(status, _)| *status == 200), "no failures");
    assert!(
        during.iter().any(|(_, body)| body == "a") && during.iter().any(|(_, body)| body == "b"),
        "traffic was shared"
    );
    for _ in 0..20 {
        assert_eq!(get(host.public, "/version").await.text(), "b");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_remove_and_roll_back_through_the_admin_api() {
    let plugins = plugins_dir(&[("versioned", ROUTE_VERSION_A)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| c.watch = false);

    let upload = std::fs::read(ROUTE_VERSION_B).unwrap();
    let deployed = send(host.admin, crate::request("PUT", host.admin, "/plugins/versioned", &upload)).await;
    assert_eq!(deployed.status, 200, "{}", deployed.text());
    assert_eq!(deployed.json()["outcome"], "swapped");
    assert_eq!(get(host.public, "/version").await.text(), "b");
    assert_eq!(std::fs::read(plugins.path().join("versioned.wasm")).unwrap(), std::fs::read(ROUTE_VERSION_B).unwrap());
    let listed = get(host.admin, "/plugins").await.json();
    assert!(listed[0]["file"].as_str().unwrap().ends_with("/versioned.wasm"), "served from the folder: {listed}");

    // A broken upload is refused and changes nothing.
    let broken =
        send(host.admin, crate::request("PUT", host.admin, "/plugins/versioned", b"\0asm\x0d\0\x01\0junk")).await;
    assert_eq!(broken.status, 422, "{}", broken.text());
    assert_eq!(get(host.public, "/version").await.text(), "b");

    let rollback = send(host.admin, crate::request("POST", host.admin, "/plugins/versioned/rollback", b"")).await;
    assert_eq!(rollback.status, 200, "{}", rollback.text());
    assert_eq!(rollback.json()["version"], "a.0.0");
    assert_eq!(get(host.public, "/version").await.text(), "a");
    assert_eq!(std::fs::read(plugins.path().join("versioned.wasm")).unwrap(), std::fs::read(ROUTE_VERSION_A).unwrap());

    let removed = send(host.admin, crate::request("DELETE", host.admin, "/plugins/versioned", b"")).await;
    assert_eq!(removed.status, 200);
    assert_eq!(get(host.public, "/version").await.status, 404);
    assert!(!plugins.path().join("versioned.wasm").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_handler_switches_version_at_the_next_event() {
    let plugins = plugins_dir(&[("recorder", EVENT_KV_RECORDER)], &[("recorder", "name = \"rec\"\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let post = |payload: &'static str| crate::post(host.admin, "/events/orders.created", payload.as_bytes());
    post("one").await;
    // A new sidecar is a new version too: the handler now runs as another plugin.
    std::fs::write(plugins.path().join("recorder.toml"), "name = \"rec2\"\n").unwrap();
    let started = Instant::now();
    loop {
        let subscriptions = get(host.admin, "/subscriptions").await.json();
        if subscriptions.as_array().unwrap().iter().any(|s| s["plugin"] == "rec2") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never switched: {subscriptions}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    post("two").await;
    let storage = host.storage();
    crate::eventually(Duration::from_secs(10), "rec2 handles events", || {
        storage.kv_get("plugin/rec2", "log").unwrap().filter(|log| log.ends_with(b"2:two;"))
    })
    .await;
}
