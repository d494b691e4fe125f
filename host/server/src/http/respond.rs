//! The pieces every response of the host's listeners is built from: the
//! body type (whole bytes, or a wasi:http guest's stream), JSON error
//! bodies that name the cause, and the common refusals.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, combinators::UnsyncBoxBody};

/// Errors a response body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body: whole bytes, or a wasi:http guest's stream.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// 413: the request body is over `limit` bytes.
pub(crate) fn too_large(limit: usize, request_id: &str) -> Response<Body> {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        serde_json::json!({"error": "payload_too_large", "message": format!("the request body exceeds the limit of {limit} bytes"), "request_id": request_id}),
    )
}

/// The request's tenant (`x-corral-tenant`; none is the default tenant),
/// or a 400 naming the header and the rule it breaks (with the request id,
/// when the listener gives requests one).
pub(crate) fn tenant(headers: &http::HeaderMap, request_id: &str) -> Result<String, Box<Response<Body>>> {
    let value = headers.get("x-corral-tenant").map(HeaderValue::as_bytes);
    corral_runtime::tenants::tenant_from_header(value).map_err(|reason| {
        let mut body = serde_json::json!({"error": "invalid_tenant", "message": format!("x-corral-tenant: {reason}")});
        if !request_id.is_empty() {
            body["request_id"] = request_id.into();
        }
        Box::new(problem(StatusCode::BAD_REQUEST, body))
    })
}

/// A small JSON error response.
pub(crate) fn problem(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(body.to_string().into_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A whole-bytes body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A value inside a JSON document: itself if it is JSON, else a string.
pub(crate) fn as_json(value: &[u8]) -> serde_json::Value {
    serde_json::from_slice(value)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(value).into_owned()))
}

/// A JSON document with `status`.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    text(status, value.to_string(), "application/json")
}

/// A text body of `content_type` with `status`.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
