//! The kit's carts: cart plugins loaded beside the plugin under test
//! ([`TestKit::with_cart_plugin`](crate::TestKit::with_cart_plugin)), so a
//! route's or event handler's `carts` calls run the real cart component in
//! memory — one mutation at a time, idempotency keys answered with the
//! recorded result, the outbox published to the scene as the host's
//! journal would publish it. A cart plugin that is not loaded is
//! `no-such-cart-plugin`, as on a host that does not serve it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use corral_runtime::types::Mutation as WitMutation;
use corral_runtime::{
    CartApplied, CartClient, CartMutation, CartState, CartsError, EventSink, InvokeErrorKind, NewEvent, Plugin,
};

use crate::given::CLOCK_START_MS;
use crate::outbox::{Outbox, lock};

/// `(tenant, cart plugin, cart id)`.
type Key = (String, String, String);

/// One cart: its version, state and the results recorded per idempotency key.
#[derive(Debug, Default)]
struct Cart {
    version: u64,
    state: Vec<u8>,
    recorded: BTreeMap<String, CartApplied>,
}

/// The cart plugins and every cart they hold, for one scene.
pub(crate) struct KitCarts {
    /// By name.
    plugins: Mutex<BTreeMap<String, Arc<Plugin>>>,
    /// Where their outbox events go.
    outbox: Arc<Outbox>,
    /// One lock for every cart: one writer at a time, as in a mailbox.
    carts: tokio::sync::Mutex<BTreeMap<Key, Cart>>,
    /// Mutations applied in this scene: numbers ids and the clock.
    applied: AtomicU64,
}

impl KitCarts {
    pub(crate) fn new(plugins: BTreeMap<String, Arc<Plugin>>, outbox: Arc<Outbox>) -> KitCarts {
        let plugins = Mutex::new(plugins);
        KitCarts { plugins, outbox, carts: tokio::sync::Mutex::default(), applied: AtomicU64::new(0) }
    }

    /// Serves the carts of `plugin` as `name` from now on.
    pub(crate) fn add_plugin(&self, name: &str, plugin: Arc<Plugin>) {
        lock(&self.plugins).insert(name.to_string(), plugin);
    }

    fn plugin(&self, name: &str) -> Result<Arc<Plugin>, CartsError> {
        lock(&self.plugins).get(name).cloned().ok_or_else(|| {
            CartsError::NoSuchCartPlugin(format!(
                "no cart plugin {name:?} in the test kit (load it with TestKit::with_cart_plugin, or `carts` in a spec)"
            ))
        })
    }
}

#[async_trait::async_trait]
impl CartClient for KitCarts {
    async fn mutate(
        &self,
        tenant: &str,
        plugin_name: &str,
        id: &str,
        mutation: CartMutation,
    ) -> Result<CartApplied, CartsError> {
        let plugin = self.plugin(plugin_name)?;
        if !plugin.descriptor().mutation_kinds.contains(&mutation.kind) {
            return Err(CartsError::UnknownKind(format!(
                "{plugin_name} declares no mutation kind {:?}",
                mutation.kind
            )));
        }
        let mut carts = self.carts.lock().await;
        let cart = carts.entry((tenant.to_string(), plugin_name.to_string(), id.to_string())).or_default();
        if let Some(recorded) = mutation.idempotency_key.as_ref().and_then(|key| cart.recorded.get(key)) {
            return Ok(recorded.clone());
        }
        let n = self.applied.fetch_add(1, Ordering::SeqCst) + 1;
        let wit = WitMutation {
            id: mutation.idempotency_key.clone().unwrap_or_else(|| format!("cart-mut-{n}")),
            entity: id.to_string(),
            kind: mutation.kind,
            timestamp_ms: CLOCK_START_MS + n * 1000,
            payload: mutation.payload,
        };
        let state = (cart.version > 0).then_some(cart.state.as_slice());
        let outcome = match plugin.apply_mutation(tenant, state, &wit).await {
            Ok(called) => called.value,
            Err(error) => {
                return Err(match error.kind {
                    InvokeErrorKind::Guest { code, message } => CartsError::Rejected(format!("{code}: {message}")),
                    _ => CartsError::Failed(format!("cart plugin {plugin_name}: {error}")),
                });
            }
        };
        let mut sequences = Vec::with_capacity(outcome.events.len());
        for event in outcome.events {
            let published = self
                .outbox
                .publish(NewEvent {
                    topic: event.topic,
                    payload: event.payload,
                    tenant: tenant.to_string(),
                    correlation_id: wit.id.clone(),
                    traceparent: mutation.traceparent.clone(),
                    source: plugin_name.to_string(),
                })
                .await
                .map_err(|e| CartsError::Unavailable(format!("publishing the cart's outbox: {e}")))?;
            sequences.push(published);
        }
        cart.version += 1;
        cart.state = outcome.state;
        let applied = CartApplied { version: cart.version, state: cart.state.clone(), events: sequences };
        if let Some(key) = mutation.idempotency_key {
            cart.recorded.insert(key, applied.clone());
        }
        Ok(applied)
    }

    async fn get(&self, tenant: &str, plugin: &str, id: &str) -> Result<Option<CartState>, CartsError> {
        self.plugin(plugin)?;
        let carts = self.carts.lock().await;
        let key = (tenant.to_string(), plugin.to_string(), id.to_string());
        Ok(carts
            .get(&key)
            .filter(|cart| cart.version > 0)
            .map(|cart| CartState { version: cart.version, state: cart.state.clone() }))
    }
}
