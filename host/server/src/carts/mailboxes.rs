//! [`Carts`]: every cart in use has a mailbox; calls are routed to it,
//! idle ones are evicted, and the cache of carts in memory is bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corral_storage::Storage;
use corral_storage::carts::CartKey;
use corral_storage::journal::Journal;
use tokio::sync::{mpsc, oneshot, watch};

use crate::carts::machine::Machines;
use crate::carts::mailbox::{self, Command, Shared};
use crate::carts::request::{CartError, CartReply, MutateRequest};
use crate::carts::verify::{self, Verification};
use crate::config::CartSettings;
use crate::metrics::CartMetrics;

struct Entry {
    sender: mpsc::UnboundedSender<Command>,
    /// Commands sent and not yet answered; 0 means the mailbox is idle.
    depth: Arc<AtomicUsize>,
    last_used: Instant,
}

/// The carts of a host: routes each call to its cart's mailbox.
pub struct Carts {
    shared: Arc<Shared>,
    settings: CartSettings,
    mailboxes: Mutex<HashMap<CartKey, Entry>>,
}

impl Carts {
    /// Carts over `storage`, applying mutations with `machines`. `announce`
    /// is told the log's head after a commit that published events.
    pub fn new(
        machines: Arc<dyn Machines>,
        storage: Storage,
        announce: impl Fn(u64) + Send + 'static,
        metrics: CartMetrics,
        settings: CartSettings,
    ) -> anyhow::Result<Arc<Carts>> {
        let journal = Journal::start(storage.clone(), announce)?;
        let shared = Arc::new(Shared { machines, storage, journal, metrics });
        Ok(Arc::new(Carts { shared, settings, mailboxes: Mutex::new(HashMap::new()) }))
    }

    /// Applies a mutation to a cart and returns its new state once durable.
    pub async fn mutate(&self, key: CartKey, request: MutateRequest) -> Result<CartReply, CartError> {
        check_key(&key)?;
        if let Some(id) = &request.client_id {
            check_id("client id", id)?;
            key.check_fits(Some(id)).map_err(CartError::Invalid)?;
        }
        let (reply, answer) = oneshot::channel();
        self.send(key, Command::Mutate { request, arrived: Instant::now(), reply })?;
        answer.await.unwrap_or_else(|_| Err(CartError::Storage("the cart's mailbox stopped".into())))
    }

    /// The cart's current state (version 0 and no state for a new cart).
    pub async fn state(&self, key: CartKey) -> Result<CartReply, CartError> {
        check_key(&key)?;
        if self.shared.machines.machine(&key.plugin).is_none() {
            return Err(CartError::UnknownPlugin { plugin: key.plugin });
        }
        let (reply, answer) = oneshot::channel();
        self.send(key, Command::Get { reply })?;
        answer.await.unwrap_or_else(|_| Err(CartError::Storage("the cart's mailbox stopped".into())))
    }

    /// Replays the cart's whole journal from empty with the current plugin
    /// and compares every step with what was recorded.
    pub async fn verify(&self, key: CartKey) -> Result<Verification, CartError> {
        check_key(&key)?;
        let Some(machine) = self.shared.machines.machine(&key.plugin) else {
            return Err(CartError::UnknownPlugin { plugin: key.plugin });
        };
        verify::run(&self.shared.storage, machine.as_ref(), &key).await
    }

    /// Carts in memory now.
    pub fn active(&self) -> usize {
        self.lock().len()
    }

    /// Evicts every idle cart (as if each had been idle too long).
    pub fn evict_idle(&self) -> usize {
        self.evict(|_| true)
    }

    /// Evicts idle carts past the idle timeout, until told to stop.
    pub async fn sweep(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every = (self.settings.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let idle = self.settings.idle;
            self.evict(|entry| entry.last_used.elapsed() >= idle);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CartKey, Entry>> {
        self.mailboxes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops idle mailboxes chosen by `which`: with no sender left, the
    /// mailbox task ends. Only idle ones (nothing queued, nothing running),
    /// so a cart is never written by two mailboxes at once.
    fn evict(&self, which: impl Fn(&Entry) -> bool) -> usize {
        let mut mailboxes = self.lock();
        let before = mailboxes.len();
        mailboxes.retain(|_, entry| entry.depth.load(Ordering::Acquire) > 0 || !which(entry));
        let evicted = before - mailboxes.len();
        self.shared.metrics.evictions.inc_by(evicted as u64);
        self.shared.metrics.active.set(mailboxes.len() as i64);
        evicted
    }

    /// Queues a command in the cart's mailbox, starting one if needed; a
    /// mailbox already holding its most commands refuses it. The lock makes
    /// "find or start, then send" atomic with eviction.
    fn send(&self, key: CartKey, command: Command) -> Result<(), CartError> {
        let mut mailboxes = self.lock();
        let max = self.settings.max_queued;
        if mailboxes.get(&key).is_some_and(|entry| entry.depth.load(Ordering::Acquire) >= max) {
            return Err(CartError::Overloaded { plugin: key.plugin, cart: key.cart, max });
        }
        if !mailboxes.contains_key(&key) && mailboxes.len() >= self.settings.max_active {
            let oldest = mailboxes
                .iter()
                .filter(|(_, entry)| entry.depth.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                mailboxes.remove(&oldest);
                self.shared.metrics.evictions.inc();
            }
        }
        let entry = mailboxes.entry(key.clone()).or_insert_with(|| self.start(key.clone()));
        entry.last_used = Instant::now();
        entry.depth.fetch_add(1, Ordering::AcqRel);
        self.shared.metrics.mailbox_depth.inc();
        if let Err(mpsc::error::SendError(command)) = entry.sender.send(command) {
            // The mailbox task is gone (it panicked): start a fresh one,
            // which reloads the cart from storage.
            tracing::warn!(plugin = %key.plugin, cart = %key.cart, "a cart mailbox stopped unexpectedly; restarting it");
            let fresh = self.start(key.clone());
            fresh.depth.fetch_add(1, Ordering::AcqRel);
            let _ = fresh.sender.send(command);
            mailboxes.insert(key, fresh);
        }
        self.shared.metrics.active.set(mailboxes.len() as i64);
        Ok(())
    }

    fn start(&self, key: CartKey) -> Entry {
        let (sender, receiver) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        tokio::spawn(mailbox::run(self.shared.clone(), key, receiver, depth.clone()));
        Entry { sender, depth, last_used: Instant::now() }
    }
}

fn check_key(key: &CartKey) -> Result<(), CartError> {
    check_id("cart id", &key.cart)?;
    corral_runtime::tenants::validate_tenant(&key.tenant).map_err(CartError::Invalid)?;
    key.check_fits(None).map_err(CartError::Invalid)
}

fn check_id(what: &str, id: &str) -> Result<(), CartError> {
    if id.is_empty() || id.len() > 256 || id.contains('\0') {
        return Err(CartError::Invalid(format!("the {what} must be 1 to 256 bytes without NUL, got {id:?}")));
    }
    Ok(())
}
