//! Events: publish, read back in order through filters, deduplication,
//! retention, and a reader that keeps its place while servers die.

use std::time::{Duration, Instant};

use bytes::Bytes;
use corral_cluster::events::{OutEvent, StoredEvent};
use corral_cluster::reader::EventReader;
use corral_cluster::{Cluster, ClusterError};
use corral_test_support::nats::NatsCluster;

use crate::{connect, options};

fn event(id: &str, topic: &str) -> OutEvent {
    OutEvent {
        id: id.to_string(),
        topic: topic.to_string(),
        tenant: "acme".to_string(),
        correlation_id: format!("corr-{id}"),
        traceparent: id
            .len()
            .is_multiple_of(2)
            .then(|| "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string()),
        source: "test/events".to_string(),
        timestamp_ms: 1_700_000_000_000,
        payload: Bytes::from(format!("{{\"id\":\"{id}\"}}")),
    }
}

/// Everything the reader has after its position, read until `wait` brings
/// nothing more.
async fn drain(reader: &mut EventReader) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    loop {
        let batch = reader.next(100, Duration::from_millis(500)).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

fn ids(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|event| event.id.as_str()).collect()
}

fn patterns(list: &[&str]) -> Vec<String> {
    list.iter().map(|pattern| pattern.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_read_back_in_order_through_filters() {
    let cluster = connect("events-order").await;
    let events = cluster.events();
    let sent = vec![
        event("o1", "orders.created"),
        event("o2", "orders.paid"),
        event("u1", "users.signup"),
        event("o3", "orders.created"),
        event("o4", "orders.eu.shipped"),
    ];
    let sequences = events.publish(sent.clone()).await.unwrap();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    assert_eq!((events.first().await.unwrap(), events.head().await.unwrap()), (1, 5));

    let all = drain(&mut events.reader(&[], 0).unwrap()).await;
    assert_eq!(all.len(), 5);
    for ((stored, out), sequence) in all.iter().zip(&sent).zip(&sequences) {
        assert_eq!(stored.sequence, *sequence);
        assert_eq!(
            (&stored.id, &stored.topic, &stored.tenant, &stored.correlation_id),
            (&out.id, &out.topic, &out.tenant, &out.correlation_id)
        );
        assert_eq!(
            (&stored.traceparent, &stored.source, stored.timestamp_ms),
            (&out.traceparent, &out.source, out.timestamp_ms)
        );
        assert_eq!(stored.payload, out.payload);
    }

    let read = async |filters: &[&str], after: u64| {
        ids(&drain(&mut events.reader(&patterns(filters), after).unwrap()).await).join(",")
    };
    assert_eq!(read(&["orders.*"], 0).await, "o1,o2,o3");
    assert_eq!(read(&["orders.>"], 0).await, "o1,o2,o3,o4");
    assert_eq!(read(&["users.signup", "orders.created"], 0).await, "o1,u1,o3");
    assert_eq!(read(&["orders.created", "orders.*"], 0).await, "o1,o2,o3", "covered filters");
    assert_eq!(read(&["*.created", "orders.*"], 0).await, "o1,o2,o3", "overlapping filters");
    assert_eq!(read(&["orders.>"], 2).await, "o3,o4");
    assert_eq!(read(&["nothing.here"], 0).await, "");

    let mut paged = events.reader(&[], 0).unwrap();
    assert_eq!(ids(&paged.next(2, Duration::from_secs(2)).await.unwrap()), ["o1", "o2"]);
    assert_eq!(paged.position(), 2);
    assert_eq!(ids(&paged.next(10, Duration::from_secs(2)).await.unwrap()), ["u1", "o3", "o4"]);

    assert!(matches!(events.publish(vec![event("bad", "orders.*")]).await, Err(ClusterError::Invalid { .. })));
    assert!(matches!(events.reader(&patterns(&["a..b"]), 0), Err(ClusterError::Invalid { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_id_is_stored_once() {
    let cluster = connect("events-dedup").await;
    let events = cluster.events();
    let first = events.publish(vec![event("d1", "a.b"), event("d2", "a.b")]).await.unwrap();
    let mut again = event("d1", "a.b");
    again.payload = Bytes::from_static(b"different body, same id");
    let repeated = events.publish(vec![again, event("d3", "a.b")]).await.unwrap();
    assert_eq!(repeated, [first[0], first[1] + 1], "the repeat answers with the first copy's sequence");
    let all = drain(&mut events.reader(&[], 0).unwrap()).await;
    assert_eq!(ids(&all), ["d1", "d2", "d3"]);
    assert_eq!(all[0].payload, event("d1", "a.b").payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reader_wakes_for_a_new_event_and_retention_purges_events_only() {
    let cluster = connect("events-wait").await;
    let events = cluster.events();
    let mut reader = events.reader(&[], 0).unwrap();
    let started = Instant::now();
    assert!(reader.next(10, Duration::from_millis(300)).await.unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(300));

    let publisher = {
        let events = events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            events.publish(vec![event("w1", "t.x")]).await.unwrap()
        })
    };
    let started = Instant::now();
    let woke = reader.next(10, Duration::from_secs(10)).await.unwrap();
    assert_eq!(ids(&woke), ["w1"]);
    assert!(started.elapsed() < Duration::from_secs(5), "woke after {:?}", started.elapsed());
    publisher.await.unwrap();

    events.publish((2..=4).map(|i| event(&format!("w{i}"), "t.x")).collect()).await.unwrap();
    let journal = cluster.journal();
    let entry = corral_cluster::journal::BatchMessage::new("cj.p.t.c1", "entry");
    journal.atomic_publish(vec![entry]).await.unwrap();
    assert_eq!(events.head().await.unwrap(), 5);
    assert_eq!(events.purge_below(5).await.unwrap(), 4, "the four events below 5");
    assert_eq!(events.first().await.unwrap(), 5);
    assert_eq!(journal.last_sequence("cj.p.t.c1").await.unwrap(), 5, "journals are never purged");
    assert!(drain(&mut events.reader(&[], 0).unwrap()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_replaces_a_consumer_deleted_under_it() {
    let cluster = connect("events-deleted").await;
    let events = cluster.events();
    events.publish((0..10).map(|i| event(&format!("x{i}"), "del.x")).collect()).await.unwrap();
    let mut reader = events.reader(&[], 0).unwrap();
    assert_eq!(reader.next(4, Duration::from_secs(5)).await.unwrap().len(), 4);

    // An operator (or a server restart) removes every consumer of the stream.
    let client = async_nats::connect(crate::shared().await.urls()).await.unwrap();
    let stream = async_nats::jetstream::new(client).get_stream("CORRAL_events-deleted").await.unwrap();
    let names: Vec<String> = futures_util::TryStreamExt::try_collect(stream.consumer_names()).await.unwrap();
    assert_eq!(names.len(), 1, "one consumer per reader");
    stream.delete_consumer(&names[0]).await.unwrap();
    events.publish((10..20).map(|i| event(&format!("x{i}"), "del.x")).collect()).await.unwrap();

    let mut rest = Vec::new();
    read_until(&mut reader, &mut rest, 16).await;
    let expected: Vec<String> = (4..20).map(|i| format!("x{i}")).collect();
    assert_eq!(ids(&rest), expected.iter().map(String::as_str).collect::<Vec<_>>());
    // Once for the deletion; a heartbeat missed on a loaded machine may
    // replace it once more, which must not cost an event either.
    assert!((1..=2).contains(&reader.replacements()), "replaced {} times", reader.replacements());
}

/// Publishes until JetStream takes it (an election can refuse for seconds);
/// repeats are harmless: ids deduplicate.
async fn publish_until_stored(cluster: &Cluster, batch: Vec<OutEvent>) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match cluster.events().publish(batch.clone()).await {
            Ok(sequences) => return sequences,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                eprintln!("publish refused, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("publish failed: {e}"),
        }
    }
}

/// Reads until `count` events arrived, tolerating an unavailable cluster.
async fn read_until(reader: &mut EventReader, into: &mut Vec<StoredEvent>, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while into.len() < count {
        assert!(Instant::now() < deadline, "only {} of {count} events after 60 s", into.len());
        match reader.next(25, Duration::from_secs(1)).await {
            Ok(batch) => into.extend(batch),
            Err(e) => eprintln!("reader: {e}"),
        }
    }
}

/// The stream's leader, as `n<i>`.
async fn stream_leader(servers: &NatsCluster, stream: &str) -> usize {
    let client = async_nats::connect(servers.urls()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let info = jetstream.get_stream(stream).await.unwrap().get_info().await.unwrap();
    let leader = info.cluster.unwrap().leader.unwrap();
    leader.trim_start_matches('n').parse().unwrap()
}

/// Kills server `victim`, publishes `events` while it is down, reads them
/// all, restarts it; returns the servers back.
async fn kill_publish_restart(
    mut servers: NatsCluster,
    victim: usize,
    cluster: &Cluster,
    reader: &mut EventReader,
    read: &mut Vec<StoredEvent>,
    events: Vec<OutEvent>,
) -> NatsCluster {
    servers = tokio::task::spawn_blocking(move || {
        servers.kill(victim);
        servers
    })
    .await
    .unwrap();
    let killed = Instant::now();
    let count = read.len() + events.len();
    publish_until_stored(cluster, events).await;
    eprintln!("published {:?} after killing n{victim}", killed.elapsed());
    read_until(reader, read, count).await;
    eprintln!(
        "read everything {:?} after killing n{victim}; {} consumer replacements",
        killed.elapsed(),
        reader.replacements()
    );
    tokio::task::spawn_blocking(move || {
        servers.restart(victim);
        servers
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_neither_skips_nor_repeats_across_killed_and_restarted_servers() {
    let servers = tokio::task::spawn_blocking(|| NatsCluster::start(3)).await.unwrap();
    let mut options = options(&servers, "events-kill");
    // The client starts on n2 only (it learns the others from the cluster).
    options.urls = vec![servers.urls()[2].clone()];
    let stream = options.stream_name();
    let cluster = Cluster::connect(options).await.unwrap();
    let batch = |from: usize, to: usize| (from..to).map(|i| event(&format!("k{i:03}"), "kill.test")).collect();

    publish_until_stored(&cluster, batch(0, 50)).await;
    let mut reader = cluster.events().reader(&[], 0).unwrap();
    let mut read = Vec::new();
    read_until(&mut reader, &mut read, 20).await;

    // The stream's leader: an election, and maybe the reader's consumer.
    let leader = stream_leader(&servers, &stream).await;
    eprintln!("killing n{leader}, the leader of {stream}");
    let servers = kill_publish_restart(servers, leader, &cluster, &mut reader, &mut read, batch(50, 100)).await;
    // The server the client is connected to: a reconnect elsewhere.
    let connected: usize = cluster.server_name().trim_start_matches('n').parse().unwrap();
    eprintln!("killing n{connected}, the client's server");
    let servers = kill_publish_restart(servers, connected, &cluster, &mut reader, &mut read, batch(100, 150)).await;
    publish_until_stored(&cluster, batch(150, 170)).await;
    read_until(&mut reader, &mut read, 170).await;

    let expected: Vec<String> = (0..170).map(|i| format!("k{i:03}")).collect();
    assert_eq!(ids(&read), expected.iter().map(String::as_str).collect::<Vec<_>>(), "every event once, in order");
    assert!(read.windows(2).all(|pair| pair[0].sequence < pair[1].sequence));
    assert!(reader.next(10, Duration::from_millis(500)).await.unwrap().is_empty(), "nothing more");
    drop(servers);
}
