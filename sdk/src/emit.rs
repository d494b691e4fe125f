//! Publishing events (route and event-handler worlds).

use serde::Serialize;

pub use crate::bindings::route::corral::plugin::emit::EmitError;
use crate::bindings::route::corral::plugin::emit::publish as host_publish;

/// Appends an event; returns its sequence number once it is durable.
pub fn publish(topic: &str, payload: &[u8]) -> Result<u64, EmitError> {
    host_publish(topic, payload)
}

/// Appends an event with a JSON payload.
pub fn publish_json<T: Serialize>(topic: &str, value: &T) -> Result<u64, EmitError> {
    let payload = serde_json::to_vec(value).map_err(|e| EmitError::InvalidTopic(format!("payload: {e}")))?;
    host_publish(topic, &payload)
}
