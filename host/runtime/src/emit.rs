//! `corral:plugin/emit`: durable appends to the event log through an
//! [`EventSink`] (embedded LMDB log, or a cluster backend).

use crate::bindings::emit::{EmitError as WitEmitError, Host};
use crate::call::{CallContext, Identity};
use crate::topics::validate_topic;

/// Largest payload a guest may publish, in bytes.
pub const MAX_PAYLOAD_BYTES: u64 = 1024 * 1024;

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
    /// The log is unavailable.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

/// Where emitted events go. `publish` returns only once the event is durable.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Appends one event and returns its sequence number.
    async fn publish(&self, event: NewEvent) -> Result<u64, EmitError>;
}

/// What a call's `emit` import reaches: the sink chosen for the call, and
/// who publishes for which tenant and correlation.
pub(crate) struct EmitHost<'a> {
    pub(crate) sink: &'a dyn EventSink,
    pub(crate) plugin: &'a Identity,
    pub(crate) call: &'a CallContext,
}

crate::bindings::link_view!(emit, EmitHost);

impl Host for EmitHost<'_> {
    #[tracing::instrument(level = "trace", name = "emit.publish", skip_all, fields(topic = %topic))]
    async fn publish(&mut self, topic: String, payload: Vec<u8>) -> Result<u64, WitEmitError> {
        if let Err(reason) = validate_topic(&topic) {
            return Err(WitEmitError::InvalidTopic(reason));
        }
        if payload.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(WitEmitError::TooLarge(MAX_PAYLOAD_BYTES));
        }
        let event = NewEvent {
            topic,
            payload,
            tenant: self.call.tenant.clone(),
            correlation_id: self.call.correlation_id.clone(),
            traceparent: self.call.traceparent.clone(),
            source: self.plugin.name.clone(),
        };
        self.sink.publish(event).await.map_err(|e| match e {
            EmitError::InvalidTopic(reason) => WitEmitError::InvalidTopic(reason),
            EmitError::TooLarge(limit) => WitEmitError::TooLarge(limit),
            EmitError::Unavailable(reason) => WitEmitError::Unavailable(reason),
        })
    }
}
