//! The admin listener (loopback by default): health, readiness, metrics and
//! the plugin list. Operators and tests talk to it; guests never do.

use std::sync::Arc;

use corral_storage::log::NewRecord;
use corral_storage::stream::{self, EventStream as _};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::events::Subscription;
use crate::gateway::{Body, full, problem};
use crate::metrics::Metrics;
use crate::plugins::Catalog;

/// Largest event an operator may publish through the admin listener.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// What the admin endpoints read.
pub(crate) struct Admin {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) stream: Arc<stream::Embedded>,
    pub(crate) subscriptions: Arc<Vec<Arc<Subscription>>>,
}

impl Admin {
    /// Answers one admin request.
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n", "text/plain"),
            (&Method::GET, "/readyz") => self.ready(),
            (&Method::GET, "/metrics") => {
                self.update_lag();
                text(StatusCode::OK, self.metrics.render(), "text/plain; version=0.0.4")
            }
            (&Method::GET, "/plugins") => self.plugins(),
            (&Method::GET, "/subscriptions") => self.subscriptions(),
            (&Method::POST, path) if path.starts_with("/events/") => {
                let topic = path.trim_start_matches("/events/").to_string();
                self.publish(topic, request).await
            }
            (_, path) => problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("no admin endpoint {path}; try /healthz, /readyz, /metrics, /plugins, /subscriptions, POST /events/TOPIC")}),
            ),
        }
    }

    fn ready(&self) -> Response<Body> {
        let storage = self.stream.storage().head();
        let body = serde_json::json!({
            "ready": storage.is_ok(),
            "storage": match &storage { Ok(_) => "open".to_string(), Err(e) => e.to_string() },
            "plugins_loaded": self.catalog.mounted.len(),
            "plugins_failed": self.catalog.failures.len(),
        });
        let status = if storage.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        json(status, &body)
    }

    fn plugins(&self) -> Response<Body> {
        let mut list: Vec<serde_json::Value> = self
            .catalog
            .mounted
            .iter()
            .map(|mounted| {
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
                    "in_flight": plugin.in_flight(),
                    "load_ms": plugin.load_time().as_secs_f64() * 1000.0,
                    "cache": plugin.cache_outcome().name(),
                    "error": null,
                })
            })
            .collect();
        list.extend(self.catalog.failures.iter().map(|failure| {
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
    fn lags(&self) -> Vec<(u64, u64)> {
        let storage = self.stream.storage();
        let head = storage.head().unwrap_or(0);
        self.subscriptions
            .iter()
            .map(|s| {
                let checkpoint = storage.checkpoint(&s.consumer).unwrap_or(0);
                (checkpoint, head.saturating_sub(checkpoint))
            })
            .collect()
    }

    fn update_lag(&self) {
        for (subscription, (_, lag)) in self.subscriptions.iter().zip(self.lags()) {
            self.metrics.set_lag(subscription.handler.name(), lag);
        }
    }

    fn subscriptions(&self) -> Response<Body> {
        let head = self.stream.storage().head().unwrap_or(0);
        let list: Vec<serde_json::Value> = self
            .subscriptions
            .iter()
            .zip(self.lags())
            .map(|(s, (checkpoint, lag))| {
                serde_json::json!({
                    "plugin": s.handler.name(),
                    "consumer": s.consumer,
                    "topics": s.filters,
                    "schedules": self.catalog.mounted.iter()
                        .filter(|m| m.plugin.name() == s.handler.name())
                        .flat_map(|m| m.schedules.iter())
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

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    text(status, value.to_string(), "application/json")
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
