//! The `wasi:http` hooks of one call ([`OutgoingHooks`]): every outgoing
//! request of every guest (route and event-handler plugins, `wasi:http`
//! components) goes through the plugin's grants here, before anything
//! leaves the sandbox, and then to the control plane's `OutboundHttp`. A
//! request no grant covers gets `HTTP-request-denied`, and the host is
//! told the fix. The deterministic worlds are never linked with wasi:http.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument as _;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::call::{CallContext, Identity};
use crate::control::ControlPlane;
use crate::outbound::Caller;

/// The `wasi:http` hooks of one call: outgoing requests go through the
/// plugin's grants to the control plane's [`OutboundHttp`].
pub(crate) struct OutgoingHooks {
    pub(crate) plugin: Arc<Identity>,
    pub(crate) call: CallContext,
    pub(crate) control: Arc<ControlPlane>,
    pub(crate) deadline: Instant,
}

type Sent = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>;

impl WasiHttpHooks for OutgoingHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let caller = Caller {
            plugin: self.plugin.name.clone(),
            version: self.plugin.version.clone(),
            sidecar: self.plugin.sidecar.clone(),
            call: self.call.clone(),
            deadline: self.deadline,
        };
        let outbound = self.control.http.clone();
        let destination = match self.plugin.http.destination(request.uri()) {
            Ok(destination) => destination,
            Err(denied) => {
                outbound.denied(&caller, &denied);
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        // The request is sent from a task of its own: it keeps the call's
        // span, so what it logs and traces belongs to the call.
        let span = tracing::Span::current();
        Box::new(
            async move {
                let response = outbound.send(caller, destination, request, options).await?;
                // The host drives the connection itself: nothing left to do.
                let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
                Ok((response, io))
            }
            .instrument(span),
        )
    }
}
