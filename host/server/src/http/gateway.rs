//! The public listener's request path, five hops you can read top to
//! bottom: accept (`listener`) → [`Gateway::handle`] routes → the runtime
//! instantiates and calls the plugin → `respond` turns its answer into a
//! response. Views (`views`) and the cart API (`carts`, `grpc`) share
//! the listener under their reserved prefixes.

use std::sync::Arc;
use std::time::Duration;

use corral_routes::Match;
use corral_runtime::types::{HttpRequest, HttpResponse};
use corral_runtime::{CallContext, ControlPlane, InvokeError, InvokeErrorKind, World};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tracing::Instrument as _;

use crate::carts::Carts;
use crate::config::HttpLimits;
use crate::http::respond::{Body, BoxError, full, problem, too_large};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::plugins::{Mounted, Registry, Slot};

/// Routes requests to plugins.
pub(crate) struct Gateway {
    pub(crate) registry: Arc<Registry>,
    pub(crate) storage: corral_storage::Storage,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: HttpLimits,
    pub(crate) carts: Arc<Carts>,
    /// gRPC services: the cart API, and in a cluster the control plane.
    pub(crate) grpc: tonic::service::Routes,
    /// This node in a cluster, if it is in one.
    pub(crate) node: Option<Arc<Node>>,
    /// What every call's imports reach.
    pub(crate) control: Arc<ControlPlane>,
    /// Shutdown has begun: every HTTP/1 response closes its connection.
    pub(crate) draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Gateway {
    /// Handles one request; never fails: every problem is a response.
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let request_id = request_id(&request);
        // `connection` is an HTTP/1 header (HTTP/2 forbids it).
        let http1 = request.version() < http::Version::HTTP_2;
        // Every line logged while serving it carries these; the plugin's
        // and the call's are filled in once the route is known.
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            path = %request.uri().path(),
            plugin = tracing::field::Empty,
            version = tracing::field::Empty,
            tenant = tracing::field::Empty,
            correlation_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        crate::traces::adopt(&span, request.headers().get("traceparent").and_then(|v| v.to_str().ok()));
        let mut response = self.route(request, &request_id).instrument(span.clone()).await;
        if crate::traces::enabled() {
            span.record("status", response.status().as_u16());
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        if http1 && self.draining.load(std::sync::atomic::Ordering::Acquire) {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.metrics.http_response(response.status());
        response
    }

    async fn route(&self, request: Request<Incoming>, request_id: &str) -> Response<Body> {
        let path = request.uri().path().to_string();
        if is_grpc(&request) {
            return self.call_grpc(request).await;
        }
        if let Some(refusal) = self.cut_off(&request, request_id) {
            return refusal;
        }
        if let Some(rest) = path.strip_prefix("/views/") {
            return crate::http::views::query(&self.registry.catalog(), &self.storage, &request, rest, request_id)
                .await;
        }
        if let Some(rest) = path.strip_prefix("/carts/") {
            return crate::http::carts::handle(&self.carts, request, rest, request_id, self.limits.max_request_bytes)
                .await;
        }
        // One snapshot per request: a swap during the call changes nothing here.
        let catalog = self.registry.catalog();
        match catalog.router.route(request.method().as_str(), &path) {
            Match::NotFound => problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("no route for {} {path}", request.method()), "request_id": request_id}),
            ),
            Match::MethodNotAllowed(allowed) => {
                let mut response = problem(
                    StatusCode::METHOD_NOT_ALLOWED,
                    serde_json::json!({"error": "method_not_allowed", "message": format!("{} is not served on {path}; allowed: {}", request.method(), allowed.join(", ")), "request_id": request_id}),
                );
                if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                response
            }
            Match::Found { target, params, method, pattern } => {
                let Some(slot) = catalog.slots.get(*target) else {
                    return problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        serde_json::json!({"error": "host", "message": "the route table names no plugin", "request_id": request_id}),
                    );
                };
                let tenant = match crate::http::respond::tenant(request.headers(), request_id) {
                    Ok(tenant) => tenant,
                    Err(refused) => return *refused,
                };
                let call = call_context(&request, request_id, tenant);
                let chosen = |mounted: &Mounted, call: &CallContext| {
                    let span = tracing::Span::current();
                    span.record("plugin", mounted.plugin.name());
                    span.record("version", mounted.plugin.version());
                    span.record("tenant", call.tenant.as_str());
                    span.record("correlation_id", call.correlation_id.as_str());
                    if let Some(trace_id) = call.trace_id() {
                        span.record("trace_id", trace_id);
                    }
                };
                self.serve_slot(slot, call, request, Routed { params, method, pattern }, chosen).await
            }
        }
    }

    /// Serves `request` with `slot`'s plugin — or, for the canary's share
    /// of calls, its canary, which counts the outcome. `chosen` is told
    /// which version serves, before the call.
    pub(super) async fn serve_slot<B>(
        &self,
        slot: &Slot,
        call: CallContext,
        request: Request<B>,
        routed: Routed<'_>,
        chosen: impl FnOnce(&Mounted, &CallContext),
    ) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let canary = slot.canary.as_ref().filter(|c| c.pick());
        let mounted = canary.map_or(&slot.mounted, |c| &c.mounted);
        chosen(mounted, &call);
        let response = match mounted.plugin.world() {
            World::WasiHttp => self.serve_wasi_http(mounted, call, request).await,
            _ => self.call_route(mounted, call, request, routed).await,
        };
        if let Some(canary) = canary {
            canary.record(response.status().is_server_error());
        }
        response
    }

    /// A node cut off from NATS refuses writes (anything but GET, HEAD and
    /// OPTIONS) with 503 rather than half-doing them: a write would fail
    /// anyway once it reaches the log or kv, after the plugin ran.
    fn cut_off(&self, request: &Request<Incoming>, request_id: &str) -> Option<Response<Body>> {
        let node = self.node.as_ref().filter(|node| !node.connected())?;
        if matches!(*request.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS) {
            return None;
        }
        let mut response = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "cut_off", "message": format!(
                "node {} cannot reach NATS: it takes no writes until it is back; retry, or send the request to another node",
                node.id()
            ), "request_id": request_id}),
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        Some(response)
    }

    /// gRPC (the cart service, the cluster's control plane) shares the
    /// public listener over HTTP/2. A caller's `grpc-timeout` bounds the
    /// call: past it the answer is `DEADLINE_EXCEEDED` (a mutation may
    /// still have been applied: retry it with the same client id).
    async fn call_grpc(&self, request: Request<Incoming>) -> Response<Body> {
        use tonic::codegen::Service as _;
        let timeout = grpc_timeout(request.headers());
        let mut grpc = self.grpc.clone();
        let call = grpc.call(request);
        let answered = match timeout {
            Some(timeout) => match tokio::time::timeout(timeout, call).await {
                Ok(answered) => answered,
                Err(_) => {
                    let message = format!("the caller's grpc-timeout of {timeout:?} passed before an answer");
                    return tonic::Status::deadline_exceeded(message).into_http::<()>().map(|()| full(Vec::new()));
                }
            },
            None => call.await,
        };
        match answered {
            Ok(response) => response.map(|body| body.map_err(|status| Box::new(status) as BoxError).boxed_unsync()),
            Err(never) => match never {},
        }
    }

    async fn call_route<B>(
        &self,
        mounted: &Mounted,
        call: CallContext,
        request: Request<B>,
        routed: Routed<'_>,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes>,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        if declared_length(&parts.headers).is_some_and(|length| length > self.limits.max_request_bytes as u64) {
            return too_large(self.limits.max_request_bytes, &call.request_id);
        }
        let body = match Limited::new(body, self.limits.max_request_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return too_large(self.limits.max_request_bytes, &call.request_id);
            }
            Err(error) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": "bad_request", "message": format!("reading the request body: {error}"), "request_id": call.request_id}),
                );
            }
        };
        if let Some(schema) = mounted.schemas.request(routed.method, routed.pattern)
            && let Err(violation) = schema.check(&body)
        {
            self.metrics.schema_refused(schema.name(), "route");
            return problem(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "schema_mismatch", "message": format!("the request body {violation}"), "violation": violation.to_json(), "request_id": call.request_id}),
            );
        }
        let params = routed.params;
        let request = HttpRequest {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())
                })
                .collect(),
            params,
            body: body.to_vec(),
        };
        mounted.metrics.in_flight.inc();
        let max_bytes = self.limits.max_response_bytes as u64;
        let result = mounted.plugin.handle_http_queued(&self.control, call.clone(), &request, max_bytes).await;
        // Events queued until the call succeeded go out with an accepted
        // response only, before it is sent.
        let result = match result {
            Ok(called) => {
                let (response, queued) = called.value;
                match respond(mounted, response, &call.request_id) {
                    Checked::Accepted(response) => match mounted.plugin.publish_queued(&self.control, queued).await {
                        Ok(()) => Ok((response, called.fuel_used, called.elapsed)),
                        Err(error) => Err(error),
                    },
                    Checked::Refused(refused) => Ok((refused, called.fuel_used, called.elapsed)),
                }
            }
            Err(error) => Err(error),
        };
        mounted.metrics.in_flight.dec();
        match result {
            Ok((response, fuel_used, elapsed)) => {
                mounted.metrics.observe(elapsed.as_secs_f64(), fuel_used);
                response
            }
            Err(error) => {
                mounted.metrics.failed(error.kind.label());
                failure(&error, &call.request_id)
            }
        }
    }

    async fn serve_wasi_http<B>(&self, mounted: &Mounted, call: CallContext, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if declared_length(request.headers()).is_some_and(|length| length > self.limits.max_request_bytes as u64) {
            return too_large(self.limits.max_request_bytes, &call.request_id);
        }
        let limit = self.limits.max_request_bytes;
        let request = request.map(|body| {
            Limited::new(body, limit).map_err(move |error| match error.downcast::<hyper::Error>() {
                Ok(hyper) => wasmtime_wasi_http::Error::Hyper(*hyper),
                // An in-process caller's stream failed.
                Err(error) => match error.downcast::<wasmtime_wasi_http::Error>() {
                    Ok(error) => *error,
                    Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(limit as u64)),
                },
            })
        });
        let request_id = call.request_id.clone();
        mounted.metrics.in_flight.inc();
        let started = std::time::Instant::now();
        let max_bytes = self.limits.max_response_bytes as u64;
        let result = mounted.plugin.serve_http(&self.control, call, request, max_bytes).await;
        mounted.metrics.in_flight.dec();
        match result {
            // The call's cost, or its failure after the head went out, is
            // known when the body ends.
            Ok(response) => {
                let (metrics, plugin) = (mounted.metrics.clone(), mounted.plugin.name().to_string());
                response.map(|body| {
                    body.on_finish(move |outcome| match outcome {
                        Ok(called) => metrics.observe(started.elapsed().as_secs_f64(), called.fuel_used),
                        Err(error) => {
                            tracing::warn!(plugin, request_id, "the streamed response was cut: {}", error.kind);
                            metrics.failed(error.kind.label());
                        }
                    })
                    .boxed_unsync()
                })
            }
            Err(error) => {
                mounted.metrics.failed(error.kind.label());
                failure(&error, &request_id)
            }
        }
    }
}

/// A gRPC caller's deadline: `grpc-timeout` is at most 8 digits and a
/// unit (`H`, `M`, `S`, `m`, `u`, `n`); anything else is no deadline.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Whether a request speaks gRPC (`application/grpc`, `application/grpc+proto`, ...).
fn is_grpc(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Honours the client's `x-request-id`, else makes one.
fn request_id(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()))
}

fn call_context(request: &Request<Incoming>, request_id: &str, tenant: String) -> CallContext {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    CallContext {
        request_id: request_id.to_string(),
        tenant,
        correlation_id: header("x-correlation-id").unwrap_or_else(|| request_id.to_string()),
        traceparent: crate::traces::current_or(header("traceparent")),
        ..CallContext::default()
    }
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// A guest's response, accepted or refused by the host.
enum Checked {
    /// The guest's response, as HTTP.
    Accepted(Response<Body>),
    /// The 500 that answers a response the host refused.
    Refused(Response<Body>),
}

/// Turns a guest's response record into an HTTP response, or refuses it
/// (an invalid status) with the 500 to answer; a body over the cap was
/// refused as it was lifted (`ResponseTooLarge`).
fn respond(mounted: &Mounted, response: HttpResponse, request_id: &str) -> Checked {
    let plugin = &mounted.plugin;
    let Some(status) = StatusCode::from_u16(response.status).ok().filter(|s| (100..=599).contains(&s.as_u16())) else {
        return Checked::Refused(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "invalid_response", "plugin": plugin.name(), "version": plugin.version(),
                "message": format!("invalid status code {}", response.status), "request_id": request_id}),
        ));
    };
    let mut out = Response::new(full(response.body));
    *out.status_mut() = status;
    for (name, value) in response.headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) else {
            tracing::debug!(plugin = plugin.name(), "dropping an invalid response header");
            continue;
        };
        if is_hop_by_hop(&name) {
            continue;
        }
        out.headers_mut().append(name, value);
    }
    Checked::Accepted(out)
}

/// Headers the host owns: framing and connection management.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "te" | "trailer" | "content-length"
    )
}

/// The route a request matched: what its pattern captured, and the route
/// as the plugin serves it (which names its request schema).
pub(super) struct Routed<'a> {
    /// The pattern's captures.
    pub(super) params: Vec<(String, String)>,
    /// The route's method.
    pub(super) method: &'a str,
    /// The route's pattern.
    pub(super) pattern: &'a str,
}

/// 503 busy or events unpublished, 504 deadline, 500 for everything else
/// the plugin caused.
fn failure(error: &InvokeError, request_id: &str) -> Response<Body> {
    let status = match error.kind {
        InvokeErrorKind::Busy { .. } | InvokeErrorKind::Unpublished(_) => StatusCode::SERVICE_UNAVAILABLE,
        InvokeErrorKind::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR || matches!(error.kind, InvokeErrorKind::Unpublished(_)) {
        tracing::warn!(plugin = %error.plugin, version = %error.version, cause = error.kind.label(), "call failed: {}", error.kind);
    }
    problem(
        status,
        serde_json::json!({"error": error.kind.label(), "plugin": error.plugin, "version": error.version,
            "message": error.kind.to_string(), "request_id": request_id}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_by_unit_and_bad_ones_are_no_deadline() {
        let timeout = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("5u"), Some(Duration::from_micros(5)));
        for bad in ["", "m", "123456789m", "10x", "-1S", "1.5S"] {
            assert_eq!(timeout(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }
}
