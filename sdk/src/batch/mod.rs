//! The guest's side of `batch-projector.fold`, walked the way the host
//! follows it (`corral:plugin/batch`): the events arrive encoded
//! ([`Encoded`]) and are decoded one at a time, after the host has begun
//! each, so a malformed one fails as itself. Each is decoded into the same
//! [`Event`], whose buffers are reused from one event to the next.
//!
//! The values the batch writes are kept ([`Written`]), so a view is asked of
//! the host once per batch and then handed from one `apply` to the next.

mod encoded;
mod written;

use encoded::Encoded;
use written::{Lent, Written};

use crate::bindings::batched_projection::corral::plugin::batch;
use crate::{Event, Failure, Projection};

/// An event's write: view id and new value (none deletes the view).
type Write = (String, Option<Vec<u8>>);

/// Folds the encoded `events` with `P`; used by
/// [`export_projection!`](crate::export_projection).
#[doc(hidden)]
pub fn fold_batch<P: Projection>(text: String, events: Vec<u8>) -> Result<Option<Write>, Failure> {
    let mut encoded = Encoded::new(&text, &events);
    let mut event = Event {
        id: String::new(),
        topic: String::new(),
        sequence: 0,
        timestamp_ms: 0,
        tenant: String::new(),
        correlation_id: String::new(),
        traceparent: None,
        payload: Vec::new(),
    };
    let mut written = Written::default();
    // The write of the event before, and where its view was lent from.
    let mut previous: Option<Write> = None;
    let mut lent: Option<Lent> = None;
    for index in 0u32.. {
        if encoded.is_empty() {
            break;
        }
        batch::begin(index, previous.as_ref());
        if let Some((id, value)) = previous.take() {
            match lent.take() {
                Some(lent) => written.put_back(lent, value),
                None => written.keep(&event.tenant, &id, value),
            }
        }
        encoded.next_into(&mut event).ok_or_else(|| Failure::new("batch", "the host handed over a malformed event"))?;
        if let Some(id) = P::key(&event) {
            let current = match written.lend(&event.tenant, &id) {
                Some((value, from)) => {
                    lent = Some(from);
                    value
                }
                None => batch::current(&id),
            };
            previous = Some((id, P::apply(current, &event)?));
        }
    }
    Ok(previous)
}
