//! Connecting: the API level check, option checks, and the connection watch
//! following a partition through a TCP proxy.

use std::time::{Duration, Instant};

use corral_cluster::{ATOMIC_PUBLISH_API_LEVEL, Cluster, ClusterError, ClusterOptions};
use corral_test_support::nats::NatsCluster;
use corral_test_support::proxy::TcpProxy;

use crate::{connect, eventually, options, shared};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_is_new_enough_and_bad_options_are_refused() {
    let cluster = connect("connect").await;
    eprintln!("JetStream API level: {}", cluster.api_level());
    assert!(cluster.api_level() >= ATOMIC_PUBLISH_API_LEVEL);
    assert!(*cluster.connection().borrow());

    let servers = shared().await;
    let joined = ClusterOptions::new(vec![servers.urls().join(",")], "x", "n");
    assert!(matches!(Cluster::connect(joined).await, Err(ClusterError::Invalid { .. })));
    assert_eq!(ClusterOptions::split_urls(" nats://a:1, nats://b:2,"), ["nats://a:1", "nats://b:2"]);
    let bad_name = ClusterOptions::new(servers.urls(), "a.b", "n");
    assert!(matches!(Cluster::connect(bad_name).await, Err(ClusterError::Invalid { .. })));

    // Nobody listening: connect gives up after its timeout, naming the url.
    let mut nowhere = ClusterOptions::new(vec!["nats://127.0.0.1:1".to_string()], "x", "n");
    nowhere.connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let error = Cluster::connect(nowhere).await.err().unwrap();
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_watch_follows_a_partition() {
    let servers = shared().await;
    let proxy = TcpProxy::start(servers.client_addr(0));
    let mut options = options(servers, "partition");
    options.urls = vec![format!("nats://{}", proxy.addr())];
    // Through the proxy only: reconnecting straight to the servers it
    // announces would step around the partition.
    options.ignore_discovered_servers = true;
    let cluster = Cluster::connect(options).await.unwrap();
    let connected = cluster.connection();
    assert!(*connected.borrow());

    proxy.cut();
    assert!(eventually(Duration::from_secs(5), async || !*connected.borrow()).await, "still connected after the cut");
    let refused = cluster.events().head().await;
    assert!(matches!(refused, Err(ref e) if e.is_retryable()), "{refused:?}");

    proxy.restore();
    assert!(eventually(Duration::from_secs(15), async || *connected.borrow()).await, "not back after restore");
    assert!(cluster.events().head().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_waits_for_a_server_the_cluster_needs_for_placement() {
    // A cluster of its own whose third server has not booted yet when a
    // node connects for the first time: three replicas cannot be placed
    // ("no suitable peers for placement") until it has.
    let mut servers = tokio::task::spawn_blocking(|| NatsCluster::start_without(3, Some(2))).await.unwrap();
    let mut options = options(&servers, "placement");
    options.urls = vec![servers.urls()[0].clone()];
    let connecting = tokio::spawn(Cluster::connect(options));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!connecting.is_finished(), "connect gave up (or placed three replicas on two servers)");
    let servers = tokio::task::spawn_blocking(move || {
        servers.restart(2);
        servers
    })
    .await
    .unwrap();
    let cluster = connecting.await.unwrap().expect("connects once the third server is back");
    let id = cluster.events().head().await.unwrap();
    eprintln!("placed; stream head {id:?}");
    drop(servers);
}
