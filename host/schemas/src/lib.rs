//! Payload schemas: the JSON Schemas a plugin declares (in its sidecar's
//! `[schemas]`) for the events it emits or consumes, its cart's mutation
//! kinds and state, and its routes' bodies. Each is compiled once, when the
//! plugin is loaded, and checked where a payload enters — `emit`, the cart
//! API and import, a route's request — so nothing that does not match
//! reaches the log, a journal or a guest. The host and the test kit check
//! with the same rules. It knows nothing of wasm calls, storage or HTTP.
//!
//! # Layout
//!
//! - `schema`: [`Schema`], one compiled document, and [`Violation`], what a
//!   mismatch names (the schema, the path in the payload, the rule broken).
//! - `declared`: the sidecar section and [`Declared`], one plugin's schemas
//!   checked against what it serves.
//! - `topics`: [`TopicSchemas`], the one schema of each topic in a catalog.

mod declared;
mod schema;
mod topics;

pub use declared::{Declared, Document, RouteSchemas, RouteSection, SchemasSection, Serves};
pub use schema::{Schema, Violation};
pub use topics::TopicSchemas;
