//! Delivering events to event-handler plugins: one durable consumer per
//! plugin, in sequence order, acknowledged only after the handler returns
//! ok. Failures are retried with exponential backoff; after the last attempt
//! the event goes to `dlq.PLUGIN` (atomically with the acknowledgement) and
//! the consumer moves on, so a poison event never stalls the stream.
//!
//! The dispatcher only speaks [`EventStream`], whose semantics are
//! JetStream's: the embedded LMDB log and a cluster backend are
//! interchangeable here.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use corral_runtime::types::Event;
use corral_runtime::{CallContext, InvokeError};
use corral_storage::log::{EventRecord, NewRecord};
use corral_storage::stream::EventStream;
use tokio::sync::watch;

use crate::metrics::DeliveryMetrics;
use crate::plugins::Mounted;
use crate::sidecar::DeliverySection;

/// How many events one fetch takes.
const BATCH: usize = 64;

/// One plugin's subscription and its running totals.
pub(crate) struct Subscription {
    pub(crate) consumer: String,
    dead_letter_topic: String,
    pub(crate) filters: Vec<String>,
    pub(crate) mounted: Arc<Mounted>,
    pub(crate) policy: DeliverySection,
    pub(crate) counters: DeliveryMetrics,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Subscription {
    pub(crate) fn new(mounted: Arc<Mounted>, filters: Vec<String>, counters: DeliveryMetrics) -> Subscription {
        Subscription {
            consumer: format!("handler.{}", mounted.plugin.name()),
            dead_letter_topic: format!("dlq.{}", mounted.plugin.name()),
            filters,
            policy: mounted.sidecar.delivery.clone(),
            mounted,
            counters,
            last_error: Mutex::new(None),
        }
    }

    fn plugin(&self) -> &str {
        self.mounted.plugin.name()
    }

    fn record_error(&self, error: &InvokeError) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_string());
        }
    }
}

/// Runs one subscription until `stop` turns true. An event being retried
/// when the host stops is not acknowledged, so it is delivered again after
/// the restart (at-least-once).
pub(crate) async fn run(
    subscription: Arc<Subscription>,
    stream: Arc<dyn EventStream>,
    mut stop: watch::Receiver<bool>,
) {
    let consumer = subscription.consumer.as_str();
    loop {
        if *stop.borrow() {
            return;
        }
        let floor = match stream.ack_floor(consumer).await {
            Ok(floor) => floor,
            Err(error) => {
                tracing::error!(consumer, "reading the checkpoint failed, retrying: {error}");
                if pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        let fetched = match stream.fetch(&subscription.filters, floor, BATCH).await {
            Ok(fetched) => fetched,
            Err(error) => {
                tracing::error!(consumer, "reading the log failed, retrying: {error}");
                if pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        for event in fetched.events {
            // A plugin's own dead letters are never fed back to it.
            let outcome = if event.topic == subscription.dead_letter_topic {
                Delivery::Done
            } else {
                deliver(&subscription, &event, &mut stop).await
            };
            match outcome {
                Delivery::Done => {
                    if let Err(error) = stream.ack(consumer, event.sequence).await {
                        tracing::error!(consumer, sequence = event.sequence, "acknowledging failed: {error}");
                    }
                }
                Delivery::GaveUp(error) => dead_letter(&subscription, stream.as_ref(), &event, &error).await,
                Delivery::Stopped => return,
            }
        }
        if fetched.scanned_to > floor {
            // Events in between matched no filter: skip them for good.
            if let Err(error) = stream.ack(consumer, fetched.scanned_to).await {
                tracing::error!(consumer, "acknowledging failed: {error}");
            }
            continue;
        }
        tokio::select! {
            () = stream.wait_beyond(floor) => {}
            _ = stop.changed() => return,
        }
    }
}

enum Delivery {
    Done,
    GaveUp(InvokeError),
    Stopped,
}

async fn deliver(subscription: &Subscription, record: &EventRecord, stop: &mut watch::Receiver<bool>) -> Delivery {
    let event = to_event(record);
    let policy = &subscription.policy;
    let mut backoff = Duration::from_millis(policy.backoff_ms);
    let mut attempt = 1;
    loop {
        let mounted = &subscription.mounted;
        mounted.metrics.in_flight.inc();
        let result = mounted.plugin.handle_event(CallContext::for_event(&event), &event).await;
        mounted.metrics.in_flight.dec();
        match result {
            Ok(called) => {
                mounted.metrics.observe(called.elapsed.as_secs_f64(), called.fuel_used);
                subscription.counters.delivered.inc();
                return Delivery::Done;
            }
            Err(error) => {
                mounted.metrics.failed(error.kind.label());
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
                    error.kind
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
async fn dead_letter(subscription: &Subscription, stream: &dyn EventStream, event: &EventRecord, error: &InvokeError) {
    let plugin = subscription.plugin();
    let body = serde_json::json!({
        "plugin": plugin,
        "error": error.kind.to_string(),
        "cause": error.kind.label(),
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
    match stream.dead_letter(&subscription.consumer, event.sequence, record).await {
        Ok(sequence) => {
            subscription.counters.dead_lettered.inc();
            tracing::error!(
                plugin,
                event = event.sequence,
                dead_letter = sequence,
                "event dead-lettered: {}",
                error.kind
            );
        }
        Err(storage) => tracing::error!(plugin, event = event.sequence, "dead-lettering failed: {storage}"),
    }
}

/// The WIT event for a stored record.
pub(crate) fn to_event(record: &EventRecord) -> Event {
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

/// Sleeps, unless stopped first; true if stopped.
pub(crate) async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
