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
//! - `mailbox`: the per-cart task.
//! - `verify`: replaying a whole journal against the stored state.
//! - `client`: the runtime's `CartClient` over [`Carts`], behind the
//!   `carts` import of route and event-handler plugins.
//!
//! The HTTP and gRPC APIs in front of [`Carts`] are in [`crate::http`].

mod client;
pub mod machine;
mod mailbox;
mod mailboxes;
mod request;
mod verify;

pub use client::CartsClient;
pub use machine::{Machine, MachineError, Machines};
pub use mailboxes::Carts;
pub use request::{CartError, CartReply, MutateRequest};
pub use verify::{Divergence, Verification};
