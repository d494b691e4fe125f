//! The guest's side of `batch-projector.fold`, walked the way the host
//! follows it (`corral:plugin/batch`): the events arrive encoded (their
//! strings in one `string`, the rest in one list of bytes) and are decoded
//! one at a time, after the host has begun each, so only one is held at
//! once and a malformed one fails as itself. The strings come as a WIT
//! `string`, valid UTF-8 already: slicing them checks char boundaries only.

use crate::bindings::batched_projection::corral::plugin::batch::{self, Step};
use crate::{Event, Failure, Projection};

/// Folds the encoded `events` with `P`; used by
/// [`export_projection!`](crate::export_projection).
#[doc(hidden)]
pub fn fold_batch<P: Projection>(text: String, events: Vec<u8>) -> Result<Step, Failure> {
    let mut encoded = Encoded { text: &text, bytes: &events };
    let mut step = Step::Skip;
    for index in 0u32.. {
        if encoded.bytes.is_empty() {
            break;
        }
        batch::begin(index, &step);
        let event = encoded.event().ok_or_else(|| Failure::new("batch", "the host handed over a malformed event"))?;
        step = match P::key(&event) {
            None => Step::Skip,
            Some(id) => match P::apply(batch::current(&id), event)? {
                Some(value) => Step::Put(value),
                None => Step::Delete,
            },
        };
    }
    Ok(step)
}

/// Events in `batch-projector.fold`'s encoding, not yet decoded.
struct Encoded<'a> {
    text: &'a str,
    bytes: &'a [u8],
}

impl Encoded<'_> {
    /// Decodes the next event.
    fn event(&mut self) -> Option<Event> {
        let sequence = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let timestamp_ms = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let id = self.string()?;
        let topic = self.string()?;
        let tenant = self.string()?;
        let correlation_id = self.string()?;
        let traceparent = match self.bytes.get(..4)? {
            [0xff, 0xff, 0xff, 0xff] => self.take(4).map(|_| None)?,
            _ => Some(self.string()?),
        };
        let len = self.len()?;
        let payload = self.take(len)?.to_vec();
        Some(Event { id, topic, sequence, timestamp_ms, tenant, correlation_id, traceparent, payload })
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(u32::from_le_bytes(self.take(4)?.try_into().ok()?)).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = self.len()?;
        let (head, rest) = self.text.split_at_checked(len)?;
        self.text = rest;
        Some(head.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(bytes: &mut Vec<u8>, lengths: &[u32]) {
        lengths.iter().for_each(|len| bytes.extend_from_slice(&len.to_le_bytes()));
    }

    #[test]
    fn decodes_events_one_by_one_and_rejects_malformed_ones() {
        let text = "e7orders.paidacmereq-1e8t00-tp";
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        lengths(&mut bytes, &[2, 11, 4, 5, u32::MAX, 2]);
        bytes.extend_from_slice(b"{}");
        let first = bytes.len();
        bytes.extend_from_slice(&8u64.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        lengths(&mut bytes, &[2, 1, 0, 0, 5, 0]);

        let mut encoded = Encoded { text, bytes: &bytes };
        let event = encoded.event().unwrap();
        assert_eq!((event.id.as_str(), event.topic.as_str(), event.tenant.as_str()), ("e7", "orders.paid", "acme"));
        assert_eq!((event.sequence, event.timestamp_ms), (7, 1_700_000_000_000));
        assert_eq!((event.correlation_id.as_str(), event.traceparent, event.payload), ("req-1", None, b"{}".to_vec()));
        let event = encoded.event().unwrap();
        assert_eq!((event.id.as_str(), event.topic.as_str(), event.tenant.as_str()), ("e8", "t", ""));
        assert_eq!((event.traceparent.as_deref(), event.payload.len()), (Some("00-tp"), 0));
        assert!(encoded.bytes.is_empty() && encoded.text.is_empty());

        assert!(Encoded { text, bytes: &bytes[..first - 1] }.event().is_none(), "cut short");
        assert!(Encoded { text: &text[..10], bytes: &bytes }.event().is_none(), "text cut short");
        let split = "aéorders.paidacmereq-1";
        assert!(Encoded { text: split, bytes: &bytes }.event().is_none(), "not on a char boundary");
        assert!(Encoded { text: &split.replace('é', "7"), bytes: &bytes }.event().is_some());
    }
}
