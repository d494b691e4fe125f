//! `emit` over the event stream ([`StreamSink`]): whichever backend the
//! host runs on (the embedded log, or the cluster's stream), an event is
//! acknowledged once it is durable there, and only if it matches the
//! schema served plugins declare for its topic.

use std::sync::{Arc, Weak};

use corral_runtime::{EmitError, EventSink, NewEvent};

use crate::events::stream::{EventStream, record_of};
use crate::metrics::Metrics;
use crate::plugins::Registry;

/// The runtime's `EventSink` over an [`EventStream`].
pub struct StreamSink {
    stream: Arc<dyn EventStream>,
    metrics: Arc<Metrics>,
    /// Whose catalog holds the topics' schemas, if any (weak: the
    /// registry's plugins reach this sink).
    registry: Option<Weak<Registry>>,
}

impl StreamSink {
    /// Publishes into `stream`, checking no schema.
    pub fn new(stream: Arc<dyn EventStream>, metrics: Arc<Metrics>) -> StreamSink {
        StreamSink { stream, metrics, registry: None }
    }

    /// From now on, publishes only events matching the schemas of
    /// `registry`'s catalog at the time.
    pub fn checking(self, registry: &Arc<Registry>) -> StreamSink {
        StreamSink { registry: Some(Arc::downgrade(registry)), ..self }
    }
}

#[async_trait::async_trait]
impl EventSink for StreamSink {
    fn check(&self, topic: &str, payload: &[u8]) -> Result<(), EmitError> {
        let Some(registry) = self.registry.as_ref().and_then(Weak::upgrade) else { return Ok(()) };
        let topics = registry.catalog().topics.clone();
        topics.check(topic, payload).map_err(|violation| {
            self.metrics.schema_refused(&violation.schema, "emit");
            EmitError::InvalidPayload(violation.to_string())
        })
    }

    async fn publish(&self, event: NewEvent) -> Result<u64, EmitError> {
        let source = event.source.clone();
        let sequences =
            self.stream.publish(vec![record_of(event)]).await.map_err(|e| EmitError::Unavailable(e.to_string()))?;
        self.metrics.emitted(&source, 1);
        sequences.first().copied().ok_or_else(|| EmitError::Unavailable("the log assigned no sequence".into()))
    }

    /// One append for all of them: one commit in the embedded log.
    async fn publish_all(&self, events: Vec<NewEvent>) -> Result<Vec<u64>, EmitError> {
        let Some(source) = events.first().map(|e| e.source.clone()) else { return Ok(Vec::new()) };
        let count = events.len() as u64;
        let records = events.into_iter().map(record_of).collect();
        let sequences = self.stream.publish(records).await.map_err(|e| EmitError::Unavailable(e.to_string()))?;
        self.metrics.emitted(&source, count);
        Ok(sequences)
    }
}
