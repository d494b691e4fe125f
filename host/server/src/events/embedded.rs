//! The embedded log as an [`EventStream`]: LMDB through `corral-storage`,
//! appends group-committed, checkpoints in the same environment (so a dead
//! letter and its checkpoint commit together, as does a tick with its
//! event), readers woken by the announced head.

use std::time::Duration;

use corral_storage::log::{EventRecord, NewRecord};
use corral_storage::stream;
use corral_storage::{Storage, StorageError};
use tokio::sync::watch;

use crate::events::stream::{Checkpoint, EventReader, EventStream, StreamError};

/// How many records one read of the log takes.
const PAGE: usize = 256;

fn unavailable(error: StorageError) -> StreamError {
    StreamError::Unavailable(error.to_string())
}

#[async_trait::async_trait]
impl EventStream for stream::Embedded {
    async fn publish(&self, records: Vec<NewRecord>) -> Result<Vec<u64>, StreamError> {
        stream::Embedded::publish(self, records).await.map_err(unavailable)
    }

    async fn head(&self) -> Result<u64, StreamError> {
        self.storage().head().map_err(unavailable)
    }

    fn reader(&self, filters: &[String], after: u64) -> Result<Box<dyn EventReader>, StreamError> {
        Ok(Box::new(LogReader {
            storage: self.storage().clone(),
            head: self.head_watch(),
            filters: filters.to_vec(),
            scanned: after,
        }))
    }

    async fn checkpoint(&self, consumer: &str) -> Result<Checkpoint, StreamError> {
        let sequence = self.storage().checkpoint(consumer).map_err(unavailable)?;
        Ok(Checkpoint { consumer: consumer.to_string(), sequence, fence: None })
    }

    async fn ack(&self, checkpoint: &mut Checkpoint, sequence: u64) -> Result<(), StreamError> {
        let consumer = checkpoint.consumer.clone();
        self.blocking(move |s| s.ack(&consumer, sequence, &[])).await.map_err(unavailable)?;
        checkpoint.sequence = checkpoint.sequence.max(sequence);
        Ok(())
    }

    async fn ack_with(
        &self,
        checkpoint: &mut Checkpoint,
        sequence: u64,
        records: Vec<NewRecord>,
    ) -> Result<(), StreamError> {
        let consumer = checkpoint.consumer.clone();
        let appended = self.blocking(move |s| s.ack(&consumer, sequence, &records)).await.map_err(unavailable)?;
        checkpoint.sequence = checkpoint.sequence.max(sequence);
        if let Some(last) = appended.last() {
            self.announce(*last);
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        checkpoint: &mut Checkpoint,
        sequence: u64,
        record: NewRecord,
    ) -> Result<u64, StreamError> {
        let consumer = checkpoint.consumer.clone();
        let appended = self
            .blocking(move |s| s.ack(&consumer, sequence, std::slice::from_ref(&record)))
            .await
            .map_err(unavailable)?;
        let dead = appended.first().copied().ok_or_else(|| StreamError::Unavailable("no sequence assigned".into()))?;
        checkpoint.sequence = checkpoint.sequence.max(sequence);
        self.announce(dead);
        Ok(dead)
    }

    async fn last_tick(&self, plugin: &str, schedule: &str) -> Result<Option<u64>, StreamError> {
        self.storage().last_tick(plugin, schedule).map_err(unavailable)
    }

    async fn fire_tick(
        &self,
        plugin: &str,
        schedule: &str,
        tick_ms: u64,
        record: NewRecord,
    ) -> Result<u64, StreamError> {
        let (plugin, schedule) = (plugin.to_string(), schedule.to_string());
        let sequence =
            self.blocking(move |s| s.fire_tick(&plugin, &schedule, tick_ms, &record)).await.map_err(unavailable)?;
        self.announce(sequence);
        Ok(sequence)
    }

    async fn first_at_or_after(&self, timestamp_ms: u64) -> Result<Option<u64>, StreamError> {
        self.blocking(move |s| s.first_at_or_after(timestamp_ms)).await.map_err(unavailable)
    }

    async fn trim(&self, up_to: u64) -> Result<u64, StreamError> {
        let removed = self.blocking(move |s| s.trim(up_to)).await.map_err(unavailable)?;
        Ok(removed as u64)
    }
}

/// Reads the log in pages from a position, waiting on the announced head.
struct LogReader {
    storage: Storage,
    head: watch::Receiver<u64>,
    filters: Vec<String>,
    /// The last sequence looked at.
    scanned: u64,
}

impl LogReader {
    /// Up to `max` matching events after the scanned position, from what is
    /// stored now; pages through unmatched events cheaply.
    fn read(&mut self, max: usize) -> Result<Vec<EventRecord>, StreamError> {
        let mut events = Vec::new();
        while events.len() < max {
            let page = self.storage.read_after(self.scanned, PAGE).map_err(unavailable)?;
            let Some(last) = page.last().map(|e| e.sequence) else { break };
            for event in page {
                self.scanned = event.sequence;
                if self.filters.iter().any(|f| corral_runtime::topics::matches(f, &event.topic)) {
                    events.push(event);
                    if events.len() == max {
                        return Ok(events);
                    }
                }
            }
            self.scanned = last;
        }
        Ok(events)
    }
}

#[async_trait::async_trait]
impl EventReader for LogReader {
    async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<EventRecord>, StreamError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let events = self.read(max.max(1))?;
            if !events.is_empty() {
                return Ok(events);
            }
            let scanned = self.scanned;
            let newer = tokio::time::timeout_at(deadline, self.head.wait_for(|head| *head > scanned)).await;
            if newer.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn scanned_to(&mut self) -> u64 {
        self.scanned
    }
}

#[cfg(test)]
mod tests {
    use corral_storage::StorageOptions;

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
    async fn readers_filter_wait_and_report_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let log = std::sync::Arc::new(stream::Embedded::new(storage, false).unwrap());
        let stream: &dyn EventStream = &*log;
        stream.publish(vec![record("a.1"), record("b.1"), record("a.2"), record("b.2")]).await.unwrap();
        let mut reader = stream.reader(&["a.*".into()], 0).unwrap();
        let events = reader.next(10, Duration::ZERO).await.unwrap();
        assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(reader.scanned_to().await, 4, "b.2 matched nothing but was looked at");
        let mut one = stream.reader(&["a.*".into()], 0).unwrap();
        assert_eq!(one.next(1, Duration::ZERO).await.unwrap().len(), 1);
        assert_eq!(one.scanned_to().await, 1, "stopped at the first match");

        let waiting = tokio::spawn(async move { reader.next(10, Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.publish(vec![record("b.3"), record("a.3")]).await.unwrap();
        let woken = waiting.await.unwrap().unwrap();
        assert_eq!(woken.iter().map(|e| e.sequence).collect::<Vec<_>>(), [6]);

        let mut checkpoint = stream.checkpoint("c").await.unwrap();
        assert_eq!(checkpoint.sequence, 0);
        stream.dead_letter(&mut checkpoint, 3, record("dlq.c")).await.unwrap();
        assert_eq!(stream.checkpoint("c").await.unwrap().sequence, 3);
        assert_eq!(stream.head().await.unwrap(), 7);
    }
}
