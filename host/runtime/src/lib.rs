//! Corral's sandbox runtime: one wasmtime [`Engine`](wasmtime::Engine) shared by
//! every plugin, components compiled once (with an on-disk artifact cache) and
//! linked once into a `*Pre`, and a fresh [`Store`](wasmtime::Store) with fuel,
//! an epoch deadline and memory limits for every call.
//!
//! This crate must never know about sockets, HTTP servers, LMDB or NATS. The
//! control-plane imports (`kv`, `emit`, `views`, `carts`) are implemented here
//! against small traits ([`KvBackend`], [`EventSink`], [`ViewReader`],
//! [`CartClient`]) that storage, clustering and the host implement from
//! outside; the host hands a call its [`ControlPlane`] when it makes the call.
//!
//! # Layout
//!
//! - [`runtime`]: the [`Runtime`] — engine settings, the pooling allocator,
//!   the epoch ticker, the per-world linkers.
//! - [`cache`]: precompiled artifacts on disk, keyed by content hash and
//!   engine settings.
//! - [`world`]: which world a component targets, read from its exports.
//! - `load`: [`Runtime::load`] — read, compile, detect, link, describe.
//! - [`plugin`]: [`Plugin`], a loaded component; [`settings`]: its
//!   [`Limits`] and [`PluginSettings`].
//! - `call`: [`CallContext`] and the identity every store is stamped with
//!   (a leaf: the import modules read it, it reads nothing of theirs).
//! - [`invoke`]: one call = one store; classifies failures into [`InvokeError`].
//!   `capped`: a route's response, its body refused while it is lifted when
//!   it is over the call's cap.
//!   `fair`: the long-call permits that share the cores between heavy calls.
//! - `store`: the per-call store data, composing the per-interface contexts.
//! - [`control`]: the [`ControlPlane`] a call's imports reach.
//! - [`log`], [`emit`], [`kv`], [`views`], [`carts`]: one module per imported
//!   WIT interface, each with its backend trait and its `Host` view.
//!   `log_budget`: the log lines a second a plugin name may write (a leaf).
//! - `deterministic`: the projection and cart worlds' clocks and randomness.
//! - [`topics`]: the grammar of topics and subscriptions, and matching;
//!   [`tenants`]: the contract of tenant ids.
//! - [`batch`]: `corral:plugin/batch`, a projection folding many events in
//!   one instance, event by event under the host's eye ([`PendingViews`]).
//! - [`grants`]: what a plugin's outgoing `wasi:http` may reach;
//!   `http_hooks`: every outgoing request checked against them, then handed
//!   to the host's [`OutboundHttp`] ([`outbound`]: the seam and its caller).
//! - `wasi_http`: serving standard `wasi:http/proxy` components;
//!   `streamed`: their response body, ended the way the call ends.
//! - `warm`: warm instances, when a plugin opts in ([`Reuse`]).
//! - [`memory`]: in-memory backends of the control plane (tests, test kit).
//! - `bindings`: the generated WIT bindings, re-exported through [`types`].

pub mod batch;
mod bindings;
pub mod cache;
mod call;
mod capped;
pub mod carts;
pub mod control;
mod deterministic;
pub mod emit;
mod error;
mod fair;
pub mod grants;
mod http_hooks;
pub mod invoke;
pub mod kv;
mod load;
pub mod log;
mod log_budget;
pub mod memory;
pub mod outbound;
pub mod plugin;
pub mod runtime;
pub mod settings;
mod stdio;
mod store;
mod streamed;
pub mod tenants;
pub mod topics;
pub mod types;
pub mod views;
mod warm;
mod wasi_http;
pub mod world;

pub use batch::{BatchFolded, PendingViews, ViewSource};
pub use cache::CacheOutcome;
pub use call::{CallContext, trace_id};
pub use carts::{CartApplied, CartClient, CartMutation, CartState, CartsError};
pub use control::{ControlPlane, Unavailable};
pub use emit::{EmitError, EventSink, NewEvent, Queued};
pub use error::{InvokeError, InvokeErrorKind, LoadError};
pub use grants::{Denied, Destination, HostGrant, HttpGrants};
pub use invoke::{Called, FoldStep};
pub use kv::{Bucket, KvBackend, KvError, KvPage};
pub use load::content_hash;
pub use outbound::{Caller, OutboundHttp};
pub use plugin::Plugin;
pub use runtime::{Runtime, RuntimeConfig};
pub use settings::{Limits, PluginSettings, Reuse};
pub use streamed::{Outcome as StreamedOutcome, StreamedBody};
pub use views::{ViewPage, ViewQuery, ViewQueryError, ViewReader, ViewsError};
pub use warm::REUSE_CARRIES_OVER;
pub use wasi_http::WasiHttpResponse;
pub use world::World;
