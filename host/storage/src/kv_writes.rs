//! Group commit of kv writes ([`KvWrites`]): one thread drains every write
//! queued meanwhile into one LMDB transaction — one fsync for all of them —
//! and answers each once it is durable. Each write runs in a nested
//! transaction of its own, so a write that fails (a key LMDB cannot store,
//! an update that refuses) is undone alone and gets its own error while
//! the others commit; only a failure of the commit itself (the disk, the
//! map) fails the whole group, which is then recorded once in the
//! environment's health.

use std::sync::mpsc;

use heed::RwTxn;
use tokio::sync::oneshot;

use crate::committer::Committer;
use crate::{Storage, StorageError};

/// Most writes one transaction takes.
const GROUP: usize = 512;

/// What a write does once its group has committed (or failed to): answers
/// its caller.
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;

/// One queued write: runs in its nested transaction and, if it did not
/// fail (having answered its caller with its error), says how to answer
/// once the group's fate is known.
type Job = Box<dyn FnOnce(&Storage, &mut RwTxn<'_>) -> Option<Deliver> + Send>;

/// kv writes, group-committed by a thread of their own.
pub struct KvWrites {
    committer: Committer<Job>,
}

impl KvWrites {
    /// Starts the committing thread over `storage`.
    pub fn new(storage: Storage) -> Result<KvWrites, StorageError> {
        let dir = storage.dir().to_path_buf();
        let committer = Committer::start("corral-kv", &dir, move |jobs| commit_groups(&storage, &jobs))?;
        Ok(KvWrites { committer })
    }

    /// Writes `value` under `key` of `bucket`; returns once it is durable.
    pub async fn set(&self, bucket: String, key: String, value: Vec<u8>) -> Result<(), StorageError> {
        self.submit(move |storage, txn| storage.kv_set_in(txn, &bucket, &key, &value)).await
    }

    /// Deletes `key` of `bucket`; true if it existed.
    pub async fn delete(&self, bucket: String, key: String) -> Result<bool, StorageError> {
        self.submit(move |storage, txn| storage.kv_delete_in(txn, &bucket, &key)).await
    }

    /// [`Storage::kv_update`], group-committed: an `Err` from `update`
    /// writes nothing (the update returns before it writes).
    pub async fn update<T, E>(
        &self,
        bucket: String,
        key: String,
        update: impl FnOnce(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T), E> + Send + 'static,
    ) -> Result<Result<T, E>, StorageError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        self.submit(move |storage, txn| storage.kv_update_in(txn, &bucket, &key, update)).await
    }

    /// Queues `change` and waits for its group's commit.
    async fn submit<T: Send + 'static>(
        &self,
        change: impl FnOnce(&Storage, &mut RwTxn<'_>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel::<Result<T, StorageError>>();
        let job: Job = Box::new(move |storage, txn| match change(storage, txn) {
            Ok(value) => Some(Box::new(move |failed: Option<&str>| {
                let _ = reply.send(match failed {
                    None => Ok(value),
                    Some(why) => Err(StorageError::GroupFailed(why.to_string())),
                });
            })),
            Err(error) => {
                let _ = reply.send(Err(error));
                None
            }
        });
        if self.committer.send(job).is_err() {
            return Err(StorageError::GroupFailed("the kv writer has stopped".into()));
        }
        answer.await.unwrap_or_else(|_| Err(StorageError::GroupFailed("the write's group failed before it ran".into())))
    }
}

/// Drains queued writes into transactions, one group at a time.
fn commit_groups(storage: &Storage, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let mut delivered: Vec<Deliver> = Vec::with_capacity(group.len());
        let committed = storage.write(|txn| {
            for job in group.drain(..) {
                let mut nested = storage.env.nested_write_txn(txn)?;
                match job(storage, &mut nested) {
                    Some(deliver) => {
                        nested.commit()?;
                        delivered.push(deliver);
                    }
                    // Failed alone: undone alone.
                    None => nested.abort(),
                }
            }
            Ok(())
        });
        let failed = committed.err().map(|error| error.to_string());
        for deliver in delivered {
            deliver(failed.as_deref());
        }
        // Writes left undone by a failure before they ran: their callers
        // hear of it when their answer is dropped here.
        drop(group);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::StorageOptions;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_a_bad_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let writes = Arc::new(KvWrites::new(storage.clone()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let writes = writes.clone();
            tasks.push(tokio::spawn(async move {
                // Every 50th names a bucket LMDB keys cannot hold (a NUL).
                let bucket = if i % 50 == 7 { "bad\0bucket".to_string() } else { "p".to_string() };
                writes.set(bucket, format!("k{i}"), i.to_string().into_bytes()).await
            }));
        }
        let mut failed = 0;
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(()) => assert_eq!(storage.kv_get("p", &format!("k{i}")).unwrap(), Some(i.to_string().into_bytes())),
                Err(error) => {
                    assert!(matches!(error, StorageError::InvalidName(_)), "{error}");
                    failed += 1;
                }
            }
        }
        assert_eq!(failed, 4, "only the bad writes failed");
        assert!(storage.health().failing().is_none(), "a write's own error says nothing of the environment");
    }

    #[tokio::test]
    async fn an_update_that_refuses_writes_nothing_and_deletes_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
            let writes = KvWrites::new(storage.clone()).unwrap();
            writes.set("p".into(), "n".into(), b"1".to_vec()).await.unwrap();
            let refused = writes.update("p".into(), "n".into(), |_| Err::<(Option<Vec<u8>>, ()), _>("no")).await;
            assert_eq!(refused.unwrap(), Err("no"));
            let doubled = writes
                .update("p".into(), "n".into(), |current| {
                    let n: u32 = std::str::from_utf8(current.unwrap()).unwrap().parse().unwrap();
                    Ok::<_, ()>((Some((n * 2).to_string().into_bytes()), n * 2))
                })
                .await;
            assert_eq!(doubled.unwrap(), Ok(2));
            writes.set("p".into(), "gone".into(), b"x".to_vec()).await.unwrap();
            assert!(writes.delete("p".into(), "gone".into()).await.unwrap());
            assert!(!writes.delete("p".into(), "gone".into()).await.unwrap());
        }
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        assert_eq!(storage.kv_get("p", "n").unwrap(), Some(b"2".to_vec()));
        assert_eq!(storage.kv_get("p", "gone").unwrap(), None);
    }
}
