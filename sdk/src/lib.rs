//! The Rust SDK for Corral plugins.
//!
//! A plugin is a WASI 0.2 component that exports one world of
//! `corral:plugin@0.1.1`. With this crate you implement one trait
//! ([`Route`], [`EventHandler`], [`Projection`] or [`Cart`]) and export it with
//! the matching macro; build with `cargo build --target wasm32-wasip2` and
//! drop the `.wasm` into the host's plugins folder.
//!
//! A hello route:
//!
//! ```no_run
//! use corral_sdk::{Descriptor, HttpRequest, HttpResponse, Route};
//!
//! struct Hello;
//!
//! impl Route for Hello {
//!     fn describe() -> Descriptor {
//!         Descriptor::new("hello", "0.1.0").route("GET", "/hello/:name")
//!     }
//!     fn handle(request: HttpRequest) -> HttpResponse {
//!         HttpResponse::text(200, format!("hello, {}", request.param("name").unwrap_or("world")))
//!     }
//! }
//!
//! corral_sdk::export_route!(Hello);
//! ```
//!
//! The other worlds look the same; see [`EventHandler`], [`Projection`] and
//! [`Cart`]. Guests reach the host through [`log`], [`emit`], [`kv`],
//! [`views`] and [`carts`]; projections and carts may use [`log`] only,
//! since they must be deterministic.
//!
//! This crate must never grow host-side code: it is compiled into guests.

mod batch;
#[doc(hidden)]
pub mod bindings;
pub mod carts;
pub mod emit;
mod export;
mod http;
pub mod json;
pub mod kv;
pub mod log;
pub mod views;

#[doc(hidden)]
pub use batch::fold_batch;
pub use bindings::cart::exports::corral::plugin::state_machine::Outcome;
pub use bindings::route::corral::plugin::types::{
    Descriptor, Event, Failure, HttpRequest, HttpResponse, Mutation, OutgoingEvent, Route as RouteSpec, Schedule,
};
pub use export::{Cart, EventHandler, Projection, Route};

impl Descriptor {
    /// A descriptor with a name and a version and nothing else yet.
    pub fn new(name: &str, version: &str) -> Self {
        Descriptor {
            name: name.to_string(),
            version: version.to_string(),
            routes: Vec::new(),
            topics: Vec::new(),
            schedules: Vec::new(),
            mutation_kinds: Vec::new(),
        }
    }

    /// Adds a route: an upper-case method (or `*`) and a pattern such as
    /// `/carts/:id/items` or `/files/*`.
    pub fn route(mut self, method: &str, pattern: &str) -> Self {
        self.routes.push(RouteSpec { method: method.to_string(), pattern: pattern.to_string() });
        self
    }

    /// Subscribes to a topic or pattern (`orders.*`, `orders.>`).
    pub fn topic(mut self, topic: &str) -> Self {
        self.topics.push(topic.to_string());
        self
    }

    /// Adds a cron schedule (with seconds): `"0 */5 * * * *"`.
    pub fn schedule(mut self, name: &str, cron: &str) -> Self {
        self.schedules.push(Schedule { name: name.to_string(), cron: cron.to_string() });
        self
    }

    /// Declares a mutation kind (carts).
    pub fn mutation(mut self, kind: &str) -> Self {
        self.mutation_kinds.push(kind.to_string());
        self
    }
}

impl Failure {
    /// A failure with a machine-readable code and a message for people.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Failure { code: code.to_string(), message: message.into() }
    }
}

impl Outcome {
    /// A new state with no events.
    pub fn state(state: Vec<u8>) -> Self {
        Outcome { state, events: Vec::new() }
    }

    /// Adds an event to publish once the state is committed.
    pub fn emit(mut self, topic: &str, payload: Vec<u8>) -> Self {
        self.events.push(OutgoingEvent { topic: topic.to_string(), payload });
        self
    }
}
