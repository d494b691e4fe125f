//! The event stream seam: what `emit`, delivery, projections, schedules and
//! retention use, with NATS JetStream's semantics so the embedded LMDB log
//! (`events::embedded`) and the cluster's stream (`events::jetstream`) are
//! interchangeable behind [`EventStream`]:
//!
//! | here | JetStream |
//! |---|---|
//! | `publish` → sequence | publish with `Nats-Msg-Id`, `PubAck.seq` |
//! | `head` | stream info `last_seq` |
//! | [`EventReader`] after a position, with filters | an ordered pull consumer with `filter_subjects` |
//! | [`Checkpoint`] of a durable consumer, `ack` | a kv entry updated with its expected revision (fenced) |
//! | `ack_with` (a handler's queued events) | publishes with ids from the consumer and event, then the fenced ack |
//! | `dead_letter` | a publish to `dlq.PLUGIN`, then the fenced ack |
//! | `fire_tick` | a publish with the tick as its message id (one per cluster) |
//! | `trim` | purging the events below a sequence |
//! | `*` / `>` in filters | the same subject wildcards |

use std::time::Duration;

use corral_runtime::NewEvent;
use corral_runtime::types::Event;
use corral_storage::log::{EventRecord, NewRecord};

/// Why the stream could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The log cannot be reached or failed; nothing was done, try again.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// The consumer's checkpoint was moved by someone else (another node
    /// took the consumer over): stop consuming, the other one goes on.
    #[error("the checkpoint of {consumer} moved elsewhere: {reason}")]
    Fenced {
        /// The consumer.
        consumer: String,
        /// What the backend said.
        reason: String,
    },
}

/// A durable consumer's position: every event at or below `sequence` is
/// done. Moving it is fenced: it only moves from where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The consumer's name (`handler.PLUGIN`).
    pub consumer: String,
    /// The last sequence done (0: nothing yet).
    pub sequence: u64,
    /// What the backend fences writes with (a kv revision in a cluster).
    pub(crate) fence: Option<u64>,
}

/// Events in stream order from a position, waiting for new ones.
#[async_trait::async_trait]
pub trait EventReader: Send {
    /// Up to `max` matching events after the last one returned, in order,
    /// waiting at most `wait` for the first (none: nothing came).
    async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<EventRecord>, StreamError>;
    /// The highest sequence at or below which every matching event has
    /// been returned (events in between matched no filter): what a
    /// checkpoint may move to once the returned events are done.
    async fn scanned_to(&mut self) -> u64;
}

/// A durable, ordered, sequence-numbered stream with durable consumers.
#[async_trait::async_trait]
pub trait EventStream: Send + Sync + 'static {
    /// Appends events; returns their sequences once they are durable.
    async fn publish(&self, records: Vec<NewRecord>) -> Result<Vec<u64>, StreamError>;
    /// The last sequence assigned (0 for an empty stream).
    async fn head(&self) -> Result<u64, StreamError>;
    /// A reader of the events matching `filters` after sequence `after`.
    fn reader(&self, filters: &[String], after: u64) -> Result<Box<dyn EventReader>, StreamError>;
    /// The consumer's checkpoint now (a new consumer's is 0).
    async fn checkpoint(&self, consumer: &str) -> Result<Checkpoint, StreamError>;
    /// Moves the checkpoint to `sequence` (never backwards); fails
    /// [`StreamError::Fenced`] if it moved since it was read.
    async fn ack(&self, checkpoint: &mut Checkpoint, sequence: u64) -> Result<(), StreamError>;
    /// Moves the checkpoint to `sequence` and publishes `records` (what the
    /// handler of that event queued until it succeeded): in one commit in
    /// the embedded log; in a cluster, published first with ids made from
    /// the consumer, the event and their position, so publishing them
    /// again (after a crash before the acknowledgement) stores them once.
    async fn ack_with(
        &self,
        checkpoint: &mut Checkpoint,
        sequence: u64,
        records: Vec<NewRecord>,
    ) -> Result<(), StreamError>;
    /// Gives up on event `sequence`: publishes `record` (its dead letter)
    /// and moves the checkpoint past it.
    async fn dead_letter(
        &self,
        checkpoint: &mut Checkpoint,
        sequence: u64,
        record: NewRecord,
    ) -> Result<u64, StreamError>;
    /// The last tick delivered for a plugin's schedule (Unix ms).
    async fn last_tick(&self, plugin: &str, schedule: &str) -> Result<Option<u64>, StreamError>;
    /// Publishes a schedule's tick event and records the tick; a tick
    /// fired twice (by two nodes) is published once.
    async fn fire_tick(
        &self,
        plugin: &str,
        schedule: &str,
        tick_ms: u64,
        record: NewRecord,
    ) -> Result<u64, StreamError>;
    /// The sequence of the first event at or after `timestamp_ms`, if the
    /// backend can tell (retention by age).
    async fn first_at_or_after(&self, timestamp_ms: u64) -> Result<Option<u64>, StreamError>;
    /// Deletes the events at or below `up_to`; returns how many.
    async fn trim(&self, up_to: u64) -> Result<u64, StreamError>;
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

/// The log's record of an event a plugin emitted: a child of the current
/// span (the `emit` import's, the call's for events queued until it
/// succeeded, or the delivery's) when traces are exported.
pub fn record_of(event: NewEvent) -> NewRecord {
    NewRecord {
        topic: event.topic,
        tenant: event.tenant,
        correlation_id: event.correlation_id,
        traceparent: crate::traces::current_or(event.traceparent),
        source: event.source,
        payload: event.payload,
    }
}
