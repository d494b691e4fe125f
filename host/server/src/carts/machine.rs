//! What applies a cart's mutations: a `cart` plugin, or (in benchmarks)
//! native code, so both run through exactly the same mailbox, journal and
//! group commit.

use std::sync::Arc;

use corral_runtime::types::{Mutation, Outcome};
use corral_runtime::{InvokeError, InvokeErrorKind, World};

use crate::plugins::mounted::Mounted;
use crate::plugins::registry::Registry;

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
}

/// Finds the machine of a cart plugin by name, at the moment of the call:
/// a new version of the plugin applies the next mutation.
pub trait Machines: Send + Sync + 'static {
    /// The machine named `plugin`, if one is served.
    fn machine(&self, plugin: &str) -> Option<Arc<dyn Machine>>;
}

/// A `cart` plugin as a [`Machine`].
struct PluginMachine(Arc<Mounted>);

#[async_trait::async_trait]
impl Machine for PluginMachine {
    fn version(&self) -> &str {
        self.0.plugin.version()
    }

    fn kinds(&self) -> &[String] {
        &self.0.plugin.descriptor().mutation_kinds
    }

    fn snapshot_every(&self) -> u64 {
        self.0.sidecar.cart.snapshot_every
    }

    fn max_queue(&self) -> Option<usize> {
        self.0.sidecar.cart.max_queue
    }

    async fn apply(&self, tenant: &str, state: Option<&[u8]>, mutation: &Mutation) -> Result<Outcome, MachineError> {
        let mounted = &self.0;
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
        Some(Arc::new(PluginMachine(slot.mounted.clone())))
    }
}
