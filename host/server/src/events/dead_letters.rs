//! Dead letters as an operator handles them. The events a subscriber gave
//! up on are events themselves, on its `dlq.PLUGIN` topic: durable, kept
//! across restarts (and, in a cluster, shared by the nodes). What an
//! operator did with each — delivered it again, or skipped it — is kept in
//! the node's storage (`system/dead-letters`). Retrying hands the original
//! event to the subscriber's current version once more, now; a failure
//! leaves the dead letter as it was.

use std::time::Duration;

use corral_storage::Storage;
use corral_storage::log::EventRecord;

use crate::events::delivery::Subscription;
use crate::events::stream::{EventStream, StreamError};

/// Where what operators did is kept.
const BUCKET: &str = "system/dead-letters";
/// Most dead letters one listing reads.
pub const MAX_LISTED: usize = 1000;

/// One dead letter: its sequence on `dlq.PLUGIN`, what the subscriber
/// recorded (the event, the error, the attempts) and what an operator did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    /// Its own sequence (on `dlq.PLUGIN`).
    pub sequence: u64,
    /// The dead letter's body: `event`, `error`, `cause`, `attempts`.
    pub letter: serde_json::Value,
    /// `pending`, `retried` or `skipped`.
    pub state: String,
}

/// Why a retry or skip did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Unhandled {
    /// No such dead letter.
    #[error("{0}")]
    NotFound(String),
    /// The subscriber failed the event again (the dead letter stays pending).
    #[error("the handler failed the event again: {0}")]
    Failed(String),
    /// The log or storage could not be read or written.
    #[error("{0}")]
    Unavailable(String),
}

fn key(plugin: &str, sequence: u64) -> String {
    format!("{plugin}/{sequence:020}")
}

fn state(storage: &Storage, plugin: &str, sequence: u64) -> String {
    match storage.kv_get(BUCKET, &key(plugin, sequence)) {
        Ok(Some(state)) => String::from_utf8_lossy(&state).into_owned(),
        _ => "pending".to_string(),
    }
}

/// Up to [`MAX_LISTED`] dead letters of `plugin`, oldest first.
pub async fn list(stream: &dyn EventStream, storage: &Storage, plugin: &str) -> Result<Vec<DeadLetter>, StreamError> {
    let mut reader = stream.reader(&[format!("dlq.{plugin}")], 0)?;
    let mut letters = Vec::new();
    while letters.len() < MAX_LISTED {
        let batch = reader.next(MAX_LISTED - letters.len(), Duration::from_millis(20)).await?;
        if batch.is_empty() {
            break;
        }
        for record in batch {
            let letter = serde_json::from_slice(&record.payload).unwrap_or(serde_json::Value::Null);
            letters.push(DeadLetter {
                sequence: record.sequence,
                letter,
                state: state(storage, plugin, record.sequence),
            });
        }
    }
    Ok(letters)
}

/// The dead letter `sequence` of `plugin`.
async fn find(stream: &dyn EventStream, plugin: &str, sequence: u64) -> Result<EventRecord, Unhandled> {
    let missing = || Unhandled::NotFound(format!("no dead letter {sequence} on dlq.{plugin}"));
    let after = sequence.checked_sub(1).ok_or_else(missing)?;
    let unavailable = |e: StreamError| Unhandled::Unavailable(e.to_string());
    let mut reader = stream.reader(&[format!("dlq.{plugin}")], after).map_err(unavailable)?;
    let batch = reader.next(1, Duration::from_millis(100)).await.map_err(unavailable)?;
    batch.into_iter().find(|record| record.sequence == sequence).ok_or_else(missing)
}

/// The event a dead letter holds, as it was delivered.
fn original(letter: &EventRecord) -> Option<EventRecord> {
    let body: serde_json::Value = serde_json::from_slice(&letter.payload).ok()?;
    let event = &body["event"];
    Some(EventRecord {
        sequence: event["sequence"].as_u64()?,
        id: event["id"].as_str()?.to_string(),
        timestamp_ms: event["timestamp_ms"].as_u64().unwrap_or(0),
        topic: event["topic"].as_str()?.to_string(),
        tenant: event["tenant"].as_str().unwrap_or_default().to_string(),
        correlation_id: event["correlation_id"].as_str().unwrap_or_default().to_string(),
        traceparent: letter.traceparent.clone(),
        source: "corral".into(),
        payload: event["payload"].as_str().unwrap_or_default().as_bytes().to_vec(),
    })
}

/// Delivers dead letter `sequence`'s event to `subscription` again; on
/// success the events its handler queued are published and the letter is
/// marked `retried`.
pub async fn retry(
    subscription: &Subscription,
    stream: &dyn EventStream,
    storage: &Storage,
    sequence: u64,
) -> Result<(), Unhandled> {
    let plugin = subscription.handler.name().to_string();
    let letter = find(stream, &plugin, sequence).await?;
    let event = original(&letter)
        .ok_or_else(|| Unhandled::NotFound(format!("dead letter {sequence} on dlq.{plugin} holds no event")))?;
    let queued = subscription.handler.handle(&event).await.map_err(|error| Unhandled::Failed(error.message))?;
    // What the handler queued goes out now that it succeeded; if the log
    // cannot take it, the letter stays pending and can be retried.
    if !queued.is_empty() {
        stream.publish(queued).await.map_err(|e| Unhandled::Unavailable(e.to_string()))?;
    }
    tracing::info!(
        plugin,
        dead_letter = sequence,
        event = event.sequence,
        "dead letter delivered again by an operator"
    );
    mark(storage, &plugin, sequence, "retried")
}

/// Marks dead letter `sequence` of `plugin` as skipped.
pub async fn skip(stream: &dyn EventStream, storage: &Storage, plugin: &str, sequence: u64) -> Result<(), Unhandled> {
    find(stream, plugin, sequence).await?;
    tracing::warn!(plugin, dead_letter = sequence, "dead letter skipped by an operator");
    mark(storage, plugin, sequence, "skipped")
}

fn mark(storage: &Storage, plugin: &str, sequence: u64, state: &str) -> Result<(), Unhandled> {
    storage.kv_set(BUCKET, &key(plugin, sequence), state.as_bytes()).map_err(|e| Unhandled::Unavailable(e.to_string()))
}
