//! Batched folds (`batch-projector.fold`) against the reference semantics:
//! each event alone in a fresh instance. Whatever the batch boundaries, the
//! views come out the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use corral_fixtures::*;
use corral_runtime::types::Event;
use corral_runtime::{FoldStep, InvokeErrorKind, PendingViews, Plugin, ViewSource};

use crate::*;

/// An empty store: every view starts absent.
struct Empty;

impl ViewSource for Empty {
    fn get(&self, _tenant: &str, _id: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
}

type Views = BTreeMap<(String, String), Option<Vec<u8>>>;

/// Folds `events` in batches that start at `starts`, each batch in one
/// instance; any event a batch stops at is folded alone.
async fn batched(plugin: &Plugin, events: &Arc<[Event]>, starts: &[usize]) -> Views {
    let views = PendingViews::new(Arc::new(Empty));
    let mut bounds = starts.to_vec();
    bounds.push(events.len());
    for pair in bounds.windows(2) {
        let chunk: Arc<[Event]> = events[pair[0]..pair[1]].iter().cloned().collect();
        let mut next = 0;
        while next < chunk.len() {
            let folded = plugin.fold_batch(&chunk, next, &views).await;
            next += folded.folded;
            if let Some(error) = folded.stopped {
                panic!("event {next} stopped the batch: {error}");
            }
        }
    }
    views.take_changes().into_iter().collect()
}

/// Folds every event alone, in a fresh instance: the reference.
async fn one_by_one(plugin: &Plugin, events: &[Event]) -> Views {
    let views = PendingViews::new(Arc::new(Empty));
    for event in events {
        let step = plugin.fold(event, async |id: &str| views.get(&event.tenant, id)).await.unwrap().value;
        match step {
            FoldStep::Put { id, value } => views.set(&event.tenant, id, Some(value)),
            FoldStep::Delete { id } => views.set(&event.tenant, id, None),
            FoldStep::Skip => {}
        }
    }
    views.take_changes().into_iter().collect()
}

fn ticks(n: u64) -> Arc<[Event]> {
    (1..=n).map(|i| event(&format!("e{i}"), ["ticks.a", "ticks.b", "ticks.c"][(i % 3) as usize], i, b"{}")).collect()
}

#[tokio::test]
pub(crate) async fn projection_batch_clock() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_BATCH_CLOCK).await;
    assert!(plugin.folds_batches());
    let events = ticks(12);
    let reference = one_by_one(&plugin, &events).await;
    walked_event_by_event_from_the_first_read(&plugin, &events, &reference).await;
    for starts in [&[0][..], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], &[0, 5], &[0, 4, 7, 11]] {
        assert_eq!(batched(&plugin, &events, starts).await, reference, "batches starting at {starts:?}");
    }
    // Each event saw its own clock and its own random streams.
    let samples: Vec<serde_json::Value> = reference
        .values()
        .flat_map(|value| serde_json::from_slice::<Vec<serde_json::Value>>(value.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(samples.len(), 12);
    for sample in &samples {
        let sequence: u64 = sample["event"].as_str().unwrap()[1..].parse().unwrap();
        assert_eq!(sample["now_ms"], 1_700_000_000_000 + sequence, "{sample}");
        assert_eq!(sample["elapsed_ns"], 0);
    }
    let seeds: std::collections::BTreeSet<String> = samples.iter().map(|s| s["seed"].to_string()).collect();
    assert_eq!(seeds.len(), 12, "insecure-seed follows the event");
    let random: std::collections::BTreeSet<String> = samples.iter().map(|s| s["random"].to_string()).collect();
    assert_eq!(random.len(), 12, "randomness follows the event");
}

#[tokio::test]
pub(crate) async fn projection_batch_log() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_BATCH_LOG).await;
    let events = ticks(9);
    let reference = one_by_one(&plugin, &events).await;
    assert_eq!(reference.len(), 3);
    // A log line names the event it was written for, as a clock read does.
    walked_event_by_event_from_the_first_read(&plugin, &events, &reference).await;
}

/// Folds `events` in one batch twice, with a fresh `plugin` whose every
/// event reads an input (a clock, randomness, a log line): the first batch
/// shares one segment until the first read, then is folded again event by
/// event; the second goes event by event from the start. Both give
/// `reference`.
async fn walked_event_by_event_from_the_first_read(plugin: &Plugin, events: &Arc<[Event]>, reference: &Views) {
    let views = PendingViews::new(Arc::new(Empty));
    let first = plugin.fold_batch(events, 0, &views).await;
    assert!(first.stopped.is_none(), "{:?}", first.stopped);
    assert_eq!((first.folded, first.segments), (events.len(), 1 + events.len()));
    assert_eq!(&views.take_changes().into_iter().collect::<Views>(), reference);
    let views = PendingViews::new(Arc::new(Empty));
    assert_eq!(plugin.fold_batch(events, 0, &views).await.segments, events.len());
    assert_eq!(&views.take_changes().into_iter().collect::<Views>(), reference);
}

#[tokio::test]
async fn a_batched_count_matches_the_per_event_fold_whatever_the_batches() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_COUNT).await;
    assert!(plugin.folds_batches());
    let events: Arc<[Event]> = (1..=40u64)
        .map(|i| {
            let topic = ["orders.created", "orders.paid", "orders.x.ignored", "orders.shipped"][(i % 4) as usize];
            let payload: &[u8] = if i % 11 == 0 || i == 40 { b"delete" } else { b"{}" };
            let mut event = event(&format!("e{i}"), topic, i, payload);
            event.tenant = ["acme", "globex"][(i % 2) as usize].into();
            event
        })
        .collect();
    let reference = one_by_one(&plugin, &events).await;
    assert!(reference.values().any(Option::is_none), "some views were deleted");
    // It reads no clock, no randomness and logs nothing: one segment.
    let views = PendingViews::new(Arc::new(Empty));
    let folded = plugin.fold_batch(&events, 0, &views).await;
    assert_eq!((folded.folded, folded.segments), (40, 1));
    assert_eq!(views.take_changes().into_iter().collect::<Views>(), reference);
    for starts in [&[0][..], &[0, 13, 14, 30], &[0, 11, 22, 33]] {
        assert_eq!(batched(&plugin, &events, starts).await, reference, "batches starting at {starts:?}");
    }
}

#[tokio::test]
async fn a_batch_stops_at_a_poison_event_with_the_events_before_it_folded() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_COUNT).await;
    let events: Arc<[Event]> = ["{}", "{}", "poison", "{}"]
        .iter()
        .enumerate()
        .map(|(i, payload)| event(&format!("e{i}"), "orders.created", i as u64 + 1, payload.as_bytes()))
        .collect();
    let views = PendingViews::new(Arc::new(Empty));
    let folded = plugin.fold_batch(&events, 0, &views).await;
    assert_eq!(folded.folded, 2);
    let error = folded.stopped.unwrap();
    assert!(matches!(error.kind, InvokeErrorKind::Guest { ref code, .. } if code == "poison"), "{error}");
    assert_eq!(views.get("acme", "orders.created").unwrap().as_deref(), Some(&b"2"[..]), "the prefix stands");

    // The per-event verdict agrees; the batch goes on after the event.
    let alone = plugin.fold(&events[2], async |_id: &str| Ok(None)).await.unwrap_err();
    assert!(matches!(alone.kind, InvokeErrorKind::Guest { ref code, .. } if code == "poison"), "{alone}");
    let rest = plugin.fold_batch(&events, 3, &views).await;
    assert_eq!((rest.folded, rest.stopped.is_none()), (1, true));
    assert_eq!(views.get("acme", "orders.created").unwrap().as_deref(), Some(&b"3"[..]));
    // A failure is no reason to walk later batches in shorter segments.
    let clean: Arc<[Event]> = events[..2].iter().cloned().collect();
    assert_eq!(plugin.fold_batch(&clean, 0, &views).await.segments, 1);
}

#[tokio::test]
async fn a_failure_on_a_view_read_from_the_host_keeps_the_writes_before_it() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_COUNT).await;
    let topics = [("orders.created", "{}"), ("orders.created", "{}"), ("orders.paid", "poison")];
    let events: Arc<[Event]> = topics
        .iter()
        .enumerate()
        .map(|(i, (topic, payload))| event(&format!("e{i}"), topic, i as u64 + 1, payload.as_bytes()))
        .collect();
    let views = PendingViews::new(Arc::new(Empty));
    let folded = plugin.fold_batch(&events, 0, &views).await;
    assert_eq!(folded.folded, 2);
    assert!(folded.stopped.is_some());
    assert_eq!(views.get("acme", "orders.created").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(views.get("acme", "orders.paid").unwrap(), None, "nothing of the failed event");
}

#[tokio::test]
async fn views_kept_past_the_guests_bound_are_flushed_mid_batch_and_read_back() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_COUNT).await;
    // 4400 views of 250 bytes of key each (near the longest view id a
    // projection may name) pass the SDK's 1 MiB of kept writes once; the
    // second round reads some back from the guest and the rest from the host.
    let topic = |i: u64| format!("orders.{}{i:04}", "k".repeat(239));
    let events: Arc<[Event]> = (0..8800u64).map(|i| event(&format!("e{i}"), &topic(i % 4400), i + 1, b"{}")).collect();
    let views = PendingViews::new(Arc::new(Empty));
    let folded = plugin.fold_batch(&events, 0, &views).await;
    assert!(folded.stopped.is_none(), "{:?}", folded.stopped);
    assert_eq!(folded.folded, 8800);
    let changes = views.take_changes();
    assert_eq!(changes.len(), 4400);
    assert!(changes.iter().all(|(_, value)| value.as_deref() == Some(&b"2"[..])), "every view counted twice");
}

#[tokio::test]
async fn every_event_of_a_batch_gets_the_whole_fuel_budget() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_COUNT).await;
    let one = event("e1", "orders.created", 1, b"{}");
    let per_event = plugin.fold(&one, async |_id: &str| Ok(None)).await.unwrap().fuel_used;
    // Enough for one event in a fresh instance, far from enough for all.
    let budget = per_event * 3;
    let tight = harness.load_with(PROJECTION_COUNT, limits(|l| l.fuel = budget)).await;
    let events: Arc<[Event]> = (1..=40u64).map(|i| event(&format!("e{i}"), "orders.created", i, b"{}")).collect();
    let views = PendingViews::new(Arc::new(Empty));
    let folded = tight.fold_batch(&events, 0, &views).await;
    assert!(folded.stopped.is_none(), "{:?}", folded.stopped);
    assert_eq!(folded.folded, 40);
    assert!(folded.fuel_used > budget, "the batch as a whole used {} > {budget}", folded.fuel_used);
    // One segment of 40 events ran out of its one budget; folded again,
    // each event had its own.
    assert_eq!(folded.segments, 1 + 40);
    assert_eq!(views.get("acme", "orders.created").unwrap().as_deref(), Some(&b"40"[..]));
    // Later batches start with shorter segments, until one budget is
    // enough for each (a quarter as long after each shortfall).
    let mut segments = Vec::new();
    for _ in 0..3 {
        let again = tight.fold_batch(&events, 0, &views).await;
        assert!(again.stopped.is_none(), "{:?}", again.stopped);
        segments.push(again.segments);
    }
    assert!(segments.windows(2).all(|pair| pair[1] <= pair[0]), "{segments:?}");
    assert!((2..40).contains(&segments[2]), "shared segments that fit: {segments:?}");
    assert_eq!(views.get("acme", "orders.created").unwrap().as_deref(), Some(&b"160"[..]));
}

#[tokio::test]
async fn a_per_event_projection_does_not_fold_batches() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_COUNT_V2).await;
    assert!(!plugin.folds_batches());
    let events = ticks(2);
    let folded = plugin.fold_batch(&events, 0, &PendingViews::new(Arc::new(Empty))).await;
    assert_eq!(folded.folded, 0);
    assert!(folded.stopped.is_some());
}
