//! A [`Committer`]: a thread that drains what it is sent into LMDB
//! transactions (group commit), and is joined when its owner is dropped,
//! so no storage handle outlives the owner (a host stopped in-process can
//! open the same data folder again at once).

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::StorageError;

/// A committing thread and the channel that feeds it.
pub(crate) struct Committer<T> {
    sender: Option<mpsc::Sender<T>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Committer<T> {
    /// Starts a thread named `name` running `work` over the receiving end;
    /// `work` returns once every sender is gone.
    pub(crate) fn start(
        name: &str,
        dir: &std::path::Path,
        work: impl FnOnce(mpsc::Receiver<T>) + Send + 'static,
    ) -> Result<Committer<T>, StorageError> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || work(receiver))
            .map_err(|source| StorageError::Directory { path: dir.to_path_buf(), source })?;
        Ok(Committer { sender: Some(sender), thread: Some(thread) })
    }

    /// Hands `item` to the thread; gives it back if the thread is gone.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        match &self.sender {
            Some(sender) => sender.send(item).map_err(|mpsc::SendError(item)| item),
            None => Err(item),
        }
    }
}

impl<T> Drop for Committer<T> {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has committed what
        // was queued; then its storage handle is gone too.
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
