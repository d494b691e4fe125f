//! Deploys through the admin API (`host deploy` uses it): `PUT
//! /plugins/NAME` uploads a component — checked and loaded once, written
//! into the plugins folder only if it would serve — `DELETE` removes one,
//! `POST .../rollback` puts the previous version back. A refusal names the
//! step that refused it (`error`: [`DeployError::label`]) and the cause.

use http::{Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::http::respond::{Body, json, problem};
use crate::plugins::mounted::{MAX_STEM_BYTES, valid_stem};
use crate::plugins::{DeployError, Registry};

/// Largest component that may be uploaded.
const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// `PUT /plugins/NAME`.
pub(super) async fn upload(
    registry: &std::sync::Arc<Registry>,
    name: &str,
    request: http::Request<Incoming>,
) -> Response<Body> {
    if let Some(refusal) = invalid_name(name) {
        return refusal;
    }
    let bytes = match component(request).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    match registry.upload(name, bytes).await {
        Ok(deployed) => {
            let mounted = deployed.mounted();
            let plugin = &mounted.plugin;
            json(
                StatusCode::OK,
                &serde_json::json!({"plugin": plugin.name(), "version": plugin.version(), "world": plugin.world().name(),
                    "content_hash": plugin.content_hash(), "outcome": deployed.label()}),
            )
        }
        Err(error) => refused(name, &error),
    }
}

/// The uploaded component, or a 413 when it is over [`MAX_COMPONENT_BYTES`].
pub(super) async fn component(request: http::Request<Incoming>) -> Result<Vec<u8>, Response<Body>> {
    match http_body_util::Limited::new(request.into_body(), MAX_COMPONENT_BYTES).collect().await {
        Ok(body) => Ok(body.to_bytes().to_vec()),
        Err(error) => Err(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({"error": "payload_too_large", "message": format!("{error} (limit {MAX_COMPONENT_BYTES} bytes)")}),
        )),
    }
}

/// `DELETE /plugins/NAME`: unloads it (running calls finish) and removes
/// its component from the plugins folder.
pub(super) async fn remove(registry: &Registry, name: &str) -> Response<Body> {
    if let Some(refusal) = invalid_name(name) {
        return refusal;
    }
    match registry.remove(name).await {
        Ok(true) => json(StatusCode::OK, &serde_json::json!({"plugin": name, "removed": true})),
        Ok(false) => problem(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not_found", "message": format!("no plugin file {name}.wasm is loaded")}),
        ),
        Err(error) => refused(name, &error),
    }
}

/// `POST /plugins/NAME/rollback`: the previous version serves again.
pub(super) async fn rollback(registry: &Registry, name: &str) -> Response<Body> {
    if let Some(refusal) = invalid_name(name) {
        return refusal;
    }
    match registry.rollback(name).await {
        Ok(mounted) => json(
            StatusCode::OK,
            &serde_json::json!({"plugin": mounted.plugin.name(), "version": mounted.plugin.version(), "content_hash": mounted.plugin.content_hash()}),
        ),
        Err(error) => refused(name, &error),
    }
}

/// A 400 unless `name` is a plugin file name: letters, digits, `-`, `_`
/// and `.`, not starting with `.` (the watcher ignores those), at most
/// [`MAX_STEM_BYTES`].
pub(super) fn invalid_name(name: &str) -> Option<Response<Body>> {
    if valid_stem(name) {
        return None;
    }
    let shown: String = name.chars().take(40).collect();
    Some(problem(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": "invalid_name", "message": format!(
            "plugin name {shown:?} must be 1 to {MAX_STEM_BYTES} letters, digits, '-', '_' or '.', not starting with '.'"
        )}),
    ))
}

/// A refused deploy: 422 when the version is at fault, 409 when there is
/// nothing to roll back to, 500 when the host's files failed.
pub(super) fn refused(name: &str, error: &DeployError) -> Response<Body> {
    let status = match error {
        _ if error.is_rejection() => StatusCode::UNPROCESSABLE_ENTITY,
        DeployError::NoPrevious { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    problem(status, serde_json::json!({"error": error.label(), "plugin": name, "message": error.to_string()}))
}
