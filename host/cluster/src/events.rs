//! The event stream: events are published to `<name>.ev.<topic>`, with the
//! event id as `Nats-Msg-Id` (JetStream drops a repeat within the duplicate
//! window and answers with the first copy's sequence) and the other fields
//! as `Corral-*` headers, escaped so that any string survives.
//!
//! Publishes are pipelined: every event is sent, then every ack awaited,
//! which does for the cluster what group commit does for LMDB.

use async_nats::HeaderMap;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

use crate::names::{self, escape_header};
use crate::{Cluster, ClusterError};

/// Header holding the event's tenant.
pub const HEADER_TENANT: &str = "Corral-Tenant";
/// Header holding the event's correlation id.
pub const HEADER_CORRELATION_ID: &str = "Corral-Correlation-Id";
/// Header holding the W3C traceparent, when the event has one.
pub const HEADER_TRACEPARENT: &str = "Corral-Traceparent";
/// Header holding the event's source (the plugin or host part that emitted it).
pub const HEADER_SOURCE: &str = "Corral-Source";
/// Header holding the event's timestamp, milliseconds since the Unix epoch.
pub const HEADER_TIMESTAMP_MS: &str = "Corral-Timestamp-Ms";
/// JetStream's deduplication header, holding the event id.
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";

/// An event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// Unique id: a repeat within the duplicate window is stored once.
    pub id: String,
    /// Dot-separated tokens of `[A-Za-z0-9_-]`, e.g. `orders.created`.
    pub topic: String,
    /// The tenant the event belongs to.
    pub tenant: String,
    /// Correlates events of one request or flow.
    pub correlation_id: String,
    /// W3C trace context, if the emitter had one.
    pub traceparent: Option<String>,
    /// Who emitted it.
    pub source: String,
    /// When it was emitted, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The event body.
    pub payload: Bytes,
}

/// An event as stored, with its stream sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the stream (shared with journals: not contiguous per topic).
    pub sequence: u64,
    /// The event id.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// The tenant.
    pub tenant: String,
    /// The correlation id.
    pub correlation_id: String,
    /// The traceparent, if any.
    pub traceparent: Option<String>,
    /// The source.
    pub source: String,
    /// The emitter's timestamp (or the server's, for a message without one).
    pub timestamp_ms: u64,
    /// The event body.
    pub payload: Bytes,
}

/// Why a publish failed: no stream answered (worth sending again), or else.
enum Unanswered {
    NoStream(ClusterError),
    Failed(ClusterError),
}

/// The cluster's event stream.
#[derive(Clone)]
pub struct Events {
    pub(crate) cluster: Cluster,
}

impl Events {
    pub(crate) fn new(cluster: Cluster) -> Events {
        Events { cluster }
    }

    /// Publishes events and returns their sequences once JetStream has
    /// stored them (a duplicate id returns the first copy's sequence).
    ///
    /// Every event is sent before any ack is awaited. On an error some
    /// events may be stored and others not: publish the same events again
    /// (same ids) and the stored ones are deduplicated.
    ///
    /// A publish that finds no stream listening (a moment after the stream
    /// was made, or while its leader is elected) is sent again, for up to
    /// about two seconds: the ids make the repeat safe.
    pub async fn publish(&self, events: Vec<OutEvent>) -> Result<Vec<u64>, ClusterError> {
        for event in &events {
            names::validate_topic(&event.topic, false)?;
        }
        let mut pause = Duration::from_millis(50);
        loop {
            match self.publish_once(events.clone()).await {
                Err(Unanswered::NoStream(_)) if pause < Duration::from_secs(1) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(Unanswered::NoStream(error) | Unanswered::Failed(error)) => return Err(error),
                Ok(sequences) => return Ok(sequences),
            }
        }
    }

    async fn publish_once(&self, events: Vec<OutEvent>) -> Result<Vec<u64>, Unanswered> {
        let context = self.cluster.context();
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let subject = self.cluster.subject(&format!("ev.{}", event.topic));
            let mut headers = headers(&event);
            headers.insert(HEADER_MSG_ID, escape_header(&event.id));
            let message = PublishMessage::build().headers(headers).payload(event.payload);
            let ack = context.send_publish(subject.clone(), message).await.map_err(|e| {
                Unanswered::Failed(ClusterError::from_nats(format!("publishing event {:?} to {subject}", event.id), &e))
            })?;
            acks.push((event.id, subject, ack));
        }
        let mut sequences = Vec::with_capacity(acks.len());
        for (id, subject, ack) in acks {
            let ack = ack.await.map_err(|e| {
                let error = ClusterError::from_nats(format!("storing event {id:?} on {subject}"), &e);
                match e.kind() {
                    PublishErrorKind::StreamNotFound => Unanswered::NoStream(error),
                    _ => Unanswered::Failed(error),
                }
            })?;
            sequences.push(ack.sequence);
        }
        Ok(sequences)
    }

    /// The last sequence stored in the stream (events or journals; 0 when
    /// empty). Asked of the stream leader.
    pub async fn head(&self) -> Result<u64, ClusterError> {
        Ok(self.state().await?.last_sequence)
    }

    /// The first sequence still stored (after retention purges).
    pub async fn first(&self) -> Result<u64, ClusterError> {
        Ok(self.state().await?.first_sequence)
    }

    async fn state(&self) -> Result<async_nats::jetstream::stream::State, ClusterError> {
        let stream = self.cluster.stream();
        let info = stream.get_info().await.map_err(|e| {
            ClusterError::from_nats(format!("reading the state of stream {}", self.cluster.options().stream_name()), &e)
        })?;
        Ok(info.state)
    }

    /// Retention: removes events (never journal or idempotency records)
    /// stored below `sequence`; returns how many were removed.
    pub async fn purge_below(&self, sequence: u64) -> Result<u64, ClusterError> {
        let filter = self.cluster.subject("ev.>");
        let response = self.cluster.stream().purge().filter(filter.clone()).sequence(sequence).await.map_err(|e| {
            ClusterError::from_nats(
                format!("purging {filter} below {sequence} in {}", self.cluster.options().stream_name()),
                &e,
            )
        })?;
        Ok(response.purged)
    }
}

/// The headers carrying an event's fields but its id (the message id,
/// set where the message is sent).
pub(crate) fn headers(event: &OutEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_TENANT, escape_header(&event.tenant));
    headers.insert(HEADER_CORRELATION_ID, escape_header(&event.correlation_id));
    if let Some(traceparent) = &event.traceparent {
        headers.insert(HEADER_TRACEPARENT, escape_header(traceparent));
    }
    headers.insert(HEADER_SOURCE, escape_header(&event.source));
    headers.insert(HEADER_TIMESTAMP_MS, event.timestamp_ms.to_string());
    headers
}

/// Reads an event back from a stored message on `<name>.ev.<topic>`.
/// Missing headers (a message not published by Corral) read as empty, so
/// one foreign message cannot stop a reader.
pub(crate) fn decode(
    events_prefix: &str,
    subject: &str,
    sequence: u64,
    headers: Option<&HeaderMap>,
    server_time_ms: u64,
    payload: Bytes,
) -> StoredEvent {
    let field = |name: &str| -> Option<String> {
        let value = headers?.get(name)?.as_str();
        Some(names::unescape_header(value).unwrap_or_else(|| value.to_string()))
    };
    StoredEvent {
        sequence,
        id: field(HEADER_MSG_ID).unwrap_or_default(),
        topic: subject.strip_prefix(events_prefix).unwrap_or(subject).to_string(),
        tenant: field(HEADER_TENANT).unwrap_or_default(),
        correlation_id: field(HEADER_CORRELATION_ID).unwrap_or_default(),
        traceparent: field(HEADER_TRACEPARENT),
        source: field(HEADER_SOURCE).unwrap_or_default(),
        timestamp_ms: field(HEADER_TIMESTAMP_MS).and_then(|ms| ms.parse().ok()).unwrap_or(server_time_ms),
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_headers() {
        let event = OutEvent {
            id: "ev 1".to_string(),
            topic: "orders.created".to_string(),
            tenant: " acme\r\n".to_string(),
            correlation_id: "c=1".to_string(),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string()),
            source: "shop/api".to_string(),
            timestamp_ms: 1_700_000_000_123,
            payload: Bytes::from_static(b"{}"),
        };
        let mut headers = headers(&event);
        headers.insert(HEADER_MSG_ID, escape_header(&event.id));
        let stored = decode("c.ev.", "c.ev.orders.created", 7, Some(&headers), 0, event.payload.clone());
        assert_eq!(stored.sequence, 7);
        assert_eq!(stored.id, event.id);
        assert_eq!(stored.topic, event.topic);
        assert_eq!(stored.tenant, event.tenant);
        assert_eq!(stored.correlation_id, event.correlation_id);
        assert_eq!(stored.traceparent, event.traceparent);
        assert_eq!(stored.source, event.source);
        assert_eq!(stored.timestamp_ms, event.timestamp_ms);
    }

    #[test]
    fn foreign_messages_decode_with_defaults() {
        let stored = decode("c.ev.", "c.ev.x", 3, None, 42, Bytes::new());
        assert_eq!((stored.id.as_str(), stored.topic.as_str(), stored.timestamp_ms), ("", "x", 42));
        assert_eq!(stored.traceparent, None);
    }
}
