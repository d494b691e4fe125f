//! What a test hands a plugin: a [`Request`], [`Event`]s or [`Mutation`]s.
//! Whatever a test leaves out (ids, sequence numbers, timestamps) the kit
//! fills in deterministically, so a run gives the same bytes every time.

use crate::content::Content;

/// Where inputs' timestamps start when a test leaves them out
/// (2026-01-01T00:00:00Z); each input moves the clock one second on.
pub const CLOCK_START_MS: u64 = 1_767_225_600_000;

/// An HTTP request for a route plugin. The kit matches it against the routes
/// the component describes and fills `params` as the host's router does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Upper-case method.
    pub method: String,
    /// Path, optionally with `?query`.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Tenant of the call (also sent as `x-corral-tenant`, like the host).
    pub tenant: String,
}

impl Request {
    /// A request with `method` to `path` (which may carry a `?query`).
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            tenant: String::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Request::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Request::new("POST", path)
    }

    /// `PUT path`.
    pub fn put(path: &str) -> Self {
        Request::new("PUT", path)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets the body; JSON content also sets `content-type: application/json`.
    pub fn body(mut self, body: impl Into<Content>) -> Self {
        let body = body.into();
        if matches!(body, Content::Json(_)) && !self.headers.iter().any(|(name, _)| name == "content-type") {
            self.headers.push(("content-type".into(), "application/json".into()));
        }
        self.body = body.to_bytes();
        self
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = tenant.to_string();
        self
    }

    /// `(path, query)` with the query's `?` removed.
    pub(crate) fn split_path(&self) -> (&str, &str) {
        self.path.split_once('?').unwrap_or((&self.path, ""))
    }
}

/// An event for a projection or an event handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Topic, e.g. `orders.created`.
    pub topic: String,
    /// The body.
    pub payload: Vec<u8>,
    /// Tenant (views are kept per tenant).
    pub tenant: String,
    /// Event id [default: `evt-SEQUENCE`].
    pub id: Option<String>,
    /// Unix ms [default: the kit's clock, one second per input].
    pub timestamp_ms: Option<u64>,
}

impl Event {
    /// An event on `topic` with `payload` (a string's bytes, or JSON).
    pub fn new(topic: &str, payload: impl Into<Content>) -> Self {
        Event {
            topic: topic.to_string(),
            payload: payload.into().to_bytes(),
            tenant: String::new(),
            id: None,
            timestamp_ms: None,
        }
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = tenant.to_string();
        self
    }

    /// Sets the id.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }

    /// Sets the timestamp (what the deterministic worlds' clocks return).
    pub fn at_ms(mut self, timestamp_ms: u64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }
}

/// A mutation for a cart plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// One of the kinds the plugin declares.
    pub kind: String,
    /// The body.
    pub payload: Vec<u8>,
    /// Mutation id (seeds randomness) [default: `mut-N`].
    pub id: Option<String>,
    /// Unix ms [default: the kit's clock, one second per input].
    pub timestamp_ms: Option<u64>,
}

impl Mutation {
    /// A mutation of `kind` with `payload` (a string's bytes, or JSON).
    pub fn new(kind: &str, payload: impl Into<Content>) -> Self {
        Mutation { kind: kind.to_string(), payload: payload.into().to_bytes(), id: None, timestamp_ms: None }
    }

    /// Sets the id.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }

    /// Sets the timestamp (what the cart's clock returns).
    pub fn at_ms(mut self, timestamp_ms: u64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }
}
