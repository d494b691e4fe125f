//! What the admin API shows: the served plugins (and the files that
//! failed), the subscriptions and the projections, with their lag.

use corral_storage::Storage;
use http::{Response, StatusCode};

use crate::events::consumers::Consumers;
use crate::events::dispatch::Dispatch;
use crate::events::stream::EventStream;
use crate::http::respond::{Body, json};
use crate::metrics::Metrics;
use crate::plugins::Catalog;
use crate::projections::Projections;

/// `GET /plugins`: every served plugin, and every file that failed.
pub(super) fn plugins(catalog: &Catalog) -> Response<Body> {
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
                "schemas": mounted.schemas.all().map(|s| s.name()).collect::<Vec<_>>(),
                "limits": {
                    "fuel": limits.fuel,
                    "timeout_ms": limits.timeout.as_millis() as u64,
                    "memory_bytes": limits.memory_bytes,
                    "max_concurrency": limits.max_concurrency,
                    "log_lines_per_second": limits.log_lines_per_second,
                },
                "log_lines_dropped": plugin.log_lines_dropped(),
                "kv_grants": mounted.sidecar.kv.buckets,
                "cart_grants": mounted.sidecar.carts.plugins,
                "http_grants": {
                    "allowed_hosts": mounted.sidecar.http.allowed_hosts,
                    "plugins": mounted.sidecar.http.plugins,
                },
                "instances": instances(mounted),
                "in_flight": plugin.in_flight(),
                "load_ms": plugin.load_time().as_secs_f64() * 1000.0,
                "cache": plugin.cache_outcome().name(),
                "canary": slot.canary.as_ref().map(|c| {
                    let (requests, errors) = c.counts();
                    serde_json::json!({"version": c.mounted.plugin.version(), "content_hash": c.mounted.plugin.content_hash(),
                        "percent": c.policy.percent, "requests": requests, "errors": errors})
                }),
                "error": catalog.failures.iter().find(|f| f.is_of(&slot.stem)).map(|f| f.error.clone()),
                "error_kind": catalog.failures.iter().find(|f| f.is_of(&slot.stem)).map(|f| f.kind),
            })
        })
        .collect();
    let served = |failure: &&crate::plugins::Failure| catalog.slots.iter().any(|s| failure.is_of(&s.stem));
    list.extend(catalog.failures.iter().filter(|f| !served(f)).map(|failure| {
        serde_json::json!({
            "name": failure.file.file_stem().map(|s| s.to_string_lossy().into_owned()),
            "file": failure.file,
            "error": failure.error,
            "error_kind": failure.kind,
        })
    }));
    json(StatusCode::OK, &serde_json::Value::Array(list))
}

/// Whether a plugin reuses warm instances, how, and how many wait idle.
fn instances(mounted: &crate::plugins::Mounted) -> serde_json::Value {
    let reusable = matches!(mounted.plugin.world(), corral_runtime::World::Route | corral_runtime::World::EventHandler);
    match mounted.sidecar.instances.reuse() {
        Ok(Some(reuse)) if reusable => serde_json::json!({
            "reuse": true,
            "max_calls": reuse.max_calls,
            "max_idle_ms": reuse.max_idle.as_millis() as u64,
            "max_memory_bytes": reuse.max_memory_bytes,
            "warm": mounted.plugin.warm_instances(),
            "carries_over": corral_runtime::REUSE_CARRIES_OVER,
        }),
        _ => serde_json::json!({"reuse": false}),
    }
}

/// `GET /projections` (and the projection gauges of `/metrics`).
pub(super) async fn projections(
    projections: &Projections,
    stream: &dyn EventStream,
    storage: &Storage,
    metrics: &Metrics,
) -> Response<Body> {
    let head = stream.head().await.unwrap_or(0);
    let mut list = Vec::new();
    for status in projections.statuses().await {
        let projector = &status.projector;
        let checkpoint = storage.checkpoint(&projector.consumer).unwrap_or(0);
        let quarantined = projector.quarantined.lock().map(|q| q.clone()).unwrap_or_default();
        if status.active {
            metrics.set_projection(projector.name(), head.saturating_sub(checkpoint), quarantined.len());
        }
        list.push(serde_json::json!({
            "projection": projector.name(),
            "generation": projector.scope,
            "active": status.active,
            "consumer": projector.consumer,
            "last_diff": status.last_diff,
            "caught_up": status.active || projector.reached_head(),
            "cutover_waits_for": status.waiting,
            "version": projector.mounted.plugin.version(),
            "content_hash": projector.mounted.plugin.content_hash(),
            "topics": projector.mounted.plugin.descriptor().topics,
            "indexes": projector.mounted.indexes.iter().map(|(_, index)| index.name()).collect::<Vec<_>>(),
            "scan_limit": projector.mounted.sidecar.projection.scan_limit,
            "state": projector.state(),
            "failing": projector.failing(),
            "checkpoint": checkpoint,
            "head": head,
            "lag": head.saturating_sub(checkpoint),
            "applied": projector.metrics.applied.get(),
            "quarantined": quarantined,
        }));
    }
    json(StatusCode::OK, &serde_json::Value::Array(list))
}

/// The subscribers and active projections more than `max` events behind
/// `head`, each with its lag (what `--ready-max-lag` holds readiness on).
pub(super) async fn lagging(
    dispatch: &Dispatch,
    stream: &dyn EventStream,
    projections: &Projections,
    storage: &Storage,
    head: u64,
    max: u64,
) -> Vec<serde_json::Value> {
    let mut behind = Vec::new();
    for (subscription, (_, lag)) in dispatch.subscriptions().iter().zip(lags(dispatch, stream, head).await) {
        if lag > max {
            behind.push(serde_json::json!({"subscriber": subscription.handler.name(), "consumer": subscription.consumer, "lag": lag}));
        }
    }
    for status in projections.statuses().await.iter().filter(|s| s.active) {
        let lag = head.saturating_sub(storage.checkpoint(&status.projector.consumer).unwrap_or(0));
        if lag > max {
            behind.push(serde_json::json!({"projection": status.projector.name(), "consumer": status.projector.consumer, "lag": lag}));
        }
    }
    behind
}

/// Each subscription's checkpoint and lag behind the head.
async fn lags(dispatch: &Dispatch, stream: &dyn EventStream, head: u64) -> Vec<(u64, u64)> {
    let mut lags = Vec::new();
    for subscription in dispatch.subscriptions() {
        let checkpoint = stream.checkpoint(&subscription.consumer).await.map_or(0, |c| c.sequence);
        lags.push((checkpoint, head.saturating_sub(checkpoint)));
    }
    lags
}

/// Sets the subscriptions' lag gauges (computed when metrics are read).
pub(super) async fn update_lags(dispatch: &Dispatch, stream: &dyn EventStream, metrics: &Metrics) {
    let head = stream.head().await.unwrap_or(0);
    for (subscription, (_, lag)) in dispatch.subscriptions().iter().zip(lags(dispatch, stream, head).await) {
        metrics.set_lag(subscription.handler.name(), &subscription.filters, lag);
    }
}

/// `GET /subscriptions`: every event handler's subscription and its
/// counters, then the consumers of removed plugins (`orphaned`), which pin
/// retention at their checkpoint until they are `forgotten`.
pub(super) async fn subscriptions(
    dispatch: &Dispatch,
    stream: &dyn EventStream,
    storage: &Storage,
    catalog: &Catalog,
    consumers: &Consumers,
    mut live: Vec<String>,
) -> Response<Body> {
    let head = stream.head().await.unwrap_or(0);
    live.extend(dispatch.consumers());
    let mut orphans = Vec::new();
    for orphan in consumers.observe(&live) {
        let checkpoint = match orphan.consumer.starts_with("handler.") {
            true => stream.checkpoint(&orphan.consumer).await.map_or(0, |c| c.sequence),
            false => storage.checkpoint(&orphan.consumer).unwrap_or(0),
        };
        orphans.push(serde_json::json!({
            "consumer": orphan.consumer,
            "orphaned": true,
            "orphaned_since_ms": orphan.orphaned_since_ms,
            "forgotten": orphan.forgotten,
            "pins_retention": !orphan.forgotten && checkpoint > 0,
            "checkpoint": checkpoint,
            "head": head,
            "forget_after_s": consumers.forget_after().as_secs(),
        }));
    }
    let mut list: Vec<serde_json::Value> = dispatch
        .subscriptions()
        .iter()
        .zip(lags(dispatch, stream, head).await)
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
    list.extend(orphans);
    json(StatusCode::OK, &serde_json::Value::Array(list))
}

/// Most carts `GET /carts` lists.
const MAX_LISTED_CARTS: usize = 1000;

/// `GET /carts`: how many carts are in memory, and the ones this node
/// holds (owns, in a cluster) with their epochs.
pub(super) fn carts(carts: &crate::carts::Carts) -> serde_json::Value {
    let held = carts.held();
    let listed: Vec<serde_json::Value> = held
        .iter()
        .take(MAX_LISTED_CARTS)
        .map(|(key, epoch)| serde_json::json!({"tenant": key.tenant, "plugin": key.plugin, "cart": key.cart, "epoch": epoch}))
        .collect();
    serde_json::json!({"active": carts.active(), "held": listed, "truncated": held.len() > MAX_LISTED_CARTS})
}
