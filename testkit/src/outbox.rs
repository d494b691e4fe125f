//! The kit's `emit`: an [`Outbox`] that keeps what guests publish, in
//! order, numbered as a log would number it, and refuses what does not
//! match its topic's declared schema, as the host does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use corral_runtime::{EmitError, EventSink, NewEvent};
use corral_schemas::TopicSchemas;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Captures what guests emit, numbering it as a log would.
#[derive(Default)]
pub(crate) struct Outbox {
    events: Mutex<Vec<NewEvent>>,
    /// Sequence numbers handed out so far.
    published: AtomicU64,
    /// When set, every `emit` fails as unavailable with this reason.
    unavailable: Mutex<Option<String>>,
    /// The declared schema of each topic.
    topics: Arc<TopicSchemas>,
}

impl Outbox {
    /// An outbox refusing events that do not match `topics`.
    pub(crate) fn new(topics: Arc<TopicSchemas>) -> Outbox {
        Outbox { topics, ..Outbox::default() }
    }

    /// Makes every later `emit` fail (`Some(reason)`) or succeed (`None`).
    pub(crate) fn set_unavailable(&self, reason: Option<String>) {
        *lock(&self.unavailable) = reason;
    }

    /// Events emitted since the last call, in order.
    pub(crate) fn take(&self) -> Vec<NewEvent> {
        std::mem::take(&mut *lock(&self.events))
    }
}

#[async_trait::async_trait]
impl EventSink for Outbox {
    fn check(&self, topic: &str, payload: &[u8]) -> Result<(), EmitError> {
        self.topics.check(topic, payload).map_err(|violation| EmitError::InvalidPayload(violation.to_string()))
    }

    async fn publish(&self, event: NewEvent) -> Result<u64, EmitError> {
        if let Some(reason) = lock(&self.unavailable).clone() {
            return Err(EmitError::Unavailable(reason));
        }
        lock(&self.events).push(event);
        Ok(self.published.fetch_add(1, Ordering::SeqCst) + 1)
    }
}
