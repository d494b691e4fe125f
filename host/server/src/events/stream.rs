//! The event stream seam: what delivery and projections read and what
//! `emit` appends to, with NATS JetStream's semantics so the embedded log
//! and a cluster backend are interchangeable behind [`EventStream`]:
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
//! The embedded implementation is LMDB's log ([`stream::Embedded`]): group
//! committed appends, checkpoints committed with dead letters.

use corral_runtime::types::Event;
use corral_storage::StorageError;
use corral_storage::log::{EventRecord, NewRecord};
use corral_storage::stream;

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

#[async_trait::async_trait]
impl EventStream for stream::Embedded {
    async fn publish(&self, records: Vec<NewRecord>) -> Result<Vec<u64>, StorageError> {
        stream::Embedded::publish(self, records).await
    }

    async fn head(&self) -> Result<u64, StorageError> {
        self.storage().head()
    }

    async fn ack_floor(&self, consumer: &str) -> Result<u64, StorageError> {
        self.storage().checkpoint(consumer)
    }

    async fn fetch(&self, filters: &[String], after: u64, max: usize) -> Result<Fetched, StorageError> {
        let mut fetched = Fetched { events: Vec::new(), scanned_to: after };
        // Read in pages so a long run of unmatched events stays cheap.
        while fetched.events.len() < max {
            let page = self.storage().read_after(fetched.scanned_to, 256)?;
            let Some(last) = page.last().map(|e| e.sequence) else { break };
            for event in page {
                let sequence = event.sequence;
                if filters.iter().any(|f| corral_runtime::topics::matches(f, &event.topic)) {
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
        stream::Embedded::wait_beyond(self, after).await;
    }
}

/// The WIT event for a stored record.
pub fn to_event(record: &EventRecord) -> Event {
    Event {
        id: record.id.clone(),
        topic: record.topic.clone(),
        sequence: record.sequence,
        timestamp_ms: record.timestamp_ms,
        tenant: record.tenant.clone(),
        correlation_id: record.correlation_id.clone(),
        traceparent: record.traceparent.clone(),
        payload: record.payload.clone(),
    }
}

#[cfg(test)]
mod tests {
    use corral_storage::{Storage, StorageOptions};

    use super::*;

    fn record(topic: &str) -> NewRecord {
        NewRecord {
            topic: topic.into(),
            tenant: String::new(),
            correlation_id: String::new(),
            traceparent: None,
            source: "test".into(),
            payload: Vec::new(),
        }
    }

    #[tokio::test]
    async fn fetch_filters_and_reports_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let stream = stream::Embedded::new(storage, false).unwrap();
        let stream: &dyn EventStream = &stream;
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
