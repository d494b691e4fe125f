//! `batch-projector.fold`'s encoding of events (see its WIT): their strings
//! in one `string`, the rest in one list of bytes. The strings come as a WIT
//! `string`, valid UTF-8 already: slicing them checks char boundaries only.

use crate::Event;

/// Events in `batch-projector.fold`'s encoding, not yet decoded.
pub(super) struct Encoded<'a> {
    text: &'a str,
    bytes: &'a [u8],
}

impl<'a> Encoded<'a> {
    /// The events `fold` was handed.
    pub(super) fn new(text: &'a str, bytes: &'a [u8]) -> Self {
        Encoded { text, bytes }
    }

    /// Whether every event is decoded.
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes the next event into `event`, over its previous fields.
    pub(super) fn next_into(&mut self, event: &mut Event) -> Option<()> {
        event.sequence = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        event.timestamp_ms = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        for field in [&mut event.id, &mut event.topic, &mut event.tenant, &mut event.correlation_id] {
            field.clear();
            field.push_str(self.string()?);
        }
        match self.bytes.get(..4)? {
            [0xff, 0xff, 0xff, 0xff] => {
                self.take(4)?;
                event.traceparent = None;
            }
            _ => {
                let traceparent = event.traceparent.get_or_insert_default();
                traceparent.clear();
                traceparent.push_str(self.string()?);
            }
        }
        let len = self.len()?;
        event.payload.clear();
        event.payload.extend_from_slice(self.take(len)?);
        Some(())
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(u32::from_le_bytes(self.take(4)?.try_into().ok()?)).ok()
    }

    fn string(&mut self) -> Option<&str> {
        let len = self.len()?;
        let (head, rest) = self.text.split_at_checked(len)?;
        self.text = rest;
        Some(head)
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
        let mut event = Event {
            id: "stale".into(),
            topic: String::new(),
            sequence: 0,
            timestamp_ms: 0,
            tenant: "stale tenant".into(),
            correlation_id: String::new(),
            traceparent: Some("stale".into()),
            payload: b"stale payload".to_vec(),
        };
        encoded.next_into(&mut event).unwrap();
        assert_eq!((event.id.as_str(), event.topic.as_str(), event.tenant.as_str()), ("e7", "orders.paid", "acme"));
        assert_eq!((event.sequence, event.timestamp_ms), (7, 1_700_000_000_000));
        assert_eq!(event.correlation_id, "req-1");
        assert_eq!((&event.traceparent, event.payload.as_slice()), (&None, &b"{}"[..]));
        encoded.next_into(&mut event).unwrap();
        assert_eq!((event.id.as_str(), event.topic.as_str(), event.tenant.as_str()), ("e8", "t", ""));
        assert_eq!((event.traceparent.as_deref(), event.payload.len()), (Some("00-tp"), 0));
        assert!(encoded.bytes.is_empty() && encoded.text.is_empty());

        let mut decode = |text: &str, bytes: &[u8]| Encoded { text, bytes }.next_into(&mut event);
        assert!(decode(text, &bytes[..first - 1]).is_none(), "cut short");
        assert!(decode(&text[..10], &bytes).is_none(), "text cut short");
        let split = "aéorders.paidacmereq-1";
        assert!(decode(split, &bytes).is_none(), "not on a char boundary");
        assert!(decode(&split.replace('é', "7"), &bytes).is_some());
    }
}
