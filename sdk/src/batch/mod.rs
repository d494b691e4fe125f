//! The guest's side of `batch-projector.fold`, walked the way the host
//! follows it (`corral:plugin/batch`): the events arrive encoded
//! ([`Encoded`]) and are decoded one at a time, each after the host has
//! begun the segment it is in, so a malformed one fails as itself. Each is
//! decoded into the same [`Event`], whose buffers are reused from one event
//! to the next.
//!
//! The values the batch writes are kept ([`Written`]), so a view is asked
//! of the host once per batch and then handed from one `apply` to the next;
//! the host gets each view's last value with `batch.flush`, at the end or
//! when the table grows past its bound.

mod encoded;
mod written;

use encoded::Encoded;
use written::{Lent, Written};

use crate::bindings::batched_projection::corral::plugin::batch;
use crate::{Event, Failure, Projection};

/// The last write of a batch to a view: the event that wrote it, the view
/// id and the value (none deletes the view).
type Write = batch::Write;

/// What an event's `apply` did: view id and new value (none deletes it).
type Applied = (String, Option<Vec<u8>>);

/// Folds the encoded `events` with `P`; used by
/// [`export_projection!`](crate::export_projection).
#[doc(hidden)]
pub fn fold_batch<P: Projection>(text: String, events: Vec<u8>) -> Result<(), Failure> {
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
    let mut previous: Option<Applied> = None;
    let mut lent: Option<Lent> = None;
    let (mut index, mut next) = (0u32, 0u32);
    while !encoded.is_empty() {
        if index == next {
            next = batch::begin(index);
        }
        // `event` is still the one before: its tenant owns the write.
        keep(&mut written, &event.tenant, previous.take(), lent.take(), index.wrapping_sub(1));
        if written.is_full() {
            batch::flush(&written.drain(), index);
        }
        match fold::<P>(&mut encoded, &mut event, index, &mut written, &mut lent) {
            Ok(write) => previous = write,
            Err(failure) => {
                // A lent value went to the failed `apply`: without it the
                // kept writes are not whole, and the host folds them again.
                if lent.is_none() {
                    batch::flush(&written.drain(), index);
                }
                return Err(failure);
            }
        }
        index += 1;
    }
    keep(&mut written, &event.tenant, previous, lent, index.wrapping_sub(1));
    batch::flush(&written.drain(), index);
    Ok(())
}

/// Decodes the next event, `index`, into `event` and folds it with `P`: the
/// view it wrote and the value, if its key named one.
fn fold<P: Projection>(
    encoded: &mut Encoded<'_>,
    event: &mut Event,
    index: u32,
    written: &mut Written,
    lent: &mut Option<Lent>,
) -> Result<Option<Applied>, Failure> {
    encoded.next_into(event).ok_or_else(|| Failure::new("batch", "the host handed over a malformed event"))?;
    let Some(id) = P::key(event) else {
        return Ok(None);
    };
    let current = match written.lend(&event.tenant, &id) {
        Some((value, from)) => {
            *lent = Some(from);
            value
        }
        None => batch::current(index, &id),
    };
    let value = P::apply(current, event)?;
    Ok(Some((id, value)))
}

/// Keeps the write of event `index` of `tenant`, in the slot its view was
/// lent from if it read a kept value.
fn keep(written: &mut Written, tenant: &str, write: Option<Applied>, lent: Option<Lent>, index: u32) {
    let Some((id, value)) = write else { return };
    match lent {
        Some(lent) => written.put_back(lent, value, index),
        None => written.keep(tenant, &id, value, index),
    }
}
