//! `corral:plugin/emit`: durable appends to the event log through an
//! [`EventSink`] (embedded LMDB log, or a cluster backend) — at once with
//! `publish`, or when the call succeeds with `publish-on-success` (the
//! call's [`Queued`] events, which a failed call drops).

use crate::bindings::emit::{EmitError as WitEmitError, Host};
use crate::call::{CallContext, Identity};
use crate::topics::validate_topic;

/// Largest payload a guest may publish, in bytes.
pub const MAX_PAYLOAD_BYTES: u64 = 1024 * 1024;

/// Most a call may queue with `publish-on-success`, in bytes: payloads
/// plus [`QUEUED_EVENT_BYTES`] per event (so empty events count too).
pub const MAX_QUEUED_BYTES: u64 = 4 * 1024 * 1024;

/// What each queued event counts beside its payload (its topic, tenant,
/// ids and record overhead, roughly).
pub const QUEUED_EVENT_BYTES: u64 = 256;

/// An event a plugin asked to publish, with the context the host adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Validated topic.
    pub topic: String,
    /// The event body.
    pub payload: Vec<u8>,
    /// Tenant of the causing request or event.
    pub tenant: String,
    /// Correlation id of the causing request or event.
    pub correlation_id: String,
    /// W3C traceparent of the causing call, if any.
    pub traceparent: Option<String>,
    /// The plugin that published it.
    pub source: String,
}

/// Why an append failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The topic is not valid.
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    /// The payload is over the limit (in bytes).
    #[error("payload over the limit of {0} bytes")]
    TooLarge(u64),
    /// The payload does not match the schema declared for its topic (the
    /// message names the schema, the path and the rule). The 0.1.x contract
    /// has no variant of its own for it (adding one would change
    /// `emit-error` under 0.1.0 guests): guests get `invalid-topic` with
    /// this message.
    #[error("payload {0}")]
    InvalidPayload(String),
    /// The log is unavailable.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

/// Where emitted events go. Both methods return only once the events are durable.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Appends one event and returns its sequence number.
    async fn publish(&self, event: NewEvent) -> Result<u64, EmitError>;

    /// Whether `payload` may be published on `topic` (it matches the
    /// topic's declared schema, if it has one): asked when a guest emits,
    /// before the event is published or queued. By default, always.
    fn check(&self, topic: &str, payload: &[u8]) -> Result<(), EmitError> {
        let _ = (topic, payload);
        Ok(())
    }

    /// Appends events in order and returns their sequences: a call's
    /// queued events when it succeeds. A backend that can append them in
    /// one commit should (the embedded log does); this default appends
    /// them one by one.
    async fn publish_all(&self, events: Vec<NewEvent>) -> Result<Vec<u64>, EmitError> {
        let mut sequences = Vec::with_capacity(events.len());
        for event in events {
            sequences.push(self.publish(event).await?);
        }
        Ok(sequences)
    }
}

/// The events a call queued with `publish-on-success`: published by the
/// host when the call succeeds, dropped with its store when it fails.
#[derive(Debug, Default)]
pub struct Queued {
    events: Vec<NewEvent>,
    /// What they count against [`MAX_QUEUED_BYTES`].
    bytes: u64,
}

impl Queued {
    /// Queues `event` unless the call's queue would pass its limit.
    fn push(&mut self, event: NewEvent) -> Result<(), WitEmitError> {
        let bytes = self.bytes + event.payload.len() as u64 + QUEUED_EVENT_BYTES;
        if bytes > MAX_QUEUED_BYTES {
            return Err(WitEmitError::TooLarge(MAX_QUEUED_BYTES));
        }
        self.bytes = bytes;
        self.events.push(event);
        Ok(())
    }

    /// The queued events, in the order the guest queued them.
    pub fn into_events(self) -> Vec<NewEvent> {
        self.events
    }

    /// True if nothing was queued.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// What a call's `emit` import reaches: the sink chosen for the call, the
/// call's queue, and who publishes for which tenant and correlation.
pub(crate) struct EmitHost<'a> {
    pub(crate) sink: &'a dyn EventSink,
    pub(crate) queued: &'a mut Queued,
    pub(crate) plugin: &'a Identity,
    pub(crate) call: &'a CallContext,
}

impl EmitHost<'_> {
    /// The event `topic`/`payload` of this call, if both are valid.
    fn event(&self, topic: String, payload: Vec<u8>) -> Result<NewEvent, WitEmitError> {
        if let Err(reason) = validate_topic(&topic) {
            return Err(WitEmitError::InvalidTopic(reason));
        }
        if payload.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(WitEmitError::TooLarge(MAX_PAYLOAD_BYTES));
        }
        self.sink.check(&topic, &payload).map_err(to_wit)?;
        Ok(NewEvent {
            topic,
            payload,
            tenant: self.call.tenant.clone(),
            correlation_id: self.call.correlation_id.clone(),
            traceparent: self.call.traceparent.clone(),
            source: self.plugin.name.clone(),
        })
    }
}

crate::bindings::link_view!(emit, EmitHost);

impl Host for EmitHost<'_> {
    #[tracing::instrument(level = "trace", name = "emit.publish", skip_all, fields(topic = %topic))]
    async fn publish(&mut self, topic: String, payload: Vec<u8>) -> Result<u64, WitEmitError> {
        let event = self.event(topic, payload)?;
        self.sink.publish(event).await.map_err(to_wit)
    }

    #[tracing::instrument(level = "trace", name = "emit.publish_on_success", skip_all, fields(topic = %topic))]
    async fn publish_on_success(&mut self, topic: String, payload: Vec<u8>) -> Result<(), WitEmitError> {
        let event = self.event(topic, payload)?;
        self.queued.push(event)
    }
}

/// The WIT error of a sink's error.
pub(crate) fn to_wit(error: EmitError) -> WitEmitError {
    match error {
        EmitError::InvalidTopic(reason) => WitEmitError::InvalidTopic(reason),
        EmitError::InvalidPayload(reason) => WitEmitError::InvalidTopic(format!("payload {reason}")),
        EmitError::TooLarge(limit) => WitEmitError::TooLarge(limit),
        EmitError::Unavailable(reason) => WitEmitError::Unavailable(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: usize) -> NewEvent {
        NewEvent {
            topic: "orders.placed".into(),
            payload: vec![b'x'; payload],
            tenant: String::new(),
            correlation_id: "c".into(),
            traceparent: None,
            source: "p".into(),
        }
    }

    #[test]
    fn a_call_queues_up_to_its_limit_and_counts_empty_events_too() {
        let mut queued = Queued::default();
        let per_event = (MAX_QUEUED_BYTES / 4) as usize - QUEUED_EVENT_BYTES as usize;
        for _ in 0..4 {
            queued.push(event(per_event)).unwrap();
        }
        assert_eq!(queued.push(event(0)), Err(WitEmitError::TooLarge(MAX_QUEUED_BYTES)));
        assert_eq!(queued.into_events().len(), 4, "the refused event is not queued");

        let mut empty = Queued::default();
        let fits = (MAX_QUEUED_BYTES / QUEUED_EVENT_BYTES) as usize;
        for _ in 0..fits {
            empty.push(event(0)).unwrap();
        }
        assert!(empty.push(event(0)).is_err(), "a flood of empty events is bounded too");
    }
}
