//! Fenced checkpoints, leases that expire and move, membership.

use std::time::{Duration, Instant};

use corral_cluster::members::Member;
use corral_cluster::{Cluster, ClusterError};

use crate::{connect, eventually, options, shared};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_with_a_stale_revision_is_fenced() {
    let cluster = connect("checkpoints").await;
    let checkpoints = cluster.checkpoints();
    assert_eq!(checkpoints.get("subscriber/orders").await.unwrap(), None);
    let first = checkpoints.put("subscriber/orders", 10, None).await.unwrap();
    let create_again = checkpoints.put("subscriber/orders", 11, None).await;
    assert!(matches!(create_again, Err(ClusterError::Fenced { expected: 0, .. })), "{create_again:?}");

    let second = checkpoints.put("subscriber/orders", 12, Some(first)).await.unwrap();
    assert!(second > first);
    let stale = checkpoints.put("subscriber/orders", 13, Some(first)).await;
    assert!(matches!(stale, Err(ClusterError::Fenced { .. })), "{stale:?}");
    assert_eq!(checkpoints.get("subscriber/orders").await.unwrap(), Some((12, second)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_expires_moves_to_another_holder_and_fences_the_first() {
    let servers = shared().await;
    let mut options = options(servers, "leases");
    options.lease_ttl = Duration::from_secs(2);
    let cluster = Cluster::connect(options).await.unwrap();
    let leases = cluster.leases();

    let first = leases.try_acquire("cart/42", "node-a").await.unwrap().unwrap();
    assert_eq!(first.epoch, first.revision);
    assert_eq!(leases.try_acquire("cart/42", "node-b").await.unwrap(), None, "held");
    let renewed = leases.renew(&first).await.unwrap();
    assert!(renewed.revision > first.revision);
    assert_eq!(renewed.epoch, first.epoch, "a renewal keeps the epoch");
    assert_eq!(leases.holder("cart/42").await.unwrap(), Some(("node-a".to_string(), renewed.revision)));

    // Stop renewing: the lease ages out within its TTL (plus the server's
    // expiry scan) and node-b takes it, over the marker it left.
    let stopped = Instant::now();
    let mut second = None;
    assert!(
        eventually(Duration::from_secs(10), async || {
            second = leases.try_acquire("cart/42", "node-b").await.unwrap();
            second.is_some()
        })
        .await
    );
    let second = second.unwrap();
    let took = stopped.elapsed();
    eprintln!("a 2 s lease moved {took:?} after its last renewal");
    assert!(took >= Duration::from_millis(1500), "moved after {took:?}");
    assert!(second.epoch > renewed.epoch, "a new tenure, a higher epoch");

    let lost = leases.renew(&renewed).await;
    assert!(matches!(lost, Err(ClusterError::LeaseLost { .. })), "{lost:?}");
    assert!(!leases.release(renewed).await.unwrap(), "released nothing: it was lost");
    assert_eq!(leases.list("cart/").await.unwrap(), [("cart/42".to_string(), "node-b".to_string(), second.revision)]);

    assert!(leases.release(second).await.unwrap());
    assert_eq!(leases.holder("cart/42").await.unwrap(), None);
    let third = leases.try_acquire("cart/42", "node-c").await.unwrap().unwrap();
    assert!(leases.renew(&third).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_heartbeat_and_age_out() {
    let servers = shared().await;
    let mut options = options(servers, "members");
    options.member_ttl = Duration::from_secs(2);
    let cluster = Cluster::connect(options).await.unwrap();
    let members = cluster.members();
    let member = |node: &str, incarnation| Member {
        node_id: node.to_string(),
        incarnation,
        advertise: format!("{node}:7000"),
        started_ms: 1,
        version: "test".to_string(),
        details: serde_json::json!({"leases": [node]}),
    };
    members.heartbeat(&member("a", 1)).await.unwrap();
    members.heartbeat(&member("b", 1)).await.unwrap();
    assert!(eventually(Duration::from_secs(5), async || members.list().await.unwrap().len() == 2).await);
    assert_eq!(members.list().await.unwrap()[0], member("a", 1));

    // b leaves; a newer incarnation of a survives a stale leave.
    members.leave(&member("b", 1)).await.unwrap();
    members.heartbeat(&member("a", 2)).await.unwrap();
    members.leave(&member("a", 1)).await.unwrap();
    assert_eq!(members.list().await.unwrap(), [member("a", 2)]);

    // Without heartbeats a ages out.
    assert!(eventually(Duration::from_secs(10), async || members.list().await.unwrap().is_empty()).await);
}
