//! Outgoing HTTP of plugins ([`Outbound`], the runtime's `OutboundHttp`):
//! what a grant let out (the runtime checked it) goes either to the
//! network — through one pooled client whose [`connect::Connector`]
//! resolves names itself and keeps grants for names off private
//! addresses — or, for `http://NAME.plugin/…`, to that plugin's routes
//! in-process, through the gateway's router with the caller's tenant and
//! request id, one level deeper.
//!
//! Every request carries the call's W3C `traceparent`, ends by the calling
//! plugin's deadline, has its bodies capped, and is counted per plugin and
//! destination (`corral_outbound_requests_total`,
//! `corral_outbound_request_seconds`; the destination label is the grant,
//! so a guest cannot mint series: denials are all `(not granted)`). Redirects are never followed: the
//! guest gets the 3xx, and a request to where it points is checked against
//! the grants like any other.
//!
//! - `addresses`: which addresses are public.
//! - `connect`: resolving, connecting, TLS.
//! - `idle`: the guest's between-bytes timeout on a response body.
//!
//! The guest's own `request-options` apply within those bounds: its
//! connect timeout to opening a connection (else 10 s), its first-byte
//! timeout to the response head, its between-bytes timeout to the body.

mod addresses;
pub(crate) mod connect;
mod idle;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use bytes::Bytes;
use corral_runtime::outbound::MAX_CALL_DEPTH;
use corral_runtime::{CallContext, Caller, Denied, Destination, OutboundHttp};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::config::OutboundLimits;
use crate::http::gateway::Gateway;
use crate::http::respond::BoxError;
use crate::metrics::Metrics;
use crate::outbound::connect::{ConnectError, Connector};

/// What the client sends: the guest's body, capped.
type OutBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The `destination` label of denied requests.
const NOT_GRANTED: &str = "(not granted)";

/// Headers the host sets on an in-process call, whatever the guest set.
const CARRIED: [&str; 5] = ["x-corral-tenant", "x-request-id", "x-correlation-id", "traceparent", "x-corral-caller"];

/// Sends plugins' granted requests.
pub struct Outbound {
    client: Client<Connector, OutBody>,
    limits: OutboundLimits,
    metrics: OutboundMetrics,
    /// Serves in-process calls; set once the gateway exists.
    gateway: OnceLock<Weak<Gateway>>,
}

impl Outbound {
    /// A client trusting the system's roots and `ca_file`'s certificates.
    pub fn new(
        ca_file: Option<&std::path::Path>,
        limits: OutboundLimits,
        metrics: &Metrics,
    ) -> anyhow::Result<Outbound> {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(Connector::new(ca_file)?);
        Ok(Outbound { client, limits, metrics: OutboundMetrics::new(metrics)?, gateway: OnceLock::new() })
    }

    /// Where in-process calls are served.
    pub(crate) fn attach(&self, gateway: &Arc<Gateway>) {
        let _ = self.gateway.set(Arc::downgrade(gateway));
    }

    async fn to_network(
        &self,
        caller: &Caller,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Response<WasiBody>, HttpError> {
        let cap = self.limits.max_request_bytes;
        let (mut parts, body) = request.into_parts();
        if let Some(traceparent) = traceparent(&caller.call) {
            parts.headers.insert("traceparent", traceparent);
        }
        let body = Limited::new(body, cap as usize).boxed_unsync();
        let request = Request::from_parts(parts, body);
        // The head must arrive by the first-byte timeout the guest asked
        // for, and by the calling plugin's deadline whatever it asked.
        let mut by = tokio::time::Instant::from_std(caller.deadline);
        let options = options.unwrap_or_default();
        if let Some(first_byte) = options.first_byte_timeout {
            by = by.min(tokio::time::Instant::now() + first_byte);
        }
        let sent = connect::within(options.connect_timeout, self.client.request(request));
        let response = match tokio::time::timeout_at(by, sent).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(classify(&error, cap)),
            Err(_) => return Err(HttpError::HttpResponseTimeout),
        };
        let limit = self.limits.max_response_bytes;
        Ok(response.map(|body| {
            let capped = Limited::new(body, limit as usize)
                .map_err(move |error| match error.downcast::<hyper::Error>() {
                    Ok(hyper) => HttpError::from(*hyper),
                    Err(_) => HttpError::HttpResponseBodySize(Some(limit)),
                })
                .boxed_unsync();
            match options.between_bytes_timeout {
                Some(idle) => idle::BetweenBytes::new(capped, idle).boxed_unsync(),
                None => capped,
            }
        }))
    }

    async fn to_plugin(&self, caller: &Caller, plugin: &str, request: Request<WasiBody>) -> Response<WasiBody> {
        let depth = caller.call.depth + 1;
        if depth > MAX_CALL_DEPTH {
            tracing::warn!(plugin = %caller.plugin, target = plugin, depth, "plugin call refused: too deep");
            let message = format!(
                "plugin {} called plugin {plugin} at depth {depth}, past the limit of {MAX_CALL_DEPTH} nested plugin \
                 calls: plugins calling each other in a loop?",
                caller.plugin
            );
            let body =
                serde_json::json!({"error": "call_depth", "message": message, "request_id": caller.call.request_id});
            return json(StatusCode::LOOP_DETECTED, &body);
        }
        let Some(gateway) = self.gateway.get().and_then(Weak::upgrade) else {
            let body = serde_json::json!({"error": "unavailable", "message": "the host is starting or stopping"});
            return json(StatusCode::SERVICE_UNAVAILABLE, &body);
        };
        let call = CallContext {
            request_id: caller.call.request_id.clone(),
            tenant: caller.call.tenant.clone(),
            correlation_id: caller.call.correlation_id.clone(),
            traceparent: crate::traces::current_or(caller.call.traceparent.clone()),
            depth,
            ..CallContext::default()
        };
        let (mut parts, body) = request.into_parts();
        for name in CARRIED {
            parts.headers.remove(name);
        }
        let carried = [
            ("x-corral-tenant", &call.tenant),
            ("x-request-id", &call.request_id),
            ("x-correlation-id", &call.correlation_id),
            ("x-corral-caller", &caller.plugin),
        ];
        for (name, value) in carried {
            if let Ok(value) = HeaderValue::from_str(value) {
                parts.headers.insert(name, value);
            }
        }
        if let Some(traceparent) = call.traceparent.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
            parts.headers.insert("traceparent", traceparent);
        }
        let response = gateway.serve_internal(plugin, Request::from_parts(parts, body), call).await;
        response.map(|body| body.map_err(|error| HttpError::InternalError(Some(error.to_string()))).boxed_unsync())
    }
}

#[async_trait::async_trait]
impl OutboundHttp for Outbound {
    async fn send(
        &self,
        caller: Caller,
        destination: Destination,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Response<WasiBody>, HttpError> {
        let label = destination.label();
        let started = Instant::now();
        let sent = match &destination {
            Destination::Plugin(plugin) => Ok(self.to_plugin(&caller, plugin, request).await),
            Destination::Host(_) => self.to_network(&caller, request, options).await,
        };
        let outcome = match &sent {
            Ok(response) if response.status() == StatusCode::LOOP_DETECTED => "loop",
            Ok(_) => "ok",
            Err(HttpError::HttpResponseTimeout | HttpError::ConnectionTimeout) => "timeout",
            Err(HttpError::DestinationIpProhibited) => "prohibited",
            Err(_) => "error",
        };
        self.metrics.requests.with_label_values(&[caller.plugin.as_str(), &label, outcome]).inc();
        self.metrics.seconds.with_label_values(&[&label]).observe(started.elapsed().as_secs_f64());
        if let Err(error) = &sent {
            tracing::warn!(plugin = %caller.plugin, destination = %label, "outgoing request failed: {error}");
        }
        sent
    }

    fn denied(&self, caller: &Caller, denied: &Denied) {
        // The guest picks the target: labelling metrics with it would let
        // it mint series without end, so denials share one label.
        let target = denied.target();
        self.metrics.requests.with_label_values(&[caller.plugin.as_str(), NOT_GRANTED, "denied"]).inc();
        tracing::warn!(
            plugin = %caller.plugin,
            destination = %target,
            "outgoing request denied: {}",
            denied.fix(&caller.sidecar)
        );
    }
}

/// The traceparent to send: the call's span's when traces are exported,
/// else the one the call arrived with.
fn traceparent(call: &CallContext) -> Option<HeaderValue> {
    crate::traces::current_or(call.traceparent.clone()).and_then(|t| HeaderValue::from_str(&t).ok())
}

/// The guest's error code for a failed request, from the cause.
fn classify(error: &hyper_util::client::legacy::Error, cap: u64) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Prohibited { .. } => HttpError::DestinationIpProhibited,
                ConnectError::Dns { cause, .. } => HttpError::DnsError { rcode: Some(cause.clone()), info_code: None },
                ConnectError::Refused { .. } => HttpError::ConnectionRefused,
                ConnectError::Tls { .. } => HttpError::TlsCertificateError,
                ConnectError::Timeout(_) => HttpError::ConnectionTimeout,
                ConnectError::NoHost => HttpError::HttpRequestUriInvalid,
            };
        }
        if cause.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            return HttpError::HttpRequestBodySize(Some(cap));
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return if hyper.is_incomplete_message() {
                HttpError::HttpResponseIncomplete
            } else if hyper.is_closed() {
                HttpError::ConnectionTerminated
            } else {
                HttpError::HttpProtocolError
            };
        }
        source = cause.source();
    }
    HttpError::InternalError(Some(error.to_string()))
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<WasiBody> {
    let body = http_body_util::Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Outgoing requests by plugin, destination (the grant, or `NAME.plugin`)
/// and outcome; time to the response head by destination.
struct OutboundMetrics {
    requests: IntCounterVec,
    seconds: HistogramVec,
}

impl OutboundMetrics {
    fn new(metrics: &Metrics) -> prometheus::Result<OutboundMetrics> {
        let requests = IntCounterVec::new(
            Opts::new(
                "outbound_requests_total",
                "Outgoing HTTP requests by plugin, destination and outcome (ok, error, timeout, denied, prohibited, loop)",
            ),
            &["plugin", "destination", "outcome"],
        )?;
        let seconds = HistogramVec::new(
            HistogramOpts::new("outbound_request_seconds", "Time to an outgoing request's response head")
                .buckets(prometheus::exponential_buckets(0.000_1, 2.5, 12)?),
            &["destination"],
        )?;
        metrics.register(Box::new(requests.clone()))?;
        metrics.register(Box::new(seconds.clone()))?;
        Ok(OutboundMetrics { requests, seconds })
    }
}
