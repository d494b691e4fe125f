//! The runtime's [`CartClient`] over [`Carts`]: what backs the `carts`
//! import of route and event-handler plugins. Mutations go through the very
//! mailboxes the HTTP and gRPC APIs use (one writer per cart, the reply once
//! durable, idempotency keys honoured, the same metrics).
//!
//! The client is part of the control plane the host hands each call, built
//! once the carts exist.

use std::sync::Arc;

use corral_runtime::{CartApplied, CartClient, CartMutation, CartState, CartsError};
use corral_storage::carts::CartKey;

use crate::carts::mailboxes::Carts;
use crate::carts::request::{CartError, MutateRequest, Transport};

/// The `carts` import's backend: the host's [`Carts`].
pub struct CartsClient {
    carts: Arc<Carts>,
}

impl CartsClient {
    /// A client of `carts`.
    pub fn new(carts: Arc<Carts>) -> CartsClient {
        CartsClient { carts }
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
            // A child of the `carts` import's span when traces are exported.
            traceparent: crate::traces::current_or(mutation.traceparent),
            forwarded: false,
            transport: Transport::Import,
        };
        let reply = self.carts.mutate(key, request).await.map_err(to_import)?;
        Ok(CartApplied { version: reply.version, state: reply.state.unwrap_or_default(), events: reply.events })
    }

    async fn get(&self, tenant: &str, plugin: &str, id: &str) -> Result<Option<CartState>, CartsError> {
        let key = CartKey { tenant: tenant.into(), plugin: plugin.into(), cart: id.into() };
        let reply = self.carts.state(key).await.map_err(to_import)?;
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
        error @ CartError::InvalidPayload { .. } => CartsError::Invalid(error.to_string()),
        CartError::Rejected { code, message, .. } => CartsError::Rejected(format!("{code}: {message}")),
        error @ (CartError::Failed(_) | CartError::Diverged { .. } | CartError::Mismatch { .. }) => {
            CartsError::Failed(error.to_string())
        }
        error if error.is_retryable() => CartsError::Unavailable(error.to_string()),
        error => CartsError::Failed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
