//! The carts' HTTP API on the public listener:
//!
//! - `POST /carts/PLUGIN/ID` with `{"kind": ..., "payload": ..., "id": ...}`
//!   applies a mutation and answers the new state once it is durable
//!   (`id`, or an `idempotency-key` header, makes a retry safe);
//! - `GET /carts/PLUGIN/ID` answers the state and version.
//!
//! Both are scoped to the `x-corral-tenant` header's tenant.

use corral_runtime::InvokeErrorKind;
use corral_storage::carts::CartKey;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::carts::{CartError, CartReply, Carts, MutateRequest, Transport};
use crate::http::respond::{Body, as_json, full, problem, tenant, too_large};

/// The body of `POST /carts/PLUGIN/ID`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Mutate {
    kind: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<String>,
}

/// Answers a request under `/carts/`; `rest` is the path after it.
pub(crate) async fn handle(
    carts: &Carts,
    request: Request<Incoming>,
    rest: &str,
    request_id: &str,
    max_bytes: usize,
) -> Response<Body> {
    let Some((plugin, cart)) = rest.split_once('/').filter(|(p, c)| !p.is_empty() && !c.is_empty() && !c.contains('/'))
    else {
        return problem(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not_found", "message": "cart paths are /carts/PLUGIN/ID", "request_id": request_id}),
        );
    };
    let tenant = match tenant(request.headers(), request_id) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let key = CartKey { tenant, plugin: plugin.into(), cart: cart.into() };
    let result = match *request.method() {
        Method::GET => carts.state(key.clone()).await,
        Method::POST => {
            let traceparent = crate::traces::current_or(header("traceparent"));
            let idempotency_key = header("idempotency-key");
            let body = match Limited::new(request.into_body(), max_bytes).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    return too_large(max_bytes, request_id);
                }
                Err(error) => return bad_request(format!("reading the body: {error}"), request_id),
            };
            let mutate: Mutate = match serde_json::from_slice(&body) {
                Ok(mutate) => mutate,
                Err(error) => {
                    return bad_request(
                        format!(
                            "the body must be JSON {{\"kind\": string, \"payload\": any, \"id\": string?}}: {error}"
                        ),
                        request_id,
                    );
                }
            };
            let payload = match &mutate.payload {
                Some(value) => value.to_string().into_bytes(),
                None => Vec::new(),
            };
            let request = MutateRequest {
                kind: mutate.kind,
                payload,
                client_id: mutate.id.or(idempotency_key),
                traceparent,
                forwarded: false,
                transport: Transport::Http,
            };
            carts.mutate(key.clone(), request).await
        }
        _ => {
            return problem(
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({"error": "method_not_allowed", "message": "carts take GET (state) and POST (a mutation)", "request_id": request_id}),
            );
        }
    };
    match result {
        Ok(reply) => ok(&key, reply),
        Err(error) => failure(&error, request_id),
    }
}

fn ok(key: &CartKey, reply: CartReply) -> Response<Body> {
    let body = serde_json::json!({
        "plugin": key.plugin,
        "cart": key.cart,
        "version": reply.version,
        "state": reply.state.as_deref().map(as_json),
        "events": reply.events,
        "repeated": reply.repeated,
    });
    let mut response = Response::new(full(body.to_string().into_bytes()));
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// The status a cart error answers with.
pub(crate) fn status(error: &CartError) -> StatusCode {
    match error {
        CartError::UnknownPlugin { .. } => StatusCode::NOT_FOUND,
        CartError::UnknownKind { .. } | CartError::Invalid(_) | CartError::InvalidPayload { .. } => {
            StatusCode::BAD_REQUEST
        }
        CartError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        CartError::Failed(error) => match error.kind {
            InvokeErrorKind::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            InvokeErrorKind::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        CartError::Diverged { .. } | CartError::Mismatch { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        CartError::Storage(_)
        | CartError::Overloaded { .. }
        | CartError::Busy { .. }
        | CartError::Elsewhere { .. }
        | CartError::Moved { .. } => StatusCode::SERVICE_UNAVAILABLE,
        CartError::Forwarded { code, .. } => match code {
            tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
            tonic::Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Aborted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

fn failure(error: &CartError, request_id: &str) -> Response<Body> {
    let mut body = serde_json::json!({"error": error.label(), "message": error.to_string(), "request_id": request_id});
    if let CartError::Rejected { plugin, code, .. } = error {
        body["plugin"] = plugin.clone().into();
        body["code"] = code.clone().into();
    }
    if let CartError::Failed(invoke) = error {
        body["plugin"] = invoke.plugin.clone().into();
        body["version"] = invoke.version.clone().into();
    }
    if let CartError::Mismatch { plugin, violation } | CartError::InvalidPayload { plugin, violation, .. } = error {
        body["plugin"] = plugin.clone().into();
        body["violation"] = violation.to_json();
    }
    let mut response = problem(status(error), body);
    if error.is_retryable() {
        response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    }
    response
}

fn bad_request(message: String, request_id: &str) -> Response<Body> {
    problem(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": "bad_request", "message": message, "request_id": request_id}),
    )
}
