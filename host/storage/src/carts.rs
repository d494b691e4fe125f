//! Cart journals: for each cart (tenant, plugin, cart id) the ordered list of
//! applied mutations, the latest snapshot of its state, and the recorded
//! result of every mutation that carried a client id (idempotency).
//!
//! A commit writes a cart's new journal entries, its snapshot (when due),
//! its idempotency records and its outbox events (into the event log) in
//! **one** transaction: an acknowledged mutation is never half stored, and
//! its events are published exactly once. The group commit of many carts'
//! changes is [`crate::journal`].

use crate::log::{NewRecord, Reader, put_bytes};
use crate::{Storage, StorageError, compose};

const FORMAT_VERSION: u8 = 1;

/// Which cart: every cart lives in one tenant and belongs to one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CartKey {
    /// Tenant (empty for the default tenant).
    pub tenant: String,
    /// The cart plugin's name.
    pub plugin: String,
    /// The cart id.
    pub cart: String,
}

/// LMDB's longest key, in bytes.
const MAX_KEY_BYTES: usize = 511;

impl CartKey {
    /// Whether this cart's journal keys, and its idempotency record for
    /// `client_id`, fit in a storage key; the error says which parts are
    /// too long together. Checked before a mutation is queued, so no
    /// commit of several carts fails for one cart's keys.
    pub fn check_fits(&self, client_id: Option<&str>) -> Result<(), String> {
        let parts = self.tenant.len() + self.plugin.len() + self.cart.len();
        if parts + 3 + 8 > MAX_KEY_BYTES {
            return Err(format!(
                "the tenant, plugin name and cart id are {parts} bytes together; at most {} fit in a key",
                MAX_KEY_BYTES - 11
            ));
        }
        if let Some(id) = client_id
            && parts + id.len() + 3 > MAX_KEY_BYTES
        {
            return Err(format!(
                "the client id is {} bytes; with this tenant, plugin and cart id at most {} fit in a key",
                id.len(),
                MAX_KEY_BYTES - 3 - parts
            ));
        }
        Ok(())
    }

    fn prefix(&self) -> Result<Vec<u8>, StorageError> {
        let mut key = compose(&[&self.tenant, &self.plugin, &self.cart])?;
        key.push(0);
        Ok(key)
    }

    fn entry(&self, version: u64) -> Result<Vec<u8>, StorageError> {
        let mut key = self.prefix()?;
        key.extend_from_slice(&version.to_be_bytes());
        Ok(key)
    }

    fn request(&self, id: &str) -> Result<Vec<u8>, StorageError> {
        compose(&[&self.tenant, &self.plugin, &self.cart, id])
    }
}

/// One applied mutation, as the journal keeps it: enough to apply it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The cart's version after this mutation (1 for the first).
    pub version: u64,
    /// The mutation id (the client's, or one the host assigned).
    pub id: String,
    /// Mutation kind.
    pub kind: String,
    /// When the host accepted it (Unix ms); what the guest's clock read.
    pub timestamp_ms: u64,
    /// The mutation body.
    pub payload: Vec<u8>,
    /// BLAKE3 of the state the mutation produced, for verification.
    pub state_digest: [u8; 32],
    /// Version of the plugin that applied it.
    pub applied_by: String,
    /// Sequences of the outbox events it published.
    pub events: Vec<u64>,
}

/// A cart's state at a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Version of the state.
    pub version: u64,
    /// The state bytes.
    pub state: Vec<u8>,
}

/// What a mutation with a client id returned, kept so a repeat of the id
/// gets the same answer without being applied again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The cart's version after the mutation.
    pub version: u64,
    /// The state after the mutation.
    pub state: Vec<u8>,
    /// Sequences of its outbox events.
    pub events: Vec<u64>,
}

/// A mutation applied in memory, waiting to be committed.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The journal entry (its `events` are filled in at commit).
    pub entry: JournalEntry,
    /// The new state.
    pub state: Vec<u8>,
    /// Whether `entry.id` came from the client, so a repeat must be answered
    /// from the record.
    pub client_id: bool,
    /// Events to publish with the commit.
    pub outbox: Vec<NewRecord>,
}

/// One cart's share of a commit: consecutive mutations, and the snapshot to
/// store with them (if one is due).
#[derive(Debug, Clone)]
pub struct CartCommit {
    /// The cart.
    pub key: CartKey,
    /// Mutations in version order.
    pub applied: Vec<Applied>,
    /// A snapshot to store (replacing the previous one).
    pub snapshot: Option<Snapshot>,
}

/// What loading a cart needs: its latest snapshot and the entries after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Journal entries newer than the snapshot, in version order.
    pub entries: Vec<JournalEntry>,
}

impl Storage {
    /// The cart's latest snapshot and the journal entries after it.
    pub fn cart_stored(&self, key: &CartKey) -> Result<Stored, StorageError> {
        let txn = self.env.read_txn()?;
        let snapshot = match self.cart_snapshots.get(&txn, &compose(&[&key.tenant, &key.plugin, &key.cart])?)? {
            Some(bytes) => Some(decode_snapshot(bytes)?),
            None => None,
        };
        let after = snapshot.as_ref().map(|s| s.version).unwrap_or(0);
        let entries = self.entries(&txn, key, after)?;
        Ok(Stored { snapshot, entries })
    }

    /// The cart's whole journal and its latest snapshot, read together.
    pub fn cart_journal(&self, key: &CartKey) -> Result<(Vec<JournalEntry>, Option<Snapshot>), StorageError> {
        let txn = self.env.read_txn()?;
        let snapshot = match self.cart_snapshots.get(&txn, &compose(&[&key.tenant, &key.plugin, &key.cart])?)? {
            Some(bytes) => Some(decode_snapshot(bytes)?),
            None => None,
        };
        Ok((self.entries(&txn, key, 0)?, snapshot))
    }

    /// The recorded result of the mutation `id` on the cart, if any.
    pub fn cart_recorded(&self, key: &CartKey, id: &str) -> Result<Option<Recorded>, StorageError> {
        let txn = self.env.read_txn()?;
        match self.cart_requests.get(&txn, &key.request(id)?)? {
            Some(bytes) => Ok(Some(decode_recorded(bytes)?)),
            None => Ok(None),
        }
    }

    fn entries(&self, txn: &heed::RoTxn<'_>, key: &CartKey, after: u64) -> Result<Vec<JournalEntry>, StorageError> {
        let prefix = key.prefix()?;
        let start = key.entry(after.saturating_add(1))?;
        let mut entries = Vec::new();
        let range = (std::ops::Bound::Included(start.as_slice()), std::ops::Bound::Unbounded);
        for item in self.cart_journal.range(txn, &range)? {
            let (stored, value) = item?;
            if !stored.starts_with(&prefix) || stored.len() != prefix.len() + 8 {
                break;
            }
            let mut version = [0; 8];
            version.copy_from_slice(&stored[prefix.len()..]);
            entries.push(decode_entry(u64::from_be_bytes(version), value)?);
        }
        Ok(entries)
    }

    /// Commits carts' mutations, snapshots, idempotency records and outbox
    /// events in one transaction. Returns each mutation's event sequences,
    /// in the order of `commits` and their `applied`.
    pub fn commit_carts(&self, commits: &mut [CartCommit]) -> Result<u64, StorageError> {
        self.write(|txn| {
            for commit in commits.iter_mut() {
                for applied in &mut commit.applied {
                    applied.entry.events = self.append_in(txn, &applied.outbox)?;
                    let key = commit.key.entry(applied.entry.version)?;
                    self.cart_journal.put(txn, &key, &encode_entry(&applied.entry))?;
                    if applied.client_id {
                        let recorded = Recorded {
                            version: applied.entry.version,
                            state: applied.state.clone(),
                            events: applied.entry.events.clone(),
                        };
                        self.cart_requests.put(
                            txn,
                            &commit.key.request(&applied.entry.id)?,
                            &encode_recorded(&recorded),
                        )?;
                    }
                }
                if let Some(snapshot) = &commit.snapshot {
                    let key = compose(&[&commit.key.tenant, &commit.key.plugin, &commit.key.cart])?;
                    self.cart_snapshots.put(txn, &key, &encode_snapshot(snapshot))?;
                }
            }
            let head = self.last_sequence(txn)?;
            Ok(head)
        })
    }
}

fn encode_entry(entry: &JournalEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + entry.payload.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&entry.timestamp_ms.to_be_bytes());
    put_bytes(&mut out, entry.id.as_bytes());
    put_bytes(&mut out, entry.kind.as_bytes());
    put_bytes(&mut out, &entry.payload);
    out.extend_from_slice(&entry.state_digest);
    put_bytes(&mut out, entry.applied_by.as_bytes());
    put_sequences(&mut out, &entry.events);
    out
}

fn decode_entry(version: u64, bytes: &[u8]) -> Result<JournalEntry, StorageError> {
    let mut reader = Reader(bytes);
    check_format(&mut reader, "journal entry")?;
    let timestamp_ms = reader.u64()?;
    let id = reader.string()?;
    let kind = reader.string()?;
    let payload = reader.bytes()?.to_vec();
    let mut state_digest = [0; 32];
    state_digest.copy_from_slice(reader.take(32)?);
    let applied_by = reader.string()?;
    let events = sequences(&mut reader)?;
    Ok(JournalEntry { version, id, kind, timestamp_ms, payload, state_digest, applied_by, events })
}

fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + snapshot.state.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&snapshot.version.to_be_bytes());
    put_bytes(&mut out, &snapshot.state);
    out
}

fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, StorageError> {
    let mut reader = Reader(bytes);
    check_format(&mut reader, "snapshot")?;
    let version = reader.u64()?;
    Ok(Snapshot { version, state: reader.bytes()?.to_vec() })
}

fn encode_recorded(recorded: &Recorded) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + recorded.state.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&recorded.version.to_be_bytes());
    put_bytes(&mut out, &recorded.state);
    put_sequences(&mut out, &recorded.events);
    out
}

fn decode_recorded(bytes: &[u8]) -> Result<Recorded, StorageError> {
    let mut reader = Reader(bytes);
    check_format(&mut reader, "recorded result")?;
    let version = reader.u64()?;
    let state = reader.bytes()?.to_vec();
    Ok(Recorded { version, state, events: sequences(&mut reader)? })
}

fn check_format(reader: &mut Reader<'_>, what: &str) -> Result<(), StorageError> {
    match reader.u8()? {
        FORMAT_VERSION => Ok(()),
        other => Err(StorageError::Corrupt(format!("{what} has unknown format version {other}"))),
    }
}

fn put_sequences(out: &mut Vec<u8>, sequences: &[u64]) {
    out.extend_from_slice(&(sequences.len() as u32).to_be_bytes());
    for sequence in sequences {
        out.extend_from_slice(&sequence.to_be_bytes());
    }
}

fn sequences(reader: &mut Reader<'_>) -> Result<Vec<u64>, StorageError> {
    let mut len = [0; 4];
    len.copy_from_slice(reader.take(4)?);
    (0..u32::from_be_bytes(len)).map(|_| reader.u64()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::StorageOptions;
    use crate::log::test_record;

    pub(crate) fn key(cart: &str) -> CartKey {
        CartKey { tenant: "acme".into(), plugin: "shop".into(), cart: cart.into() }
    }

    pub(crate) fn applied(version: u64, id: &str, client_id: bool, outbox: Vec<NewRecord>) -> Applied {
        let state = format!("state-{version}").into_bytes();
        Applied {
            entry: JournalEntry {
                version,
                id: id.into(),
                kind: "add".into(),
                timestamp_ms: 1000 + version,
                payload: vec![version as u8],
                state_digest: *blake3::hash(&state).as_bytes(),
                applied_by: "1.0.0".into(),
                events: Vec::new(),
            },
            state,
            client_id,
            outbox,
        }
    }

    pub(crate) fn open() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        (dir, storage)
    }

    #[test]
    fn commits_entries_snapshot_requests_and_outbox_together() {
        let (_dir, storage) = open();
        let mut commits = vec![
            CartCommit {
                key: key("c1"),
                applied: vec![
                    applied(1, "m1", true, vec![test_record("cart.changed")]),
                    applied(2, "m2", false, vec![test_record("a"), test_record("b")]),
                ],
                snapshot: Some(Snapshot { version: 2, state: b"state-2".to_vec() }),
            },
            CartCommit { key: key("c2"), applied: vec![applied(1, "x", false, Vec::new())], snapshot: None },
        ];
        let head = storage.commit_carts(&mut commits).unwrap();
        assert_eq!(head, 3);
        assert_eq!(commits[0].applied[0].entry.events, [1]);
        assert_eq!(commits[0].applied[1].entry.events, [2, 3]);

        let stored = storage.cart_stored(&key("c1")).unwrap();
        assert_eq!(stored.snapshot, Some(Snapshot { version: 2, state: b"state-2".to_vec() }));
        assert!(stored.entries.is_empty(), "nothing after the snapshot");
        let (journal, _) = storage.cart_journal(&key("c1")).unwrap();
        assert_eq!(journal.len(), 2);
        assert_eq!(journal[1], commits[0].applied[1].entry);

        let c2 = storage.cart_stored(&key("c2")).unwrap();
        assert_eq!(c2.snapshot, None);
        assert_eq!(c2.entries.iter().map(|e| e.version).collect::<Vec<_>>(), [1]);

        let recorded = storage.cart_recorded(&key("c1"), "m1").unwrap().unwrap();
        assert_eq!(recorded, Recorded { version: 1, state: b"state-1".to_vec(), events: vec![1] });
        assert_eq!(storage.cart_recorded(&key("c1"), "m2").unwrap(), None, "host-assigned ids are not recorded");
        assert_eq!(storage.cart_recorded(&key("c2"), "m1").unwrap(), None, "ids are per cart");
    }

    #[test]
    fn carts_with_a_common_prefix_stay_apart() {
        let (_dir, storage) = open();
        let mut commits = vec![
            CartCommit { key: key("c"), applied: vec![applied(1, "a", false, Vec::new())], snapshot: None },
            CartCommit { key: key("c1"), applied: vec![applied(1, "b", false, Vec::new())], snapshot: None },
        ];
        storage.commit_carts(&mut commits).unwrap();
        let stored = storage.cart_stored(&key("c")).unwrap();
        assert_eq!(stored.entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn rejects_corrupt_entries() {
        let entry = applied(1, "m", false, Vec::new()).entry;
        let encoded = encode_entry(&entry);
        assert_eq!(decode_entry(1, &encoded).unwrap(), entry);
        assert!(decode_entry(1, &encoded[..encoded.len() - 2]).is_err());
        let mut future = encoded;
        future[0] = 7;
        assert!(decode_entry(1, &future).unwrap_err().to_string().contains("format version 7"));
    }
}
