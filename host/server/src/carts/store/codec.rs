//! How the cluster's cart store writes a round's journal message, a
//! client id's record and a snapshot: a format byte, then big-endian
//! integers and length-prefixed bytes. Event sequences are kept relative to
//! the message that names them (a batch lands at contiguous sequences, so
//! they are known before it is sent) and made absolute when read.

use corral_cluster::journal::StoredMessage;
use corral_storage::carts::{CartCommit, JournalEntry, Recorded, Snapshot};

use crate::carts::store::StoreError;

/// Format of the journal messages, records and snapshots written here.
const FORMAT: u8 = 1;

/// Bytes a journal entry with `events` outbox events takes in a round's
/// message (as [`encode_round`] writes it).
pub(super) fn entry_len(entry: &JournalEntry, events: usize) -> usize {
    8 + 8
        + (8 + entry.id.len())
        + (8 + entry.kind.len())
        + (8 + entry.payload.len())
        + 32
        + (8 + entry.applied_by.len())
        + (8 + 8 * events)
}

/// Bytes a client id's record of a `state_len`-byte state takes.
pub(super) fn record_len(state_len: usize, events: usize) -> usize {
    1 + 8 + (8 + state_len) + (8 + 8 * events)
}

pub(super) fn encode_round(commit: &CartCommit, offsets: &[Vec<u64>]) -> Vec<u8> {
    let mut out = vec![FORMAT];
    put_u64(&mut out, commit.applied.len() as u64);
    for (applied, offsets) in commit.applied.iter().zip(offsets) {
        let entry = &applied.entry;
        put_u64(&mut out, entry.version);
        put_u64(&mut out, entry.timestamp_ms);
        put_bytes(&mut out, entry.id.as_bytes());
        put_bytes(&mut out, entry.kind.as_bytes());
        put_bytes(&mut out, &entry.payload);
        out.extend_from_slice(&entry.state_digest);
        put_bytes(&mut out, entry.applied_by.as_bytes());
        put_sequences(&mut out, offsets);
    }
    out
}

/// The entries of a journal message, their events made absolute.
pub(super) fn decode_round(message: &StoredMessage) -> Result<Vec<JournalEntry>, StoreError> {
    let corrupt = |cause: &str| {
        StoreError::Failed(format!("journal message {} on {} is corrupt: {cause}", message.sequence, message.subject))
    };
    let mut reader = Reader(&message.payload);
    if reader.u8().map_err(corrupt)? != FORMAT {
        return Err(corrupt("unknown format version"));
    }
    let count = reader.u64().map_err(corrupt)?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let mut read = || -> Result<JournalEntry, &'static str> {
            let version = reader.u64()?;
            let timestamp_ms = reader.u64()?;
            let id = reader.string()?;
            let kind = reader.string()?;
            let payload = reader.bytes()?.to_vec();
            let mut state_digest = [0; 32];
            state_digest.copy_from_slice(reader.take(32)?);
            let applied_by = reader.string()?;
            let events = reader.sequences()?.into_iter().map(|offset| message.sequence + offset).collect();
            Ok(JournalEntry { version, id, kind, timestamp_ms, payload, state_digest, applied_by, events })
        };
        entries.push(read().map_err(corrupt)?);
    }
    Ok(entries)
}

pub(super) fn encode_record(record: &Recorded) -> Vec<u8> {
    let mut out = vec![FORMAT];
    put_u64(&mut out, record.version);
    put_bytes(&mut out, &record.state);
    put_sequences(&mut out, &record.events);
    out
}

/// A client id's record, its event offsets made absolute.
pub(super) fn decode_record(message: &StoredMessage) -> Result<Recorded, StoreError> {
    let mut reader = Reader(&message.payload);
    let mut read = || -> Result<Recorded, &'static str> {
        if reader.u8()? != FORMAT {
            return Err("unknown format version");
        }
        let version = reader.u64()?;
        let state = reader.bytes()?.to_vec();
        let events = reader.sequences()?.into_iter().map(|offset| message.sequence + offset).collect();
        Ok(Recorded { version, state, events })
    };
    read().map_err(|cause| {
        StoreError::Failed(format!("record {} on {} is corrupt: {cause}", message.sequence, message.subject))
    })
}

pub(super) fn encode_snapshot(snapshot: &Snapshot, position: u64) -> Vec<u8> {
    let mut out = vec![FORMAT];
    put_u64(&mut out, snapshot.version);
    put_u64(&mut out, position);
    put_bytes(&mut out, &snapshot.state);
    out
}

pub(super) fn decode_snapshot(bytes: &[u8]) -> Result<(Snapshot, u64), StoreError> {
    let mut reader = Reader(bytes);
    let mut read = || -> Result<(Snapshot, u64), &'static str> {
        if reader.u8()? != FORMAT {
            return Err("unknown format version");
        }
        let version = reader.u64()?;
        let position = reader.u64()?;
        Ok((Snapshot { version, state: reader.bytes()?.to_vec() }, position))
    };
    read().map_err(|cause| StoreError::Failed(format!("a cart snapshot is corrupt: {cause}")))
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_sequences(out: &mut Vec<u8>, sequences: &[u64]) {
    put_u64(out, sequences.len() as u64);
    sequences.iter().for_each(|sequence| put_u64(out, *sequence));
}

/// Reads what the `put_*` functions wrote.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < len {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(bytes))
    }

    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let len = usize::try_from(self.u64()?).map_err(|_| "length out of range")?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, &'static str> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "a string is not UTF-8")
    }

    fn sequences(&mut self) -> Result<Vec<u64>, &'static str> {
        let count = self.u64()?;
        if count > self.0.len() as u64 / 8 {
            return Err("truncated");
        }
        (0..count).map(|_| self.u64()).collect()
    }
}

#[cfg(test)]
mod tests {
    use corral_storage::carts::CartKey;

    use super::*;

    #[test]
    fn lengths_are_what_is_written() {
        let entry = JournalEntry {
            version: 1,
            id: "id".into(),
            kind: "add".into(),
            timestamp_ms: 2,
            payload: vec![0; 100],
            state_digest: [0; 32],
            applied_by: "1.0.0".into(),
            events: Vec::new(),
        };
        let applied = corral_storage::carts::Applied {
            entry: entry.clone(),
            state: vec![1; 50],
            client_id: true,
            outbox: Vec::new(),
        };
        let commit = CartCommit {
            key: CartKey { tenant: String::new(), plugin: "p".into(), cart: "c".into() },
            applied: vec![applied],
            snapshot: None,
        };
        assert_eq!(encode_round(&commit, &[vec![5, 6]]).len(), 1 + 8 + entry_len(&entry, 2));
        let record = Recorded { version: 1, state: vec![1; 50], events: vec![1, 2, 3] };
        assert_eq!(encode_record(&record).len(), record_len(50, 3));
    }

    #[test]
    fn rounds_round_trip_with_events_made_absolute() {
        let applied = corral_storage::carts::Applied {
            entry: JournalEntry {
                version: 7,
                id: "m".into(),
                kind: "add".into(),
                timestamp_ms: 5,
                payload: b"{}".to_vec(),
                state_digest: [3; 32],
                applied_by: "1.0.0".into(),
                events: Vec::new(),
            },
            state: b"s".to_vec(),
            client_id: true,
            outbox: Vec::new(),
        };
        let commit = CartCommit {
            key: CartKey { tenant: String::new(), plugin: "shop".into(), cart: "c".into() },
            applied: vec![applied.clone()],
            snapshot: None,
        };
        let bytes = encode_round(&commit, &[vec![2, 3]]);
        let message =
            StoredMessage { subject: "cj.x".into(), sequence: 100, headers: Vec::new(), payload: bytes.into() };
        let entries = decode_round(&message).unwrap();
        assert_eq!(entries[0], JournalEntry { events: vec![102, 103], ..applied.entry });
        let truncated = StoredMessage { payload: message.payload.slice(..20), ..message };
        assert!(decode_round(&truncated).is_err());
        let record = Recorded { version: 7, state: b"s".to_vec(), events: vec![1] };
        let stored = StoredMessage {
            subject: "ci.x".into(),
            sequence: 50,
            headers: Vec::new(),
            payload: encode_record(&record).into(),
        };
        assert_eq!(decode_record(&stored).unwrap().events, [51]);
        let (snapshot, position) =
            decode_snapshot(&encode_snapshot(&Snapshot { version: 3, state: b"z".to_vec() }, 9)).unwrap();
        assert_eq!((snapshot.version, position), (3, 9));
    }
}
