//! Delivering events to event-handler plugins: one durable consumer per
//! plugin, in sequence order, acknowledged only after the handler returns
//! ok — together with the events the handler queued until it succeeded
//! (`emit.publish-on-success`), so a failed attempt publishes none of them
//! and a retried one publishes them once. Failures are retried with
//! exponential backoff; after the last attempt
//! the event goes to `dlq.PLUGIN` (atomically with the acknowledgement) and
//! the consumer moves on, so a poison event never stalls the stream.
//!
//! The dispatcher only speaks [`EventStream`], whose semantics are
//! JetStream's: the embedded LMDB log and a cluster backend are
//! interchangeable here.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use corral_runtime::{CallContext, ControlPlane, InvokeError, Queued};
use corral_storage::log::{EventRecord, NewRecord};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::events::stream::{Checkpoint, EventStream, StreamError, record_of, to_event};
use crate::metrics::DeliveryMetrics;
use crate::plugins::mounted::Mounted;
use crate::plugins::sidecar::DeliverySection;
use crate::shutdown::pause;

/// How many events one read takes.
const BATCH: usize = 64;
/// How long an idle subscription waits for events before it moves its
/// checkpoint past the events that matched none of its topics.
const IDLE: Duration = Duration::from_secs(2);

/// Why a handler did not handle an event.
#[derive(Debug, Clone)]
pub struct HandlerError {
    /// A short stable label (`trap`, `guest_error`, ...).
    pub cause: &'static str,
    /// What happened, for logs and dead letters.
    pub message: String,
}

/// Whatever handles a subscription's events: a plugin, or (in benchmarks)
/// native code, so both run on exactly the same dispatcher and log.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The handler's name: its consumer is `handler.NAME`, its dead-letter
    /// topic `dlq.NAME`.
    fn name(&self) -> &str;
    /// Handles one event; returns the events to publish with its
    /// acknowledgement (none are published if it fails).
    async fn handle(&self, event: &EventRecord) -> Result<Vec<NewRecord>, HandlerError>;
}

/// The log's records of what a handler queued, children of the current
/// span (the delivery's) when traces are exported.
pub fn queued_records(queued: Queued) -> Vec<NewRecord> {
    queued.into_events().into_iter().map(record_of).collect()
}

/// An event-handler plugin as a [`Handler`], its imports reaching `control`.
struct PluginHandler {
    mounted: Arc<Mounted>,
    control: Arc<ControlPlane>,
}

#[async_trait::async_trait]
impl Handler for PluginHandler {
    fn name(&self) -> &str {
        self.mounted.plugin.name()
    }

    async fn handle(&self, record: &EventRecord) -> Result<Vec<NewRecord>, HandlerError> {
        let mounted = &self.mounted;
        let event = to_event(record);
        let mut call = CallContext::for_event(&event);
        // What the handler emits or mutates continues this delivery's trace.
        call.traceparent = crate::traces::current_or(call.traceparent);
        mounted.metrics.in_flight.inc();
        let result = mounted.plugin.handle_event(&self.control, call, &event).await;
        mounted.metrics.in_flight.dec();
        match result {
            Ok(called) => {
                mounted.metrics.observe(called.elapsed.as_secs_f64(), called.fuel_used);
                Ok(queued_records(called.value))
            }
            Err(error) => {
                mounted.metrics.failed(error.kind.label());
                Err(describe(&error))
            }
        }
    }
}

fn describe(error: &InvokeError) -> HandlerError {
    HandlerError { cause: error.kind.label(), message: error.kind.to_string() }
}

/// One handler's subscription and its running totals.
pub struct Subscription {
    pub(crate) consumer: String,
    dead_letter_topic: String,
    pub(crate) filters: Vec<String>,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) policy: DeliverySection,
    pub(crate) counters: DeliveryMetrics,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Subscription {
    /// A subscription of `handler` to `filters` with a retry policy of
    /// `max_attempts` and exponential backoff from `backoff`.
    pub fn new(
        handler: Arc<dyn Handler>,
        filters: Vec<String>,
        max_attempts: u32,
        backoff: Duration,
        counters: DeliveryMetrics,
    ) -> Subscription {
        let name = handler.name().to_string();
        Subscription {
            consumer: format!("handler.{name}"),
            dead_letter_topic: format!("dlq.{name}"),
            filters,
            handler,
            policy: DeliverySection {
                max_attempts: max_attempts.max(1),
                backoff_ms: backoff.as_millis() as u64,
                max_backoff_ms: DeliverySection::default().max_backoff_ms,
            },
            counters,
            last_error: Mutex::new(None),
        }
    }

    /// A plugin's subscription, with its sidecar's delivery policy; its
    /// calls' imports reach `control`.
    pub(crate) fn for_plugin(
        mounted: Arc<Mounted>,
        control: Arc<ControlPlane>,
        counters: DeliveryMetrics,
    ) -> Subscription {
        let policy = mounted.sidecar.delivery.clone();
        let filters = mounted.topics.clone();
        let mut subscription = Subscription::new(
            Arc::new(PluginHandler { mounted, control }),
            filters,
            policy.max_attempts,
            Duration::from_millis(policy.backoff_ms),
            counters,
        );
        subscription.policy = policy;
        subscription
    }

    /// The durable consumer's name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    fn plugin(&self) -> &str {
        self.handler.name()
    }

    fn record_error(&self, error: &HandlerError) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.message.clone());
        }
    }
}

/// Runs one subscription until `stop` turns true. An event being retried
/// when the host stops is not acknowledged, so it is delivered again after
/// the restart (at-least-once).
pub async fn run(subscription: Arc<Subscription>, stream: Arc<dyn EventStream>, mut stop: watch::Receiver<bool>) {
    let consumer = subscription.consumer.as_str();
    // From the checkpoint, again after anything went wrong: whatever was
    // handled but not acknowledged is delivered again (at least once).
    'resume: loop {
        if *stop.borrow() {
            return;
        }
        let opened = match stream.checkpoint(consumer).await {
            Ok(checkpoint) => stream.reader(&subscription.filters, checkpoint.sequence).map(|r| (checkpoint, r)),
            Err(error) => Err(error),
        };
        let (mut checkpoint, mut reader) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                tracing::error!(consumer, "reading the checkpoint or the log failed, retrying: {error}");
                if pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let fetched = tokio::select! {
                fetched = reader.next(BATCH, IDLE) => fetched,
                _ = stop.changed() => return,
            };
            let events = match fetched {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(consumer, "reading the log failed, retrying: {error}");
                    if pause(&mut stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue 'resume;
                }
            };
            if events.is_empty() {
                // Events in between matched no filter: skip them for good.
                let scanned = reader.scanned_to().await;
                if scanned > checkpoint.sequence
                    && let Err(error) = stream.ack(&mut checkpoint, scanned).await
                {
                    match stopped_by(consumer, &error) {
                        true => return,
                        false => continue 'resume,
                    }
                }
                continue;
            }
            for event in events {
                // Every line logged while delivering it carries these.
                let span = tracing::info_span!(
                    "event",
                    plugin = subscription.handler.name(),
                    request_id = %event.id,
                    topic = %event.topic,
                    sequence = event.sequence,
                    tenant = %event.tenant,
                    correlation_id = %event.correlation_id,
                    trace_id = event.traceparent.as_deref().and_then(corral_runtime::trace_id).unwrap_or_default(),
                );
                crate::traces::adopt(&span, event.traceparent.as_deref());
                // A plugin's own dead letters are never fed back to it.
                let outcome = if event.topic == subscription.dead_letter_topic {
                    Delivery::Done(Vec::new())
                } else {
                    deliver(&subscription, &event, &mut stop).instrument(span.clone()).await
                };
                let settled = match outcome {
                    Delivery::Done(records) if records.is_empty() => stream.ack(&mut checkpoint, event.sequence).await,
                    Delivery::Done(records) => {
                        let count = records.len() as u64;
                        let acked = stream.ack_with(&mut checkpoint, event.sequence, records).instrument(span).await;
                        if acked.is_ok() {
                            subscription.counters.emitted.inc_by(count);
                        }
                        acked
                    }
                    Delivery::GaveUp(error) => {
                        let dead = dead_letter(&subscription, stream.as_ref(), &mut checkpoint, &event, &error);
                        dead.instrument(span).await
                    }
                    Delivery::Stopped => return,
                };
                if let Err(error) = settled {
                    match stopped_by(consumer, &error) {
                        true => return,
                        false => continue 'resume,
                    }
                }
            }
        }
    }
}

/// Logs a failed acknowledgement; true if it means another node took the
/// consumer over (stop), false if it is worth resuming from the checkpoint.
fn stopped_by(consumer: &str, error: &StreamError) -> bool {
    match error {
        StreamError::Fenced { .. } => {
            tracing::warn!(consumer, "stopping delivery: {error}");
            true
        }
        StreamError::Unavailable(_) => {
            tracing::error!(consumer, "acknowledging failed; resuming from the checkpoint: {error}");
            false
        }
    }
}

enum Delivery {
    /// Handled: acknowledge it, publishing these with it.
    Done(Vec<NewRecord>),
    GaveUp(HandlerError),
    Stopped,
}

async fn deliver(subscription: &Subscription, record: &EventRecord, stop: &mut watch::Receiver<bool>) -> Delivery {
    let policy = &subscription.policy;
    let mut backoff = Duration::from_millis(policy.backoff_ms);
    let mut attempt = 1;
    loop {
        let span = tracing::trace_span!("delivery", plugin = subscription.plugin(), topic = %record.topic, attempt);
        match subscription.handler.handle(record).instrument(span).await {
            Ok(records) => {
                subscription.counters.delivered.inc();
                return Delivery::Done(records);
            }
            Err(error) => {
                subscription.record_error(&error);
                if attempt >= policy.max_attempts {
                    return Delivery::GaveUp(error);
                }
                tracing::warn!(
                    plugin = subscription.plugin(),
                    sequence = record.sequence,
                    attempt,
                    retry_in_ms = backoff.as_millis() as u64,
                    "handler failed, will retry: {}",
                    error.message
                );
                subscription.counters.retried.inc();
                if pause(stop, backoff).await {
                    return Delivery::Stopped;
                }
                backoff = (backoff * 2).min(Duration::from_millis(policy.max_backoff_ms));
                attempt += 1;
            }
        }
    }
}

/// Moves a poison event to `dlq.PLUGIN` with the error and attempt count.
async fn dead_letter(
    subscription: &Subscription,
    stream: &dyn EventStream,
    checkpoint: &mut Checkpoint,
    event: &EventRecord,
    error: &HandlerError,
) -> Result<(), StreamError> {
    let plugin = subscription.plugin();
    let body = serde_json::json!({
        "plugin": plugin,
        "error": error.message,
        "cause": error.cause,
        "attempts": subscription.policy.max_attempts,
        "event": {
            "id": event.id,
            "topic": event.topic,
            "sequence": event.sequence,
            "timestamp_ms": event.timestamp_ms,
            "tenant": event.tenant,
            "correlation_id": event.correlation_id,
            "payload": String::from_utf8_lossy(&event.payload),
        },
    });
    let record = NewRecord {
        topic: subscription.dead_letter_topic.clone(),
        tenant: event.tenant.clone(),
        correlation_id: event.correlation_id.clone(),
        traceparent: event.traceparent.clone(),
        source: "corral".into(),
        payload: body.to_string().into_bytes(),
    };
    let sequence = stream.dead_letter(checkpoint, event.sequence, record).await?;
    subscription.counters.dead_lettered.inc();
    tracing::error!(plugin, event = event.sequence, dead_letter = sequence, "event dead-lettered: {}", error.message);
    Ok(())
}
