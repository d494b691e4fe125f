//! Cluster faults that need real processes: three `host run --cluster`
//! nodes on three nats-servers; the node running a subscriber is killed
//! with SIGKILL mid-stream, and another node takes the subscriber over
//! from its checkpoint within the lease TTL: every event handled at least
//! once (repeats only around the takeover), none dead-lettered.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_cluster::{Cluster, ClusterOptions};
use corral_fixtures::{EVENT_KV_RECORDER, ROUTE_EMITTER};
use corral_test_support::http::{get, post};
use corral_test_support::plugins::plugins_dir;

use crate::Host;

/// The recorder's log in the cluster's kv: `(sequence, payload)` per handling.
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

/// The nodes that report holding the subscriber's lease.
async fn holders(admin: std::net::SocketAddr) -> Vec<String> {
    let view = get(admin, "/cluster").await.json();
    let members = view["members"].as_array().cloned().unwrap_or_default();
    members
        .iter()
        .filter(|m| m["details"]["leases"].as_array().is_some_and(|l| l.iter().any(|l| l == "subscriber.kv-recorder")))
        .filter_map(|m| m["node_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_subscribers_node_hands_the_subscriber_to_another_within_the_lease_ttl() {
    let nats = tokio::task::spawn_blocking(crate::nats).await.unwrap();
    let urls = nats.urls().join(",");
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER), ("recorder", EVENT_KV_RECORDER)], &[]);
    let data: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut hosts: BTreeMap<String, Host> = BTreeMap::new();
    for (i, dir) in data.iter().enumerate() {
        let node = format!("node-{i}");
        let flags = ["--cluster", &urls, "--cluster-name", "takeover", "--node-id", &node, "--lease-ttl-s", "3"];
        let host = Host::start(plugins.path(), dir.path(), &flags);
        hosts.insert(node, host);
    }
    let observer = Cluster::connect(ClusterOptions::new(nats.urls(), "takeover", "observer")).await.unwrap();

    // A steady stream of events through the nodes' routes.
    let publics: Vec<_> = hosts.values().map(|h| h.public).collect();
    let mut sent = 0usize;
    let mut publish = async |count: usize, publics: &[std::net::SocketAddr]| {
        for _ in 0..count {
            let public = publics[sent % publics.len()];
            let reply = post(public, "/emit/orders.created", format!("e{sent}").as_bytes()).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            sent += 1;
        }
    };
    publish(20, &publics).await;
    let first_admin = hosts.values().next().unwrap().admin;
    let mut running_on = None;
    for _ in 0..100 {
        running_on = holders(first_admin).await.into_iter().next();
        if running_on.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let running_on = running_on.expect("a node runs the subscriber");

    // Kill that node without a chance to release anything, mid-stream.
    let killed = hosts.remove(&running_on).unwrap();
    let killed_at = std::time::Instant::now();
    killed.kill_9();
    let survivors: Vec<_> = hosts.values().map(|h| h.public).collect();
    publish(20, &survivors).await;

    let log = loop {
        let log = recorded(&observer).await;
        let payloads: std::collections::BTreeSet<&str> = log.iter().map(|(_, p)| p.as_str()).collect();
        if payloads.len() == sent {
            break log;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "only {} of {sent} events handled: {log:?}",
            payloads.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let takeover = killed_at.elapsed();
    // The members' reports catch up within a heartbeat or two (the killed
    // node's entry lingers until the member TTL).
    let admin = hosts.values().next().unwrap().admin;
    let mut new_holder = None;
    for _ in 0..100 {
        new_holder = holders(admin).await.into_iter().find(|h| *h != running_on);
        if new_holder.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(new_holder.is_some(), "another node runs the subscriber");
    // Every event at least once; repeats only of events around the kill.
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (sequence, _) in &log {
        *seen.entry(*sequence).or_default() += 1;
    }
    let repeated: Vec<u64> = seen.iter().filter(|(_, n)| **n > 1).map(|(s, _)| *s).collect();
    assert!(repeated.len() <= 2, "repeats only around the takeover: {repeated:?}");
    assert!(takeover < Duration::from_secs(3 + 1 + 15), "taken over in {takeover:?}");
    let mut dead_letters = observer.events().reader(&["dlq.>".to_string()], 0).unwrap();
    let dead = dead_letters.next(10, Duration::from_millis(500)).await.unwrap();
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
}
