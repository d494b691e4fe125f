//! Carts: one writer per cart. Every (tenant, plugin, cart id) that is in
//! use has a mailbox — a task that owns the cart's state in memory and
//! applies its mutations strictly one at a time, in arrival order — while
//! different carts run in parallel.
//!
//! A mutation is applied in the sandbox, then its journal entry, the
//! snapshot (when due), the idempotency record and its outbox events are
//! committed in one LMDB transaction (`Journal`, group commit across
//! carts); only then does the caller get the new state. Idle carts are
//! evicted; loading one is the latest snapshot plus a replay of the later
//! journal entries, checked against their recorded digests.
//!
//! # Layout
//!
//! - `request`: what callers send and get back, and [`CartError`].
//! - `machine`: what applies mutations ([`Machine`]: a plugin or native code).
//! - `mailboxes`: [`Carts`], routing calls to mailboxes, eviction.
//! - `mailbox`: the per-cart task; `step`: applying one mutation;
//!   `answers`: answering a round's callers, counted.
//! - `store`: where journals live ([`store::CartStore`]: LMDB, or the
//!   cluster's stream).
//! - `owners`: in a cluster, which node owns a cart (leases, placement);
//!   `peers`: reaching that node ([`Peers`]).
//! - `verify`: replaying a whole journal against the stored state.
//! - `client`: the runtime's `CartClient` over [`Carts`], behind the
//!   `carts` import of route and event-handler plugins.
//!
//! The HTTP and gRPC APIs in front of [`Carts`] are in [`crate::http`].

mod answers;
mod client;
pub mod machine;
mod mailbox;
mod mailboxes;
mod owners;
mod peers;
mod request;
mod step;
pub(crate) mod store;
mod verify;

pub use client::CartsClient;
pub use machine::{Machine, MachineError, Machines};
pub use mailboxes::{CartCluster, Carts};
pub use owners::Owners;
pub use peers::{PeerError, Peers};
pub use request::{CartError, CartReply, MutateRequest, Transport};
pub use verify::{Divergence, Verification};
