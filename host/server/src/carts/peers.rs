//! Reaching the node that owns a cart ([`Peers`]): the calls a node
//! forwards, once, to the owner. Implemented over gRPC `CartActor` by
//! the HTTP layer; the carts only see this seam.

use corral_storage::carts::CartKey;

use crate::carts::request::{CartError, CartReply, MutateRequest};

/// Why a forwarded call failed.
#[derive(Debug)]
pub enum PeerError {
    /// The call never reached the peer (no connection): nothing was
    /// applied there.
    Unreachable(String),
    /// The peer answered with an error (or the outcome is unknown, e.g.
    /// the connection broke mid-call: [`CartError::Forwarded`] with
    /// `UNAVAILABLE`, retryable with the same client id).
    Answered(CartError),
}

/// The other nodes, as a cart's calls reach them.
#[async_trait::async_trait]
pub trait Peers: Send + Sync + 'static {
    /// Sends the mutation to the node at `address` (marked as forwarded).
    async fn mutate(&self, address: &str, key: &CartKey, request: &MutateRequest) -> Result<CartReply, PeerError>;

    /// Reads the cart's state at the node at `address`.
    async fn state(&self, address: &str, key: &CartKey) -> Result<CartReply, PeerError>;

    /// Tells the node at `address` that this node is leaving and gives up
    /// `carts` (with the epochs it held them under).
    async fn closing(&self, address: &str, carts: &[(CartKey, u64)]) -> Result<(), PeerError>;
}
