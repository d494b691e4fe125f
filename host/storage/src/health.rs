//! Whether the environment takes writes. Every write transaction goes
//! through [`Storage::write`], which records its outcome here: failures
//! that are the environment's (the map or the disk is full, an I/O error,
//! LMDB itself) are counted by kind, and the last one is kept until a later
//! write succeeds — what readiness and `/metrics` report. A write refused
//! for its own input (a key LMDB cannot store, a NUL in a name) says
//! nothing about the environment and is not recorded.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Storage, StorageError};

/// Why a write failed, as the environment's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The map size (`StorageOptions::map_size`) is used up.
    MapFull,
    /// The disk refused the write (full, read-only, an I/O error).
    Disk,
    /// LMDB failed in another way.
    Lmdb,
}

impl FailureKind {
    /// Every kind, in label order.
    pub const ALL: [FailureKind; 3] = [FailureKind::MapFull, FailureKind::Disk, FailureKind::Lmdb];

    /// The label of metrics and readiness.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::MapFull => "map_full",
            FailureKind::Disk => "disk",
            FailureKind::Lmdb => "lmdb",
        }
    }

    /// The environment's part in `error`, if it has one.
    fn of(error: &StorageError) -> Option<FailureKind> {
        match error {
            StorageError::Lmdb(heed::Error::Mdb(heed::MdbError::MapFull)) => Some(FailureKind::MapFull),
            StorageError::Lmdb(heed::Error::Io(_)) | StorageError::Directory { .. } => Some(FailureKind::Disk),
            StorageError::Lmdb(heed::Error::Mdb(
                heed::MdbError::BadValSize | heed::MdbError::KeyExist | heed::MdbError::NotFound,
            )) => None,
            StorageError::Lmdb(_) => Some(FailureKind::Lmdb),
            // Recorded once, from the group's own error.
            StorageError::Corrupt(_) | StorageError::InvalidName(_) | StorageError::GroupFailed(_) => None,
        }
    }
}

/// The write outcomes recorded so far.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failures: [AtomicU64; 3],
    /// The last failure, cleared by a successful write.
    failing: Mutex<Option<(FailureKind, String)>>,
}

impl WriteHealth {
    fn record<T>(&self, result: &Result<T, StorageError>) {
        let mut failing = self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(_) => *failing = None,
            Err(error) => {
                if let Some(kind) = FailureKind::of(error) {
                    self.failures[kind as usize].fetch_add(1, Ordering::Relaxed);
                    *failing = Some((kind, error.to_string()));
                }
            }
        }
    }

    /// The last write's failure, if the last write that said anything
    /// about the environment failed.
    pub fn failing(&self) -> Option<(FailureKind, String)> {
        self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Failed writes so far, by kind.
    pub fn failures(&self) -> [(FailureKind, u64); 3] {
        FailureKind::ALL.map(|kind| (kind, self.failures[kind as usize].load(Ordering::Relaxed)))
    }
}

impl Storage {
    /// Runs `write` in one write transaction and commits it, recording the
    /// outcome in [`Storage::health`]. An error from `write` aborts the
    /// transaction.
    pub(crate) fn write<T>(
        &self,
        write: impl FnOnce(&mut heed::RwTxn<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let result = (|| {
            let mut txn = self.env.write_txn()?;
            let value = write(&mut txn)?;
            txn.commit()?;
            Ok(value)
        })();
        self.health.record(&result);
        result
    }

    /// Whether writes succeed, and why they failed.
    pub fn health(&self) -> &WriteHealth {
        &self.health
    }
}
