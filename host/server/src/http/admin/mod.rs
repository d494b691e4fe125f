//! The admin listener (loopback by default): health, readiness, metrics,
//! the state of plugins, subscriptions, projections and carts, the declared
//! payload schemas (and an OpenAPI document of the public API), deploys,
//! and operators' actions. Operators, `host` commands and tests talk to it;
//! guests never do. With a token set (required off loopback), every
//! request but the probes must carry it as a bearer token.
//!
//! - `status`: what is served and how far every consumer is.
//! - `deploy`: uploading, removing and rolling back plugins.
//! - `fleet`: the same in a cluster, through its desired state, and rollouts.
//! - `operate`: publishing an event, verifying a cart, rebuilding a projection.

mod deploy;
mod fleet;
mod operate;
mod status;

use std::sync::Arc;

use corral_storage::Storage;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::carts::Carts;
use crate::events::consumers::Consumers;
use crate::events::dispatch::Dispatch;
use crate::events::stream::EventStream;
use crate::fleet::Fleet;
use crate::http::respond::{Body, json, problem, text};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::plugins::Registry;
use crate::projections::Projections;

/// What the admin endpoints read and act on.
pub(crate) struct Admin {
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) stream: Arc<dyn EventStream>,
    /// The node's own LMDB: projections' views and checkpoints.
    pub(crate) storage: Storage,
    pub(crate) dispatch: Arc<Dispatch>,
    pub(crate) projections: Arc<Projections>,
    pub(crate) carts: Arc<Carts>,
    /// This node in a cluster, if it is in one.
    pub(crate) node: Option<Arc<Node>>,
    /// Its plugins across the cluster: deploys go through it.
    pub(crate) fleet: Option<Arc<Fleet>>,
    /// Not ready while a consumer lags more than this many events.
    pub(crate) ready_max_lag: Option<u64>,
    /// The consumers seen (removed plugins' ones are orphans).
    pub(crate) consumers: Arc<Consumers>,
    /// Shutdown has begun: not ready any more.
    pub(crate) draining: Arc<std::sync::atomic::AtomicBool>,
    /// BLAKE3 of the bearer token requests must carry, if one is set
    /// (compared as hashes: in constant time, whatever the lengths).
    pub(crate) token: Option<blake3::Hash>,
}

impl Admin {
    /// Answers one admin request.
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let (stream, storage) = (self.stream.as_ref(), &self.storage);
        let path = request.uri().path().to_string();
        if let Some(refused) = self.unauthorized(&request, &path) {
            return refused;
        }
        match (request.method(), path.as_str()) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n", "text/plain"),
            (&Method::GET, "/readyz") => self.ready().await,
            (&Method::GET, "/metrics") => {
                status::update_lags(&self.dispatch, stream, &self.metrics).await;
                for (kind, count) in self.storage.health().failures() {
                    self.metrics.set_storage_failures(kind.label(), count);
                }
                for slot in &self.registry.catalog().slots {
                    let plugin = &slot.mounted.plugin;
                    self.metrics.set_log_lines_dropped(plugin.name(), plugin.log_lines_dropped());
                }
                status::projections(&self.projections, stream, storage, &self.metrics).await;
                text(StatusCode::OK, self.metrics.render(), "text/plain; version=0.0.4")
            }
            (&Method::GET, "/plugins") => status::plugins(&self.registry.catalog()),
            (method, path) if path.starts_with("/subscriptions/") && path.contains("/dead-letters") => {
                let rest = &path["/subscriptions/".len()..];
                operate::dead_letters(&self.dispatch, stream, storage, method, rest).await
            }
            (&Method::GET, "/subscriptions") => {
                let (catalog, live) = (self.registry.catalog(), self.projections.consumers());
                status::subscriptions(&self.dispatch, stream, storage, &catalog, &self.consumers, live).await
            }
            (&Method::GET, "/projections") => {
                status::projections(&self.projections, stream, storage, &self.metrics).await
            }
            (method, path) if path.starts_with("/projections/") && path.contains("/quarantine") => {
                operate::quarantine(&self.projections, method, &path["/projections/".len()..]).await
            }
            (&Method::POST, path) if path.starts_with("/projections/") && path.ends_with("/rebuild") => {
                let name = path.trim_start_matches("/projections/").trim_end_matches("/rebuild");
                operate::rebuild(&self.projections, name).await
            }
            (&Method::PUT, path) if path.starts_with("/plugins/") => match &self.fleet {
                Some(fleet) => fleet::upload(fleet, &path["/plugins/".len()..], request).await,
                None => deploy::upload(&self.registry, &path["/plugins/".len()..], request).await,
            },
            (&Method::DELETE, path) if path.starts_with("/plugins/") => match &self.fleet {
                Some(fleet) => fleet::remove(fleet, &path["/plugins/".len()..]).await,
                None => deploy::remove(&self.registry, &path["/plugins/".len()..]).await,
            },
            (&Method::POST, path) if path.starts_with("/plugins/") && path.ends_with("/rollback") => {
                let name = path.trim_start_matches("/plugins/").trim_end_matches("/rollback");
                match &self.fleet {
                    Some(fleet) => fleet::rollback(fleet, name).await,
                    None => deploy::rollback(&self.registry, name).await,
                }
            }
            (_, path) if path == "/cluster/plugins" || path.starts_with("/cluster/plugins/") => {
                self.cluster_plugins(request.method(), path).await
            }
            (&Method::GET, "/cluster") => match &self.node {
                Some(node) => json(StatusCode::OK, &node.view().await),
                None => problem(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"error": "not_clustered", "message": "this host runs on its own; start it with --cluster to join one"}),
                ),
            },
            (&Method::GET, "/carts") => json(StatusCode::OK, &status::carts(&self.carts)),
            (&Method::GET, "/schemas") => {
                let catalog = self.registry.catalog();
                let schemas = crate::http::openapi::schemas(catalog.slots.iter().map(|s| &*s.mounted));
                json(StatusCode::OK, &serde_json::Value::Object(schemas))
            }
            (&Method::GET, "/openapi.json") => {
                let catalog = self.registry.catalog();
                json(StatusCode::OK, &crate::http::openapi::openapi(catalog.slots.iter().map(|s| &*s.mounted)))
            }
            (&Method::POST, "/carts/evict") => {
                json(StatusCode::OK, &serde_json::json!({"evicted": self.carts.evict_idle()}))
            }
            (&Method::POST, path) if path.starts_with("/carts/") && path.ends_with("/verify") => {
                operate::verify_cart(&self.carts, &request, path).await
            }
            (&Method::POST, path) if path.starts_with("/events/") => {
                let topic = path.trim_start_matches("/events/").to_string();
                let topics = self.registry.catalog().topics.clone();
                operate::publish(stream, &self.metrics, &topics, topic, request).await
            }
            (_, path) => problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("no admin endpoint {path}; try /healthz, /readyz, /metrics, /plugins, /subscriptions, /projections, /carts, /schemas, /openapi.json, POST /events/TOPIC, POST /carts/PLUGIN/ID/verify")}),
            ),
        }
    }

    /// `/cluster/plugins[/NAME[/abort|/rollback]]`.
    async fn cluster_plugins(&self, method: &Method, path: &str) -> Response<Body> {
        let Some(fleet) = &self.fleet else {
            return problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_clustered", "message": "this host runs on its own; start it with --cluster to join one"}),
            );
        };
        let rest = path.trim_start_matches("/cluster/plugins").trim_start_matches('/');
        match (method, rest.split_once('/')) {
            (&Method::GET, None) if rest.is_empty() => fleet::status(fleet, None).await,
            (&Method::GET, None) => fleet::status(fleet, Some(rest)).await,
            (&Method::POST, Some((name, "abort"))) => fleet::abort(fleet, name).await,
            (&Method::POST, Some((name, "rollback"))) => fleet::rollback(fleet, name).await,
            _ => problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("no admin endpoint {method} {path}; try GET /cluster/plugins[/NAME], POST /cluster/plugins/NAME/abort or /rollback")}),
            ),
        }
    }

    /// With a token set, every request but the probes (`/healthz`,
    /// `/readyz`) must carry `authorization: Bearer TOKEN`.
    fn unauthorized(&self, request: &Request<Incoming>, path: &str) -> Option<Response<Body>> {
        let expected = self.token.as_ref()?;
        if matches!(path, "/healthz" | "/readyz") {
            return None;
        }
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .map(blake3::hash);
        if presented.as_ref() == Some(expected) {
            return None;
        }
        let mut refused = problem(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "unauthorized", "message": "the admin API needs `authorization: Bearer TOKEN` with the host's --admin-token (host emit/deploy send it from --admin-token or CORRAL_ADMIN_TOKEN)"}),
        );
        refused.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        Some(refused)
    }

    /// `GET /readyz`: 200 while the log answers (and, in a cluster, NATS
    /// is reachable), the last write to LMDB did not fail for the
    /// environment's sake (the map or the disk full), the host is not
    /// shutting down and (with
    /// `--ready-max-lag`) no consumer lags more than allowed; 503 otherwise.
    async fn ready(&self) -> Response<Body> {
        let catalog = self.registry.catalog();
        let cut_off = self.node.as_ref().is_some_and(|node| !node.connected());
        let storage = match (cut_off, self.storage.health().failing()) {
            (true, _) => Err(crate::events::StreamError::Unavailable("cut off from NATS".into())),
            (false, Some((kind, cause))) => Err(crate::events::StreamError::Unavailable(format!(
                "not writable ({}): {cause}; the last write failed and none has succeeded since",
                kind.label()
            ))),
            (false, None) => self.stream.head().await,
        };
        let projections: serde_json::Map<String, serde_json::Value> = self
            .projections
            .statuses()
            .await
            .iter()
            .filter(|s| s.active)
            .map(|s| {
                let state = match s.projector.failing() {
                    Some(cause) => serde_json::json!({"state": "failing", "cause": cause}),
                    None => serde_json::json!(s.projector.state()),
                };
                (s.projector.name().to_string(), state)
            })
            .collect();
        let draining = self.draining.load(std::sync::atomic::Ordering::Acquire);
        let lagging = match (&storage, self.ready_max_lag) {
            (Ok(head), Some(max)) => {
                status::lagging(&self.dispatch, self.stream.as_ref(), &self.projections, &self.storage, *head, max)
                    .await
            }
            _ => Vec::new(),
        };
        let ready = storage.is_ok() && !draining && lagging.is_empty();
        let body = serde_json::json!({
            "projections": projections,
            "ready": ready,
            "draining": draining,
            "lagging": lagging,
            "ready_max_lag": self.ready_max_lag,
            "storage": match &storage { Ok(_) => "open".to_string(), Err(e) => e.to_string() },
            "plugins_loaded": catalog.slots.len(),
            "plugins_failed": catalog.failures.len(),
        });
        let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        json(status, &body)
    }
}
