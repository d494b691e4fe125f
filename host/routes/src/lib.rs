//! The route table: which plugin a request reaches, and the `params` its
//! path pattern captures. The host's gateway and the plugin test kit both
//! route through [`RouteTable`], so the rules cannot drift apart.
//!
//! A pattern is a path of segments: a literal (`orders`), a named param
//! (`:id`, one segment) or a final rest (`*`, zero or more segments,
//! captured as the param `*`). When several routes match a path, the most
//! specific wins, segment by segment: a literal beats a param, which beats
//! the rest. Two routes of the same shape (the same paths) for overlapping
//! methods conflict, and a table refuses the second.
//!
//! This crate knows nothing of HTTP servers, plugins or wasm: a route leads
//! to a target of the caller's choosing.
//!
//! # Layout
//!
//! - [`Pattern`]: a parsed path pattern and its segments.
//! - [`RouteTable`]: routes of many owners, conflict checks, [`Match`]ing.
//! - [`RouteError`]: why a route was refused, naming the routes ([`RouteRef`]).

mod error;
mod pattern;
mod table;

pub use error::{RouteError, RouteRef};
pub use pattern::{Params, Pattern, Segment};
pub use table::{Match, RouteTable};
