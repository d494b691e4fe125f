//! The seam between a plugin's outgoing HTTP and the host that sends it:
//! [`OutboundHttp`], given the [`Caller`] and the granted [`Destination`]
//! (the server's client for the network, or the gateway for another
//! plugin). Grants are checked before (`grants`, in the `wasi:http` hooks
//! of `http_hooks`), so an implementation only ever sees what was let out.

use std::time::Instant;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::call::CallContext;
use crate::grants::{Denied, Destination};

/// How deep plugin-to-plugin calls may nest: the call that would be one
/// deeper is answered `508 Loop Detected` by the host.
pub const MAX_CALL_DEPTH: u32 = 8;

/// Who sends an outgoing request: what the host checks, labels, carries
/// (tenant, request id, traceparent, depth) and bounds it by.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The plugin's name.
    pub plugin: String,
    /// Its version.
    pub version: String,
    /// Its sidecar file (`NAME.toml`), where grants are added.
    pub sidecar: String,
    /// The call it is making the request from.
    pub call: CallContext,
    /// When that call's time is up: the request must end by then.
    pub deadline: Instant,
}

/// Sends what a grant let out: to the network, or to a plugin of this host.
#[async_trait::async_trait]
pub trait OutboundHttp: Send + Sync + 'static {
    /// Sends `request` to `destination` for `caller`, and returns the
    /// response once its head arrived (its body streams).
    async fn send(
        &self,
        caller: Caller,
        destination: Destination,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError>;

    /// Told of a request the grants refused (the guest gets
    /// `HTTP-request-denied`): to log it with the fix, and count it.
    fn denied(&self, caller: &Caller, denied: &Denied);
}
