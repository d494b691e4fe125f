//! Serving a standard `wasi:http/proxy` component, unchanged, the way
//! `wasmtime serve` does: the guest gets an `incoming-request` and a
//! `response-outparam`, and may keep streaming the body after it answers.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::call::CallContext;
use crate::control::ControlPlane;
use crate::error::{InvokeError, InvokeErrorKind};
use crate::invoke::Session;
use crate::plugin::{Plugin, Pre};
use crate::streamed::StreamedBody;

/// A response from a wasi:http guest; its body may still be streaming,
/// and ends the way the call ends ([`StreamedBody`]).
pub type WasiHttpResponse = hyper::Response<StreamedBody>;

impl Plugin {
    /// Serves one request with a `wasi:http/incoming-handler` component;
    /// a response body past `max_response_bytes` is cut with an error.
    pub async fn serve_http<B>(
        &self,
        control: &Arc<ControlPlane>,
        call: CallContext,
        mut request: hyper::Request<B>,
        max_response_bytes: u64,
    ) -> Result<WasiHttpResponse, InvokeError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Pre::WasiHttp(pre) = &self.pre else {
            return Err(self
                .identity
                .error(InvokeErrorKind::Host(format!("is a {} plugin, not a wasi-http plugin", self.identity.world))));
        };
        // wasi:http needs an authority; HTTP/1.0 clients may send no Host.
        if request.uri().authority().is_none() && !request.headers().contains_key(http::header::HOST) {
            request.headers_mut().insert(http::header::HOST, http::HeaderValue::from_static("localhost"));
        }
        let mut session = self.session(control, call)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = {
            let mut http = session.store.data_mut().http();
            http.new_incoming_request(Scheme::Http, request)
                .and_then(|req| Ok((req, http.new_response_outparam(sender)?)))
        };
        let (req, out) = match prepared {
            Ok(handles) => handles,
            Err(error) => {
                return Err(self.identity.error(InvokeErrorKind::Host(format!("cannot pass the request: {error:#}"))));
            }
        };
        let (pre, control, identity) = (pre.clone(), control.clone(), self.identity.clone());
        // The guest may stream the body after answering, so the instance
        // lives in its own task until it returns; what it queued is
        // published then, before the body ends.
        let task = tokio::spawn(async move {
            let deadline = session.deadline();
            let store = &mut session.store;
            let result = Session::bounded(&deadline, async {
                let proxy = pre.instantiate_async(&mut *store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut *store, req, out).await
            })
            .await;
            let queued = session.take_queued();
            let called = session.finish(result)?;
            identity.publish_queued(&control, queued).await?;
            Ok(called)
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response.map(|body: HyperOutgoingBody| {
                StreamedBody::new(body, task, self.identity.clone(), max_response_bytes)
            })),
            Ok(Err(code)) => {
                Err(self.identity.error(InvokeErrorKind::Trap(format!("the guest answered with error {code:?}"))))
            }
            Err(_) => Err(match task.await {
                Ok(Err(error)) => error,
                Ok(Ok(_)) => {
                    self.identity.error(InvokeErrorKind::Trap("the guest returned without setting a response".into()))
                }
                Err(join) => self.identity.error(InvokeErrorKind::Host(format!("the call's task failed: {join}"))),
            }),
        }
    }
}
