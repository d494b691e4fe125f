//! The embedded event log's live side: [`Embedded`] appends with group
//! commit (one appender thread drains every queued publish into one LMDB
//! transaction, one fsync) and announces the head, so readers can wait for
//! new events instead of polling.

use std::sync::mpsc;

use tokio::sync::{oneshot, watch};

use crate::committer::Committer;
use crate::log::NewRecord;
use crate::{Storage, StorageError};

struct Append {
    records: Vec<NewRecord>,
    reply: oneshot::Sender<Result<Vec<u64>, StorageError>>,
}

/// The embedded stream: LMDB, one appender thread doing group commit, and
/// a watch channel announcing the head.
pub struct Embedded {
    storage: Storage,
    appender: Option<Committer<Append>>,
    head: watch::Sender<u64>,
}

impl Embedded {
    /// Opens the stream over `storage`. With `group_commit`, concurrent
    /// publishes are batched into one transaction by a dedicated thread.
    pub fn new(storage: Storage, group_commit: bool) -> Result<Embedded, StorageError> {
        let (head, _) = watch::channel(storage.head()?);
        let appender = if group_commit {
            let appending = storage.clone();
            let announce = head.clone();
            let work = move |receiver: mpsc::Receiver<Append>| append_in_groups(&appending, &receiver, &announce);
            Some(Committer::start("corral-appender", storage.dir(), work)?)
        } else {
            None
        };
        Ok(Embedded { storage, appender, head })
    }

    /// The storage underneath.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Announces a new head (after a commit made outside `publish`).
    pub fn announce(&self, head: u64) {
        self.head.send_if_modified(|current| {
            let newer = head > *current;
            if newer {
                *current = head;
            }
            newer
        });
    }

    /// Runs `work` on the blocking pool: a commit waits for the disk.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || work(&storage))
            .await
            .unwrap_or_else(|join| Err(StorageError::Corrupt(format!("storage task failed: {join}"))))
    }

    /// Appends events; returns their sequences once they are durable.
    pub async fn publish(&self, records: Vec<NewRecord>) -> Result<Vec<u64>, StorageError> {
        if let Some(appender) = &self.appender {
            let (reply, answer) = oneshot::channel();
            if appender.send(Append { records, reply }).is_ok() {
                return answer.await.unwrap_or_else(|_| Err(StorageError::Corrupt("the appender stopped".into())));
            }
            return Err(StorageError::Corrupt("the appender stopped".into()));
        }
        let sequences = self.blocking(move |s| s.append(&records)).await?;
        if let Some(last) = sequences.last() {
            self.announce(*last);
        }
        Ok(sequences)
    }

    /// The announced head, to wait on.
    pub fn head_watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Resolves once the log's head is beyond `after`.
    pub async fn wait_beyond(&self, after: u64) {
        let mut head = self.head.subscribe();
        let _ = head.wait_for(|head| *head > after).await;
    }
}

/// Drains every queued append into one transaction, then answers each.
fn append_in_groups(storage: &Storage, receiver: &mpsc::Receiver<Append>, head: &watch::Sender<u64>) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while let Ok(next) = receiver.try_recv() {
            group.push(next);
            if group.len() >= 1024 {
                break;
            }
        }
        let records: Vec<NewRecord> = group.iter().flat_map(|a| a.records.iter().cloned()).collect();
        match storage.append(&records) {
            Ok(sequences) => {
                if let Some(last) = sequences.last() {
                    head.send_replace(*last);
                }
                let mut sequences = sequences.into_iter();
                for append in group {
                    let mine: Vec<u64> = sequences.by_ref().take(append.records.len()).collect();
                    let _ = append.reply.send(Ok(mine));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for append in group {
                    let _ = append.reply.send(Err(StorageError::Corrupt(format!("append failed: {message}"))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StorageOptions;

    use crate::log::test_record as record;

    #[tokio::test(flavor = "multi_thread")]
    async fn group_commit_answers_every_publisher_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions { map_size: 64 << 20 }).unwrap();
        let stream = std::sync::Arc::new(Embedded::new(storage, true).unwrap());
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let stream = stream.clone();
                tokio::spawn(async move { stream.publish(vec![record(&format!("t.{i}")), record("t.x")]).await })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            let sequences = task.await.unwrap().unwrap();
            assert_eq!(sequences.len(), 2);
            assert_eq!(sequences[1], sequences[0] + 1, "one publisher's events stay together");
            all.extend(sequences);
        }
        all.sort();
        assert_eq!(all, (1..=100).collect::<Vec<u64>>());
        stream.wait_beyond(99).await;
    }
}
