//! Mutating and reading carts (route and event-handler worlds): the
//! per-entity state machines served by `cart` plugins, scoped by the host to
//! the tenant of the current request or event. A mutation goes through the
//! cart's mailbox like one sent to `POST /carts/PLUGIN/ID` and returns once
//! it is durable.
//!
//! The operator grants each cart plugin in the caller's sidecar; any other
//! is refused with [`CartError::NotGranted`]:
//!
//! ```toml
//! [carts]
//! plugins = ["cart"]
//! ```
//!
//! ```no_run
//! use corral_sdk::carts;
//!
//! # fn example() -> Result<(), carts::CartError> {
//! let applied = carts::mutate_json("cart", "c-42", "add_item", &serde_json::json!({"sku": "tea", "qty": 1}))?;
//! assert!(applied.version >= 1);
//! // A retry with the same key applies nothing and returns the recorded result.
//! carts::Cart::new("cart", "c-42").idempotency_key("order-7").mutate("checkout", b"{}")?;
//! if let Some(current) = carts::get("cart", "c-42")? {
//!     let _state: serde_json::Value = current.json().unwrap_or_default();
//! }
//! # Ok(())
//! # }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Failure;
use crate::bindings::route::corral::plugin::carts as host;
pub use crate::bindings::route::corral::plugin::carts::{Applied, CartError, CartState};

/// One cart: its plugin and id, and optionally the idempotency key of the
/// next mutation. (Not to be confused with the [`Cart`](crate::Cart) trait,
/// which a cart plugin implements.)
#[derive(Debug, Clone, Copy)]
pub struct Cart<'a> {
    plugin: &'a str,
    id: &'a str,
    idempotency_key: Option<&'a str>,
}

impl<'a> Cart<'a> {
    /// The cart `id` of the cart plugin `plugin`.
    pub fn new(plugin: &'a str, id: &'a str) -> Self {
        Cart { plugin, id, idempotency_key: None }
    }

    /// Makes the mutation safe to retry: the host applies one mutation per
    /// key and cart, and answers a repeat with the recorded result.
    pub fn idempotency_key(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Applies a mutation of `kind` and returns the new state once durable.
    pub fn mutate(self, kind: &str, payload: &[u8]) -> Result<Applied, CartError> {
        host::mutate(self.plugin, self.id, kind, payload, self.idempotency_key)
    }

    /// Applies a mutation with a JSON payload.
    pub fn mutate_json<T: Serialize + ?Sized>(self, kind: &str, payload: &T) -> Result<Applied, CartError> {
        let payload = serde_json::to_vec(payload).map_err(|e| CartError::Invalid(format!("payload: {e}")))?;
        self.mutate(kind, &payload)
    }

    /// The cart's current state; none if it was never mutated.
    pub fn get(self) -> Result<Option<CartState>, CartError> {
        host::get(self.plugin, self.id)
    }
}

/// Applies a mutation to a cart and returns its new state once durable.
pub fn mutate(plugin: &str, id: &str, kind: &str, payload: &[u8]) -> Result<Applied, CartError> {
    Cart::new(plugin, id).mutate(kind, payload)
}

/// Applies a mutation with a JSON payload.
pub fn mutate_json<T: Serialize + ?Sized>(
    plugin: &str,
    id: &str,
    kind: &str,
    payload: &T,
) -> Result<Applied, CartError> {
    Cart::new(plugin, id).mutate_json(kind, payload)
}

/// A cart's current state; none if it was never mutated.
pub fn get(plugin: &str, id: &str) -> Result<Option<CartState>, CartError> {
    Cart::new(plugin, id).get()
}

impl Applied {
    /// The new state parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        crate::json::from_bytes(&self.state)
    }
}

impl CartState {
    /// The state parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        crate::json::from_bytes(&self.state)
    }
}
