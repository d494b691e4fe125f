//! Corral's embedded storage: one LMDB environment (through heed) holding
//! the kv buckets, the durable event log and the projection views.
//!
//! This crate knows nothing of wasm or of plugins: it stores bytes under
//! names. Every write is one LMDB transaction, committed (and so durable)
//! before the call returns.
//!
//! # Layout
//!
//! - [`Storage`]: opening the environment, flushing.
//! - [`kv`]: buckets of keys, with atomic read-modify-write;
//!   [`kv_writes`]: the same writes group-committed, each undone alone if
//!   it fails.
//! - [`log`]: the append-only event log and its record format.
//! - [`views`]: projection views keyed by tenant, projection and id, their
//!   secondary indexes and the queries that walk them.
//! - [`consumers`]: durable consumer checkpoints and schedule ticks.
//! - [`health`]: every write's outcome ([`Storage::write`]), so the host
//!   can say when the map or the disk is full.
//! - [`carts`]: cart journals, snapshots and idempotency records, with
//!   their outbox events committed in the same transaction.
//! - [`journal`]: the group commit of carts' changes.
//! - `committer`: the group-committing threads, joined when dropped.
//! - [`stream`]: the live log ([`stream::Embedded`]): group-committed
//!   appends and the announced head.

pub mod carts;
mod committer;
pub mod consumers;
pub mod health;
pub mod journal;
pub mod kv;
pub mod kv_writes;
pub mod log;
pub mod stream;
pub mod views;

pub use views::{QueryPage, ViewQueryError};

use std::path::{Path, PathBuf};

use heed::types::{Bytes, Str, U64};
use heed::{Database, Env, EnvOpenOptions};

/// Storage failed: the operation can be retried or the operator must act
/// (e.g. the disk or the map is full).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// LMDB reported an error.
    #[error("storage error: {0}")]
    Lmdb(#[from] heed::Error),
    /// The data directory could not be prepared.
    #[error("cannot prepare data directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A name contains a NUL byte, which separates key parts.
    #[error("invalid name {0:?}: NUL bytes are not allowed")]
    InvalidName(String),
    /// The commit of a group of writes this one was part of failed (the
    /// cause is recorded in the environment's health once); nothing of the
    /// group was written. Retry.
    #[error("the group commit failed, nothing was written: {0}")]
    GroupFailed(String),
}

/// Options of the environment.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Largest size the data file may grow to, in bytes (address space is
    /// reserved, disk is not).
    pub map_size: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions { map_size: 16 << 30 }
    }
}

type BigEndianU64 = U64<heed::byteorder::BigEndian>;

/// The LMDB environment and its databases.
#[derive(Clone)]
pub struct Storage {
    env: Env,
    kv: Database<Bytes, Bytes>,
    events: Database<BigEndianU64, Bytes>,
    views: Database<Bytes, Bytes>,
    /// Secondary index entries of views (see [`views`]).
    view_index: Database<Bytes, Bytes>,
    /// Projection scope → its index definitions.
    index_definitions: Database<Str, Str>,
    /// Consumer name → last acknowledged sequence.
    checkpoints: Database<Str, BigEndianU64>,
    /// `plugin NUL schedule` → last delivered tick (Unix ms).
    ticks: Database<Bytes, BigEndianU64>,
    /// `tenant NUL plugin NUL cart NUL version(8 bytes)` → journal entry.
    cart_journal: Database<Bytes, Bytes>,
    /// `tenant NUL plugin NUL cart` → latest snapshot.
    cart_snapshots: Database<Bytes, Bytes>,
    /// `tenant NUL plugin NUL cart NUL client id` → recorded result.
    cart_requests: Database<Bytes, Bytes>,
    dir: PathBuf,
    health: std::sync::Arc<health::WriteHealth>,
}

impl Storage {
    /// Opens (creating if needed) the environment in `dir`.
    pub fn open(dir: &Path, options: &StorageOptions) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Directory { path: dir.to_path_buf(), source })?;
        let env = open_env(dir, options)?;
        let mut txn = env.write_txn()?;
        let kv = env.create_database(&mut txn, Some("kv"))?;
        let events = env.create_database(&mut txn, Some("events"))?;
        let views = env.create_database(&mut txn, Some("views"))?;
        let view_index = env.create_database(&mut txn, Some("view_index"))?;
        let index_definitions = env.create_database(&mut txn, Some("index_definitions"))?;
        let checkpoints = env.create_database(&mut txn, Some("checkpoints"))?;
        let ticks = env.create_database(&mut txn, Some("ticks"))?;
        let cart_journal = env.create_database(&mut txn, Some("cart_journal"))?;
        let cart_snapshots = env.create_database(&mut txn, Some("cart_snapshots"))?;
        let cart_requests = env.create_database(&mut txn, Some("cart_requests"))?;
        txn.commit()?;
        Ok(Storage {
            env,
            kv,
            events,
            views,
            view_index,
            index_definitions,
            checkpoints,
            ticks,
            cart_journal,
            cart_snapshots,
            cart_requests,
            dir: dir.to_path_buf(),
            health: std::sync::Arc::default(),
        })
    }

    /// The directory the environment lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flushes everything to disk (commits already are durable; this also
    /// covers the operating system's buffers on shutdown).
    pub fn sync(&self) -> Result<(), StorageError> {
        self.env.force_sync()?;
        Ok(())
    }
}

#[allow(unsafe_code, reason = "heed marks opening an LMDB environment unsafe")]
fn open_env(dir: &Path, options: &StorageOptions) -> Result<Env, StorageError> {
    // SAFETY: LMDB requires that an environment is opened at most once per
    // process and that its files are not modified by anything but LMDB. The
    // host opens each data directory once, and the directory is its own.
    let env = unsafe { EnvOpenOptions::new().map_size(options.map_size).max_dbs(16).open(dir)? };
    Ok(env)
}

/// Joins key parts with NUL separators, refusing parts that contain NUL.
fn compose(parts: &[&str]) -> Result<Vec<u8>, StorageError> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if part.as_bytes().contains(&0) {
            return Err(StorageError::InvalidName((*part).to_string()));
        }
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part.as_bytes());
    }
    Ok(key)
}

/// One page of the keys `scope NUL name` with `name` starting with `prefix`
/// and after `cursor`, at most `limit`, in key order; and the cursor of the
/// next page if there may be more. Shared by kv listings and view listings.
fn page(
    txn: &heed::RoTxn<'_>,
    db: Database<Bytes, Bytes>,
    scope: &[&str],
    prefix: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<kv::Page, StorageError> {
    let key = |name: &str| compose(&scope.iter().copied().chain([name]).collect::<Vec<_>>());
    let scope_len = key("")?.len();
    let wanted = key(prefix)?;
    let start = key(cursor.filter(|c| *c >= prefix).unwrap_or(prefix))?;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut next = None;
    for item in db.range(txn, &(std::ops::Bound::Included(start.as_slice()), std::ops::Bound::Unbounded))? {
        let (stored, value) = item?;
        if !stored.starts_with(&wanted) {
            break;
        }
        let name = String::from_utf8_lossy(&stored[scope_len..]).into_owned();
        if Some(name.as_str()) == cursor {
            continue;
        }
        if entries.len() == limit {
            next = entries.last().map(|(name, _)| name.clone());
            break;
        }
        entries.push((name, value.to_vec()));
    }
    Ok((entries, next))
}
