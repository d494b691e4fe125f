//! Operators' actions through the admin API: publishing an event,
//! verifying a cart's journal, rebuilding a projection, dealing with its
//! quarantined events and with an event handler's dead letters.

use corral_storage::Storage;
use corral_storage::carts::CartKey;
use corral_storage::log::NewRecord;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::carts::Carts;
use crate::events::dead_letters::{self, Unhandled};
use crate::events::dispatch::Dispatch;
use crate::events::stream::EventStream;
use crate::http::respond::{Body, json, problem, tenant};
use crate::metrics::Metrics;
use crate::projections::Projections;
use crate::projections::generations::Unresolved;
use corral_schemas::TopicSchemas;

/// Largest event an operator may publish through the admin listener.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// `POST /events/TOPIC`: publishes the body, for operators and tests; a
/// body not matching the topic's declared schema is refused (400).
pub(super) async fn publish(
    stream: &dyn EventStream,
    metrics: &Metrics,
    topics: &TopicSchemas,
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
    if let Err(violation) = topics.check(&topic, &payload) {
        metrics.schema_refused(&violation.schema, "admin");
        return problem(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "schema_mismatch", "message": format!("the event {violation}"), "violation": violation.to_json()}),
        );
    }
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

/// `/projections/NAME/quarantine[/SEQ/skip|retry]`: the active
/// generation's quarantined events; skipping or folding again the one a
/// halted projection stopped before.
pub(super) async fn quarantine(projections: &Projections, method: &http::Method, rest: &str) -> Response<Body> {
    let not_found =
        |message: String| problem(StatusCode::NOT_FOUND, serde_json::json!({"error": "not_found", "message": message}));
    let (name, action) = match rest.split_once("/quarantine") {
        Some((name, action)) if !name.is_empty() => (name, action.trim_start_matches('/')),
        _ => return not_found(format!("no admin endpoint /projections/{rest}")),
    };
    if action.is_empty() && method == http::Method::GET {
        let statuses = projections.statuses().await;
        let Some(status) = statuses.iter().find(|s| s.active && s.projector.name() == name) else {
            return not_found(format!("no projection named {name:?} is loaded"));
        };
        let projector = &status.projector;
        let quarantined = projector.quarantined.lock().map(|q| q.clone()).unwrap_or_default();
        return json(
            StatusCode::OK,
            &serde_json::json!({"projection": name, "generation": projector.scope, "state": projector.state(), "quarantined": quarantined}),
        );
    }
    let parsed = action.split_once('/').and_then(|(sequence, verb)| Some((sequence.parse::<u64>().ok()?, verb)));
    let skip = match (method, parsed) {
        (&http::Method::POST, Some((_, "skip"))) => true,
        (&http::Method::POST, Some((_, "retry"))) => false,
        _ => {
            return not_found(format!(
                "no admin endpoint {method} /projections/{rest}; try GET /projections/NAME/quarantine or POST /projections/NAME/quarantine/SEQUENCE/skip|retry"
            ));
        }
    };
    let sequence = parsed.map_or(0, |(sequence, _)| sequence);
    match projections.resolve(name, sequence, skip).await {
        Ok(()) => json(
            StatusCode::OK,
            &serde_json::json!({"projection": name, "sequence": sequence, "action": if skip { "skipped" } else { "retried" }, "state": "running"}),
        ),
        Err(Unresolved::NotFound(message)) => not_found(message),
        Err(Unresolved::Conflict(message)) => {
            problem(StatusCode::CONFLICT, serde_json::json!({"error": "not_halted_there", "message": message}))
        }
        Err(Unresolved::Storage(message)) => {
            problem(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": "storage", "message": message}))
        }
    }
}

/// `/subscriptions/PLUGIN/dead-letters[/SEQ/retry|skip]`: an event
/// handler's dead letters, and delivering one again or skipping it.
pub(super) async fn dead_letters(
    dispatch: &Dispatch,
    stream: &dyn EventStream,
    storage: &Storage,
    method: &http::Method,
    rest: &str,
) -> Response<Body> {
    let not_found =
        |message: String| problem(StatusCode::NOT_FOUND, serde_json::json!({"error": "not_found", "message": message}));
    let Some((plugin, action)) = rest.split_once("/dead-letters") else {
        return not_found(format!("no admin endpoint /subscriptions/{rest}"));
    };
    let action = action.trim_start_matches('/');
    if action.is_empty() && method == http::Method::GET {
        return match dead_letters::list(stream, storage, plugin).await {
            Ok(letters) => json(StatusCode::OK, &serde_json::json!({"plugin": plugin, "dead_letters": letters})),
            Err(error) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "unavailable", "message": error.to_string()}),
            ),
        };
    }
    let parsed = action.split_once('/').and_then(|(sequence, verb)| Some((sequence.parse::<u64>().ok()?, verb)));
    let done = match (method, parsed) {
        (&http::Method::POST, Some((sequence, "retry"))) => {
            let subscriptions = dispatch.subscriptions();
            let Some(subscription) = subscriptions.iter().find(|s| s.handler.name() == plugin) else {
                return not_found(format!("no event handler named {plugin:?} is subscribed here"));
            };
            dead_letters::retry(subscription, stream, storage, sequence).await.map(|()| (sequence, "retried"))
        }
        (&http::Method::POST, Some((sequence, "skip"))) => {
            dead_letters::skip(stream, storage, plugin, sequence).await.map(|()| (sequence, "skipped"))
        }
        _ => {
            return not_found(format!(
                "no admin endpoint {method} /subscriptions/{rest}; try GET /subscriptions/PLUGIN/dead-letters or POST /subscriptions/PLUGIN/dead-letters/SEQUENCE/retry|skip"
            ));
        }
    };
    match done {
        Ok((sequence, state)) => {
            json(StatusCode::OK, &serde_json::json!({"plugin": plugin, "sequence": sequence, "state": state}))
        }
        Err(Unhandled::NotFound(message)) => not_found(message),
        Err(error @ Unhandled::Failed(_)) => {
            problem(StatusCode::CONFLICT, serde_json::json!({"error": "handler_failed", "message": error.to_string()}))
        }
        Err(error @ Unhandled::Unavailable(_)) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "unavailable", "message": error.to_string()}),
        ),
    }
}
