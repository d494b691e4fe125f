//! corral-cluster against real nats-server processes: one 3-server
//! JetStream cluster shared by the tests of this binary (each test uses its
//! own cluster name, so its own stream and buckets), and clusters of their
//! own for tests that kill servers.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod batch;
mod connection;
mod events;
mod kv;
mod leases;

use std::sync::LazyLock;
use std::time::Duration;

use corral_cluster::{Cluster, ClusterOptions};
use corral_test_support::nats::NatsCluster;

/// The shared cluster. Never dropped (statics are not): the harness's
/// watchdog stops its servers when the test process ends.
static SHARED: LazyLock<NatsCluster> = LazyLock::new(|| NatsCluster::start(3));

/// Options for a test's own cluster name on `servers`, three replicas.
fn options(servers: &NatsCluster, name: &str) -> ClusterOptions {
    let mut options = ClusterOptions::new(servers.urls(), name, format!("{name}-node"));
    options.replicas = 3;
    options
}

/// A connection to the shared servers under cluster name `name`.
async fn connect(name: &str) -> Cluster {
    let servers = shared().await;
    Cluster::connect(options(servers, name)).await.unwrap()
}

/// The shared servers, started off the async runtime's threads.
async fn shared() -> &'static NatsCluster {
    tokio::task::spawn_blocking(|| &*SHARED).await.unwrap()
}

/// Polls `check` every 50 ms until it is true or `limit` passes.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
