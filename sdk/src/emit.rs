//! Publishing events (route and event-handler worlds): at once
//! ([`publish`], which returns the sequence and stays published whatever
//! the call does next), or when the call succeeds ([`publish_on_success`]:
//! a route's when it returns its response, an event handler's together
//! with its checkpoint; a call that fails publishes none of them).

use serde::Serialize;

pub use crate::bindings::route::corral::plugin::emit::EmitError;
use crate::bindings::route::corral::plugin::emit::publish as host_publish;
use crate::bindings::route::corral::plugin::emit::publish_on_success as host_publish_on_success;

/// Appends an event now; returns its sequence number once it is durable.
/// It stays published if the call fails afterwards (and a retried event
/// handler publishes it again): prefer [`publish_on_success`].
pub fn publish(topic: &str, payload: &[u8]) -> Result<u64, EmitError> {
    host_publish(topic, payload)
}

/// Appends an event with a JSON payload.
pub fn publish_json<T: Serialize>(topic: &str, value: &T) -> Result<u64, EmitError> {
    let payload = serde_json::to_vec(value).map_err(|e| EmitError::InvalidTopic(format!("payload: {e}")))?;
    host_publish(topic, &payload)
}

/// Queues an event to be published when the call succeeds, and only then.
pub fn publish_on_success(topic: &str, payload: &[u8]) -> Result<(), EmitError> {
    host_publish_on_success(topic, payload)
}

/// Queues an event with a JSON payload to be published when the call succeeds.
pub fn publish_json_on_success<T: Serialize>(topic: &str, value: &T) -> Result<(), EmitError> {
    let payload = serde_json::to_vec(value).map_err(|e| EmitError::InvalidTopic(format!("payload: {e}")))?;
    host_publish_on_success(topic, &payload)
}
