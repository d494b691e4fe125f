//! Operators' actions through the admin API: publishing an event,
//! verifying a cart's journal, rebuilding a projection.

use corral_storage::carts::CartKey;
use corral_storage::log::NewRecord;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::carts::Carts;
use crate::events::stream::EventStream;
use crate::http::respond::{Body, json, problem, tenant};
use crate::metrics::Metrics;
use crate::projections::Projections;

/// Largest event an operator may publish through the admin listener.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// `POST /events/TOPIC`: publishes the body, for operators and tests.
pub(super) async fn publish(
    stream: &dyn EventStream,
    metrics: &Metrics,
    topic: String,
    request: Request<Incoming>,
) -> Response<Body> {
    if let Err(reason) = corral_runtime::topics::validate_topic(&topic) {
        return problem(StatusCode::BAD_REQUEST, serde_json::json!({"error": "invalid_topic", "message": reason}));
    }
    let tenant = match tenant(request.headers(), "") {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let correlation_id = header("x-correlation-id").unwrap_or_else(|| format!("admin-{:016x}", rand::random::<u64>()));
    let traceparent = header("traceparent");
    let payload = match http_body_util::Limited::new(request.into_body(), MAX_EVENT_BYTES).collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(error) => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"error": "payload_too_large", "message": format!("{error} (limit {MAX_EVENT_BYTES} bytes)")}),
            );
        }
    };
    let record =
        NewRecord { topic: topic.clone(), tenant, correlation_id, traceparent, source: "admin".into(), payload };
    match stream.publish(vec![record]).await {
        Ok(sequences) => {
            metrics.emitted("admin", 1);
            json(StatusCode::OK, &serde_json::json!({"topic": topic, "sequence": sequences.first()}))
        }
        Err(error) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "unavailable", "message": error.to_string()}),
        ),
    }
}

/// `POST /carts/PLUGIN/ID/verify`: replays the cart's journal; 200 with
/// `ok: true` when it reproduces the stored state, 409 with the first
/// divergence when it does not.
pub(super) async fn verify_cart(carts: &Carts, request: &Request<Incoming>, path: &str) -> Response<Body> {
    let rest = path.trim_start_matches("/carts/").trim_end_matches("/verify");
    let Some((plugin, cart)) = rest.split_once('/') else {
        return problem(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not_found", "message": "use POST /carts/PLUGIN/ID/verify"}),
        );
    };
    let tenant = match tenant(request.headers(), "") {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let key = CartKey { tenant, plugin: plugin.into(), cart: cart.into() };
    match carts.verify(key).await {
        Ok(verification) => {
            let status = if verification.ok { StatusCode::OK } else { StatusCode::CONFLICT };
            json(status, &serde_json::json!(verification))
        }
        Err(error) => problem(
            crate::http::carts::status(&error),
            serde_json::json!({"error": error.label(), "message": error.to_string()}),
        ),
    }
}

/// `POST /projections/NAME/rebuild`: clears the views and replays the log.
pub(super) async fn rebuild(projections: &Projections, name: &str) -> Response<Body> {
    match projections.rebuild(name).await {
        Ok(()) => json(StatusCode::ACCEPTED, &serde_json::json!({"projection": name, "state": "rebuilding"})),
        Err(error) => problem(StatusCode::NOT_FOUND, serde_json::json!({"error": "not_found", "message": error})),
    }
}
