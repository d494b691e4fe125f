//! Who calls and for whom: the [`Identity`] every store of a plugin is
//! stamped with, and the [`CallContext`] of one call. A leaf: the import
//! modules read both, and nothing here knows of stores or imports.

use std::sync::Arc;

use crate::grants::HttpGrants;
use crate::log_budget::LogBudget;
use crate::settings::{Limits, PluginSettings, Reuse};
use crate::types::{Event, Mutation};
use crate::world::World;

/// The plugin a store belongs to: what imports check grants against and
/// name in errors and log lines.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) world: World,
    pub(crate) limits: Limits,
    pub(crate) kv_grants: Vec<String>,
    pub(crate) cart_grants: Vec<String>,
    pub(crate) http: HttpGrants,
    /// Whether calls may share warm instances (route and event-handler worlds).
    pub(crate) reuse: Option<Reuse>,
    /// The file name of the sidecar beside the component (`NAME.toml`),
    /// where a grant error tells the operator to grant it.
    pub(crate) sidecar: String,
    pub(crate) env: Vec<(String, String)>,
    /// The log lines a second all calls of the plugin name share.
    pub(crate) log_budget: Arc<LogBudget>,
}

impl Identity {
    /// The identity of a plugin `name`@`version` of `world`, set up by `settings`.
    pub(crate) fn new(
        name: String,
        version: String,
        world: World,
        sidecar: String,
        settings: PluginSettings,
        log_budget: Arc<LogBudget>,
    ) -> Self {
        Identity {
            name,
            version,
            world,
            limits: settings.limits,
            kv_grants: settings.kv_grants,
            cart_grants: settings.cart_grants,
            http: settings.http,
            reuse: settings.reuse.filter(|_| matches!(world, World::Route | World::EventHandler)),
            sidecar,
            env: settings.env,
            log_budget,
        }
    }
}

/// The context of one call: who asked, for which tenant, and (for the
/// deterministic worlds) the inputs that fix time and randomness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// Request or event id, on every log line of the call.
    pub request_id: String,
    /// Tenant whose data the call may see.
    pub tenant: String,
    /// Carried into every event the call emits.
    pub correlation_id: String,
    /// W3C traceparent, carried into emitted events.
    pub traceparent: Option<String>,
    /// What the deterministic worlds' clocks return (Unix ms).
    pub timestamp_ms: u64,
    /// What the deterministic worlds' randomness is derived from.
    pub seed: String,
    /// How many plugin-to-plugin calls led to this one (0 for a public
    /// request, an event, a mutation).
    pub depth: u32,
}

impl CallContext {
    /// A context for a call the host makes itself (e.g. `describe()`).
    pub fn internal(request_id: &str) -> Self {
        CallContext {
            request_id: request_id.to_string(),
            correlation_id: request_id.to_string(),
            seed: request_id.to_string(),
            ..CallContext::default()
        }
    }

    /// The W3C trace id of the call's `traceparent` (32 hex digits), if it
    /// has a well-formed one.
    pub fn trace_id(&self) -> Option<&str> {
        trace_id(self.traceparent.as_deref()?)
    }

    /// The context of handling or folding `event`.
    pub fn for_event(event: &Event) -> Self {
        CallContext {
            request_id: event.id.clone(),
            tenant: event.tenant.clone(),
            correlation_id: event.correlation_id.clone(),
            traceparent: event.traceparent.clone(),
            timestamp_ms: event.timestamp_ms,
            seed: event.id.clone(),
            depth: 0,
        }
    }

    /// The context of a batched fold until its first event begins: a clock
    /// at zero and an empty seed, so nothing the guest does before then
    /// depends on where the batch starts. Each event then gets its own.
    pub(crate) fn for_batch(first: &Event) -> Self {
        CallContext {
            request_id: first.id.clone(),
            tenant: first.tenant.clone(),
            correlation_id: first.correlation_id.clone(),
            traceparent: None,
            timestamp_ms: 0,
            seed: String::new(),
            depth: 0,
        }
    }

    /// The context of applying `mutation` for `tenant`.
    pub fn for_mutation(mutation: &Mutation, tenant: &str) -> Self {
        CallContext {
            request_id: mutation.id.clone(),
            tenant: tenant.to_string(),
            correlation_id: mutation.id.clone(),
            traceparent: None,
            timestamp_ms: mutation.timestamp_ms,
            seed: mutation.id.clone(),
            depth: 0,
        }
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then_some(trace)
}
