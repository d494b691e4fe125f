//! Deploys to a cluster through the admin API of any of its nodes: `PUT
//! /plugins/NAME` validates the component here, stores it in the object
//! store and records it as the desired version (the sidecar travels in the
//! `x-corral-sidecar` header, base64; rollout settings in the query:
//! `waves`, `canary`, `window`, `max_error_rate`, `pause`; `expect_revision` makes
//! the deploy conditional). `DELETE /plugins/NAME` removes it everywhere;
//! `POST /plugins/NAME/rollback` and `/abort` roll back or stop a rollout;
//! `GET /cluster/plugins[/NAME]` shows the desired state beside what every
//! node runs.

use std::sync::Arc;

use base64::Engine as _;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::deploy::{component, invalid_name, refused};
use crate::fleet::{Accepted, DeployRequest, Fleet, FleetError, PolicyFlags};
use crate::http::respond::{Body, json, problem};
use crate::plugins::sidecar::parse_duration;

/// Header carrying the sidecar's TOML, base64-encoded.
const SIDECAR_HEADER: &str = "x-corral-sidecar";
/// Largest sidecar accepted (decoded).
const MAX_SIDECAR_BYTES: usize = 48 << 10;

/// `PUT /plugins/NAME` on a node of a cluster.
pub(super) async fn upload(fleet: &Arc<Fleet>, name: &str, request: http::Request<Incoming>) -> Response<Body> {
    if let Some(refusal) = invalid_name(name) {
        return refusal;
    }
    let sidecar = match sidecar(&request) {
        Ok(sidecar) => sidecar,
        Err(message) => return bad_request("invalid_sidecar", message),
    };
    let (flags, expect_revision) = match settings(request.uri().query().unwrap_or_default()) {
        Ok(settings) => settings,
        Err(message) => return bad_request("invalid_setting", message),
    };
    let bytes = match component(request).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    let request = DeployRequest { plugin: name.to_string(), bytes, sidecar, flags, expect_revision };
    answer(name, fleet.deploy(request).await)
}

/// `DELETE /plugins/NAME`.
pub(super) async fn remove(fleet: &Fleet, name: &str) -> Response<Body> {
    if let Some(refusal) = invalid_name(name) {
        return refusal;
    }
    match fleet.remove(name).await {
        Ok(revision) => {
            json(StatusCode::OK, &serde_json::json!({"plugin": name, "removed": true, "revision": revision}))
        }
        Err(error) => failed(name, &error),
    }
}

/// `POST /plugins/NAME/rollback` and `/cluster/plugins/NAME/rollback`.
pub(super) async fn rollback(fleet: &Fleet, name: &str) -> Response<Body> {
    if let Some(refusal) = invalid_name(name) {
        return refusal;
    }
    answer(name, fleet.rollback(name).await)
}

/// `POST /cluster/plugins/NAME/abort`.
pub(super) async fn abort(fleet: &Fleet, name: &str) -> Response<Body> {
    if let Some(refusal) = invalid_name(name) {
        return refusal;
    }
    answer(name, fleet.abort(name).await)
}

/// `GET /cluster/plugins` and `/cluster/plugins/NAME`.
pub(super) async fn status(fleet: &Fleet, name: Option<&str>) -> Response<Body> {
    let status = match name {
        Some(name) => fleet.plugin_status(name).await,
        None => fleet.status().await,
    };
    match status {
        Ok(status) => json(StatusCode::OK, &status),
        Err(error) => failed(name.unwrap_or_default(), &error),
    }
}

fn answer(name: &str, result: Result<Accepted, FleetError>) -> Response<Body> {
    match result {
        Ok(accepted) => {
            let desired = &accepted.desired;
            let outcome = match (&accepted.unchanged, desired.in_progress()) {
                (true, _) => "unchanged",
                (false, true) => "rolling_out",
                (false, false) => "recorded",
            };
            json(
                StatusCode::OK,
                &serde_json::json!({"plugin": name, "revision": accepted.revision, "outcome": outcome,
                    "content_hash": desired.target.hash, "version": desired.target.version, "world": desired.target.world,
                    "rollout": desired.rollout}),
            )
        }
        Err(error) => failed(name, &error),
    }
}

fn failed(name: &str, error: &FleetError) -> Response<Body> {
    let (status, revision) = match error {
        FleetError::Rejected(error) => return refused(name, error),
        FleetError::Conflict { revision, .. } => (StatusCode::CONFLICT, Some(*revision)),
        FleetError::NotFound { .. } => (StatusCode::NOT_FOUND, None),
        FleetError::Nothing { .. } => (StatusCode::CONFLICT, None),
        FleetError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    problem(
        status,
        serde_json::json!({"error": error.label(), "plugin": name, "revision": revision, "message": error.to_string()}),
    )
}

fn bad_request(error: &str, message: String) -> Response<Body> {
    problem(StatusCode::BAD_REQUEST, serde_json::json!({"error": error, "message": message}))
}

/// The sidecar sent with the component, if any.
fn sidecar(request: &http::Request<Incoming>) -> Result<Option<String>, String> {
    let Some(value) = request.headers().get(SIDECAR_HEADER) else { return Ok(None) };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_bytes())
        .map_err(|e| format!("{SIDECAR_HEADER} must be the sidecar's TOML in base64: {e}"))?;
    if bytes.len() > MAX_SIDECAR_BYTES {
        return Err(format!("the sidecar is {} bytes; the limit is {MAX_SIDECAR_BYTES}", bytes.len()));
    }
    String::from_utf8(bytes).map(Some).map_err(|_| "the sidecar is not UTF-8 text".to_string())
}

/// Rollout settings and the expected revision from the query string.
fn settings(query: &str) -> Result<(PolicyFlags, Option<u64>), String> {
    let mut flags = PolicyFlags::default();
    let mut expect = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let invalid = |what: &str| format!("{key}={value:?}: {what}");
        match key {
            "waves" => flags.waves = Some(value.parse().map_err(|_| invalid("a number of waves, e.g. 3"))?),
            "canary" => flags.canary = Some(value.parse().map_err(|_| invalid("a percent, 0 to 100"))?),
            "window" => flags.window = Some(parse_duration(value).map_err(|e| invalid(&e))?),
            "pause" => flags.pause = Some(parse_duration(value).map_err(|e| invalid(&e))?),
            "max_error_rate" => flags.max_error_rate = Some(value.parse().map_err(|_| invalid("a share, 0.0 to 1.0"))?),
            "expect_revision" => expect = Some(value.parse().map_err(|_| invalid("a revision number"))?),
            _ => {
                return Err(format!(
                    "unknown setting {key:?}; use waves, canary, window, max_error_rate, pause, expect_revision"
                ));
            }
        }
    }
    Ok((flags, expect))
}
