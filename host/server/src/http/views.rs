//! Projection queries on the public listener: `GET /views/PROJECTION/ID`
//! and `GET /views/PROJECTION?prefix=&cursor=&limit=`, always within the
//! `x-corral-tenant` header's tenant, from the active generation's views.

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::http::respond::{Body, as_json, full, problem, tenant};
use crate::plugins::Catalog;
use crate::projections::active_scope;

/// `GET /views/PROJECTION/ID` and `GET /views/PROJECTION?prefix=&cursor=&limit=`,
/// scoped to the `x-corral-tenant` header's tenant (default: none).
pub(crate) fn query(
    catalog: &Catalog,
    storage: &corral_storage::Storage,
    request: &Request<Incoming>,
    rest: &str,
    request_id: &str,
) -> Response<Body> {
    if request.method() != http::Method::GET {
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"error": "method_not_allowed", "message": "views are read-only: use GET", "request_id": request_id}),
        );
    }
    let tenant = match tenant(request.headers(), request_id) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let tenant = tenant.as_str();
    let (projection, id) = rest.split_once('/').unwrap_or((rest, ""));
    if !catalog.has_projection(projection) {
        return problem(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not_found", "message": format!("no projection named {projection:?}"), "request_id": request_id}),
        );
    }
    // Queries read the active generation; none yet means no views yet.
    let scope = active_scope(storage, projection).unwrap_or_default();
    if !id.is_empty() {
        return match storage.view_get(tenant, &scope, id) {
            Ok(Some(value)) => view_response(value),
            Ok(None) => problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("projection {projection} has no view {id:?}"), "request_id": request_id}),
            ),
            Err(error) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "unavailable", "message": error.to_string()}),
            ),
        };
    }
    let query = request.uri().query().unwrap_or("");
    let param =
        |name: &str| query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v);
    let limit = param("limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(100).clamp(1, 1000);
    match storage.view_list(tenant, &scope, param("prefix").unwrap_or(""), param("cursor"), limit) {
        Ok((views, next_cursor)) => {
            let views: Vec<serde_json::Value> =
                views.into_iter().map(|(id, value)| serde_json::json!({"id": id, "value": as_json(&value)})).collect();
            let body = serde_json::json!({"views": views, "next_cursor": next_cursor});
            let mut response = Response::new(full(body.to_string().into_bytes()));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(error) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "unavailable", "message": error.to_string()}),
        ),
    }
}

/// A view as a response: JSON when it is JSON, bytes otherwise.
fn view_response(value: Vec<u8>) -> Response<Body> {
    let json = serde_json::from_slice::<serde_json::Value>(&value).is_ok();
    let mut response = Response::new(full(value));
    let content_type = if json { "application/json" } else { "application/octet-stream" };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
