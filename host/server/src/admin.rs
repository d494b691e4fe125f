//! The admin listener (loopback by default): health, readiness, metrics and
//! the plugin list. Operators and tests talk to it; guests never do.

use std::sync::Arc;

use corral_storage::log::NewRecord;
use corral_storage::stream::{self, EventStream as _};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::dispatch::Dispatch;
use crate::gateway::{Body, full, problem};
use crate::metrics::Metrics;
use crate::registry::{Deployed, Registry};

/// Largest event an operator may publish through the admin listener.
const MAX_EVENT_BYTES: usize = 1 << 20;
/// Largest component that may be uploaded.
const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// What the admin endpoints read.
pub(crate) struct Admin {
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) stream: Arc<stream::Embedded>,
    pub(crate) dispatch: Arc<Dispatch>,
    pub(crate) projections: Arc<crate::generations::Projections>,
    pub(crate) carts: Arc<crate::carts::Carts>,
}

impl Admin {
    /// Answers one admin request.
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n", "text/plain"),
            (&Method::GET, "/readyz") => self.ready().await,
            (&Method::GET, "/metrics") => {
                self.update_lag();
                self.projections().await;
                text(StatusCode::OK, self.metrics.render(), "text/plain; version=0.0.4")
            }
            (&Method::GET, "/plugins") => self.plugins(),
            (&Method::GET, "/subscriptions") => self.subscriptions(),
            (&Method::GET, "/projections") => self.projections().await,
            (&Method::POST, path) if path.starts_with("/projections/") && path.ends_with("/rebuild") => {
                let name = path.trim_start_matches("/projections/").trim_end_matches("/rebuild").to_string();
                match self.projections.rebuild(&name).await {
                    Ok(()) => {
                        json(StatusCode::ACCEPTED, &serde_json::json!({"projection": name, "state": "rebuilding"}))
                    }
                    Err(error) => {
                        problem(StatusCode::NOT_FOUND, serde_json::json!({"error": "not_found", "message": error}))
                    }
                }
            }
            (&Method::PUT, path) if plugin_name(path).is_some() => {
                let name = plugin_name(path).unwrap_or_default().to_string();
                self.upload(name, request).await
            }
            (&Method::DELETE, path) if plugin_name(path).is_some() => {
                let name = plugin_name(path).unwrap_or_default().to_string();
                self.remove(&name).await
            }
            (&Method::POST, path) if path.starts_with("/plugins/") && path.ends_with("/rollback") => {
                let name = path.trim_start_matches("/plugins/").trim_end_matches("/rollback").to_string();
                self.rollback(&name).await
            }
            (&Method::GET, "/carts") => json(StatusCode::OK, &serde_json::json!({"active": self.carts.active()})),
            (&Method::POST, "/carts/evict") => {
                json(StatusCode::OK, &serde_json::json!({"evicted": self.carts.evict_idle()}))
            }
            (&Method::POST, path) if path.starts_with("/carts/") && path.ends_with("/verify") => {
                self.verify_cart(&request, path).await
            }
            (&Method::POST, path) if path.starts_with("/events/") => {
                let topic = path.trim_start_matches("/events/").to_string();
                self.publish(topic, request).await
            }
            (_, path) => problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("no admin endpoint {path}; try /healthz, /readyz, /metrics, /plugins, /subscriptions, /projections, /carts, POST /events/TOPIC, POST /carts/PLUGIN/ID/verify")}),
            ),
        }
    }

    /// `POST /carts/PLUGIN/ID/verify`: replays the cart's journal; 200 with
    /// `ok: true` when it reproduces the stored state, 409 with the first
    /// divergence when it does not.
    async fn verify_cart(&self, request: &Request<Incoming>, path: &str) -> Response<Body> {
        let rest = path.trim_start_matches("/carts/").trim_end_matches("/verify");
        let Some((plugin, cart)) = rest.split_once('/') else {
            return problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": "use POST /carts/PLUGIN/ID/verify"}),
            );
        };
        let tenant = request.headers().get("x-corral-tenant").and_then(|v| v.to_str().ok()).unwrap_or("");
        let key = corral_storage::carts::CartKey { tenant: tenant.into(), plugin: plugin.into(), cart: cart.into() };
        match self.carts.verify(key).await {
            Ok(verification) => {
                let status = if verification.ok { StatusCode::OK } else { StatusCode::CONFLICT };
                json(status, &serde_json::json!(verification))
            }
            Err(error) => problem(
                crate::cart_http::status(&error),
                serde_json::json!({"error": error.label(), "message": error.to_string()}),
            ),
        }
    }

    async fn ready(&self) -> Response<Body> {
        let catalog = self.registry.catalog();
        let storage = self.stream.storage().head();
        let projections: serde_json::Map<String, serde_json::Value> = self
            .projections
            .statuses()
            .await
            .iter()
            .filter(|s| s.active)
            .map(|s| (s.projector.name().to_string(), serde_json::json!(s.projector.state())))
            .collect();
        let body = serde_json::json!({
            "projections": projections,
            "ready": storage.is_ok(),
            "storage": match &storage { Ok(_) => "open".to_string(), Err(e) => e.to_string() },
            "plugins_loaded": catalog.slots.len(),
            "plugins_failed": catalog.failures.len(),
        });
        let status = if storage.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        json(status, &body)
    }

    fn plugins(&self) -> Response<Body> {
        let catalog = self.registry.catalog();
        let mut list: Vec<serde_json::Value> = catalog
            .slots
            .iter()
            .map(|slot| {
                let mounted = &slot.mounted;
                let plugin = &mounted.plugin;
                let limits = plugin.limits();
                serde_json::json!({
                    "name": plugin.name(),
                    "version": plugin.version(),
                    "world": plugin.world().name(),
                    "file": plugin.path(),
                    "content_hash": plugin.content_hash(),
                    "routes": mounted.routes.iter().map(|(m, p)| format!("{m} {p}")).collect::<Vec<_>>(),
                    "topics": plugin.descriptor().topics,
                    "mutation_kinds": plugin.descriptor().mutation_kinds,
                    "limits": {
                        "fuel": limits.fuel,
                        "timeout_ms": limits.timeout.as_millis() as u64,
                        "memory_bytes": limits.memory_bytes,
                        "max_concurrency": limits.max_concurrency,
                    },
                    "kv_grants": mounted.sidecar.kv.buckets,
                    "cart_grants": mounted.sidecar.carts.plugins,
                    "in_flight": plugin.in_flight(),
                    "load_ms": plugin.load_time().as_secs_f64() * 1000.0,
                    "cache": plugin.cache_outcome().name(),
                    "canary": slot.canary.as_ref().map(|c| {
                        let (requests, errors) = c.counts();
                        serde_json::json!({"version": c.mounted.plugin.version(), "content_hash": c.mounted.plugin.content_hash(),
                            "percent": c.policy.percent, "requests": requests, "errors": errors})
                    }),
                    "error": catalog.failures.iter().find(|f| f.file.file_stem().is_some_and(|s| *s == *slot.stem)).map(|f| f.error.clone()),
                })
            })
            .collect();
        let served = |failure: &&crate::plugins::Failure| {
            catalog.slots.iter().any(|s| failure.file.file_stem().is_some_and(|stem| *stem == *s.stem))
        };
        list.extend(catalog.failures.iter().filter(|f| !served(f)).map(|failure| {
            serde_json::json!({
                "name": failure.file.file_stem().map(|s| s.to_string_lossy().into_owned()),
                "file": failure.file,
                "error": failure.error,
            })
        }));
        json(StatusCode::OK, &serde_json::Value::Array(list))
    }
}

impl Admin {
    /// `GET /projections` (and the projection gauges of `/metrics`).
    async fn projections(&self) -> Response<Body> {
        let storage = self.stream.storage();
        let head = storage.head().unwrap_or(0);
        let mut list = Vec::new();
        for status in self.projections.statuses().await {
            let projector = &status.projector;
            let checkpoint = storage.checkpoint(&projector.consumer).unwrap_or(0);
            let quarantined = projector.quarantined.lock().map(|q| q.clone()).unwrap_or_default();
            if status.active {
                self.metrics.set_projection(projector.name(), head.saturating_sub(checkpoint), quarantined.len());
            }
            list.push(serde_json::json!({
                "projection": projector.name(),
                "generation": projector.scope,
                "active": status.active,
                "consumer": projector.consumer,
                "last_diff": status.last_diff,
                "version": projector.mounted.plugin.version(),
                "content_hash": projector.mounted.plugin.content_hash(),
                "topics": projector.mounted.plugin.descriptor().topics,
                "state": projector.state(),
                "checkpoint": checkpoint,
                "head": head,
                "lag": head.saturating_sub(checkpoint),
                "applied": projector.metrics.applied.get(),
                "quarantined": quarantined,
            }));
        }
        json(StatusCode::OK, &serde_json::Value::Array(list))
    }

    fn lags(&self) -> Vec<(u64, u64)> {
        let storage = self.stream.storage();
        let head = storage.head().unwrap_or(0);
        self.dispatch
            .subscriptions()
            .iter()
            .map(|s| {
                let checkpoint = storage.checkpoint(&s.consumer).unwrap_or(0);
                (checkpoint, head.saturating_sub(checkpoint))
            })
            .collect()
    }

    fn update_lag(&self) {
        for (subscription, (_, lag)) in self.dispatch.subscriptions().iter().zip(self.lags()) {
            self.metrics.set_lag(subscription.handler.name(), lag);
        }
    }

    fn subscriptions(&self) -> Response<Body> {
        let head = self.stream.storage().head().unwrap_or(0);
        let catalog = self.registry.catalog();
        let list: Vec<serde_json::Value> = self
            .dispatch
            .subscriptions()
            .iter()
            .zip(self.lags())
            .map(|(s, (checkpoint, lag))| {
                serde_json::json!({
                    "plugin": s.handler.name(),
                    "consumer": s.consumer,
                    "topics": s.filters,
                    "schedules": catalog.slots.iter()
                        .filter(|slot| slot.mounted.plugin.name() == s.handler.name())
                        .flat_map(|slot| slot.mounted.schedules.iter())
                        .map(|sc| serde_json::json!({"name": sc.name, "cron": sc.expression}))
                        .collect::<Vec<_>>(),
                    "checkpoint": checkpoint,
                    "head": head,
                    "lag": lag,
                    "delivered": s.counters.delivered.get(),
                    "retried": s.counters.retried.get(),
                    "dead_lettered": s.counters.dead_lettered.get(),
                    "last_error": s.last_error.lock().ok().and_then(|e| e.clone()),
                })
            })
            .collect();
        json(StatusCode::OK, &serde_json::Value::Array(list))
    }

    /// `POST /events/TOPIC`: publishes the body, for operators and tests.
    async fn publish(&self, topic: String, request: Request<Incoming>) -> Response<Body> {
        if let Err(reason) = corral_runtime::emit::validate_topic(&topic) {
            return problem(StatusCode::BAD_REQUEST, serde_json::json!({"error": "invalid_topic", "message": reason}));
        }
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let tenant = header("x-corral-tenant").unwrap_or_default();
        let correlation_id =
            header("x-correlation-id").unwrap_or_else(|| format!("admin-{:016x}", rand::random::<u64>()));
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
        match self.stream.publish(vec![record]).await {
            Ok(sequences) => {
                self.metrics.emitted("admin", 1);
                json(StatusCode::OK, &serde_json::json!({"topic": topic, "sequence": sequences.first()}))
            }
            Err(error) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "unavailable", "message": error.to_string()}),
            ),
        }
    }
}

impl Admin {
    /// `PUT /plugins/NAME`: stages the upload, checks it, and only if it is
    /// valid renames it into the plugins folder as `NAME.wasm` and deploys it.
    async fn upload(&self, name: String, request: Request<Incoming>) -> Response<Body> {
        let bytes = match http_body_util::Limited::new(request.into_body(), MAX_COMPONENT_BYTES).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) => {
                return problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    serde_json::json!({"error": "payload_too_large", "message": format!("{error} (limit {MAX_COMPONENT_BYTES} bytes)")}),
                );
            }
        };
        let dir = self.registry.dir().to_path_buf();
        let staging = dir.join(".staging");
        let staged = staging.join(format!("{name}.wasm"));
        let written = std::fs::create_dir_all(&staging).and_then(|()| std::fs::write(&staged, &bytes));
        if let Err(error) = written {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "storage", "message": format!("staging {}: {error}", staged.display())}),
            );
        }
        let sidecar = dir.join(format!("{name}.toml"));
        if let Err(error) = self.registry.validate(&name, &staged, &sidecar).await {
            let _ = std::fs::remove_file(&staged);
            self.metrics.swap("rejected");
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({"error": "rejected", "plugin": name, "message": error}),
            );
        }
        // Valid: into the folder (atomically), then deployed from there.
        let target = dir.join(format!("{name}.wasm"));
        if let Err(error) = std::fs::rename(&staged, &target) {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "storage", "message": format!("moving the upload to {}: {error}", target.display())}),
            );
        }
        let outcome = match self.registry.deploy(&name, &target, None).await {
            Ok(outcome) => outcome,
            Err(error) => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    serde_json::json!({"error": "rejected", "plugin": name, "message": error}),
                );
            }
        };
        let (state, mounted) = match outcome {
            Deployed::Swapped(m) => ("swapped", m),
            Deployed::Canary(m) => ("canary", m),
            Deployed::Unchanged(m) => ("unchanged", m),
        };
        json(
            StatusCode::OK,
            &serde_json::json!({"plugin": mounted.plugin.name(), "version": mounted.plugin.version(),
                "world": mounted.plugin.world().name(), "content_hash": mounted.plugin.content_hash(), "outcome": state}),
        )
    }

    /// `DELETE /plugins/NAME`: unloads it (running calls finish) and removes
    /// its component from the plugins folder.
    async fn remove(&self, name: &str) -> Response<Body> {
        let file = self.registry.dir().join(format!("{name}.wasm"));
        let _ = std::fs::remove_file(&file);
        if self.registry.remove(name).await {
            json(StatusCode::OK, &serde_json::json!({"plugin": name, "removed": true}))
        } else {
            problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("no plugin file {name}.wasm is loaded")}),
            )
        }
    }

    /// `POST /plugins/NAME/rollback`: the previous version serves again.
    async fn rollback(&self, name: &str) -> Response<Body> {
        match self.registry.rollback(name).await {
            Ok(mounted) => json(
                StatusCode::OK,
                &serde_json::json!({"plugin": mounted.plugin.name(), "version": mounted.plugin.version(), "content_hash": mounted.plugin.content_hash()}),
            ),
            Err(error) => problem(StatusCode::CONFLICT, serde_json::json!({"error": "no_rollback", "message": error})),
        }
    }
}

/// `NAME` of `/plugins/NAME` (file-name characters only).
fn plugin_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix("/plugins/")?;
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    valid.then_some(name)
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    text(status, value.to_string(), "application/json")
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
