//! Atomic batches: a journal entry and its outbox events stored together
//! at contiguous sequences, a stale writer rejected whole, many batches in
//! flight at once.

use std::time::Duration;

use bytes::Bytes;
use corral_cluster::BatchError;
use corral_cluster::events::OutEvent;
use corral_cluster::journal::BatchMessage;

use crate::connect;

fn outbox(id: &str) -> OutEvent {
    OutEvent {
        id: id.to_string(),
        topic: "carts.changed".to_string(),
        tenant: "t1".to_string(),
        correlation_id: "c".to_string(),
        traceparent: None,
        source: "carts/shop".to_string(),
        timestamp_ms: 1,
        payload: Bytes::from(id.to_string()),
    }
}

/// A mailbox round: the journal entry expecting the subject's last
/// sequence, then two outbox events.
fn round(journal: &str, expected: u64, entry: &str, events: [&str; 2]) -> Vec<BatchMessage> {
    vec![
        BatchMessage::new(journal, entry.to_string())
            .expect_last_subject_sequence(expected)
            .header("Corral-Epoch", "7"),
        BatchMessage::event(&outbox(events[0])),
        BatchMessage::event(&outbox(events[1])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_is_stored_whole_and_a_stale_one_not_at_all() {
    let cluster = connect("batch-round").await;
    let journal = cluster.journal();
    let events = cluster.events();
    let subject = "cj.shop.t1.cart=201";
    events.publish(vec![outbox("before")]).await.unwrap();

    let ack = journal.atomic_publish(round(subject, 0, "v1", ["e1", "e2"])).await.unwrap();
    assert_eq!((ack.first_sequence, ack.last_sequence, ack.count), (2, 4, 3));
    let last = journal.last(subject).await.unwrap().unwrap();
    assert_eq!((last.sequence, last.payload.as_ref()), (2, b"v1".as_ref()));
    assert!(last.headers.contains(&("Corral-Epoch".to_string(), "7".to_string())));
    let stored = events.reader(&[], 1).unwrap().next(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(stored.iter().map(|e| (e.sequence, e.id.as_str())).collect::<Vec<_>>(), [(3, "e1"), (4, "e2")]);

    // A writer that still believes the journal is empty: rejected whole.
    let stale = journal.atomic_publish(round(subject, 0, "stale", ["e3", "e4"])).await;
    assert!(matches!(stale, Err(BatchError::WrongLastSequence(_))), "{stale:?}");
    assert_eq!(events.head().await.unwrap(), 4, "nothing of the stale batch is stored");
    assert_eq!(journal.last_sequence(subject).await.unwrap(), 2);

    let next = journal.atomic_publish(round(subject, 2, "v2", ["e3", "e4"])).await.unwrap();
    assert_eq!((next.first_sequence, next.last_sequence), (5, 7));
    assert_eq!(journal.last_sequence(subject).await.unwrap(), 5);
    assert_eq!(journal.last_sequence("cj.shop.t1.other").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_ids_and_bad_batches_are_refused() {
    let cluster = connect("batch-dup").await;
    let journal = cluster.journal();
    let twice = vec![BatchMessage::event(&outbox("same")), BatchMessage::event(&outbox("same"))];
    let refused = journal.atomic_publish(twice).await;
    assert!(matches!(refused, Err(BatchError::Duplicate(_))), "{refused:?}");
    assert_eq!(cluster.events().head().await.unwrap(), 0);

    journal.atomic_publish(vec![BatchMessage::event(&outbox("once"))]).await.unwrap();
    let again =
        journal.atomic_publish(vec![BatchMessage::new("ci.p.t.c.k", "x"), BatchMessage::event(&outbox("once"))]).await;
    eprintln!("a batch repeating a stored id: {again:?}");
    assert!(matches!(again, Err(BatchError::Duplicate(_))), "{again:?}");
    assert_eq!(cluster.events().head().await.unwrap(), 1);

    assert!(matches!(journal.atomic_publish(vec![]).await, Err(BatchError::Invalid(_))));
    let outside = journal.atomic_publish(vec![BatchMessage::new("elsewhere.x", "x")]).await;
    assert!(matches!(outside, Err(BatchError::Invalid(_))), "{outside:?}");
    let header = journal.atomic_publish(vec![BatchMessage::new("cj.a", "x").header("Bad", "a\r\nb")]).await;
    assert!(matches!(header, Err(BatchError::Invalid(_))), "{header:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_batches_in_flight_at_once() {
    let cluster = connect("batch-many").await;
    let rounds = (0..60).map(|i| {
        let journal = cluster.journal();
        tokio::spawn(async move {
            let subject = format!("cj.shop.t1.c{i}");
            let events = [format!("m{i}a"), format!("m{i}b")];
            journal.atomic_publish(round(&subject, 0, "v1", [&events[0], &events[1]])).await
        })
    });
    let mut sequences = Vec::new();
    for round in rounds.collect::<Vec<_>>() {
        let ack = round.await.unwrap().unwrap();
        assert_eq!(ack.last_sequence - ack.first_sequence, 2);
        sequences.extend(ack.first_sequence..=ack.last_sequence);
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=180).collect::<Vec<u64>>(), "60 rounds of 3, none interleaved or lost");
}
