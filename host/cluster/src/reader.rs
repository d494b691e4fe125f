//! Reading events in order from a position, across server restarts, leader
//! changes and reconnects, without skipping or repeating one.
//!
//! A reader holds one ephemeral pull consumer (no acks, in memory, one
//! replica: cheap for the server) that starts after the reader's position
//! and streams matching events ahead of `next` calls. Every delivered
//! message carries the consumer's own sequence; a gap in it, a missed
//! heartbeat, a deleted consumer or a failed pull means the consumer can no
//! longer be trusted, so the reader drops it and makes a new one starting
//! after the last event it returned. It also never returns a sequence at or
//! below its position. (async-nats' own ordered consumer restarts from the
//! stream's first message if it fails before delivering anything, which a
//! reader starting mid-stream cannot afford.)

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;

use crate::events::{Events, StoredEvent, decode};
use crate::{Cluster, ClusterError, names};

/// Messages the server sends ahead of `next` calls.
const PREFETCH: usize = 256;
/// How long one pull request lasts before the next replaces it.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// The server's idle heartbeat; two missed mean the consumer is gone (a
/// killed server), found within 2 s.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A consumer nobody pulls from (a reader dropped without a runtime) is
/// removed by the server after this.
const INACTIVE: Duration = Duration::from_secs(60);

/// Reads matching events in stream order; see [`Events::reader`](crate::events::Events::reader).
pub struct EventReader {
    cluster: Cluster,
    /// The caller's topic patterns.
    patterns: Vec<String>,
    /// Subjects the consumer filters on; `None` when patterns overlap and
    /// matching happens here instead.
    subjects: Option<Vec<String>>,
    events_prefix: String,
    position: u64,
    open: Option<Open>,
    /// Set when the last consumer failed: wait before the next one.
    failed: bool,
    /// Consumers dropped as untrustworthy so far.
    replaced: u64,
}

/// The consumer being read.
struct Open {
    name: String,
    messages: pull::Stream,
    /// The consumer sequence of the last message seen.
    consumer_sequence: u64,
}

impl EventReader {
    pub(crate) fn new(cluster: Cluster, patterns: Vec<String>, after: u64) -> EventReader {
        let events_prefix = cluster.subject("ev.");
        let subjects = names::consumer_filters(&patterns)
            .map(|kept| kept.iter().map(|pattern| format!("{events_prefix}{pattern}")).collect());
        EventReader {
            cluster,
            patterns,
            subjects,
            events_prefix,
            position: after,
            open: None,
            failed: false,
            replaced: 0,
        }
    }

    /// The sequence of the last event returned (or the starting position).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The highest stream sequence at or below which every matching event
    /// has been returned: the position, or — when the server has nothing
    /// pending for this reader and nothing is on its way to it — the
    /// stream's last sequence, read before asking. So a consumer whose
    /// filters match rarely still moves its checkpoint (and retention)
    /// forward past the events it does not want. Costs two requests: ask
    /// when idle.
    pub async fn scanned_to(&mut self) -> u64 {
        let Some(open) = &self.open else { return self.position };
        let Ok(last) = self.cluster.events().head().await else { return self.position };
        let stream = self.cluster.options().stream_name();
        let consumer = self.cluster.context().get_consumer_from_stream::<pull::Config, _, _>(&open.name, &stream).await;
        let Ok(consumer) = consumer else { return self.position };
        let info = consumer.cached_info();
        let nothing_on_its_way = info.num_pending == 0 && info.delivered.consumer_sequence == open.consumer_sequence;
        if nothing_on_its_way { self.position.max(last) } else { self.position }
    }

    /// How many times the reader replaced its consumer (it failed, or a
    /// server went away): worth a metric, as every time is a gap healed.
    pub fn replacements(&self) -> u64 {
        self.replaced
    }

    /// Up to `max` matching events after the position, in sequence order,
    /// waiting at most `wait` for the first one (an empty answer means none
    /// came), and within `wait` for more that the server reports pending.
    /// Fails only when no consumer could be made before `wait` passed (NATS
    /// unreachable, no JetStream leader).
    pub async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredEvent>, ClusterError> {
        let deadline = Instant::now() + wait;
        let mut events = Vec::new();
        let mut pause = Duration::from_millis(50);
        // Matching messages the server had not yet delivered, as of the
        // last one delivered.
        let mut pending = 0;
        while events.len() < max {
            if self.open.is_none() {
                if self.failed {
                    let now = Instant::now();
                    if now >= deadline || !events.is_empty() {
                        return Ok(events);
                    }
                    tokio::time::sleep(pause.min(deadline - now)).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                match self.open().await {
                    Ok(open) => self.open = Some(open),
                    Err(e) => {
                        self.failed = true;
                        if Instant::now() + pause >= deadline {
                            return if events.is_empty() { Err(e) } else { Ok(events) };
                        }
                        tracing::debug!(error = %e, "cannot make an event consumer yet; trying again");
                        continue;
                    }
                }
            }
            let Some(open) = self.open.as_mut() else { continue };
            // Wait for the first event, and for more while the server says
            // more are pending (they are on their way: the consumer streams
            // ahead); otherwise take only what has already arrived.
            let next = if events.is_empty() || pending > 0 {
                match tokio::time::timeout_at(deadline, open.messages.next()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(events),
                }
            } else {
                match open.messages.next().now_or_never() {
                    Some(next) => next,
                    None => return Ok(events),
                }
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    self.drop_consumer(&e.to_string());
                    pending = 0;
                    continue;
                }
                None => {
                    self.drop_consumer("its message stream ended");
                    pending = 0;
                    continue;
                }
            };
            let (consumer_sequence, sequence, published) = match message.info() {
                Ok(info) => {
                    pending = info.pending;
                    (info.consumer_sequence, info.stream_sequence, info.published)
                }
                Err(e) => {
                    self.drop_consumer(&format!("a message without delivery info ({e})"));
                    pending = 0;
                    continue;
                }
            };
            if consumer_sequence != open.consumer_sequence + 1 {
                let why = format!("consumer sequence {consumer_sequence} after {}", open.consumer_sequence);
                self.drop_consumer(&why);
                pending = 0;
                continue;
            }
            open.consumer_sequence = consumer_sequence;
            self.failed = false;
            if sequence <= self.position {
                continue;
            }
            self.position = sequence;
            let millis = u64::try_from(published.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            let message = message.message;
            let event = decode(
                &self.events_prefix,
                message.subject.as_str(),
                sequence,
                message.headers.as_ref(),
                millis,
                message.payload,
            );
            if self.subjects.is_some() || names::matches_any(&self.patterns, &event.topic) {
                events.push(event);
            }
        }
        Ok(events)
    }

    /// Makes a consumer starting after the position.
    async fn open(&mut self) -> Result<Open, ClusterError> {
        let stream_name = self.cluster.options().stream_name();
        let name = format!("corral-reader-{}", nuid::next());
        let mut config = pull::Config {
            name: Some(name.clone()),
            deliver_policy: match self.position {
                0 => DeliverPolicy::All,
                position => DeliverPolicy::ByStartSequence { start_sequence: position + 1 },
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: INACTIVE,
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        };
        match &self.subjects {
            Some(subjects) if subjects.len() == 1 => config.filter_subject = subjects[0].clone(),
            Some(subjects) => config.filter_subjects = subjects.clone(),
            None => config.filter_subject = format!("{}>", self.events_prefix),
        }
        let what = || format!("making an event consumer on {stream_name} after sequence {}", self.position);
        let consumer = self
            .cluster
            .context()
            .create_consumer_on_stream(config, stream_name.as_str())
            .await
            .map_err(|e| ClusterError::from_nats(what(), &e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(PREFETCH)
            .expires(PULL_EXPIRES)
            .heartbeat(HEARTBEAT)
            .messages()
            .await
            .map_err(|e| ClusterError::from_nats(what(), &e))?;
        Ok(Open { name, messages, consumer_sequence: 0 })
    }

    /// Forgets the current consumer (deleting it on the server in the
    /// background); the next read makes a new one after the position.
    fn drop_consumer(&mut self, why: &str) {
        if let Some(open) = self.open.take() {
            tracing::info!(consumer = %open.name, position = self.position, "event consumer replaced: {why}");
            self.replaced += 1;
            self.delete_later(open.name);
        }
        self.failed = true;
    }

    fn delete_later(&self, name: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let context = self.cluster.context().clone();
        let stream = self.cluster.options().stream_name();
        runtime.spawn(async move {
            // Best effort: the server removes it once inactive anyway.
            let _ = context.delete_consumer_from_stream(&name, &stream).await;
        });
    }
}

impl Events {
    /// A reader of the events whose topic matches one of `filters` (NATS
    /// wildcards: `*` one token, `>` the rest; none: every event), from the
    /// first one after sequence `after`. It holds one consumer on the
    /// server, made when first read.
    pub fn reader(&self, filters: &[String], after: u64) -> Result<EventReader, ClusterError> {
        for filter in filters {
            names::validate_topic(filter, true)?;
        }
        Ok(EventReader::new(self.cluster.clone(), filters.to_vec(), after))
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            self.delete_later(open.name);
        }
    }
}
