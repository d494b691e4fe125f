//! `emit` over the event stream ([`StreamSink`]): whichever backend the
//! host runs on (the embedded log, or the cluster's stream), an event is
//! acknowledged once it is durable there.

use std::sync::Arc;

use corral_runtime::{EmitError, EventSink, NewEvent};
use corral_storage::log::NewRecord;

use crate::events::stream::EventStream;
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
        let record = NewRecord {
            topic: event.topic,
            tenant: event.tenant,
            correlation_id: event.correlation_id,
            // A child of the `emit` import's span when traces are exported.
            traceparent: crate::traces::current_or(event.traceparent),
            source: event.source,
            payload: event.payload,
        };
        let sequences = self.stream.publish(vec![record]).await.map_err(|e| EmitError::Unavailable(e.to_string()))?;
        self.metrics.emitted(&source, 1);
        sequences.first().copied().ok_or_else(|| EmitError::Unavailable("the log assigned no sequence".into()))
    }
}
