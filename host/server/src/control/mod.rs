//! The runtime's control plane over the host's backends: what a call's
//! `kv`, `emit` and `views` imports reach.
//!
//! - `embedded`: kv and views on LMDB (views in every mode: a node folds
//!   its own).
//! - `cluster`: kv on the cluster's JetStream buckets.
//! - `emit`: `emit` over whichever event stream the host runs on.

mod cluster;
mod embedded;
mod emit;

pub use cluster::ClusterKv;
pub use embedded::Embedded;
pub use emit::StreamSink;
