//! Group commit for carts ([`Journal`]): a thread drains every queued
//! [`CartCommit`] into one transaction, so many carts share one fsync. A
//! group whose transaction fails is committed again member by member, so
//! one member that cannot be stored fails only itself.

use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::carts::CartCommit;
use crate::committer::Committer;
use crate::{Storage, StorageError};

type Reply = oneshot::Sender<Result<Vec<CartCommit>, StorageError>>;

/// Group commit for carts: a thread that drains every queued [`CartCommit`]
/// into one transaction, so many carts share one fsync.
pub struct Journal {
    committer: Committer<(Vec<CartCommit>, Reply)>,
}

impl Journal {
    /// Starts the committing thread over `storage`. `announce` is told the
    /// log's head after each commit that published events.
    pub fn start(storage: Storage, announce: impl Fn(u64) + Send + 'static) -> Result<Journal, StorageError> {
        let dir = storage.dir().to_path_buf();
        let work =
            move |receiver: mpsc::Receiver<(Vec<CartCommit>, Reply)>| commit_in_groups(&storage, &receiver, &announce);
        Ok(Journal { committer: Committer::start("corral-journal", &dir, work)? })
    }

    /// Commits `commits` (with whatever else is queued) and returns them with
    /// their outbox sequences filled in, once durable.
    pub async fn commit(&self, commits: Vec<CartCommit>) -> Result<Vec<CartCommit>, StorageError> {
        let (reply, answer) = oneshot::channel();
        if self.committer.send((commits, reply)).is_err() {
            return Err(StorageError::Corrupt("the journal thread stopped".into()));
        }
        answer.await.unwrap_or_else(|_| Err(StorageError::Corrupt("the journal thread stopped".into())))
    }
}

fn commit_in_groups(storage: &Storage, receiver: &mpsc::Receiver<(Vec<CartCommit>, Reply)>, announce: &dyn Fn(u64)) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < 1024
            && let Ok(next) = receiver.try_recv()
        {
            group.push(next);
        }
        let sizes: Vec<usize> = group.iter().map(|(commits, _)| commits.len()).collect();
        let mut all: Vec<CartCommit> = group.iter_mut().flat_map(|(commits, _)| std::mem::take(commits)).collect();
        let published = all.iter().any(|c| c.applied.iter().any(|a| !a.outbox.is_empty()));
        match storage.commit_carts(&mut all) {
            Ok(head) => {
                if published {
                    announce(head);
                }
                let mut all = all.into_iter();
                for ((_, reply), size) in group.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(all.by_ref().take(size).collect()));
                }
            }
            Err(error) if group.len() == 1 => {
                let message = error.to_string();
                for (_, reply) in group {
                    let _ = reply.send(Err(StorageError::Corrupt(format!("cart commit failed: {message}"))));
                }
            }
            // Nothing of the group was written: commit each member alone, so
            // one bad member fails only itself.
            Err(_) => {
                let mut all = all.into_iter();
                for ((_, reply), size) in group.into_iter().zip(sizes) {
                    let mut commits: Vec<CartCommit> = all.by_ref().take(size).collect();
                    let result = match storage.commit_carts(&mut commits) {
                        Ok(head) => {
                            if commits.iter().any(|c| c.applied.iter().any(|a| !a.outbox.is_empty())) {
                                announce(head);
                            }
                            Ok(commits)
                        }
                        Err(error) => Err(StorageError::Corrupt(format!("cart commit failed: {error}"))),
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::carts::tests::{applied, key, open};
    use crate::log::test_record;

    #[tokio::test]
    async fn journal_groups_commits_and_announces_the_head() {
        let (_dir, storage) = open();
        let (tx, rx) = std::sync::mpsc::channel();
        let journal = std::sync::Arc::new(Journal::start(storage.clone(), move |head| tx.send(head).unwrap()).unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let journal = journal.clone();
                let commit = CartCommit {
                    key: key(&format!("c{i}")),
                    applied: vec![applied(1, "m", true, vec![test_record("t")])],
                    snapshot: None,
                };
                tokio::spawn(async move { journal.commit(vec![commit]).await })
            })
            .collect();
        let mut sequences = Vec::new();
        for task in tasks {
            let committed = task.await.unwrap().unwrap();
            assert_eq!(committed.len(), 1);
            sequences.push(committed[0].applied[0].entry.events[0]);
        }
        sequences.sort();
        assert_eq!(sequences, (1..=8).collect::<Vec<_>>());
        assert_eq!(rx.try_iter().max(), Some(8));
    }

    #[tokio::test]
    async fn a_member_whose_keys_cannot_be_stored_fails_alone_in_its_group() {
        let (_dir, storage) = open();
        let (tx, rx) = std::sync::mpsc::channel();
        let commit = |cart: String, id: &str| CartCommit {
            key: key(&cart),
            applied: vec![applied(1, id, true, vec![test_record("t")])],
            snapshot: None,
        };
        let long = "c".repeat(600);
        assert!(key(&long).check_fits(None).unwrap_err().contains("at most 500 fit"), "checked before queueing");
        assert!(key("c").check_fits(Some(&"i".repeat(500))).unwrap_err().contains("the client id is 500 bytes"));
        // Queued together, so they meet in one group.
        let mut answers = Vec::new();
        for (cart, id) in [("c1".to_string(), "m1"), (long, "m2"), ("c3".to_string(), "m3")] {
            let (reply, answer) = oneshot::channel();
            tx.send((vec![commit(cart, id)], reply)).unwrap();
            answers.push(answer);
        }
        drop(tx);
        let announced = std::sync::Mutex::new(Vec::new());
        commit_in_groups(&storage, &rx, &|head| announced.lock().unwrap().push(head));
        let results: Vec<_> = answers_of(answers).await;
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(results[1].as_ref().unwrap_err().to_string().contains("cart commit failed"), "{results:?}");
        assert_eq!(storage.cart_stored(&key("c1")).unwrap().entries.len(), 1);
        assert_eq!(storage.cart_stored(&key("c3")).unwrap().entries.len(), 1);
        assert_eq!(storage.read_after(0, 10).unwrap().len(), 2, "the failed member's outbox event is not in the log");
        assert_eq!(announced.lock().unwrap().last(), Some(&2));
    }

    async fn answers_of(
        answers: Vec<oneshot::Receiver<Result<Vec<CartCommit>, StorageError>>>,
    ) -> Vec<Result<Vec<CartCommit>, StorageError>> {
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        results
    }
}
