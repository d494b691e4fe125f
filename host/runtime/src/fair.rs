//! Fair CPU between calls: the runtime's long-call permits (one fewer than
//! the cores), which a call must hold to run on once it is *long* — past
//! [`LONG_CALL`] of wall time, or past [`BIG_GROWTH`] of memory grown during
//! the call — so heavy guests take turns among themselves and short calls
//! always find a core. A plugin whose last call ran long needs a permit
//! from its next call's first tick: a plugin whose calls are all heavy does
//! not get each one's first milliseconds beside the short calls for free.
//!
//! Memory counts because a guest can hold a thread without ever reaching an
//! epoch check: one `memory.fill` or `memory.copy` over tens of MiB is a
//! single host `memset`, faulting in every fresh page, that no tick
//! interrupts. Growing that much memory first takes a permit, so at most
//! cores − 1 such bulk operations run at once.
//!
//! A permit is held in slices of `LONG_SLICE`, then queued for again (the
//! queue is fair). Holders mark the time of each tick they run; a waiter that
//! sees no holder run for `LONG_WAIT` (all suspended on I/O, e.g. streaming
//! to a slow client) goes on without a permit rather than stall behind them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a call runs before it counts as long.
pub const LONG_CALL: Duration = Duration::from_millis(4);
/// How much memory a call grows (beyond what it was instantiated with)
/// before it counts as long.
pub(crate) const BIG_GROWTH: usize = 16 << 20;
/// How long a long call runs on one permit before it queues again.
const LONG_SLICE: Duration = Duration::from_millis(20);
/// How long no permit holder must have run before a waiter goes on.
const LONG_WAIT: Duration = Duration::from_millis(100);
const LONG_WAIT_MS: u64 = 100;

/// One call's share of the long-call permits.
#[derive(Clone)]
pub(crate) struct Turn {
    permits: Arc<Semaphore>,
    /// When any holder last ran a tick (ms since the Unix epoch).
    ticked: Arc<AtomicU64>,
    held: Arc<Mutex<Option<(OwnedSemaphorePermit, Instant)>>>,
    /// When the call began.
    started: Instant,
    /// Whether the call counts as long from its start (its plugin's last
    /// call ran long).
    long_from_start: bool,
}

impl Turn {
    /// A call's turn, beginning now.
    pub(crate) fn new(permits: Arc<Semaphore>, ticked: Arc<AtomicU64>) -> Turn {
        Turn { permits, ticked, held: Arc::default(), started: Instant::now(), long_from_start: false }
    }

    /// The same turn, long from its start (or not).
    pub(crate) fn long_from_start(mut self, long: bool) -> Turn {
        self.long_from_start = long;
        self
    }

    /// Whether the call is long: past [`LONG_CALL`], or long from its start.
    pub(crate) fn is_long(&self) -> bool {
        self.long_from_start || self.started.elapsed() >= LONG_CALL
    }

    /// Where a guest floods the host (a log line over its budget, dropped):
    /// the call goes on only with a permit, as a long call does — a flood's
    /// calls are short, and without this four of them keep both cores
    /// busy — and yields to whatever else is waiting once it holds one.
    pub(crate) async fn give_way(&self) {
        if self.running() {
            tokio::task::yield_now().await;
        } else {
            self.clone().wait().await;
        }
    }

    /// Where a guest asks the host for work that costs the host CPU (a
    /// written log line): a long call without a permit waits for one, as at
    /// an epoch tick. Returns whether it waited.
    pub(crate) async fn wait_if_long(&self) -> bool {
        if self.is_long() && !self.running() {
            self.clone().wait().await;
            return true;
        }
        false
    }

    /// Whether this call holds a permit whose slice is not over; marks the
    /// tick as run if so. A slice that is over gives its permit back.
    pub(crate) fn running(&self) -> bool {
        let mut slot = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|(_, since)| since.elapsed() < LONG_SLICE) {
            self.ticked.store(now_ms(), Ordering::Relaxed);
            return true;
        }
        *slot = None;
        false
    }

    /// Waits for a permit (or for every holder to be idle for `LONG_WAIT`)
    /// and keeps it for a slice.
    pub(crate) async fn wait(self) {
        loop {
            match tokio::time::timeout(LONG_WAIT, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => {
                    let mut slot = self.held.lock().unwrap_or_else(PoisonError::into_inner);
                    *slot = Some((permit, Instant::now()));
                    return;
                }
                Ok(Err(_closed)) => return,
                // Holders idle: go on anyway.
                Err(_) if now_ms().saturating_sub(self.ticked.load(Ordering::Relaxed)) >= LONG_WAIT_MS => return,
                Err(_) => {}
            }
        }
    }

    /// Before growing memory: waits for a turn once the call has grown past
    /// [`BIG_GROWTH`] and holds none.
    pub(crate) async fn before_growing(&self, grown: usize) {
        if grown >= BIG_GROWTH && !self.running() {
            self.clone().wait().await;
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(permits: usize) -> (Turn, Turn) {
        let (permits, ticked) = (Arc::new(Semaphore::new(permits)), Arc::new(AtomicU64::new(0)));
        (Turn::new(permits.clone(), ticked.clone()), Turn::new(permits, ticked))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn growing_big_waits_for_a_running_holder_and_goes_on_when_it_ends() {
        let (holder, grower) = turns(1);
        holder.clone().wait().await;
        assert!(holder.running(), "the holder runs its slice");
        // Small growth never waits.
        tokio::time::timeout(Duration::from_secs(1), grower.before_growing(BIG_GROWTH - 1)).await.unwrap();
        let waiting = tokio::spawn({
            let grower = grower.clone();
            async move { grower.before_growing(BIG_GROWTH).await }
        });
        // While the holder keeps running (ticking), the big grower waits...
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            holder.ticked.store(now_ms(), Ordering::Relaxed);
        }
        assert!(!waiting.is_finished(), "a big growth must wait for a permit while its holder runs");
        // ...and goes on once the holder's call ends.
        drop(holder);
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert!(grower.running(), "the grower now holds the permit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_call_asking_the_host_for_work_waits_for_a_running_holder() {
        let (holder, asker) = turns(1);
        holder.clone().wait().await;
        // A short call never waits.
        assert!(!tokio::time::timeout(Duration::from_secs(1), asker.wait_if_long()).await.unwrap());
        let asker = asker.long_from_start(true);
        let waiting = tokio::spawn({
            let asker = asker.clone();
            async move { asker.wait_if_long().await }
        });
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            holder.ticked.store(now_ms(), Ordering::Relaxed);
        }
        assert!(!waiting.is_finished(), "a long call's log line waits while the holder runs");
        drop(holder);
        assert!(tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap(), "it waited");
        assert!(asker.running(), "and holds the permit now");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_goes_on_when_every_holder_is_suspended() {
        let (holder, waiter) = turns(1);
        holder.clone().wait().await;
        // The holder never ticks again (suspended on I/O): after LONG_WAIT
        // the waiter runs without a permit rather than stall.
        tokio::time::timeout(Duration::from_secs(5), waiter.clone().wait()).await.unwrap();
        assert!(!waiter.running(), "it went on without the permit the idle holder keeps");
        drop(holder);
    }
}
