//! Plugins: what a component in the plugins folder becomes, what the host
//! serves, and how it changes while the host runs.
//!
//! - `sidecar`: `NAME.toml`, what the operator sets (limits, grants,
//!   overrides, canary policy), parsed strictly; `instances`: its
//!   `[instances]` section (warm instances).
//! - `cron`: a plugin's parsed cron schedules.
//! - `mounted`: a component (read and hashed once) and its sidecar become a
//!   [`Mounted`] plugin.
//! - `deploy`: [`DeployError`], by the step that refused a version.
//! - `canary`: a version on trial.
//! - `catalog`: the immutable [`Catalog`] snapshot, its route table and
//!   its topics' schemas.
//! - `versions`: every served version kept by hash, for rollback.
//! - `registry`: the [`Registry`] — hot swap, uploads, rollback, canaries —
//!   and what a change did ([`Deployed`]).
//! - `install`: in a cluster, what the fleet asks a node to serve
//!   ([`install::Wanted`], a canary [`install::Trial`]).
//! - `watch`: the plugins folder watcher feeding the registry.

pub mod canary;
pub mod catalog;
pub mod cron;
pub mod deploy;
pub mod install;
pub mod instances;
pub mod mounted;
pub mod registry;
pub mod sidecar;
mod versions;
pub mod watch;

pub use catalog::{Catalog, Failure, Slot, conflicts};
pub use deploy::DeployError;
pub use mounted::{Component, Mounted, mount};
pub use registry::{Deployed, Registry};
pub use sidecar::Sidecar;
