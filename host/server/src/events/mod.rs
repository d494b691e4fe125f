//! Events: the [`EventStream`] seam over a backend, delivery to event
//! handlers, and the background work around the log.
//!
//! - `stream`: the seam (JetStream's semantics); `embedded`: its LMDB
//!   implementation; `jetstream`: the cluster's.
//! - `delivery`: one subscription's loop — in order, at least once, retried
//!   with backoff, then dead-lettered; `dead_letters`: listing them, and an
//!   operator's retry or skip.
//! - `dispatch`: one delivery loop (and its schedules) per event-handler
//!   plugin in the catalog, restarted on a new version.
//! - `schedule`: firing cron ticks as events.
//! - `retention`: trimming the log, never past a consumer's checkpoint;
//!   `consumers`: the consumers seen, so a removed plugin's checkpoint
//!   keeps its place until it is forgotten (`--forget-after`).
//! - `relay`: in a cluster, events an earlier version left in the node's
//!   own log (carts' outbox) into the shared stream.

pub mod consumers;
pub mod dead_letters;
pub mod delivery;
pub mod dispatch;
mod embedded;
pub mod jetstream;
pub(crate) mod relay;
pub mod retention;
pub mod schedule;
pub mod stream;

pub use delivery::{Handler, HandlerError, Subscription, queued_records};
pub use stream::{Checkpoint, EventReader, EventStream, StreamError, to_event};
