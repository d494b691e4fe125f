//! Events over the real binary: delivery in order, retries, dead letters,
//! crash recovery, fan-out, patterns, schedules, retention, `host emit`.
//! Handler state is read straight from the host's LMDB (LMDB is built for
//! readers in other processes).

use std::path::Path;
use std::time::Duration;

use corral_fixtures::*;
use corral_storage::{Storage, StorageOptions};

use crate::{Host, eventually, get, plugins_dir, post};

pub(crate) fn open(data: &Path) -> Storage {
    Storage::open(&data.join("lmdb"), &StorageOptions::default()).unwrap()
}

/// The handler's `log`: `(sequence, payload)` in the order it handled them.
fn handled(storage: &Storage, plugin: &str) -> Vec<(u64, String)> {
    let log = storage.kv_get(&format!("plugin/{plugin}"), "log").unwrap().unwrap_or_default();
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

pub(crate) async fn publish(host: &Host, topic: &str, payload: &str) -> u64 {
    let reply = post(host.admin, &format!("/events/{topic}"), payload.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["sequence"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn events_emitted_by_a_route_reach_the_handler_in_order() {
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER), ("recorder", EVENT_KV_RECORDER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for i in 1..=5 {
        assert_eq!(post(host.public, "/emit/orders.created", i.to_string().as_bytes()).await.status, 200);
    }
    // Operators (and `host emit`) publish through the admin listener.
    let emitted = post(host.admin, "/events/orders.paid", b"6").await;
    assert_eq!((emitted.status, emitted.json()["sequence"].as_u64()), (200, Some(6)), "{}", emitted.text());

    let storage = host.storage();
    let seen = eventually(Duration::from_secs(20), "six events", || {
        let seen = handled(&storage, "kv-recorder");
        (seen.len() == 6).then_some(seen)
    })
    .await;
    let expected: Vec<(u64, String)> = (1..=6).map(|i| (i, i.to_string())).collect();
    assert_eq!(seen, expected, "in sequence order, each once");
    // The counters and the checkpoint move right after the handler returns.
    let subscription = settled_subscription(&host).await;
    assert_eq!(subscription["plugin"], "kv-recorder");
    assert_eq!(subscription["delivered"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flaky_handler_gets_the_event_three_times_and_nothing_is_lost() {
    let plugins = plugins_dir(&[("recorder", EVENT_KV_RECORDER)], &[("recorder", "[delivery]\nbackoff_ms = 20\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    publish(&host, "orders.created", "before").await;
    let flaky = publish(&host, "orders.created", "flaky").await;
    publish(&host, "orders.created", "after").await;
    let storage = host.storage();
    let seen = eventually(Duration::from_secs(20), "three events", || {
        let seen = handled(&storage, "kv-recorder");
        (seen.len() == 3).then_some(seen)
    })
    .await;
    assert_eq!(seen, [(1, "before".into()), (flaky, "flaky".into()), (3, "after".into())]);
    let subscription = settled_subscription(&host).await;
    assert_eq!((subscription["retried"].as_u64(), subscription["delivered"].as_u64()), (Some(2), Some(3)));
    let events = storage.read_after(0, 100).unwrap();
    let id = &events.iter().find(|e| e.sequence == flaky).unwrap().id;
    assert_eq!(storage.kv_get("plugin/kv-recorder", &format!("attempts.{id}")).unwrap().unwrap(), b"3");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_event_is_dead_lettered_and_later_events_still_arrive() {
    let plugins = plugins_dir(
        &[("recorder", EVENT_KV_RECORDER)],
        &[("recorder", "[delivery]\nmax_attempts = 3\nbackoff_ms = 10\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let poison = publish(&host, "orders.created", "fail").await;
    publish(&host, "orders.created", "later").await;
    let storage = host.storage();
    eventually(Duration::from_secs(20), "the later event", || {
        (handled(&storage, "kv-recorder") == [(2, "later".to_string())]).then_some(())
    })
    .await;
    let dead: Vec<_> =
        storage.read_after(0, 100).unwrap().into_iter().filter(|e| e.topic == "dlq.kv-recorder").collect();
    assert_eq!(dead.len(), 1);
    let letter: serde_json::Value = serde_json::from_slice(&dead[0].payload).unwrap();
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["event"]["sequence"], poison);
    assert_eq!(letter["event"]["payload"], "fail");
    assert!(letter["error"].as_str().unwrap().contains("asked to fail"), "{letter}");
    let subscription = settled_subscription(&host).await;
    assert_eq!(subscription["dead_lettered"], 1);
    assert_eq!(subscription["retried"], 2);
    let metrics = get(host.admin, "/metrics").await.text();
    let dead_lettered = "corral_events_dead_lettered_total{plugin=\"kv-recorder\",topics=\"orders.>\"} 1";
    assert!(metrics.contains(dead_lettered), "{metrics}");
    let lag =
        metrics.lines().find(|l| l.starts_with("corral_subscription_lag{plugin=\"kv-recorder\",topics=\"orders.>\"}"));
    assert!(lag.is_some(), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_subscribers_each_get_every_event_and_patterns_match_exactly() {
    let plugins = plugins_dir(
        &[("one", EVENT_KV_RECORDER), ("many", EVENT_KV_RECORDER)],
        &[("one", "name = \"rec-one\"\ntopics = [\"orders.*\"]\n"), ("many", "name = \"rec-many\"\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for (topic, payload) in [
        ("orders.created", "a"),
        ("orders.eu.created", "b"),
        ("payments.done", "c"),
        ("orders", "d"),
        ("orders.paid", "e"),
    ] {
        publish(&host, topic, payload).await;
    }
    let storage = host.storage();
    let many = eventually(Duration::from_secs(20), "rec-many", || {
        let seen = handled(&storage, "rec-many");
        (seen.len() == 3).then_some(seen)
    })
    .await;
    let one = eventually(Duration::from_secs(20), "rec-one", || {
        let seen = handled(&storage, "rec-one");
        (seen.len() == 2).then_some(seen)
    })
    .await;
    assert_eq!(many, [(1, "a".into()), (2, "b".into()), (5, "e".into())], "orders.> matches one or more segments");
    assert_eq!(one, [(1, "a".into()), (5, "e".into())], "orders.* matches exactly one segment");
    // Both consumed past the unmatched events.
    eventually(Duration::from_secs(10), "zero lag", || {
        let storage = &storage;
        let caught_up = ["handler.rec-one", "handler.rec-many"].iter().all(|c| storage.checkpoint(c).unwrap() == 5);
        caught_up.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_fires_every_second_and_survives_a_restart() {
    let plugins = plugins_dir(
        &[("recorder", EVENT_KV_RECORDER)],
        &[("recorder", "schedules = [{ name = \"tick\", cron = \"* * * * * *\" }]\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    tokio::time::sleep(Duration::from_millis(3500)).await;
    host.stop();
    let stopped_at = now_ms();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restarted_at = now_ms();
    let host = Host::start(plugins.path(), data.path());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let subscriptions = get(host.admin, "/subscriptions").await.json();
    assert_eq!(subscriptions[0]["schedules"][0]["name"], "tick");
    host.stop();

    let storage = open(data.path());
    let ticks: Vec<u64> = storage
        .read_after(0, 1000)
        .unwrap()
        .iter()
        .filter(|e| e.topic == "schedule.kv-recorder.tick")
        .map(|e| serde_json::from_slice::<serde_json::Value>(&e.payload).unwrap()["tick_ms"].as_u64().unwrap())
        .collect();
    assert!(ticks.windows(2).all(|w| w[0] < w[1]), "each tick once, in order: {ticks:?}");
    assert!(ticks.len() >= 5, "about one a second while up: {ticks:?}");
    let missed = ticks.iter().filter(|t| **t > stopped_at && **t < restarted_at).count();
    assert!(missed <= 1, "ticks missed while down are delivered once, not once each: {ticks:?}");
    assert!(ticks.len() <= 9, "nothing like one per missed tick: {ticks:?}");
    let seen = storage.kv_get("plugin/kv-recorder", "seen.schedule.kv-recorder.tick").unwrap().unwrap();
    assert_eq!(String::from_utf8(seen).unwrap().parse::<usize>().unwrap(), ticks.len(), "the handler got each tick");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_trims_but_never_past_the_slowest_subscriber() {
    let plugins = plugins_dir(
        &[("recorder", EVENT_KV_RECORDER)],
        &[("recorder", "[delivery]\nmax_attempts = 100000\nbackoff_ms = 50\nmax_backoff_ms = 50\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| c.retention.max_events = Some(5));
    for payload in ["a", "b", "fail", "c", "d", "e", "f", "g", "h", "i"] {
        publish(&host, "orders.created", payload).await;
    }
    let storage = host.storage();
    // The handler is stuck retrying event 3: only 1 and 2 may go.
    eventually(Duration::from_secs(20), "trimming up to the checkpoint", || {
        (storage.first().unwrap() == Some(3)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(storage.first().unwrap(), Some(3), "the unacknowledged event is kept");
    assert_eq!(storage.head().unwrap(), 10);
    drop(host);
}

/// The first subscription once it has caught up (lag 0).
pub(crate) async fn settled_subscription(host: &Host) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let subscription = get(host.admin, "/subscriptions").await.json()[0].clone();
        if subscription["lag"] == 0 {
            return subscription;
        }
        assert!(std::time::Instant::now() < deadline, "the subscription never caught up: {subscription}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_lists_dead_letters_delivers_one_again_and_skips_another_across_a_restart() {
    let plugins = plugins_dir(
        &[("recorder", EVENT_KV_RECORDER)],
        &[("recorder", "[delivery]\nmax_attempts = 2\nbackoff_ms = 10\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    // `fail` always fails; `queue+flaky` queues an event and fails its
    // first two deliveries, so it is dead-lettered after two attempts and
    // succeeds on a third — which publishes what it queued.
    publish(&host, "orders.created", "fail").await;
    let flaky = publish(&host, "orders.created", "queue+flaky").await;
    let admin = host.admin;
    let letters = eventually(Duration::from_secs(20), "two dead letters", || {
        let listed = crate::cluster::futures_block(get(admin, "/subscriptions/kv-recorder/dead-letters")).json();
        let letters = listed["dead_letters"].as_array().cloned().unwrap_or_default();
        (letters.len() == 2).then_some(letters)
    })
    .await;
    assert!(letters.iter().all(|l| l["state"] == "pending"), "{letters:?}");
    let sequence_of = |payload: &str| {
        letters.iter().find(|l| l["letter"]["event"]["payload"] == payload).unwrap()["sequence"].as_u64().unwrap()
    };
    let (poison, flaky_letter) = (sequence_of("fail"), sequence_of("queue+flaky"));

    let again = crate::post(admin, &format!("/subscriptions/kv-recorder/dead-letters/{poison}/retry"), b"").await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(again.json()["message"].as_str().unwrap().contains("asked to fail"), "{}", again.text());
    let delivered =
        crate::post(admin, &format!("/subscriptions/kv-recorder/dead-letters/{flaky_letter}/retry"), b"").await;
    assert_eq!(delivered.status, 200, "{}", delivered.text());
    assert!(
        handled(&host.storage(), "kv-recorder").contains(&(flaky, "queue+flaky".to_string())),
        "the retried event was handled"
    );
    let queued: Vec<_> =
        host.storage().read_after(0, 1000).unwrap().into_iter().filter(|e| e.topic == "audit.queued").collect();
    assert_eq!(queued.len(), 1, "the retry published what the handler queued, and the failed attempts nothing");
    let skipped = crate::post(admin, &format!("/subscriptions/kv-recorder/dead-letters/{poison}/skip"), b"").await;
    assert_eq!(skipped.status, 200, "{}", skipped.text());
    let missing = crate::post(admin, "/subscriptions/kv-recorder/dead-letters/9999/skip", b"").await;
    assert_eq!(missing.status, 404, "{}", missing.text());

    // What the operator did is kept across a restart.
    tokio::task::spawn_blocking(move || host.stop()).await.unwrap();
    let host = Host::start(plugins.path(), data.path());
    let listed = get(host.admin, "/subscriptions/kv-recorder/dead-letters").await.json();
    let states: Vec<(u64, String)> = listed["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["sequence"].as_u64().unwrap(), l["state"].as_str().unwrap().to_string()))
        .collect();
    let mut expected = vec![(poison, "skipped".to_string()), (flaky_letter, "retried".to_string())];
    expected.sort();
    assert_eq!(states, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_subscribers_checkpoint_pins_retention_until_it_is_forgotten() {
    let plugins = plugins_dir(&[("recorder", EVENT_KV_RECORDER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| {
        c.retention.max_events = Some(2);
        c.forget_after = Duration::from_secs(4);
    });
    for payload in ["one", "two"] {
        publish(&host, "orders.created", payload).await;
    }
    let storage = host.storage();
    eventually(Duration::from_secs(20), "both handled", || (handled(&storage, "kv-recorder").len() == 2).then_some(()))
        .await;
    settled_subscription(&host).await;

    // The plugin goes: its checkpoint (2) still holds retention back.
    std::fs::remove_file(plugins.path().join("recorder.wasm")).unwrap();
    let admin = host.admin;
    let orphan = |listed: &serde_json::Value| {
        listed.as_array().unwrap().iter().find(|s| s["consumer"] == "handler.kv-recorder").cloned()
    };
    let pinned = eventually(Duration::from_secs(20), "the orphaned subscriber listed", || {
        let listed = crate::cluster::futures_block(get(admin, "/subscriptions")).json();
        orphan(&listed).filter(|o| o["orphaned"] == true)
    })
    .await;
    assert_eq!((pinned["checkpoint"].as_u64(), pinned["pins_retention"].as_bool()), (Some(2), Some(true)), "{pinned}");
    for payload in ["3", "4", "5", "6", "7"] {
        publish(&host, "orders.created", payload).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(storage.first().unwrap(), Some(3), "retention keeps what the removed subscriber has not handled");

    // Past --forget-after it no longer pins: retention keeps the last 2.
    eventually(Duration::from_secs(30), "the orphan forgotten and the log trimmed", || {
        let listed = crate::cluster::futures_block(get(admin, "/subscriptions")).json();
        let forgotten = orphan(&listed).is_some_and(|o| o["forgotten"] == true && o["pins_retention"] == false);
        (forgotten && storage.first().unwrap() == Some(6)).then_some(())
    })
    .await;
}
