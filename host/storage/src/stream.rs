//! The event stream seam: what the dispatcher, projections and carts use,
//! with NATS JetStream's semantics so a cluster backend maps one to one:
//!
//! | here | JetStream |
//! |---|---|
//! | `publish` → sequence | publish, `PubAck.seq` |
//! | `head` | stream info `last_seq` |
//! | consumer + `ack_floor` | durable consumer, `ack_floor.stream_seq` |
//! | `fetch(filters, after)` | pull consumer fetch with `filter_subjects` |
//! | `ack` | `AckAck` |
//! | `dead_letter` | `AckTerm` + publish to the dead-letter subject |
//! | `wait_beyond` | a pull request waiting for new messages |
//! | `*` / `>` in filters | the same subject wildcards |
//!
//! [`Embedded`] implements it on LMDB, with group commit: concurrent
//! publishes share one transaction (one fsync).

use std::sync::mpsc;

use tokio::sync::{oneshot, watch};

use crate::log::{EventRecord, NewRecord};
use crate::{Storage, StorageError};

/// A batch read by a consumer: the matching events, and how far the log
/// was scanned (events in between did not match the filters).
#[derive(Debug, Default)]
pub struct Fetched {
    /// Matching events in sequence order.
    pub events: Vec<EventRecord>,
    /// The last sequence looked at; safe to acknowledge once `events` are.
    pub scanned_to: u64,
}

/// A durable, ordered, sequence-numbered stream with durable consumers.
#[async_trait::async_trait]
pub trait EventStream: Send + Sync + 'static {
    /// Appends events; returns their sequences once they are durable.
    async fn publish(&self, records: Vec<NewRecord>) -> Result<Vec<u64>, StorageError>;
    /// The last sequence assigned.
    async fn head(&self) -> Result<u64, StorageError>;
    /// The consumer's acknowledged floor (0 if new).
    async fn ack_floor(&self, consumer: &str) -> Result<u64, StorageError>;
    /// Up to `max` events after `after` whose topic matches a filter.
    async fn fetch(&self, filters: &[String], after: u64, max: usize) -> Result<Fetched, StorageError>;
    /// Acknowledges everything up to `sequence` for the consumer.
    async fn ack(&self, consumer: &str, sequence: u64) -> Result<(), StorageError>;
    /// Gives up on `sequence`: publishes `record` (the dead letter) and
    /// acknowledges, atomically.
    async fn dead_letter(&self, consumer: &str, sequence: u64, record: NewRecord) -> Result<u64, StorageError>;
    /// Resolves once the stream's head is beyond `after`.
    async fn wait_beyond(&self, after: u64);
}

/// Whether `topic` matches a subscription `pattern`: `*` matches one
/// segment, a final `>` one or more.
pub fn subject_matches(pattern: &str, topic: &str) -> bool {
    let mut pattern = pattern.split('.');
    let mut topic = topic.split('.');
    loop {
        match (pattern.next(), topic.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(t)) if p == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

struct Append {
    records: Vec<NewRecord>,
    reply: oneshot::Sender<Result<Vec<u64>, StorageError>>,
}

/// The embedded stream: LMDB, one appender thread doing group commit, and
/// a watch channel announcing the head.
pub struct Embedded {
    storage: Storage,
    appender: Option<mpsc::Sender<Append>>,
    head: watch::Sender<u64>,
}

impl Embedded {
    /// Opens the stream over `storage`. With `group_commit`, concurrent
    /// publishes are batched into one transaction by a dedicated thread.
    pub fn new(storage: Storage, group_commit: bool) -> Result<Embedded, StorageError> {
        let (head, _) = watch::channel(storage.head()?);
        let appender = if group_commit {
            let (sender, receiver) = mpsc::channel::<Append>();
            let appending = storage.clone();
            let announce = head.clone();
            std::thread::Builder::new()
                .name("corral-appender".into())
                .spawn(move || append_in_groups(&appending, &receiver, &announce))
                .map_err(|source| StorageError::Directory { path: storage.dir().to_path_buf(), source })?;
            Some(sender)
        } else {
            None
        };
        Ok(Embedded { storage, appender, head })
    }

    /// The storage underneath.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Announces a new head (after a commit made outside `publish`).
    pub fn announce(&self, head: u64) {
        self.head.send_if_modified(|current| {
            let newer = head > *current;
            if newer {
                *current = head;
            }
            newer
        });
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || work(&storage))
            .await
            .unwrap_or_else(|join| Err(StorageError::Corrupt(format!("storage task failed: {join}"))))
    }
}

/// Drains every queued append into one transaction, then answers each.
fn append_in_groups(storage: &Storage, receiver: &mpsc::Receiver<Append>, head: &watch::Sender<u64>) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while let Ok(next) = receiver.try_recv() {
            group.push(next);
            if group.len() >= 1024 {
                break;
            }
        }
        let records: Vec<NewRecord> = group.iter().flat_map(|a| a.records.iter().cloned()).collect();
        match storage.append(&records) {
            Ok(sequences) => {
                if let Some(last) = sequences.last() {
                    head.send_replace(*last);
                }
                let mut sequences = sequences.into_iter();
                for append in group {
                    let mine: Vec<u64> = sequences.by_ref().take(append.records.len()).collect();
                    let _ = append.reply.send(Ok(mine));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for append in group {
                    let _ = append.reply.send(Err(StorageError::Corrupt(format!("append failed: {message}"))));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl EventStream for Embedded {
    async fn publish(&self, records: Vec<NewRecord>) -> Result<Vec<u64>, StorageError> {
        if let Some(appender) = &self.appender {
            let (reply, answer) = oneshot::channel();
            if appender.send(Append { records, reply }).is_ok() {
                return answer.await.unwrap_or_else(|_| Err(StorageError::Corrupt("the appender stopped".into())));
            }
            return Err(StorageError::Corrupt("the appender stopped".into()));
        }
        let sequences = self.blocking(move |s| s.append(&records)).await?;
        if let Some(last) = sequences.last() {
            self.announce(*last);
        }
        Ok(sequences)
    }

    async fn head(&self) -> Result<u64, StorageError> {
        self.storage.head()
    }

    async fn ack_floor(&self, consumer: &str) -> Result<u64, StorageError> {
        self.storage.checkpoint(consumer)
    }

    async fn fetch(&self, filters: &[String], after: u64, max: usize) -> Result<Fetched, StorageError> {
        let mut fetched = Fetched { events: Vec::new(), scanned_to: after };
        // Read in pages so a long run of unmatched events stays cheap.
        while fetched.events.len() < max {
            let page = self.storage.read_after(fetched.scanned_to, 256)?;
            let Some(last) = page.last().map(|e| e.sequence) else { break };
            for event in page {
                let sequence = event.sequence;
                if filters.iter().any(|f| subject_matches(f, &event.topic)) {
                    fetched.events.push(event);
                }
                fetched.scanned_to = sequence;
                if fetched.events.len() == max {
                    return Ok(fetched);
                }
            }
            fetched.scanned_to = last;
        }
        Ok(fetched)
    }

    async fn ack(&self, consumer: &str, sequence: u64) -> Result<(), StorageError> {
        let consumer = consumer.to_string();
        self.blocking(move |s| s.ack(&consumer, sequence, &[])).await.map(drop)
    }

    async fn dead_letter(&self, consumer: &str, sequence: u64, record: NewRecord) -> Result<u64, StorageError> {
        let consumer = consumer.to_string();
        let appended = self.blocking(move |s| s.ack(&consumer, sequence, std::slice::from_ref(&record))).await?;
        let dead = appended.first().copied().ok_or_else(|| StorageError::Corrupt("no sequence assigned".into()))?;
        self.announce(dead);
        Ok(dead)
    }

    async fn wait_beyond(&self, after: u64) {
        let mut head = self.head.subscribe();
        let _ = head.wait_for(|head| *head > after).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StorageOptions;

    #[test]
    fn subjects() {
        assert!(subject_matches("orders.created", "orders.created"));
        assert!(subject_matches("orders.*", "orders.created"));
        assert!(!subject_matches("orders.*", "orders.eu.created"));
        assert!(subject_matches("orders.>", "orders.eu.created"));
        assert!(!subject_matches("orders.>", "orders"));
        assert!(!subject_matches("orders.*", "payments.done"));
        assert!(subject_matches(">", "anything.at.all"));
    }

    use crate::log::test_record as record;

    #[tokio::test(flavor = "multi_thread")]
    async fn group_commit_answers_every_publisher_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let stream = std::sync::Arc::new(Embedded::new(storage, true).unwrap());
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let stream = stream.clone();
                tokio::spawn(async move { stream.publish(vec![record(&format!("t.{i}")), record("t.x")]).await })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            let sequences = task.await.unwrap().unwrap();
            assert_eq!(sequences.len(), 2);
            assert_eq!(sequences[1], sequences[0] + 1, "one publisher's events stay together");
            all.extend(sequences);
        }
        all.sort();
        assert_eq!(all, (1..=100).collect::<Vec<u64>>());
        stream.wait_beyond(99).await;
    }

    #[tokio::test]
    async fn fetch_filters_and_reports_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let stream = Embedded::new(storage, false).unwrap();
        stream.publish(vec![record("a.1"), record("b.1"), record("a.2"), record("b.2")]).await.unwrap();
        let fetched = stream.fetch(&["a.*".into()], 0, 10).await.unwrap();
        assert_eq!(fetched.events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(fetched.scanned_to, 4);
        let fetched = stream.fetch(&["a.*".into()], 0, 1).await.unwrap();
        assert_eq!((fetched.events.len(), fetched.scanned_to), (1, 1));
        stream.dead_letter("c", 3, record("dlq.c")).await.unwrap();
        assert_eq!(stream.ack_floor("c").await.unwrap(), 3);
        assert_eq!(stream.head().await.unwrap(), 5);
    }
}
