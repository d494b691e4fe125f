//! [`Run`]: what a plugin did with what it was given — its response, the
//! views or cart state it left, what it emitted, wrote to kv and logged, and
//! which inputs failed.

use std::collections::BTreeMap;
use std::fmt;

use crate::capture::LogLine;
use crate::content::render_bytes;

/// What one `request`, `events` or `mutations` call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    /// The tenant the inputs ran for (the first input's); views are checked
    /// for it unless the expectation names another.
    pub tenant: String,
    /// Routes: the response (none if the call failed).
    pub response: Option<Response>,
    /// Projections: every view of the projection after the run, by
    /// `(tenant, view id)`.
    pub views: BTreeMap<(String, String), Vec<u8>>,
    /// Carts: the cart's state after the run (none: no mutation succeeded).
    pub state: Option<Vec<u8>>,
    /// Events emitted during the run (carts: the outboxes of the accepted
    /// mutations), in order.
    pub emitted: Vec<Emitted>,
    /// The plugin's own kv bucket after the run.
    pub kv: BTreeMap<String, Vec<u8>>,
    /// The shared kv buckets granted to the plugin after the run, by name.
    pub shared_kv: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Lines the guest logged during the run.
    pub logs: Vec<LogLine>,
    /// Inputs that failed (trap, guest error, limits), in order.
    pub failures: Vec<Failure>,
}

/// A route's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers as the guest returned them.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An event a plugin emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Tenant it was emitted for.
    pub tenant: String,
}

impl fmt::Display for Emitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.topic, String::from_utf8_lossy(&self.payload))
    }
}

/// An input that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Position of the input in the run, from 0.
    pub index: usize,
    /// What the input was, e.g. `event [2] on orders.created`.
    pub input: String,
    /// `trap`, `out_of_fuel`, `timeout`, `memory_limit`, `busy`,
    /// `guest_error`, `host`, `unknown_kind` (a mutation kind the cart
    /// does not declare; the host refuses it before calling the guest),
    /// `invalid_request` (a mutation payload not matching its kind's
    /// schema, refused before the guest is called) or `schema_mismatch` (a
    /// cart outcome not matching its declared schemas; nothing is kept).
    pub kind: String,
    /// The guest's error code (`guest_error`), or `schema_mismatch` for a
    /// refusal by a declared schema.
    pub code: Option<String>,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.input, self.kind)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Run {
    /// The cart state rendered for people (pretty JSON when it is JSON).
    pub fn state_text(&self) -> Option<String> {
        self.state.as_deref().map(render_bytes)
    }

    /// The state as JSON, if there is one and it is JSON.
    pub fn state_json(&self) -> Option<serde_json::Value> {
        self.state.as_deref().and_then(|state| serde_json::from_slice(state).ok())
    }
}
