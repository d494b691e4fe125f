//! Atomic batch publish (ADR-50, NATS 2.12+): messages stored all or
//! nothing at contiguous sequences, each with its own expectations, which
//! is how a cart's mailbox round commits its journal entry, idempotency
//! markers and outbox events in one step. Also reading a subject's tail
//! from the stream leader, to resolve a batch whose outcome is unknown.
//!
//! The protocol, as nats-server 2.15 speaks it: every message carries
//! `Nats-Batch-Id` and `Nats-Batch-Sequence` (1, 2, …); the last also
//! `Nats-Batch-Commit: 1`. Expectations are checked at the commit, under the
//! stream's lock. Only the commit's reply is a publish ack (with the batch
//! id and count); earlier messages get an empty reply, or an error reply if
//! the server gives up on the batch. Those empty replies are not JetStream
//! acks (async-nats fails to parse them as such), so each message here
//! gets its own reply subject under one per-batch inbox and only the
//! commit's reply is read as an ack.

use async_nats::HeaderMap;
use async_nats::header::{NATS_BATCH_COMMIT, NATS_BATCH_ID, NATS_BATCH_SEQUENCE, NATS_EXPECTED_LAST_SUBJECT_SEQUENCE};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::response::Response;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, RawMessageErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::events::{HEADER_MSG_ID, OutEvent, headers as event_headers};
use crate::names::escape_header;
use crate::{BatchError, Cluster, ClusterError};

/// Most messages in one atomic batch (the server's limit).
pub const MAX_BATCH: usize = 1000;

/// One message of an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMessage {
    /// The subject inside the cluster's stream, without the cluster name:
    /// `ev.<topic>`, `cj.<…>` or `ci.<…>` (escape free-form tokens with
    /// [`names::escape_token`](crate::names::escape_token)).
    pub subject: String,
    /// Extra headers (printable ASCII names without `:`, values without
    /// line breaks).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub payload: Bytes,
    /// Deduplication id (`Nats-Msg-Id`): a batch repeating an id stored
    /// within the duplicate window is rejected whole.
    pub msg_id: Option<String>,
    /// The sequence the subject's last message must have for the batch to
    /// commit (0: the subject must be empty).
    pub expected_last_subject_sequence: Option<u64>,
}

impl BatchMessage {
    /// A message with a subject and a body.
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> BatchMessage {
        BatchMessage {
            subject: subject.into(),
            headers: Vec::new(),
            payload: payload.into(),
            msg_id: None,
            expected_last_subject_sequence: None,
        }
    }

    /// An event, stored as [`Events::publish`](crate::events::Events::publish) stores it.
    pub fn event(event: &OutEvent) -> BatchMessage {
        let headers = event_headers(event);
        let headers = headers
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |value| (name.to_string(), value.to_string())))
            .collect();
        BatchMessage {
            subject: format!("ev.{}", event.topic),
            headers,
            payload: event.payload.clone(),
            msg_id: Some(event.id.clone()),
            expected_last_subject_sequence: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> BatchMessage {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the deduplication id.
    pub fn msg_id(mut self, id: impl Into<String>) -> BatchMessage {
        self.msg_id = Some(id.into());
        self
    }

    /// Sets the sequence the subject's last message must have.
    pub fn expect_last_subject_sequence(mut self, sequence: u64) -> BatchMessage {
        self.expected_last_subject_sequence = Some(sequence);
        self
    }
}

/// A committed batch: its messages are at `first_sequence..=last_sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAck {
    /// The first message's sequence.
    pub first_sequence: u64,
    /// The commit (last) message's sequence.
    pub last_sequence: u64,
    /// How many messages were stored.
    pub count: u64,
}

/// A message read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The subject inside the cluster's stream (without the cluster name).
    pub subject: String,
    /// Its sequence.
    pub sequence: u64,
    /// Its headers, as stored.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub payload: Bytes,
}

/// Atomic batches and subject tails; see [`Cluster::journal`].
#[derive(Clone)]
pub struct Journal {
    cluster: Cluster,
}

impl Journal {
    pub(crate) fn new(cluster: Cluster) -> Journal {
        Journal { cluster }
    }

    /// Stores `messages` all or nothing, at contiguous sequences in order.
    /// Every expectation is checked at commit; one failing rejects the
    /// whole batch ([`BatchError::WrongLastSequence`]). On
    /// [`BatchError::Timeout`] the outcome is unknown: read the tail.
    pub async fn atomic_publish(&self, messages: Vec<BatchMessage>) -> Result<BatchAck, BatchError> {
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Err(BatchError::Invalid(format!(
                "a batch holds 1 to {MAX_BATCH} messages, not {}",
                messages.len()
            )));
        }
        let count = messages.len();
        let batch_id = nuid::next().to_string();
        let mut prepared = Vec::with_capacity(count);
        for (i, message) in messages.into_iter().enumerate() {
            prepared.push(self.prepare(message, &batch_id, i + 1, i + 1 == count)?);
        }
        let client = self.cluster.client();
        let inbox = client.new_inbox();
        let mut replies = client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| BatchError::Unavailable(format!("cannot subscribe to the batch's replies: {e}")))?;
        let commit_subject = prepared.last().map(|(subject, ..)| subject.clone()).unwrap_or_default();
        for (i, (subject, headers, payload)) in prepared.into_iter().enumerate() {
            let sent =
                client.publish_with_reply_and_headers(subject.clone(), format!("{inbox}.{}", i + 1), headers, payload);
            if let Err(e) = sent.await {
                // The commit was not sent: the server abandons the batch.
                return Err(BatchError::Unavailable(format!("cannot send message {} to {subject}: {e}", i + 1)));
            }
        }
        let timeout = self.cluster.options().request_timeout;
        let commit_reply = format!("{inbox}.{count}");
        let mut early: Option<BatchError> = None;
        let answer = tokio::time::timeout(timeout, async {
            while let Some(reply) = replies.next().await {
                if reply.subject.as_str() == commit_reply {
                    return Some(reply);
                }
                if early.is_none()
                    && !reply.payload.is_empty()
                    && let Ok(Response::Err { error }) = serde_json::from_slice::<Response<()>>(&reply.payload)
                {
                    early = Some(BatchError::from_api(&error));
                }
            }
            None
        })
        .await;
        let reply = match answer {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                return Err(early.unwrap_or_else(|| BatchError::Unavailable("the reply subscription ended".into())));
            }
            Err(_) => return Err(early.unwrap_or(BatchError::Timeout(timeout))),
        };
        if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return Err(BatchError::Unavailable(format!("no stream answers on {commit_subject}")));
        }
        match serde_json::from_slice::<Response<PublishAck>>(&reply.payload) {
            Ok(Response::Ok(ack)) if ack.batch_id.as_deref().is_some_and(|id| id != batch_id) => {
                Err(BatchError::Other(format!(
                    "the commit reply names batch {:?}, not {batch_id:?}",
                    ack.batch_id.unwrap_or_default()
                )))
            }
            Ok(Response::Ok(ack)) => {
                let stored = ack.batch_size.unwrap_or(count as u64);
                Ok(BatchAck {
                    first_sequence: (ack.sequence + 1).saturating_sub(stored),
                    last_sequence: ack.sequence,
                    count: stored,
                })
            }
            Ok(Response::Err { error }) => {
                let failure = BatchError::from_api(&error);
                // An abandoned batch whose start was refused: the start's
                // reason (e.g. too many in flight) is the useful one.
                Err(match (failure, early) {
                    (BatchError::Unavailable(_), Some(early)) => early,
                    (failure, _) => failure,
                })
            }
            Err(e) => Err(BatchError::Other(format!(
                "unreadable commit reply {:?}: {e}",
                String::from_utf8_lossy(&reply.payload)
            ))),
        }
    }

    /// Checks a message and gives its full subject, headers and body.
    fn prepare(
        &self,
        message: BatchMessage,
        batch_id: &str,
        sequence: usize,
        commit: bool,
    ) -> Result<(String, HeaderMap, Bytes), BatchError> {
        check_subject(&message.subject).map_err(BatchError::Invalid)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &message.headers {
            let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !name_ok || value.contains(['\r', '\n']) || name.starts_with("Nats-Batch-") {
                return Err(BatchError::Invalid(format!(
                    "header {name:?}: {value:?} of a message to {}",
                    message.subject
                )));
            }
            headers.append(name.as_str(), value.as_str());
        }
        if let Some(id) = &message.msg_id {
            headers.insert(HEADER_MSG_ID, escape_header(id));
        }
        if let Some(sequence) = message.expected_last_subject_sequence {
            headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, async_nats::HeaderValue::from(sequence));
        }
        headers.insert(NATS_BATCH_ID, batch_id);
        headers.insert(NATS_BATCH_SEQUENCE, async_nats::HeaderValue::from(sequence));
        if commit {
            headers.insert(NATS_BATCH_COMMIT, "1");
        }
        Ok((self.cluster.subject(&message.subject), headers, message.payload))
    }

    /// The last message stored on `subject` (inside the stream, without the
    /// cluster name), read from the stream leader: current as of the call.
    pub async fn last(&self, subject: &str) -> Result<Option<StoredMessage>, ClusterError> {
        check_subject(subject).map_err(|reason| ClusterError::invalid(format!("subject {subject:?}"), reason))?;
        let full = self.cluster.subject(subject);
        match self.cluster.stream().get_last_raw_message_by_subject(&full).await {
            Ok(message) => Ok(Some(stored(subject, message.sequence, &message.headers, message.payload))),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(ClusterError::from_nats(format!("reading the last message on {full}"), &e)),
        }
    }

    /// The sequence of the last message on `subject` (0 if none), from the
    /// leader: what the next append to it must expect.
    pub async fn last_sequence(&self, subject: &str) -> Result<u64, ClusterError> {
        Ok(self.last(subject).await?.map_or(0, |message| message.sequence))
    }

    /// The messages on `subject` from sequence `from` on, in order, read
    /// from the stream leader one by one (a cart's journal after its
    /// snapshot: short). Stops after `max` messages.
    pub async fn read_from(&self, subject: &str, from: u64, max: usize) -> Result<Vec<StoredMessage>, ClusterError> {
        check_subject(subject).map_err(|reason| ClusterError::invalid(format!("subject {subject:?}"), reason))?;
        let full = self.cluster.subject(subject);
        let mut messages = Vec::new();
        let mut next = from.max(1);
        while messages.len() < max {
            let found = self.cluster.stream().raw_message_builder().sequence(next).next_by_subject(full.clone()).send();
            match found.await {
                Ok(message) => {
                    next = message.sequence + 1;
                    messages.push(stored(subject, message.sequence, &message.headers, message.payload));
                }
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(ClusterError::from_nats(format!("reading {full} from sequence {next}"), &e)),
            }
        }
        Ok(messages)
    }
}

fn stored(subject: &str, sequence: u64, headers: &HeaderMap, payload: Bytes) -> StoredMessage {
    let headers = headers
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |value| (name.to_string(), value.to_string())))
        .collect();
    StoredMessage { subject: subject.to_string(), sequence, headers, payload }
}

/// Checks a subject inside the stream: `ev.`, `cj.` or `ci.` then
/// non-empty tokens without whitespace or wildcards.
fn check_subject(subject: &str) -> Result<(), String> {
    let (kind, rest) = subject.split_once('.').unwrap_or((subject, ""));
    if !matches!(kind, "ev" | "cj" | "ci") || rest.is_empty() {
        return Err(format!("subject {subject:?} is outside the stream: it starts with ev., cj. or ci."));
    }
    let bad_token =
        |token: &str| token.is_empty() || token == "*" || token == ">" || token.bytes().any(|b| !b.is_ascii_graphic());
    if rest.split('.').any(bad_token) {
        return Err(format!("subject {subject:?} has an empty token, a wildcard or whitespace"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_subject;

    #[test]
    fn subjects_stay_inside_the_stream() {
        assert!(check_subject("cj.shop.t1.cart=201").is_ok());
        assert!(check_subject("ev.orders.created").is_ok());
        assert!(check_subject("xx.a").is_err());
        assert!(check_subject("cj").is_err());
        assert!(check_subject("cj.a..b").is_err());
        assert!(check_subject("cj.a.*").is_err());
        assert!(check_subject("cj.a b").is_err());
    }
}
