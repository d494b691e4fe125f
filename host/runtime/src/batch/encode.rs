//! Events in `batch-projector.fold`'s encoding (see its WIT): their strings
//! back to back in one `string`, the rest in one list of bytes.

use crate::types::Event;

/// Most event bytes one batched call hands the guest at once: they share the
/// guest's memory limit with whatever it allocates itself.
pub(super) const CALL_BYTES: usize = 4 << 20;

/// Where the call starting at `start` ends: at most [`CALL_BYTES`] of
/// events, and at least one event.
pub(super) fn call_end(events: &[Event], start: usize) -> usize {
    let mut bytes = 0;
    for (index, event) in events.iter().enumerate().skip(start) {
        bytes += text_len(event) + rest_len(event);
        if bytes > CALL_BYTES && index > start {
            return index;
        }
    }
    events.len()
}

/// The bytes of `event`'s strings.
fn text_len(event: &Event) -> usize {
    let Event { id, topic, sequence: _, timestamp_ms: _, tenant, correlation_id, traceparent, payload: _ } = event;
    id.len() + topic.len() + tenant.len() + correlation_id.len() + traceparent.as_ref().map_or(0, String::len)
}

/// The bytes of the rest of `event`: integers, lengths and payload.
fn rest_len(event: &Event) -> usize {
    8 + 8 + 6 * 4 + event.payload.len()
}

/// `events` as `batch-projector.fold` takes them: their strings back to
/// back, and the rest of each event after the strings' lengths. None if a
/// field is too long for a u32 length.
pub(super) fn encode(events: &[Event]) -> Option<(String, Vec<u8>)> {
    fn len(bytes: usize) -> Option<u32> {
        u32::try_from(bytes).ok().filter(|len| *len != u32::MAX)
    }
    let (text_bytes, rest_bytes) =
        events.iter().fold((0, 0), |(text, rest), event| (text + text_len(event), rest + rest_len(event)));
    let mut text = String::with_capacity(text_bytes);
    let mut bytes = Vec::with_capacity(rest_bytes);
    for event in events {
        let Event { id, topic, sequence, timestamp_ms, tenant, correlation_id, traceparent, payload } = event;
        let traceparent_len = match traceparent {
            Some(traceparent) => len(traceparent.len())?,
            None => u32::MAX,
        };
        let lengths = [
            len(id.len())?,
            len(topic.len())?,
            len(tenant.len())?,
            len(correlation_id.len())?,
            traceparent_len,
            len(payload.len())?,
        ];
        // The fixed part in one piece: one copy per event, not eight.
        let mut head = [0u8; 40];
        head[..8].copy_from_slice(&sequence.to_le_bytes());
        head[8..16].copy_from_slice(&timestamp_ms.to_le_bytes());
        for (slot, length) in head[16..].chunks_exact_mut(4).zip(lengths) {
            slot.copy_from_slice(&length.to_le_bytes());
        }
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(payload);
        text.push_str(id);
        text.push_str(topic);
        text.push_str(tenant);
        text.push_str(correlation_id);
        if let Some(traceparent) = traceparent {
            text.push_str(traceparent);
        }
    }
    Some((text, bytes))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::batch) fn event(id: &str, tenant: &str) -> Event {
        Event {
            id: id.into(),
            topic: "t".into(),
            sequence: 1,
            timestamp_ms: 0,
            tenant: tenant.into(),
            correlation_id: String::new(),
            traceparent: None,
            payload: Vec::new(),
        }
    }

    #[test]
    fn events_are_encoded_as_their_strings_and_the_rest() {
        let mut first = event("e1", "acme");
        first.traceparent = Some("00-tp".into());
        first.payload = b"{}".to_vec();
        let (text, bytes) = encode(&[first.clone(), event("e2", "")]).unwrap();
        assert_eq!(text, "e1tacme00-tpe2t");
        let mut expected = Vec::new();
        for (sequence, lengths, payload) in [(1u64, [2, 1, 4, 0, 5], &b"{}"[..]), (1, [2, 1, 0, 0, u32::MAX], b"")] {
            expected.extend_from_slice(&sequence.to_le_bytes());
            expected.extend_from_slice(&0u64.to_le_bytes());
            lengths.iter().for_each(|len| expected.extend_from_slice(&len.to_le_bytes()));
            expected.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            expected.extend_from_slice(payload);
        }
        assert_eq!(bytes, expected);
        let second = event("e2", "");
        assert_eq!(text.len(), text_len(&first) + text_len(&second), "the text is sized in advance");
        assert_eq!(bytes.len(), rest_len(&first) + rest_len(&second), "so are the bytes");
    }

    #[test]
    fn a_call_hands_over_a_bounded_run_of_events() {
        let mut big = event("big", "a");
        big.payload = vec![0; CALL_BYTES];
        let events = [event("e1", "a"), big.clone(), event("e3", "a"), big, event("e5", "a")];
        assert_eq!(call_end(&events, 0), 1, "up to the event that crosses the limit");
        assert_eq!(call_end(&events, 1), 2, "at least one event, however large");
        assert_eq!(call_end(&events, 2), 3);
        assert_eq!(call_end(&events[..1], 0), 1);
    }
}
