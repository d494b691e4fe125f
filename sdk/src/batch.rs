//! The guest's side of `batch-projector.fold`, walked the way the host
//! follows it (`corral:plugin/batch`): the events arrive as one list of bytes
//! and are decoded one at a time, after the host has begun each, so only
//! one is held at once and a malformed one fails as itself.

use crate::bindings::batched_projection::corral::plugin::batch::{self, Step};
use crate::{Event, Failure, Projection};

/// Folds the encoded `events` with `P`; used by
/// [`export_projection!`](crate::export_projection).
#[doc(hidden)]
pub fn fold_batch<P: Projection>(events: Vec<u8>) -> Result<Step, Failure> {
    let mut encoded = Encoded(&events);
    let mut step = Step::Skip;
    for index in 0u32.. {
        if encoded.0.is_empty() {
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
struct Encoded<'a>(&'a [u8]);

impl Encoded<'_> {
    /// Decodes the next event.
    fn event(&mut self) -> Option<Event> {
        let sequence = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let timestamp_ms = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let id = self.string()?;
        let topic = self.string()?;
        let tenant = self.string()?;
        let correlation_id = self.string()?;
        let traceparent = match self.peek_len()? {
            u32::MAX => self.take(4).map(|_| None)?,
            _ => Some(self.string()?),
        };
        let payload = self.bytes()?.to_vec();
        Some(Event { id, topic, sequence, timestamp_ms, tenant, correlation_id, traceparent, payload })
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn peek_len(&self) -> Option<u32> {
        Some(u32::from_le_bytes(self.0.get(..4)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let len = self.peek_len()?;
        self.take(4)?;
        self.take(usize::try_from(len).ok()?)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(bytes: &mut Vec<u8>, value: &[u8]) {
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
        bytes.extend_from_slice(value);
    }

    #[test]
    fn decodes_events_one_by_one_and_rejects_malformed_ones() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        for value in [&b"e7"[..], b"orders.paid", b"acme", b"req-1"] {
            field(&mut bytes, value);
        }
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        field(&mut bytes, b"{}");
        let first = bytes.len();
        bytes.extend_from_slice(&8u64.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        for value in [&b"e8"[..], b"t", b"", b"", b"00-tp", b""] {
            field(&mut bytes, value);
        }

        let mut encoded = Encoded(&bytes);
        let event = encoded.event().unwrap();
        assert_eq!((event.id.as_str(), event.topic.as_str(), event.tenant.as_str()), ("e7", "orders.paid", "acme"));
        assert_eq!((event.sequence, event.timestamp_ms), (7, 1_700_000_000_000));
        assert_eq!((event.correlation_id.as_str(), event.traceparent, event.payload), ("req-1", None, b"{}".to_vec()));
        let event = encoded.event().unwrap();
        assert_eq!((event.id.as_str(), event.traceparent.as_deref()), ("e8", Some("00-tp")));
        assert!(encoded.0.is_empty());

        assert!(Encoded(&bytes[..first - 1]).event().is_none(), "cut short");
        let mut bad = bytes[..first].to_vec();
        bad[16 + 4] = 0xff;
        assert!(Encoded(&bad).event().is_none(), "not UTF-8");
    }
}
