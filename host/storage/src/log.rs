//! The durable event log: records keyed by a global, strictly increasing
//! sequence number (big-endian, so key order is sequence order), each in a
//! small versioned binary format.
//!
//! The shape — a stream with sequence numbers, records read from a position
//! — is what NATS JetStream offers too, so a cluster backend can take its place.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Storage, StorageError};

/// An event to append; the log assigns sequence, id and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Topic.
    pub topic: String,
    /// Tenant.
    pub tenant: String,
    /// Correlation id.
    pub correlation_id: String,
    /// W3C traceparent.
    pub traceparent: Option<String>,
    /// Who published it (a plugin name, or `admin`).
    pub source: String,
    /// Body.
    pub payload: Vec<u8>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Position in the log, from 1.
    pub sequence: u64,
    /// Unique id (random, 128 bits, hex).
    pub id: String,
    /// Unix time in milliseconds at append.
    pub timestamp_ms: u64,
    /// Topic, tenant, correlation, source and payload as appended.
    pub topic: String,
    /// Tenant.
    pub tenant: String,
    /// Correlation id.
    pub correlation_id: String,
    /// W3C traceparent.
    pub traceparent: Option<String>,
    /// Publisher.
    pub source: String,
    /// Body.
    pub payload: Vec<u8>,
}

const FORMAT_VERSION: u8 = 1;
/// Reserved checkpoint name holding the highest trimmed sequence.
const TRIMMED: &str = "\0trimmed";

impl Storage {
    /// Appends events in one transaction and returns their sequence numbers
    /// once the transaction is committed (durable).
    pub fn append(&self, records: &[NewRecord]) -> Result<Vec<u64>, StorageError> {
        self.write(|txn| {
            let sequences = self.append_in(txn, records)?;
            Ok(sequences)
        })
    }

    /// Appends inside a caller's transaction (so an append can commit
    /// atomically with a checkpoint or a schedule tick).
    pub(crate) fn append_in(&self, txn: &mut heed::RwTxn<'_>, records: &[NewRecord]) -> Result<Vec<u64>, StorageError> {
        let mut sequence = self.last_sequence(txn)?;
        let timestamp_ms = now_ms();
        let mut sequences = Vec::with_capacity(records.len());
        for record in records {
            sequence += 1;
            let id = format!("{:032x}", rand::random::<u128>());
            self.events.put(txn, &sequence, &encode(&id, timestamp_ms, record))?;
            sequences.push(sequence);
        }
        Ok(sequences)
    }

    /// The last sequence ever assigned: kept in the checkpoints table too,
    /// so trimming the whole log never makes sequence numbers restart.
    pub(crate) fn last_sequence(&self, txn: &heed::RoTxn<'_>) -> Result<u64, StorageError> {
        let in_log = self.events.last(txn)?.map(|(sequence, _)| sequence).unwrap_or(0);
        let trimmed = self.checkpoints.get(txn, TRIMMED)?.unwrap_or(0);
        Ok(in_log.max(trimmed))
    }

    /// The oldest sequence still stored, if any.
    pub fn first(&self) -> Result<Option<u64>, StorageError> {
        let txn = self.env.read_txn()?;
        Ok(self.events.first(&txn)?.map(|(sequence, _)| sequence))
    }

    /// Deletes events with sequence `<= up_to`; returns how many.
    pub fn trim(&self, up_to: u64) -> Result<usize, StorageError> {
        self.write(|txn| {
            let last = self.last_sequence(txn)?;
            let trimmed = self.checkpoints.get(txn, TRIMMED)?.unwrap_or(0);
            let removed = self.events.delete_range(txn, &(..=up_to))?;
            self.checkpoints.put(txn, TRIMMED, &last.min(up_to).max(trimmed))?;
            Ok(removed)
        })
    }

    /// The sequence of the first event stored at or after `timestamp_ms`.
    pub fn first_at_or_after(&self, timestamp_ms: u64) -> Result<Option<u64>, StorageError> {
        let txn = self.env.read_txn()?;
        for item in self.events.iter(&txn)? {
            let (sequence, bytes) = item?;
            if decode(sequence, bytes)?.timestamp_ms >= timestamp_ms {
                return Ok(Some(sequence));
            }
        }
        Ok(None)
    }

    /// The last sequence number (0 for an empty log).
    pub fn head(&self) -> Result<u64, StorageError> {
        let txn = self.env.read_txn()?;
        self.last_sequence(&txn)
    }

    /// Up to `limit` events with a sequence greater than `after`, in order.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StorageError> {
        let txn = self.env.read_txn()?;
        let mut out = Vec::new();
        for item in self.events.range(&txn, &(after.saturating_add(1)..))? {
            if out.len() == limit {
                break;
            }
            let (sequence, bytes) = item?;
            out.push(decode(sequence, bytes)?);
        }
        Ok(out)
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode(id: &str, timestamp_ms: u64, record: &NewRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + record.payload.len() + record.topic.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    put_bytes(&mut out, id.as_bytes());
    put_bytes(&mut out, record.topic.as_bytes());
    put_bytes(&mut out, record.tenant.as_bytes());
    put_bytes(&mut out, record.correlation_id.as_bytes());
    match &record.traceparent {
        Some(traceparent) => {
            out.push(1);
            put_bytes(&mut out, traceparent.as_bytes());
        }
        None => out.push(0),
    }
    put_bytes(&mut out, record.source.as_bytes());
    put_bytes(&mut out, &record.payload);
    out
}

/// Reads fields off the front of an encoded record.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.0.len() < n {
            return Err(StorageError::Corrupt("record is truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StorageError> {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(bytes))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StorageError> {
        let mut len = [0; 4];
        len.copy_from_slice(self.take(4)?);
        self.take(u32::from_be_bytes(len) as usize)
    }

    pub(crate) fn string(&mut self) -> Result<String, StorageError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| StorageError::Corrupt("record field is not UTF-8".into()))
    }
}

fn decode(sequence: u64, bytes: &[u8]) -> Result<EventRecord, StorageError> {
    let mut reader = Reader(bytes);
    let version = reader.u8()?;
    if version != FORMAT_VERSION {
        return Err(StorageError::Corrupt(format!("event {sequence} has unknown format version {version}")));
    }
    let timestamp_ms = reader.u64()?;
    let id = reader.string()?;
    let topic = reader.string()?;
    let tenant = reader.string()?;
    let correlation_id = reader.string()?;
    let traceparent = match reader.u8()? {
        0 => None,
        _ => Some(reader.string()?),
    };
    let source = reader.string()?;
    let payload = reader.bytes()?.to_vec();
    Ok(EventRecord { sequence, id, timestamp_ms, topic, tenant, correlation_id, traceparent, source, payload })
}

/// A record on `topic` with an empty payload, for tests.
#[cfg(test)]
pub(crate) fn test_record(topic: &str) -> NewRecord {
    NewRecord {
        topic: topic.into(),
        tenant: String::new(),
        correlation_id: String::new(),
        traceparent: None,
        source: "test".into(),
        payload: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StorageOptions;

    fn record(topic: &str, payload: &[u8]) -> NewRecord {
        NewRecord {
            topic: topic.into(),
            tenant: "acme".into(),
            correlation_id: "c-1".into(),
            traceparent: Some("00-abc-def-01".into()),
            source: "emitter".into(),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn appends_in_sequence_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        assert_eq!(storage.head().unwrap(), 0);
        assert_eq!(storage.append(&[record("a", b"1"), record("b", b"2")]).unwrap(), [1, 2]);
        assert_eq!(storage.append(&[record("c", b"")]).unwrap(), [3]);
        assert_eq!(storage.head().unwrap(), 3);
        let events = storage.read_after(1, 10).unwrap();
        assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(events[0].topic, "b");
        assert_eq!(events[0].payload, b"2");
        assert_eq!(events[0].traceparent.as_deref(), Some("00-abc-def-01"));
        assert_eq!(events[0].id.len(), 32);
        assert_ne!(events[0].id, events[1].id);
        assert_eq!(storage.read_after(0, 1).unwrap().len(), 1);
    }

    #[test]
    fn rejects_corrupt_records() {
        let encoded = encode("id", 7, &record("t", b"payload"));
        assert_eq!(decode(1, &encoded).unwrap().payload, b"payload");
        assert!(decode(1, &encoded[..encoded.len() - 1]).is_err());
        let mut future = encoded.clone();
        future[0] = 9;
        assert!(decode(1, &future).unwrap_err().to_string().contains("format version 9"));
    }
}
