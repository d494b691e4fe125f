//! The wasm event handler the event benchmarks share: a loaded plugin and
//! the control plane it calls, behind the dispatcher's `Handler` trait.

use std::sync::Arc;

use corral_runtime::{CallContext, ControlPlane, Plugin};
use corral_server::events::{self, Handler, HandlerError};
use corral_storage::log::{EventRecord, NewRecord};

pub(crate) struct Wasm(pub(crate) Plugin, pub(crate) Arc<ControlPlane>);

#[async_trait::async_trait]
impl Handler for Wasm {
    fn name(&self) -> &str {
        "wasm"
    }

    async fn handle(&self, record: &EventRecord) -> Result<Vec<NewRecord>, HandlerError> {
        let event = events::to_event(record);
        self.0
            .handle_event(&self.1, CallContext::for_event(&event), &event)
            .await
            .map(|called| events::queued_records(called.value))
            .map_err(|e| HandlerError { cause: e.kind.label(), message: e.kind.to_string() })
    }
}
