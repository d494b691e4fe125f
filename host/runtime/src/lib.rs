//! Corral's sandbox runtime: one wasmtime [`Engine`](wasmtime::Engine) shared by
//! every plugin, components compiled once (with an on-disk artifact cache) and
//! linked once into a `*Pre`, and a fresh [`Store`](wasmtime::Store) with fuel,
//! an epoch deadline and memory limits for every call.
//!
//! This crate must never know about sockets, HTTP servers, LMDB or NATS. The
//! control-plane imports (`kv`, `emit`, `views`, `carts`) are implemented here
//! against small traits ([`KvBackend`], [`EventSink`], [`ViewReader`],
//! [`CartClient`]) that storage, clustering and the host implement from
//! outside.
//!
//! # Layout
//!
//! - [`runtime`]: the [`Runtime`] — engine settings, the pooling allocator,
//!   the epoch ticker, the per-world linkers.
//! - [`cache`]: precompiled artifacts on disk, keyed by content hash and
//!   engine settings.
//! - [`world`]: which world a component targets, read from its exports.
//! - [`plugin`]: [`Plugin`] — loading (read, compile, detect, link, describe)
//!   and its settings.
//! - [`invoke`]: one call = one store; classifies failures into [`InvokeError`].
//! - [`batch`]: `corral:plugin/batch`, a projection folding many events in
//!   one instance, event by event under the host's eye ([`PendingViews`]).
//! - `state`: the per-call store data and the deterministic WASI stand-ins.
//! - [`log`], [`emit`], [`kv`], [`views`], [`carts`]: one module per imported
//!   WIT interface.
//! - [`memory`]: in-memory backends of the control plane (tests, test kit).
//! - `bindings`: the generated WIT bindings, re-exported through [`types`].

pub mod batch;
mod bindings;
pub mod cache;
pub mod carts;
pub mod emit;
mod error;
pub mod invoke;
pub mod kv;
pub mod log;
pub mod memory;
pub mod plugin;
pub mod runtime;
mod state;
mod stdio;
pub mod types;
pub mod views;
mod wasi_http;
pub mod world;

pub use batch::{BatchFolded, PendingViews, ViewSource};
pub use cache::CacheOutcome;
pub use carts::{CartApplied, CartClient, CartMutation, CartState, CartsError, NoCarts};
pub use emit::{EmitError, EventSink, NewEvent};
pub use error::{InvokeError, InvokeErrorKind, LoadError};
pub use invoke::{CallContext, Called, FoldStep};
pub use kv::{Bucket, KvBackend, KvError, KvPage};
pub use plugin::{Limits, Plugin, PluginSettings};
pub use runtime::{ControlPlane, Runtime, RuntimeConfig};
pub use views::{ViewPage, ViewReader, ViewsError};
pub use wasi_http::WasiHttpResponse;
pub use world::World;
