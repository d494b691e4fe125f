//! Carts: one writer per cart. Every (tenant, plugin, cart id) that is in
//! use has a mailbox — a task that owns the cart's state in memory and
//! applies its mutations strictly one at a time, in arrival order — while
//! different carts run in parallel.
//!
//! A mutation is applied in the sandbox, then its journal entry, the
//! snapshot (when due), the idempotency record and its outbox events are
//! committed in one LMDB transaction ([`Journal`], group commit across
//! carts); only then does the caller get the new state. Idle carts are
//! evicted; loading one is the latest snapshot plus a replay of the later
//! journal entries, checked against their recorded digests.
//!
//! # Layout
//!
//! - [`machine`]: what applies mutations ([`Machine`]: a plugin or native code).
//! - `mailbox`: the per-cart task.
//! - `verify`: replaying a whole journal against the stored state.
//! - [`client`]: the runtime's `CartClient` over [`Carts`], behind the
//!   `carts` import of route and event-handler plugins.
//! - `http` / `grpc` (crate level): the APIs in front of [`Carts`].

pub mod client;
pub mod machine;
mod mailbox;
mod verify;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corral_runtime::InvokeError;
use corral_storage::Storage;
use corral_storage::carts::{CartKey, Journal};
use tokio::sync::{mpsc, oneshot, watch};

pub use client::CartsClient;
pub use machine::{Machine, MachineError, Machines};
pub use verify::{Divergence, Verification};

use crate::metrics::CartMetrics;

/// How many carts stay in memory, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct CartSettings {
    /// A cart without commands for this long is evicted.
    pub idle: Duration,
    /// At most this many carts in memory; beyond it the least recently used
    /// idle cart is evicted.
    pub max_active: usize,
}

impl Default for CartSettings {
    fn default() -> Self {
        CartSettings { idle: Duration::from_secs(60), max_active: 10_000 }
    }
}

/// A mutation as a caller sends it.
#[derive(Debug, Clone, Default)]
pub struct MutateRequest {
    /// One of the plugin's mutation kinds.
    pub kind: String,
    /// The mutation body.
    pub payload: Vec<u8>,
    /// Idempotency id; a repeat returns the recorded result.
    pub client_id: Option<String>,
    /// W3C traceparent, carried into the outbox events.
    pub traceparent: Option<String>,
}

/// A cart's state as returned to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartReply {
    /// Mutations applied so far.
    pub version: u64,
    /// The state (none before the first mutation).
    pub state: Option<Vec<u8>>,
    /// Sequences of the events this mutation published.
    pub events: Vec<u64>,
    /// True when a repeated client id was answered from the record.
    pub repeated: bool,
}

/// Why a cart call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CartError {
    /// No cart plugin has that name.
    #[error("no cart plugin named {plugin:?}")]
    UnknownPlugin {
        /// The name asked for.
        plugin: String,
    },
    /// The plugin does not declare the mutation kind.
    #[error("cart plugin {plugin} has no mutation kind {kind:?}; it accepts: {}", declared.join(", "))]
    UnknownKind {
        /// Plugin.
        plugin: String,
        /// The kind asked for.
        kind: String,
        /// The kinds it declares.
        declared: Vec<String>,
    },
    /// The request itself is malformed (bad id, bad body).
    #[error("{0}")]
    Invalid(String),
    /// The plugin refused the mutation; nothing changed.
    #[error("cart plugin {plugin} rejected the mutation: {code}: {message}")]
    Rejected {
        /// Plugin.
        plugin: String,
        /// The guest's code.
        code: String,
        /// The guest's message.
        message: String,
    },
    /// The plugin failed (trap, fuel, timeout, busy); nothing changed.
    #[error(transparent)]
    Failed(InvokeError),
    /// Replaying the journal did not reproduce the recorded state: the
    /// plugin is not deterministic, or not the version that wrote it.
    #[error(
        "cart {cart} of plugin {plugin}: replaying version {version} did not reproduce the recorded state ({detail}); \
         the cart is not served until this is resolved (see `host cart verify {plugin} {cart}`)"
    )]
    Diverged {
        /// Plugin.
        plugin: String,
        /// Cart id.
        cart: String,
        /// The journal entry that diverged.
        version: u64,
        /// What differed.
        detail: String,
    },
    /// Storage failed; the mutation was not acknowledged.
    #[error("cart storage failed: {0}")]
    Storage(String),
}

impl CartError {
    /// A short stable label for metrics and JSON bodies.
    pub fn label(&self) -> &'static str {
        match self {
            CartError::UnknownPlugin { .. } => "unknown_plugin",
            CartError::UnknownKind { .. } => "unknown_kind",
            CartError::Invalid(_) => "invalid_request",
            CartError::Rejected { .. } => "rejected",
            CartError::Failed(error) => error.kind.label(),
            CartError::Diverged { .. } => "diverged",
            CartError::Storage(_) => "storage",
        }
    }
}

/// A command for one cart's mailbox.
enum Command {
    Mutate { request: MutateRequest, arrived: Instant, reply: oneshot::Sender<Result<CartReply, CartError>> },
    Get { reply: oneshot::Sender<Result<CartReply, CartError>> },
}

/// What every mailbox shares.
struct Shared {
    machines: Arc<dyn Machines>,
    storage: Storage,
    journal: Journal,
    metrics: CartMetrics,
}

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
        }
        let (reply, answer) = oneshot::channel();
        self.send(key, Command::Mutate { request, arrived: Instant::now(), reply });
        answer.await.unwrap_or_else(|_| Err(CartError::Storage("the cart's mailbox stopped".into())))
    }

    /// The cart's current state (version 0 and no state for a new cart).
    pub async fn state(&self, key: CartKey) -> Result<CartReply, CartError> {
        check_key(&key)?;
        if self.shared.machines.machine(&key.plugin).is_none() {
            return Err(CartError::UnknownPlugin { plugin: key.plugin });
        }
        let (reply, answer) = oneshot::channel();
        self.send(key, Command::Get { reply });
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

    /// Queues a command in the cart's mailbox, starting one if needed. The
    /// lock makes "find or start, then send" atomic with eviction.
    fn send(&self, key: CartKey, command: Command) {
        let mut mailboxes = self.lock();
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
    if key.tenant.contains('\0') {
        return Err(CartError::Invalid("the tenant must not contain NUL bytes".into()));
    }
    Ok(())
}

fn check_id(what: &str, id: &str) -> Result<(), CartError> {
    if id.is_empty() || id.len() > 256 || id.contains('\0') {
        return Err(CartError::Invalid(format!("the {what} must be 1 to 256 bytes without NUL, got {id:?}")));
    }
    Ok(())
}
