//! What applies a cart's mutations: a `cart` plugin, or (in benchmarks)
//! native code, so both run through exactly the same mailbox, journal and
//! group commit.

use std::sync::Arc;

use corral_runtime::types::{Mutation, Outcome};
use corral_runtime::{InvokeError, InvokeErrorKind, World};

use crate::metrics::Metrics;
use crate::plugins::mounted::Mounted;
use crate::plugins::registry::Registry;
use corral_schemas::{TopicSchemas, Violation};

/// Why a mutation was not applied.
#[derive(Debug, Clone)]
pub enum MachineError {
    /// The state machine refused the mutation on purpose (a guest `failure`):
    /// the caller's fault, nothing changed.
    Rejected {
        /// Machine-readable code.
        code: String,
        /// Message for people.
        message: String,
    },
    /// The call failed (trap, out of fuel, timeout, busy): nothing changed.
    Failed(InvokeError),
}

/// A per-entity state machine.
#[async_trait::async_trait]
pub trait Machine: Send + Sync + 'static {
    /// The version that applies mutations (recorded in the journal).
    fn version(&self) -> &str;
    /// The mutation kinds it accepts.
    fn kinds(&self) -> &[String];
    /// Store a snapshot every this many mutations.
    fn snapshot_every(&self) -> u64;
    /// Most commands one cart's mailbox may hold, if the plugin sets its
    /// own (`[cart] max_queue`); else the host's `--cart-max-queued`.
    fn max_queue(&self) -> Option<usize> {
        None
    }
    /// Applies one mutation to `state` (none for a new entity).
    async fn apply(&self, tenant: &str, state: Option<&[u8]>, mutation: &Mutation) -> Result<Outcome, MachineError>;
    /// Whether `payload` may be a `kind` mutation: it matches the kind's
    /// declared schema, if it has one. By default, always.
    fn check_mutation(&self, kind: &str, payload: &[u8]) -> Result<(), Violation> {
        let _ = (kind, payload);
        Ok(())
    }
    /// Whether a new mutation's outcome may be committed: its state and its
    /// events match their declared schemas. Replays are not checked (what
    /// the journal holds was accepted when it was written). By default, yes.
    fn check_outcome(&self, outcome: &Outcome) -> Result<(), Violation> {
        let _ = outcome;
        Ok(())
    }
}

/// Finds the machine of a cart plugin by name, at the moment of the call:
/// a new version of the plugin applies the next mutation.
pub trait Machines: Send + Sync + 'static {
    /// The machine named `plugin`, if one is served.
    fn machine(&self, plugin: &str) -> Option<Arc<dyn Machine>>;
}

/// A `cart` plugin as a [`Machine`], with the schemas of the catalog it
/// was found in.
struct PluginMachine {
    mounted: Arc<Mounted>,
    topics: Arc<TopicSchemas>,
    metrics: Arc<Metrics>,
}

impl PluginMachine {
    fn refused(&self, violation: Violation) -> Violation {
        self.metrics.schema_refused(&violation.schema, "cart");
        violation
    }
}

#[async_trait::async_trait]
impl Machine for PluginMachine {
    fn version(&self) -> &str {
        self.mounted.plugin.version()
    }

    fn kinds(&self) -> &[String] {
        &self.mounted.plugin.descriptor().mutation_kinds
    }

    fn snapshot_every(&self) -> u64 {
        self.mounted.sidecar.cart.snapshot_every
    }

    fn max_queue(&self) -> Option<usize> {
        self.mounted.sidecar.cart.max_queue
    }

    fn check_mutation(&self, kind: &str, payload: &[u8]) -> Result<(), Violation> {
        match self.mounted.schemas.mutation(kind) {
            Some(schema) => schema.check(payload).map_err(|v| self.refused(v)),
            None => Ok(()),
        }
    }

    fn check_outcome(&self, outcome: &Outcome) -> Result<(), Violation> {
        if let Some(schema) = self.mounted.schemas.state() {
            schema.check(&outcome.state).map_err(|v| self.refused(v))?;
        }
        for event in &outcome.events {
            self.topics.check(&event.topic, &event.payload).map_err(|v| self.refused(v))?;
        }
        Ok(())
    }

    async fn apply(&self, tenant: &str, state: Option<&[u8]>, mutation: &Mutation) -> Result<Outcome, MachineError> {
        let mounted = &self.mounted;
        mounted.metrics.in_flight.inc();
        let result = mounted.plugin.apply_mutation(tenant, state, mutation).await;
        mounted.metrics.in_flight.dec();
        match result {
            Ok(called) => {
                mounted.metrics.observe(called.elapsed.as_secs_f64(), called.fuel_used);
                Ok(called.value)
            }
            Err(error) => {
                mounted.metrics.failed(error.kind.label());
                match error.kind {
                    InvokeErrorKind::Guest { code, message } => Err(MachineError::Rejected { code, message }),
                    _ => Err(MachineError::Failed(error)),
                }
            }
        }
    }
}

impl Machines for Registry {
    fn machine(&self, plugin: &str) -> Option<Arc<dyn Machine>> {
        let catalog = self.catalog();
        let slot = catalog
            .slots
            .iter()
            .find(|slot| slot.mounted.plugin.world() == World::Cart && slot.mounted.plugin.name() == plugin)?;
        let (mounted, topics, metrics) = (slot.mounted.clone(), catalog.topics.clone(), self.metrics().clone());
        Some(Arc::new(PluginMachine { mounted, topics, metrics }))
    }
}
