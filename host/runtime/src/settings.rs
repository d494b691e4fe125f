//! What the operator sets for a plugin: its per-call [`Limits`] and its
//! [`PluginSettings`] (name, grants, config), usually from its sidecar.

use std::time::Duration;

use crate::grants::HttpGrants;

/// Per-call limits of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel budget of one call (roughly, wasm instructions).
    pub fuel: u64,
    /// Wall-clock deadline of one call.
    pub timeout: Duration,
    /// Largest linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest table, in elements.
    pub table_elements: u32,
    /// Calls that may run at once; more are refused as busy.
    pub max_concurrency: u32,
    /// Log lines a second that all calls of the plugin together may write
    /// (bursts of up to a second's worth); more are dropped and counted.
    pub log_lines_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 500_000_000,
            timeout: Duration::from_secs(5),
            memory_bytes: 128 << 20,
            table_elements: 100_000,
            max_concurrency: 64,
            log_lines_per_second: 2000,
        }
    }
}

/// What the operator sets for a plugin (usually from its sidecar `NAME.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginSettings {
    /// The name to run the plugin under instead of the one it describes (to
    /// run one component twice, say). Its kv bucket follows the name.
    pub name: Option<String>,
    /// Per-call limits.
    pub limits: Limits,
    /// Shared kv buckets the plugin may use besides its own.
    pub kv_grants: Vec<String>,
    /// Cart plugins whose carts it may mutate and read (route and
    /// event-handler plugins).
    pub cart_grants: Vec<String>,
    /// Configuration values, visible to non-deterministic guests as
    /// environment variables.
    pub env: Vec<(String, String)>,
    /// Where its outgoing `wasi:http` requests may go (route and
    /// event-handler plugins, wasi:http components).
    pub http: HttpGrants,
    /// Serve many calls from one instance (route and event-handler
    /// plugins; ignored for the other worlds). None: a fresh instance per
    /// call.
    pub reuse: Option<Reuse>,
}

/// When a warm instance is recycled: it serves one call at a time, and is
/// dropped after `max_calls` calls, after any failed call (trap, fuel,
/// memory, timeout, or the guest's own error), once its memory passes
/// `max_memory_bytes`, and when it has been idle for `max_idle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reuse {
    /// Calls one instance serves before it is dropped.
    pub max_calls: u32,
    /// How long an idle instance may wait for its next call.
    pub max_idle: Duration,
    /// Linear memory past which an instance is not reused.
    pub max_memory_bytes: u64,
}

impl Default for Reuse {
    fn default() -> Self {
        Reuse { max_calls: 10_000, max_idle: Duration::from_secs(60), max_memory_bytes: 64 << 20 }
    }
}
