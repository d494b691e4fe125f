//! The [`ControlPlane`]: the backends a call's imports reach (`kv`, `emit`,
//! `views`, `carts`, and outgoing `wasi:http`). The host picks them per call, when the call's store is
//! prepared — embedded LMDB, a cluster, or the test kit's memory — so the
//! runtime itself is never tied to one.

use std::sync::{Arc, OnceLock};

use crate::carts::{CartApplied, CartClient, CartMutation, CartState, CartsError};
use crate::emit::{EmitError, EventSink, NewEvent};
use crate::grants::{Denied, Destination};
use crate::kv::{Bucket, KvBackend, KvError, KvPage};
use crate::outbound::{Caller, OutboundHttp};
use crate::views::{ViewPage, ViewQuery, ViewQueryError, ViewReader, ViewsError};

/// The backends guests reach through their imports.
#[derive(Clone)]
pub struct ControlPlane {
    /// Backs `corral:plugin/kv`.
    pub kv: Arc<dyn KvBackend>,
    /// Backs `corral:plugin/emit`.
    pub events: Arc<dyn EventSink>,
    /// Backs `corral:plugin/views`.
    pub views: Arc<dyn ViewReader>,
    /// Backs `corral:plugin/carts`.
    pub carts: Arc<dyn CartClient>,
    /// Sends granted `wasi:http` requests (`outbound`).
    pub http: Arc<dyn OutboundHttp>,
}

impl ControlPlane {
    /// A plane on which every call fails as unavailable, saying `reason`:
    /// for a runtime that serves no kv, events, views or carts (`host
    /// check`, benchmarks of the sandbox alone).
    pub fn unavailable(reason: &'static str) -> ControlPlane {
        let backend = Arc::new(Unavailable(reason));
        ControlPlane {
            kv: backend.clone(),
            events: backend.clone(),
            views: backend.clone(),
            carts: backend.clone(),
            http: backend,
        }
    }

    /// The plane of calls the host makes without one: `describe()` and the
    /// deterministic worlds (which import none of these interfaces).
    pub(crate) fn detached() -> Arc<ControlPlane> {
        static DETACHED: OnceLock<Arc<ControlPlane>> = OnceLock::new();
        DETACHED
            .get_or_init(|| Arc::new(ControlPlane::unavailable("not available while the host describes a plugin")))
            .clone()
    }
}

/// Every backend, always unavailable.
#[derive(Debug, Clone, Copy)]
pub struct Unavailable(pub &'static str);

impl Unavailable {
    fn reason(self) -> String {
        self.0.to_string()
    }
}

#[async_trait::async_trait]
impl KvBackend for Unavailable {
    async fn get(&self, _: &Bucket, _: &str) -> Result<Option<Vec<u8>>, KvError> {
        Err(KvError::Unavailable(self.reason()))
    }
    async fn set(&self, _: &Bucket, _: &str, _: Vec<u8>) -> Result<(), KvError> {
        Err(KvError::Unavailable(self.reason()))
    }
    async fn delete(&self, _: &Bucket, _: &str) -> Result<bool, KvError> {
        Err(KvError::Unavailable(self.reason()))
    }
    async fn list(&self, _: &Bucket, _: &str, _: Option<&str>, _: u32) -> Result<KvPage, KvError> {
        Err(KvError::Unavailable(self.reason()))
    }
    async fn increment(&self, _: &Bucket, _: &str, _: i64) -> Result<i64, KvError> {
        Err(KvError::Unavailable(self.reason()))
    }
    async fn compare_and_swap(
        &self,
        _: &Bucket,
        _: &str,
        _: Option<&[u8]>,
        _: Option<Vec<u8>>,
    ) -> Result<bool, KvError> {
        Err(KvError::Unavailable(self.reason()))
    }
}

#[async_trait::async_trait]
impl EventSink for Unavailable {
    async fn publish(&self, _: NewEvent) -> Result<u64, EmitError> {
        Err(EmitError::Unavailable(self.reason()))
    }
}

#[async_trait::async_trait]
impl ViewReader for Unavailable {
    async fn get(&self, _: &str, _: &str, _: &str) -> Result<Option<Vec<u8>>, ViewsError> {
        Err(ViewsError::Unavailable(self.reason()))
    }
    async fn list(&self, _: &str, _: &str, _: &str, _: Option<&str>, _: u32) -> Result<ViewPage, ViewsError> {
        Err(ViewsError::Unavailable(self.reason()))
    }
    async fn query(&self, _: &str, _: &str, _: &ViewQuery) -> Result<ViewPage, ViewQueryError> {
        Err(ViewQueryError::Unavailable(self.reason()))
    }
}

#[async_trait::async_trait]
impl CartClient for Unavailable {
    async fn mutate(&self, _: &str, _: &str, _: &str, _: CartMutation) -> Result<CartApplied, CartsError> {
        Err(CartsError::Unavailable(self.reason()))
    }
    async fn get(&self, _: &str, _: &str, _: &str) -> Result<Option<CartState>, CartsError> {
        Err(CartsError::Unavailable(self.reason()))
    }
}

#[async_trait::async_trait]
impl OutboundHttp for Unavailable {
    async fn send(
        &self,
        _: Caller,
        _: Destination,
        _: http::Request<wasmtime_wasi_http::WasiBody>,
        _: Option<wasmtime_wasi_http::RequestOptions>,
    ) -> Result<http::Response<wasmtime_wasi_http::WasiBody>, wasmtime_wasi_http::Error> {
        Err(wasmtime_wasi_http::Error::InternalError(Some(self.reason())))
    }

    fn denied(&self, caller: &Caller, denied: &Denied) {
        tracing::warn!(plugin = %caller.plugin, "outgoing request to {} denied: {}", denied.target(), denied.fix(&caller.sidecar));
    }
}
