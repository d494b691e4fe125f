//! Projection queries on the public listener: `GET /views/PROJECTION/ID`,
//! `GET /views/PROJECTION?prefix=&cursor=&limit=` and, with a filter or a
//! sort, `GET /views/PROJECTION?where=SQL&order_by=FIELD [DESC]&limit=&cursor=`,
//! always within the `x-corral-tenant` header's tenant, from the active
//! generation's views.

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use corral_query::{MAX_LIMIT, Query};
use corral_storage::ViewQueryError;

use crate::http::respond::{Body, as_json, full, problem, tenant};
use crate::plugins::{Catalog, Mounted};
use crate::projections::active_scope;
use crate::projections::queries::too_broad;

/// `GET /views/PROJECTION/ID` and `GET /views/PROJECTION?prefix=&cursor=&limit=`,
/// scoped to the `x-corral-tenant` header's tenant (default: none).
pub(crate) async fn query(
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
    let params: Vec<(String, String)> = form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let limit = param("limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(100).clamp(1, MAX_LIMIT);
    if param("where").is_some() || param("order_by").is_some() {
        let Some(mounted) = catalog.projection(projection) else {
            return problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("no projection named {projection:?}"), "request_id": request_id}),
            );
        };
        return filtered(storage, mounted, tenant, &scope, &param, limit, request_id).await;
    }
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

/// A filtered or sorted query, planned over the scope's indexes.
async fn filtered<'a>(
    storage: &corral_storage::Storage,
    mounted: &Mounted,
    tenant: &str,
    scope: &str,
    param: &impl Fn(&str) -> Option<&'a str>,
    limit: usize,
    request_id: &str,
) -> Response<Body> {
    let invalid = |message: String| {
        problem(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "invalid_query", "message": message, "request_id": request_id}),
        )
    };
    let parsed = Query::parse(
        param("where").unwrap_or(""),
        param("order_by").unwrap_or(""),
        param("prefix").unwrap_or(""),
        param("cursor").unwrap_or(""),
        limit,
    );
    let query = match parsed {
        Ok(query) => query,
        Err(error) => return invalid(error.to_string()),
    };
    let scan_limit = mounted.sidecar.projection.scan_limit;
    // A query may read up to `scan_limit` views: off the async workers.
    let (storage, tenant, scope) = (storage.clone(), tenant.to_string(), scope.to_string());
    let answered = tokio::task::spawn_blocking(move || {
        let answer = storage.view_query(&tenant, &scope, &query, scan_limit);
        (answer, query)
    })
    .await;
    let (answer, query) = match answered {
        Ok(answered) => answered,
        Err(error) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "unavailable", "message": error.to_string(), "request_id": request_id}),
            );
        }
    };
    match answer {
        Ok(page) => {
            let views: Vec<serde_json::Value> = page
                .views
                .into_iter()
                .map(|(id, value)| serde_json::json!({"id": id, "value": as_json(&value)}))
                .collect();
            let body = serde_json::json!({
                "views": views, "next_cursor": page.next_cursor, "index": page.index, "scanned": page.scanned,
            });
            let mut response = Response::new(full(body.to_string().into_bytes()));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(ViewQueryError::TooBroad { limit, index }) => {
            let (message, suggested) = too_broad(mounted, limit, index.as_deref(), &query);
            problem(
                StatusCode::BAD_REQUEST,
                serde_json::json!({
                    "error": "query_too_broad", "message": message, "scan_limit": limit, "index": index,
                    "suggested_index": suggested, "request_id": request_id,
                }),
            )
        }
        Err(ViewQueryError::Storage(error)) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "unavailable", "message": error.to_string(), "request_id": request_id}),
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
