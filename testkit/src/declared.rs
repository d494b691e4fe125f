//! The payload schemas of the plugin under test, as a sidecar's `[schemas]`
//! declares them ([`Schemas`]), checked where the host checks them and with
//! the host's own rules (`corral-schemas`): a request's body before the
//! route is called (400, as the host answers), a mutation's payload before
//! it is applied and a cart's new state and outcome events before they are
//! kept (a `schema_mismatch` failure), and what the guest emits (the
//! `emit` import refuses it, as the host's does).

use std::sync::Arc;

use corral_runtime::Plugin;
use corral_runtime::types::Outcome;
use corral_schemas::{Declared, SchemasSection, Serves, TopicSchemas, Violation};

use crate::run::Response;

/// One plugin's compiled schemas and its topics' schemas.
#[derive(Default)]
pub(crate) struct Schemas {
    declared: Declared,
    topics: Arc<TopicSchemas>,
}

impl Schemas {
    /// Compiles `section` for `plugin` (its routes as it describes them),
    /// or says why the declarations are refused, as the host would.
    pub(crate) fn compile(section: &SchemasSection, plugin: &Plugin) -> Result<Schemas, String> {
        let descriptor = plugin.descriptor();
        let routes: Vec<(String, String)> =
            descriptor.routes.iter().map(|r| (r.method.clone(), r.pattern.clone())).collect();
        let serves =
            Serves { plugin: plugin.name(), world: plugin.world(), routes: &routes, kinds: &descriptor.mutation_kinds };
        let declared = Declared::compile(section, &serves)?;
        let mut topics = TopicSchemas::default();
        topics.add(plugin.name(), declared.events());
        Ok(Schemas { declared, topics: Arc::new(topics) })
    }

    /// The schema of each topic the plugin declares, for the `emit` import.
    pub(crate) fn topics(&self) -> Arc<TopicSchemas> {
        self.topics.clone()
    }

    /// The host's 400 for a request body not matching the route's schema.
    pub(crate) fn refuse_request(&self, method: &str, pattern: &str, body: &[u8]) -> Option<Response> {
        let violation = self.declared.request(method, pattern)?.check(body).err()?;
        let refusal = serde_json::json!({
            "error": "schema_mismatch",
            "message": format!("the request body {violation}"),
            "violation": violation.to_json(),
        });
        let headers = vec![("content-type".to_string(), "application/json".to_string())];
        Some(Response { status: 400, headers, body: refusal.to_string().into_bytes() })
    }

    /// Whether `payload` may be a `kind` mutation.
    pub(crate) fn mutation(&self, kind: &str, payload: &[u8]) -> Result<(), Violation> {
        self.declared.mutation(kind).map_or(Ok(()), |schema| schema.check(payload))
    }

    /// Whether a cart's outcome may be kept: its state and its events match.
    pub(crate) fn outcome(&self, outcome: &Outcome) -> Result<(), Violation> {
        if let Some(schema) = self.declared.state() {
            schema.check(&outcome.state)?;
        }
        outcome.events.iter().try_for_each(|event| self.topics.check(&event.topic, &event.payload))
    }
}
