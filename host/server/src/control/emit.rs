//! `emit` over the event stream ([`StreamSink`]): whichever backend the
//! host runs on (the embedded log, or the cluster's stream), an event is
//! acknowledged once it is durable there.

use std::sync::Arc;

use corral_runtime::{EmitError, EventSink, NewEvent};

use crate::events::stream::{EventStream, record_of};
use crate::metrics::Metrics;

/// The runtime's `EventSink` over an [`EventStream`].
pub struct StreamSink {
    stream: Arc<dyn EventStream>,
    metrics: Arc<Metrics>,
}

impl StreamSink {
    /// Publishes into `stream`.
    pub fn new(stream: Arc<dyn EventStream>, metrics: Arc<Metrics>) -> StreamSink {
        StreamSink { stream, metrics }
    }
}

#[async_trait::async_trait]
impl EventSink for StreamSink {
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
