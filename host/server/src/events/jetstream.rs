//! The cluster's stream as an [`EventStream`]: events in JetStream through
//! `corral-cluster` (published with their id as `Nats-Msg-Id`, so a
//! repeated publish is stored once), subscribers' checkpoints and schedule
//! ticks in the fenced checkpoints bucket.
//!
//! Differences from the embedded log, each a property of the cluster: a
//! handler's queued events and its checkpoint are two writes (their ids
//! come from the consumer and the event, so handling the event again after
//! a crash between them stores them once within the duplicate window); a
//! dead letter and its checkpoint are two writes (the dead letter carries a
//! fresh id, so a retry after a crash between them dead-letters the event
//! again rather than losing it); a tick's event and its record likewise
//! (the tick's id makes the event once per cluster within the duplicate
//! window); and retention by age is not offered (`host run` refuses the
//! flag with `--cluster`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use corral_cluster::events::{OutEvent, StoredEvent};
use corral_cluster::{Cluster, ClusterError};
use corral_storage::log::{EventRecord, NewRecord};

use crate::events::stream::{Checkpoint, EventReader, EventStream, StreamError};

/// The cluster's events and checkpoints.
pub struct ClusterStream {
    cluster: Cluster,
}

impl ClusterStream {
    /// The stream of `cluster`.
    pub fn new(cluster: Cluster) -> ClusterStream {
        ClusterStream { cluster }
    }

    /// Publishes events stored elsewhere first (a cart's outbox in the
    /// node's LMDB), keeping their ids: a repeat is stored once.
    pub async fn relay(&self, records: &[EventRecord]) -> Result<Vec<u64>, StreamError> {
        reachable(&self.cluster)?;
        let events = records
            .iter()
            .map(|record| OutEvent {
                id: record.id.clone(),
                topic: record.topic.clone(),
                tenant: record.tenant.clone(),
                correlation_id: record.correlation_id.clone(),
                traceparent: record.traceparent.clone(),
                source: record.source.clone(),
                timestamp_ms: record.timestamp_ms,
                payload: Bytes::from(record.payload.clone()),
            })
            .collect();
        self.cluster.events().publish(events).await.map_err(unavailable)
    }

    async fn publish_with(
        &self,
        records: Vec<NewRecord>,
        id: impl Fn(usize) -> String,
    ) -> Result<Vec<u64>, StreamError> {
        reachable(&self.cluster)?;
        let now = now_ms();
        let events = records
            .into_iter()
            .enumerate()
            .map(|(i, record)| OutEvent {
                id: id(i),
                topic: record.topic,
                tenant: record.tenant,
                correlation_id: record.correlation_id,
                traceparent: record.traceparent,
                source: record.source,
                timestamp_ms: now,
                payload: Bytes::from(record.payload),
            })
            .collect();
        self.cluster.events().publish(events).await.map_err(unavailable)
    }
}

/// Fails at once while the node is cut off from NATS, instead of waiting
/// for a request to time out: the caller learns now, and retries.
fn reachable(cluster: &Cluster) -> Result<(), StreamError> {
    match *cluster.connection().borrow() {
        true => Ok(()),
        false => Err(StreamError::Unavailable(format!(
            "node {} is cut off from NATS; retry when it is back (or on another node)",
            cluster.options().node_id
        ))),
    }
}

fn unavailable(error: ClusterError) -> StreamError {
    StreamError::Unavailable(error.to_string())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A new event id: 128 random bits, hex, like the embedded log's.
fn event_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The checkpoints bucket's key of a schedule's last tick.
fn tick_key(plugin: &str, schedule: &str) -> String {
    format!("tick.{plugin}.{schedule}")
}

#[async_trait::async_trait]
impl EventStream for ClusterStream {
    async fn publish(&self, records: Vec<NewRecord>) -> Result<Vec<u64>, StreamError> {
        self.publish_with(records, |_| event_id()).await
    }

    async fn head(&self) -> Result<u64, StreamError> {
        self.cluster.events().head().await.map_err(unavailable)
    }

    fn reader(&self, filters: &[String], after: u64) -> Result<Box<dyn EventReader>, StreamError> {
        let reader = self.cluster.events().reader(filters, after).map_err(unavailable)?;
        Ok(Box::new(ClusterReader(reader)))
    }

    async fn checkpoint(&self, consumer: &str) -> Result<Checkpoint, StreamError> {
        let stored = self.cluster.checkpoints().get(consumer).await.map_err(unavailable)?;
        let (sequence, fence) = stored.map_or((0, None), |(value, revision)| (value, Some(revision)));
        Ok(Checkpoint { consumer: consumer.to_string(), sequence, fence })
    }

    async fn ack(&self, checkpoint: &mut Checkpoint, sequence: u64) -> Result<(), StreamError> {
        if sequence <= checkpoint.sequence {
            return Ok(());
        }
        reachable(&self.cluster)?;
        match self.cluster.checkpoints().put(&checkpoint.consumer, sequence, checkpoint.fence).await {
            Ok(revision) => {
                checkpoint.sequence = sequence;
                checkpoint.fence = Some(revision);
                Ok(())
            }
            Err(error @ ClusterError::Fenced { .. }) => {
                Err(StreamError::Fenced { consumer: checkpoint.consumer.clone(), reason: error.to_string() })
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn ack_with(
        &self,
        checkpoint: &mut Checkpoint,
        sequence: u64,
        records: Vec<NewRecord>,
    ) -> Result<(), StreamError> {
        if !records.is_empty() {
            // The same event handled again publishes the same ids: stored
            // once within the stream's duplicate window.
            let consumer = checkpoint.consumer.clone();
            self.publish_with(records, |i| format!("{consumer}-{sequence}-{i}")).await?;
        }
        self.ack(checkpoint, sequence).await
    }

    async fn dead_letter(
        &self,
        checkpoint: &mut Checkpoint,
        sequence: u64,
        record: NewRecord,
    ) -> Result<u64, StreamError> {
        let dead = self.publish(vec![record]).await?;
        self.ack(checkpoint, sequence).await?;
        dead.first().copied().ok_or_else(|| StreamError::Unavailable("no sequence assigned".into()))
    }

    async fn last_tick(&self, plugin: &str, schedule: &str) -> Result<Option<u64>, StreamError> {
        let stored = self.cluster.checkpoints().get(&tick_key(plugin, schedule)).await.map_err(unavailable)?;
        Ok(stored.map(|(tick, _)| tick))
    }

    async fn fire_tick(
        &self,
        plugin: &str,
        schedule: &str,
        tick_ms: u64,
        record: NewRecord,
    ) -> Result<u64, StreamError> {
        // Every node that fires this tick publishes the same id: stored once.
        let id = format!("tick-{plugin}-{schedule}-{tick_ms}");
        let sequence = self.publish_with(vec![record], |_| id.clone()).await?;
        let key = tick_key(plugin, schedule);
        let checkpoints = self.cluster.checkpoints();
        // The record only moves forward; a race with another node is
        // settled by reading again.
        for _ in 0..8 {
            let stored = checkpoints.get(&key).await.map_err(unavailable)?;
            if stored.is_some_and(|(last, _)| last >= tick_ms) {
                break;
            }
            match checkpoints.put(&key, tick_ms, stored.map(|(_, revision)| revision)).await {
                Ok(_) => break,
                Err(ClusterError::Fenced { .. }) => continue,
                Err(error) => return Err(unavailable(error)),
            }
        }
        sequence.first().copied().ok_or_else(|| StreamError::Unavailable("no sequence assigned".into()))
    }

    async fn first_at_or_after(&self, _timestamp_ms: u64) -> Result<Option<u64>, StreamError> {
        Err(StreamError::Unavailable("retention by age is not offered in cluster mode; use a number of events".into()))
    }

    async fn trim(&self, up_to: u64) -> Result<u64, StreamError> {
        self.cluster.events().purge_below(up_to.saturating_add(1)).await.map_err(unavailable)
    }
}

/// A cluster reader as an [`EventReader`].
struct ClusterReader(corral_cluster::reader::EventReader);

fn record(event: StoredEvent) -> EventRecord {
    EventRecord {
        sequence: event.sequence,
        id: event.id,
        timestamp_ms: event.timestamp_ms,
        topic: event.topic,
        tenant: event.tenant,
        correlation_id: event.correlation_id,
        traceparent: event.traceparent,
        source: event.source,
        payload: event.payload.to_vec(),
    }
}

#[async_trait::async_trait]
impl EventReader for ClusterReader {
    async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<EventRecord>, StreamError> {
        let events = self.0.next(max, wait).await.map_err(unavailable)?;
        Ok(events.into_iter().map(record).collect())
    }

    async fn scanned_to(&mut self) -> u64 {
        self.0.scanned_to().await
    }
}
