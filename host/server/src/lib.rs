//! Corral's server: what `host run` serves, as a library the `host` binary,
//! the integration tests and the benchmarks all start the same way
//! ([`serve::start`] on listeners they bound, stopped by a future they own).
//!
//! It stands on the sandbox (`corral-runtime`), a storage backend
//! (`corral-storage`'s LMDB) and the payload schemas (`corral-schemas`),
//! and adapts the backend to the runtime's control-plane traits. It knows
//! nothing of the command line.
//!
//! # Layout
//!
//! Areas, each a folder, whose dependencies flow one way (a later one may
//! use an earlier one, never the reverse):
//!
//! - [`metrics`], [`shutdown`], [`traces`]: leaves — Prometheus metrics,
//!   pausing background work until told to stop, and joining spans into W3C
//!   traces. [`coordination`]: which node does
//!   which work (leases).
//! - [`plugins`]: a component and its sidecar become a mounted plugin; the
//!   [`Catalog`](plugins::Catalog) of what is served; the
//!   [`Registry`](plugins::Registry) that swaps it (hot swap, canaries,
//!   rollback, the folder watcher).
//! - [`events`]: the [`EventStream`](events::EventStream) seam, delivery to
//!   event handlers (retries, dead letters), one dispatcher per handler,
//!   cron schedules and retention.
//! - [`projections`]: folding events into views, quarantine, rebuild, and a
//!   generation per version with the versioned cutover.
//! - [`carts`]: one writer per cart — mailboxes, journal, snapshots, replay,
//!   verify — and the `carts` import's client.
//! - [`control`]: the runtime's control plane over the host's backends.
//! - [`fleet`]: plugins across a cluster — the desired state, each node
//!   following it, rollouts in waves with a canary judged on all nodes.
//! - [`node`]: this node in a cluster — membership, what it reports, the
//!   cluster as it sees it.
//! - [`http`]: the listeners — the public gateway (routes, views, the cart
//!   API over HTTP and gRPC) and the admin API.
//! - [`outbound`]: plugins' outgoing HTTP — to the network through one
//!   pooled client that keeps grants for names off private addresses, or
//!   in-process to another plugin's routes through the gateway.
//! - `floors`: what retention never trims past, gathered from all of the above.
//! - [`serve`]: wiring it all: the backend (`backend`: LMDB, and NATS
//!   JetStream in a cluster), plugins, background work, listeners, graceful
//!   shutdown. [`config`]: its resolved settings.

mod backend;
pub mod carts;
pub mod config;
pub mod control;
pub mod coordination;
pub mod events;
pub mod fleet;
mod floors;
pub mod http;
pub mod metrics;
pub mod node;
pub mod outbound;
pub mod plugins;
pub mod projections;
pub mod serve;
pub mod shutdown;
pub mod traces;
