//! The admin listener (loopback by default): health, readiness, metrics and
//! the plugin list. Operators and tests talk to it; guests never do.

use std::sync::Arc;

use corral_storage::Storage;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::gateway::{Body, full, problem};
use crate::metrics::Metrics;
use crate::plugins::Catalog;

/// What the admin endpoints read.
pub(crate) struct Admin {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) storage: Storage,
}

impl Admin {
    /// Answers one admin request.
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n", "text/plain"),
            (&Method::GET, "/readyz") => self.ready(),
            (&Method::GET, "/metrics") => text(StatusCode::OK, self.metrics.render(), "text/plain; version=0.0.4"),
            (&Method::GET, "/plugins") => self.plugins(),
            (_, path) => problem(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found", "message": format!("no admin endpoint {path}; try /healthz, /readyz, /metrics, /plugins")}),
            ),
        }
    }

    fn ready(&self) -> Response<Body> {
        let storage = self.storage.head();
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

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    text(status, value.to_string(), "application/json")
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
