//! The runtime's [`CartClient`] over [`Carts`]: what backs the `carts`
//! import of route and event-handler plugins. Mutations go through the very
//! mailboxes the HTTP and gRPC APIs use (one writer per cart, the reply once
//! durable, idempotency keys honoured, the same metrics).
//!
//! [`Carts`] needs the registry, which needs the runtime, which needs this
//! client: so the client is built empty and bound to the carts once they
//! exist. It holds them weakly, so carts → registry → runtime → client is
//! not a cycle that keeps them alive.

use std::sync::{Arc, OnceLock, Weak};

use corral_runtime::{CartApplied, CartClient, CartMutation, CartState, CartsError};
use corral_storage::carts::CartKey;

use super::{CartError, Carts, MutateRequest};

/// The `carts` import's backend, bound to the host's [`Carts`] once.
#[derive(Default)]
pub struct CartsClient {
    carts: OnceLock<Weak<Carts>>,
}

impl CartsClient {
    /// A client that answers `unavailable` until [`bind`](Self::bind).
    pub fn new() -> Arc<CartsClient> {
        Arc::new(CartsClient::default())
    }

    /// Serves calls with `carts` from now on. Binding twice keeps the first.
    pub fn bind(&self, carts: &Arc<Carts>) {
        if self.carts.set(Arc::downgrade(carts)).is_err() {
            tracing::warn!("the carts client was bound twice; keeping the first carts");
        }
    }

    fn carts(&self) -> Result<Arc<Carts>, CartsError> {
        let Some(carts) = self.carts.get() else {
            return Err(CartsError::Unavailable("carts are starting".into()));
        };
        carts.upgrade().ok_or_else(|| CartsError::Unavailable("carts are stopped".into()))
    }
}

#[async_trait::async_trait]
impl CartClient for CartsClient {
    async fn mutate(
        &self,
        tenant: &str,
        plugin: &str,
        id: &str,
        mutation: CartMutation,
    ) -> Result<CartApplied, CartsError> {
        let key = CartKey { tenant: tenant.into(), plugin: plugin.into(), cart: id.into() };
        let request = MutateRequest {
            kind: mutation.kind,
            payload: mutation.payload,
            client_id: mutation.idempotency_key,
            traceparent: mutation.traceparent,
        };
        let reply = self.carts()?.mutate(key, request).await.map_err(to_import)?;
        Ok(CartApplied { version: reply.version, state: reply.state.unwrap_or_default(), events: reply.events })
    }

    async fn get(&self, tenant: &str, plugin: &str, id: &str) -> Result<Option<CartState>, CartsError> {
        let key = CartKey { tenant: tenant.into(), plugin: plugin.into(), cart: id.into() };
        let reply = self.carts()?.state(key).await.map_err(to_import)?;
        // A cart never mutated is version 0 without a state (`null` over HTTP).
        Ok(reply.state.map(|state| CartState { version: reply.version, state }))
    }
}

/// The import's error for a cart error: the same causes as the HTTP API's
/// statuses (404, 400, 422, 500, 503), with the same messages.
fn to_import(error: CartError) -> CartsError {
    match error {
        CartError::UnknownPlugin { plugin } => CartsError::NoSuchCartPlugin(plugin),
        error @ CartError::UnknownKind { .. } => CartsError::UnknownKind(error.to_string()),
        CartError::Invalid(reason) => CartsError::Invalid(reason),
        CartError::Rejected { code, message, .. } => CartsError::Rejected(format!("{code}: {message}")),
        error @ (CartError::Failed(_) | CartError::Diverged { .. }) => CartsError::Failed(error.to_string()),
        error @ CartError::Storage(_) => CartsError::Unavailable(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unbound_client_is_unavailable() {
        let client = CartsClient::new();
        let error = client.get("", "cart", "c1").await.unwrap_err();
        assert_eq!(error, CartsError::Unavailable("carts are starting".into()));
    }

    #[test]
    fn errors_keep_their_cause() {
        let rejected = CartError::Rejected { plugin: "cart".into(), code: "empty".into(), message: "no items".into() };
        assert_eq!(to_import(rejected), CartsError::Rejected("empty: no items".into()));
        let unknown = CartError::UnknownPlugin { plugin: "nope".into() };
        assert_eq!(to_import(unknown), CartsError::NoSuchCartPlugin("nope".into()));
        let kind = CartError::UnknownKind { plugin: "cart".into(), kind: "x".into(), declared: vec!["add".into()] };
        assert!(matches!(to_import(kind), CartsError::UnknownKind(m) if m.contains("\"x\"") && m.contains("add")));
        assert!(
            matches!(to_import(CartError::Storage("disk".into())), CartsError::Unavailable(m) if m.contains("disk"))
        );
    }
}
