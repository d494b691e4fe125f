//! The runtime's control plane over the host's backends: what a call's
//! `kv`, `emit` and `views` imports reach.
//!
//! - `embedded`: kv and views on LMDB.
//! - `emit`: `emit` over whichever event stream the host runs on.

mod embedded;
mod emit;

pub use embedded::Embedded;
pub use emit::StreamSink;
