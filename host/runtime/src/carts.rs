//! `corral:plugin/carts`: route and event-handler plugins mutating and
//! reading carts through a [`CartClient`], always for the tenant of the
//! call and only for the cart plugins granted in their sidecar. The runtime
//! checks the grant, so a client never sees a call a plugin was not allowed.
//!
//! The deterministic worlds never import this: a cart applying a mutation
//! cannot call another cart, so a mailbox never waits on itself.

use crate::bindings::carts::{Applied, CartError as WitCartError, CartState as WitCartState, Host};
use crate::call::{CallContext, Identity};

/// Largest mutation payload a guest may send, in bytes.
pub const MAX_PAYLOAD_BYTES: u64 = 1024 * 1024;

/// A mutation a plugin asked for, with the context the host adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartMutation {
    /// One of the cart plugin's mutation kinds.
    pub kind: String,
    /// The mutation body.
    pub payload: Vec<u8>,
    /// Makes a retry safe: a repeat returns the recorded result.
    pub idempotency_key: Option<String>,
    /// W3C traceparent of the calling request or event, carried into the
    /// events the mutation publishes.
    pub traceparent: Option<String>,
}

/// A mutation once it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartApplied {
    /// The cart's version after it.
    pub version: u64,
    /// The cart's new state.
    pub state: Vec<u8>,
    /// Sequences of the events the mutation published.
    pub events: Vec<u64>,
}

/// A cart's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartState {
    /// Mutations applied so far.
    pub version: u64,
    /// The state the last of them left.
    pub state: Vec<u8>,
}

/// Why a cart call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartsError {
    /// No cart plugin of that name.
    #[error("no cart plugin named {0:?}")]
    NoSuchCartPlugin(String),
    /// The plugin does not declare the kind.
    #[error("unknown mutation kind: {0}")]
    UnknownKind(String),
    /// A malformed cart id or idempotency key.
    #[error("invalid cart call: {0}")]
    Invalid(String),
    /// The cart plugin refused the mutation.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The cart plugin failed, or the cart cannot be served.
    #[error("cart failed: {0}")]
    Failed(String),
    /// The carts could not take the call.
    #[error("carts unavailable: {0}")]
    Unavailable(String),
}

/// Applies mutations to carts and reads them: the host's carts, reached
/// through the same mailboxes as its HTTP and gRPC APIs.
#[async_trait::async_trait]
pub trait CartClient: Send + Sync + 'static {
    /// Applies `mutation` to the cart `id` of `plugin` for `tenant` and
    /// returns once it is durable.
    async fn mutate(
        &self,
        tenant: &str,
        plugin: &str,
        id: &str,
        mutation: CartMutation,
    ) -> Result<CartApplied, CartsError>;
    /// The cart's current state; none for a cart never mutated.
    async fn get(&self, tenant: &str, plugin: &str, id: &str) -> Result<Option<CartState>, CartsError>;
}

impl From<CartsError> for WitCartError {
    fn from(error: CartsError) -> Self {
        match error {
            CartsError::NoSuchCartPlugin(name) => WitCartError::NoSuchCartPlugin(name),
            CartsError::UnknownKind(reason) => WitCartError::UnknownKind(reason),
            CartsError::Invalid(reason) => WitCartError::Invalid(reason),
            CartsError::Rejected(reason) => WitCartError::Rejected(reason),
            CartsError::Failed(reason) => WitCartError::Failed(reason),
            CartsError::Unavailable(reason) => WitCartError::Unavailable(reason),
        }
    }
}

/// What a call's `carts` import reaches: the client chosen for the call,
/// the plugin whose grants it checks, and the call's tenant.
pub(crate) struct CartsHost<'a> {
    pub(crate) client: &'a dyn CartClient,
    pub(crate) plugin: &'a Identity,
    pub(crate) call: &'a CallContext,
}

crate::bindings::link_view!(carts, CartsHost);

impl CartsHost<'_> {
    /// Checks that the operator granted the cart plugin `plugin` to this plugin.
    fn cart_granted(&self, plugin: &str) -> Result<(), WitCartError> {
        if self.plugin.cart_grants.iter().any(|granted| granted == plugin) {
            return Ok(());
        }
        Err(WitCartError::NotGranted(format!(
            "cart plugin {plugin:?} is not granted to plugin {}; add it to [carts] plugins in its sidecar {} \
             ([carts] plugins = [\"{plugin}\"])",
            self.plugin.name, self.plugin.sidecar
        )))
    }
}

impl Host for CartsHost<'_> {
    #[tracing::instrument(level = "trace", name = "carts.mutate", skip_all, fields(plugin = %plugin, kind = %kind))]
    async fn mutate(
        &mut self,
        plugin: String,
        id: String,
        kind: String,
        payload: Vec<u8>,
        idempotency_key: Option<String>,
    ) -> Result<Applied, WitCartError> {
        self.cart_granted(&plugin)?;
        if payload.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(WitCartError::Invalid(format!(
                "the payload is {} bytes, over the limit of {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        let mutation = CartMutation { kind, payload, idempotency_key, traceparent: self.call.traceparent.clone() };
        let applied = self.client.mutate(&self.call.tenant, &plugin, &id, mutation).await?;
        Ok(Applied { version: applied.version, state: applied.state, events: applied.events })
    }

    #[tracing::instrument(level = "trace", name = "carts.get", skip_all, fields(plugin = %plugin))]
    async fn get(&mut self, plugin: String, id: String) -> Result<Option<WitCartState>, WitCartError> {
        self.cart_granted(&plugin)?;
        let state = self.client.get(&self.call.tenant, &plugin, &id).await?;
        Ok(state.map(|state| WitCartState { version: state.version, state: state.state }))
    }
}
