//! Durable consumers: a checkpoint (the last acknowledged sequence) per
//! consumer, and the last delivered tick per schedule. Acknowledging can
//! commit atomically with an append (e.g. moving a poison event to a
//! dead-letter topic), as can a schedule tick with its event.

use crate::log::NewRecord;
use crate::{Storage, StorageError, compose};

impl Storage {
    /// The consumer's checkpoint (0 if it never acknowledged anything).
    pub fn checkpoint(&self, consumer: &str) -> Result<u64, StorageError> {
        let txn = self.env.read_txn()?;
        Ok(self.checkpoints.get(&txn, consumer)?.unwrap_or(0))
    }

    /// Every consumer and its checkpoint.
    pub fn checkpoints(&self) -> Result<Vec<(String, u64)>, StorageError> {
        let txn = self.env.read_txn()?;
        let mut out = Vec::new();
        for item in self.checkpoints.iter(&txn)? {
            let (name, sequence) = item?;
            if !name.starts_with('\0') {
                out.push((name.to_string(), sequence));
            }
        }
        Ok(out)
    }

    /// Acknowledges up to `sequence` (never moves backwards), appending
    /// `records` in the same transaction; returns their sequences.
    pub fn ack(&self, consumer: &str, sequence: u64, records: &[NewRecord]) -> Result<Vec<u64>, StorageError> {
        if consumer.starts_with('\0') {
            return Err(StorageError::InvalidName(consumer.to_string()));
        }
        self.write(|txn| {
            let appended = self.append_in(txn, records)?;
            let current = self.checkpoints.get(txn, consumer)?.unwrap_or(0);
            if sequence > current {
                self.checkpoints.put(txn, consumer, &sequence)?;
            }
            Ok(appended)
        })
    }

    /// Removes a consumer's checkpoint (a consumer that no longer exists
    /// must not hold back retention).
    pub fn forget_consumer(&self, consumer: &str) -> Result<(), StorageError> {
        self.write(|txn| {
            self.checkpoints.delete(txn, consumer)?;
            Ok(())
        })
    }

    /// The last tick delivered for a plugin's schedule.
    pub fn last_tick(&self, plugin: &str, schedule: &str) -> Result<Option<u64>, StorageError> {
        let txn = self.env.read_txn()?;
        Ok(self.ticks.get(&txn, &compose(&[plugin, schedule])?)?)
    }

    /// Records a delivered tick and appends its event, in one transaction.
    pub fn fire_tick(
        &self,
        plugin: &str,
        schedule: &str,
        tick_ms: u64,
        record: &NewRecord,
    ) -> Result<u64, StorageError> {
        let key = compose(&[plugin, schedule])?;
        self.write(|txn| {
            let sequences = self.append_in(txn, std::slice::from_ref(record))?;
            self.ticks.put(txn, &key, &tick_ms)?;
            sequences.first().copied().ok_or_else(|| StorageError::Corrupt("no sequence assigned".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Storage, StorageOptions};

    use crate::log::test_record as record;

    #[test]
    fn checkpoints_only_move_forward_and_commit_with_appends() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        storage.append(&[record("a"), record("b")]).unwrap();
        assert_eq!(storage.checkpoint("c").unwrap(), 0);
        assert_eq!(storage.ack("c", 2, &[record("dlq.c")]).unwrap(), [3]);
        storage.ack("c", 1, &[]).unwrap();
        assert_eq!(storage.checkpoint("c").unwrap(), 2);
        assert_eq!(storage.checkpoints().unwrap(), [("c".to_string(), 2)]);
    }

    #[test]
    fn trimming_keeps_sequences_increasing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        storage.append(&[record("a"), record("b"), record("c")]).unwrap();
        assert_eq!(storage.trim(3).unwrap(), 3);
        assert_eq!(storage.first().unwrap(), None);
        assert_eq!(storage.head().unwrap(), 3);
        assert_eq!(storage.append(&[record("d")]).unwrap(), [4], "sequences never restart");
        assert!(storage.checkpoints().unwrap().is_empty(), "the trim marker is not a consumer");
    }

    #[test]
    fn ticks_commit_with_their_event() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        assert_eq!(storage.last_tick("p", "tick").unwrap(), None);
        assert_eq!(storage.fire_tick("p", "tick", 1000, &record("schedule.p.tick")).unwrap(), 1);
        assert_eq!(storage.last_tick("p", "tick").unwrap(), Some(1000));
    }
}
