//! [`Carts`]: every cart in use has a mailbox; calls are routed to it,
//! idle ones are evicted, and the cache of carts in memory is bounded. In
//! a cluster, a call for a cart another node owns is forwarded there once
//! ([`Peers`]); a call whose cart moved while it waited is routed again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use corral_storage::carts::CartKey;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::carts::machine::Machines;
use crate::carts::mailbox::{self, Command, Shared};
use crate::carts::owners::Owners;
use crate::carts::peers::{PeerError, Peers};
use crate::carts::request::{CartError, CartReply, MutateRequest};
use crate::carts::store::CartStore;
use crate::carts::verify::{self, Verification};
use crate::config::CartSettings;
use crate::metrics::CartMetrics;

struct Entry {
    sender: mpsc::UnboundedSender<Command>,
    /// Commands sent and not yet answered; 0 means the mailbox is idle.
    depth: Arc<AtomicUsize>,
    last_used: Instant,
    task: JoinHandle<()>,
    /// In a cluster, the epoch this node owns the cart under (0: not, or
    /// not yet).
    epoch: Arc<AtomicU64>,
}

/// Where carts live in a cluster: who owns them, how to reach the owner.
pub struct CartCluster {
    /// The carts' leases.
    pub owners: Arc<Owners>,
    /// The other nodes.
    pub peers: Arc<dyn Peers>,
}

/// The carts of a host: routes each call to its cart's mailbox.
pub struct Carts {
    shared: Arc<Shared>,
    settings: CartSettings,
    mailboxes: Mutex<HashMap<CartKey, Entry>>,
    cluster: Option<CartCluster>,
    /// In a cluster: the owner a call was last forwarded to, per cart, so
    /// the next call goes straight there.
    owners_seen: Mutex<HashMap<CartKey, (String, Instant)>>,
}

type Reply = oneshot::Sender<Result<CartReply, CartError>>;

/// Which failed calls [`Carts::route`] sends again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Again {
    /// Only calls that were surely not applied (the cart moved).
    WhenMoved,
    /// Also calls whose outcome is unknown: reads, and mutations with a
    /// client id (a repeat is answered from the record).
    AlsoUnknown,
}

/// How long a cart's owner is remembered without asking again.
const OWNER_REMEMBERED: Duration = Duration::from_secs(2);
/// Most owners remembered (beyond it, all are forgotten at once).
const MAX_REMEMBERED: usize = 100_000;

/// How often a call whose cart moved under it is routed (tried) at most,
/// pausing 100, 200, then 400 ms between tries (about 3 s in all): long
/// enough for a closing node's leases to be given up and its peers to see
/// it gone, and often enough that a dead owner's cart is taken over soon
/// after its lease expires.
const MAX_REROUTES: u32 = 10;
const REROUTE_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

impl Carts {
    /// Carts whose journals are in `store`, applying mutations with
    /// `machines`; in a cluster, owned per node as `cluster` says.
    pub(crate) fn new(
        machines: Arc<dyn Machines>,
        store: Arc<dyn CartStore>,
        cluster: Option<CartCluster>,
        metrics: CartMetrics,
        settings: CartSettings,
    ) -> Arc<Carts> {
        let owners = cluster.as_ref().map(|cluster| cluster.owners.clone());
        let shared = Arc::new(Shared { machines, store, owners, metrics });
        Arc::new(Carts {
            shared,
            settings,
            mailboxes: Mutex::new(HashMap::new()),
            cluster,
            owners_seen: Mutex::default(),
        })
    }

    /// Carts on one node, journaled in its LMDB (`storage`). `announce` is
    /// told the log's head after a commit that published events.
    pub fn embedded(
        machines: Arc<dyn Machines>,
        storage: corral_storage::Storage,
        announce: impl Fn(u64) + Send + 'static,
        metrics: CartMetrics,
        settings: CartSettings,
    ) -> anyhow::Result<Arc<Carts>> {
        let store = Arc::new(crate::carts::store::embedded::LmdbCarts::start(storage, announce)?);
        Ok(Carts::new(machines, store, None, metrics, settings))
    }

    /// Applies a mutation to a cart and returns its new state once durable.
    pub async fn mutate(&self, key: CartKey, request: MutateRequest) -> Result<CartReply, CartError> {
        check_key(&key)?;
        if let Some(id) = &request.client_id {
            check_id("client id", id)?;
            key.check_fits(Some(id)).map_err(CartError::Invalid)?;
        }
        // Refused where it enters, before it is queued or forwarded.
        if let Some(machine) = self.shared.machines.machine(&key.plugin)
            && let Err(violation) = machine.check_mutation(&request.kind, &request.payload)
        {
            return Err(CartError::InvalidPayload {
                plugin: key.plugin,
                kind: request.kind,
                violation: Box::new(violation),
            });
        }
        if self.cluster.is_none() {
            return self.call(key, |reply| Command::Mutate { request, arrived: Instant::now(), reply }).await;
        }
        let local = |reply| Command::Mutate { request: request.clone(), arrived: Instant::now(), reply };
        let remote = |peers: Arc<dyn Peers>, address: String| {
            let (key, request) = (key.clone(), request.clone());
            async move { peers.mutate(&address, &key, &request).await }
        };
        let again = if request.client_id.is_some() { Again::AlsoUnknown } else { Again::WhenMoved };
        self.route(&key, request.forwarded, again, local, remote).await
    }

    /// The cart's current state (version 0 and no state for a new cart).
    pub async fn state(&self, key: CartKey) -> Result<CartReply, CartError> {
        self.state_for(key, false).await
    }

    /// The cart's current state, for a call another node forwarded
    /// (`forwarded`: served here, never forwarded again).
    pub async fn state_for(&self, key: CartKey, forwarded: bool) -> Result<CartReply, CartError> {
        check_key(&key)?;
        if self.shared.machines.machine(&key.plugin).is_none() {
            return Err(CartError::UnknownPlugin { plugin: key.plugin });
        }
        let local = |reply| Command::Get { forwarded, reply };
        let remote = |peers: Arc<dyn Peers>, address: String| {
            let key = key.clone();
            async move { peers.state(&address, &key).await }
        };
        self.route(&key, forwarded, Again::AlsoUnknown, local, remote).await
    }

    /// Sends a call to the cart's mailbox here, or (in a cluster) to the
    /// node that owns the cart; routes it again, after a pause, while the
    /// cart is moving.
    async fn route<F>(
        &self,
        key: &CartKey,
        forwarded: bool,
        again: Again,
        local: impl Fn(Reply) -> Command,
        remote: impl Fn(Arc<dyn Peers>, String) -> F,
    ) -> Result<CartReply, CartError>
    where
        F: std::future::Future<Output = Result<CartReply, PeerError>>,
    {
        let Some(cluster) = &self.cluster else { return self.call(key.clone(), local).await };
        let mut result =
            Err(CartError::Moved { plugin: key.plugin.clone(), cart: key.cart.clone(), detail: String::new() });
        for attempt in 0..MAX_REROUTES {
            if attempt > 0 {
                tokio::time::sleep(REROUTE_PAUSE * (1 << attempt.min(3))).await;
            }
            let owner = match self.remembered(key) {
                Some(node) if !forwarded => Some(node),
                _ => match self.call(key.clone(), &local).await {
                    Err(CartError::Elsewhere { node, .. }) if !forwarded => Some(node),
                    other => {
                        result = other;
                        None
                    }
                },
            };
            if let Some(node) = owner {
                result = self.forward(cluster, key, node, &remote).await;
            }
            let retry = match &result {
                Err(error) if error.is_moved() => true,
                // The owner was reached but did not answer (it is stopping,
                // or its connection broke): safe to send again when the
                // call is a read or carries a client id.
                Err(CartError::Forwarded { code: tonic::Code::Unavailable, .. }) => again == Again::AlsoUnknown,
                _ => false,
            };
            if !retry {
                break;
            }
            self.owners_seen.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
        }
        result
    }

    /// The node that owned the cart a moment ago, unless this node has a
    /// mailbox for it.
    fn remembered(&self, key: &CartKey) -> Option<String> {
        let seen = self.owners_seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (node, at) = seen.get(key)?;
        if at.elapsed() >= OWNER_REMEMBERED || self.lock().get(key).is_some_and(|entry| !entry.task.is_finished()) {
            return None;
        }
        Some(node.clone())
    }

    /// Sends a command to the cart's mailbox here and waits for its answer.
    async fn call(&self, key: CartKey, command: impl FnOnce(Reply) -> Command) -> Result<CartReply, CartError> {
        let (reply, answer) = oneshot::channel();
        self.send(key, command(reply))?;
        answer.await.unwrap_or_else(|_| Err(CartError::Storage("the cart's mailbox stopped".into())))
    }

    /// Sends a call to the node that owns the cart.
    async fn forward<F>(
        &self,
        cluster: &CartCluster,
        key: &CartKey,
        node: String,
        send: impl Fn(Arc<dyn Peers>, String) -> F,
    ) -> Result<CartReply, CartError>
    where
        F: std::future::Future<Output = Result<CartReply, PeerError>>,
    {
        let forwards = &self.shared.metrics.forwards;
        let unreachable = |detail: String| {
            forwards.with_label_values(&["unreachable"]).inc();
            CartError::Moved {
                plugin: key.plugin.clone(),
                cart: key.cart.clone(),
                detail: format!(
                    "its owner, node {node}, cannot be reached ({detail}); another node takes the cart over once \
                     that node's lease expires (within the lease TTL): retry"
                ),
            }
        };
        let Some(address) = cluster.owners.address(&node).await else {
            return Err(unreachable("it is not a live member".into()));
        };
        match send(cluster.peers.clone(), address).await {
            Ok(reply) => {
                forwards.with_label_values(&["ok"]).inc();
                let mut seen = self.owners_seen.lock().unwrap_or_else(PoisonError::into_inner);
                if seen.len() >= MAX_REMEMBERED {
                    seen.clear();
                }
                seen.insert(key.clone(), (node, Instant::now()));
                Ok(reply)
            }
            Err(PeerError::Unreachable(detail)) => {
                cluster.owners.suspect(&node);
                Err(unreachable(detail))
            }
            Err(PeerError::Answered(error)) => {
                forwards.with_label_values(&["error"]).inc();
                Err(error)
            }
        }
    }

    /// Replays the cart's whole journal from empty with the current plugin
    /// and compares every step with what was recorded.
    pub async fn verify(&self, key: CartKey) -> Result<Verification, CartError> {
        check_key(&key)?;
        let Some(machine) = self.shared.machines.machine(&key.plugin) else {
            return Err(CartError::UnknownPlugin { plugin: key.plugin });
        };
        verify::run(self.shared.store.as_ref(), machine.as_ref(), &key).await
    }

    /// Stops taking carts (in a cluster, new carts go to other nodes: the
    /// peers are told at once) and ends every mailbox once its queued calls
    /// are answered, giving its lease up: how a node leaves without failing
    /// a call.
    pub async fn close(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.owners.close();
            let held = self.held();
            let addresses = cluster.owners.peer_addresses().await;
            let told = addresses.iter().map(|address| cluster.peers.closing(address, &held));
            for (address, told) in addresses.iter().zip(futures_util::future::join_all(told).await) {
                if let Err(error) = told {
                    tracing::warn!(peer = %address, "telling a peer this node leaves failed: {error:?}");
                }
            }
        }
        // Every mailbox is told at once (its sender dropped), then awaited:
        // they finish their queues side by side.
        let tasks: Vec<JoinHandle<()>> = self.lock().drain().map(|(_, entry)| entry.task).collect();
        self.shared.metrics.active.set(0);
        for task in tasks {
            let _ = task.await;
        }
    }

    /// The carts this node owns now, with the epoch of each (in a cluster;
    /// on one node, every cart in memory, at epoch 0).
    pub fn held(&self) -> Vec<(CartKey, u64)> {
        let mailboxes = self.lock();
        let mut held: Vec<(CartKey, u64)> = mailboxes
            .iter()
            .map(|(key, entry)| (key.clone(), entry.epoch.load(Ordering::Acquire)))
            .filter(|(_, epoch)| self.cluster.is_none() || *epoch > 0)
            .collect();
        held.sort();
        held
    }

    /// The epoch this node owns the cart under, if it does.
    pub fn owner_epoch(&self, key: &CartKey) -> Option<u64> {
        let epoch = self.lock().get(key)?.epoch.load(Ordering::Acquire);
        (epoch > 0).then_some(epoch)
    }

    /// A peer says it is leaving: no more carts are placed on it.
    pub fn peer_leaving(&self, node: &str) {
        if let Some(cluster) = &self.cluster {
            cluster.owners.peer_leaving(node);
        }
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
        let plugin_max = self.shared.machines.machine(&key.plugin).and_then(|machine| machine.max_queue());
        let max = plugin_max.unwrap_or(self.settings.max_queued);
        let mut mailboxes = self.lock();
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
            // The mailbox task is gone (in a cluster, the cart was found to
            // be another node's, or moved; else it panicked): start a fresh
            // one, which finds the cart's owner and reloads it.
            if entry.task.is_finished() && self.cluster.is_none() {
                tracing::warn!(plugin = %key.plugin, cart = %key.cart, "a cart mailbox stopped unexpectedly; restarting it");
            }
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
        let epoch = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(mailbox::run(self.shared.clone(), key, receiver, depth.clone(), epoch.clone()));
        Entry { sender, depth, last_used: Instant::now(), task, epoch }
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
