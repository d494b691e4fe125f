//! What a failed call leaves behind: events queued with
//! `emit.publish-on-success` are published only when the call succeeds —
//! before a route's response is sent, together with an event handler's
//! checkpoint — and never by a call that traps or fails; events published
//! with `emit.publish` stay published, as documented.

use std::time::Duration;

use corral_fixtures::*;
use corral_storage::Storage;

use crate::events::{publish, settled_subscription};
use crate::{Host, plugins_dir, post};

/// The payloads of the events on `topic` in the host's log, in order.
fn on_topic(storage: &Storage, topic: &str) -> Vec<String> {
    let events = storage.read_after(0, 1000).unwrap();
    events.into_iter().filter(|e| e.topic == topic).map(|e| String::from_utf8(e.payload).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_publishes_what_it_queued_before_answering_and_nothing_when_it_fails() {
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let storage = host.storage();

    let queued = post(host.public, "/queue/orders.queued", b"kept").await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    // Durable before the response went out: no waiting here.
    assert_eq!(on_topic(&storage, "orders.queued"), ["kept"]);

    let failed = post(host.public, "/queue/orders.queued?then=panic", b"dropped").await;
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert_eq!(failed.json()["error"], "trap", "{}", failed.text());
    // `publish` appends at once: what the failed call published stays.
    let published = post(host.public, "/emit/orders.published?then=panic", b"stays").await;
    assert_eq!(published.status, 500, "{}", published.text());

    let again = post(host.public, "/queue/orders.queued", b"after").await;
    assert_eq!(again.status, 202, "{}", again.text());
    assert_eq!(on_topic(&storage, "orders.queued"), ["kept", "after"], "the failed call's event is not in the log");
    assert_eq!(on_topic(&storage, "orders.published"), ["stays"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_handler_publishes_what_it_queued_once_and_a_dead_lettered_one_never() {
    let sidecar = "[delivery]\nmax_attempts = 3\nbackoff_ms = 20\n";
    let plugins = plugins_dir(&[("recorder", EVENT_KV_RECORDER)], &[("recorder", sidecar)]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    // Fails twice, then succeeds: three attempts that each queue the event.
    publish(&host, "orders.created", "queue+flaky").await;
    // Fails every time: dead-lettered after three attempts.
    publish(&host, "orders.created", "queue+fail").await;
    // Publishes at once, then fails twice: each attempt's event stays.
    publish(&host, "orders.created", "echo+flaky").await;
    let storage = host.storage();
    let subscription = settled_subscription(&host).await;
    assert_eq!(subscription["delivered"], 2, "{subscription}");
    assert_eq!(subscription["dead_lettered"], 1, "{subscription}");
    assert_eq!(on_topic(&storage, "audit.queued"), ["queue+flaky"], "queued events of failed attempts are dropped");
    assert_eq!(on_topic(&storage, "audit.echo"), ["echo+flaky"; 3], "`publish` keeps each attempt's event");
    // The queued event was committed with the checkpoint: it comes after
    // the event it answers, and the checkpoint has passed that event.
    let events = storage.read_after(0, 1000).unwrap();
    let cause = events.iter().find(|e| e.payload == b"queue+flaky" && e.topic == "orders.created").unwrap();
    let effect = events.iter().find(|e| e.topic == "audit.queued").unwrap();
    assert!(effect.sequence > cause.sequence);
    assert_eq!(effect.correlation_id, cause.correlation_id, "it continues the event's correlation");
    assert!(storage.checkpoint("handler.kv-recorder").unwrap() >= cause.sequence);
    let metrics = crate::get(host.admin, "/metrics").await.text();
    assert!(metrics.contains("corral_events_emitted_total{source=\"kv-recorder\"} 4"), "{metrics}");
    // Nothing more arrives later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(on_topic(&storage, "audit.queued").len(), 1);
}
