//! Prometheus metrics ([`Metrics`]). Per-plugin handles are resolved once, when a plugin
//! is mounted, so the request path does no label lookups.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the host exports.
pub struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    fuel: HistogramVec,
    in_flight: IntGaugeVec,
    kv_ops: IntCounterVec,
    emitted: IntCounterVec,
    http_responses: IntCounterVec,
    delivered: IntCounterVec,
    retried: IntCounterVec,
    dead_lettered: IntCounterVec,
    lag: IntGaugeVec,
    swaps: IntCounterVec,
    applied: IntCounterVec,
    batch_size: HistogramVec,
    commit_seconds: HistogramVec,
    commit_failures: IntCounterVec,
    projection_lag: IntGaugeVec,
    quarantined: IntGaugeVec,
    storage_failures: IntCounterVec,
    log_dropped: IntCounterVec,
    schema_refused: IntCounterVec,
    carts: CartMetrics,
}

/// The metrics of the cart runtime: one set for all cart plugins, labelled
/// by plugin where it matters.
#[derive(Clone)]
pub struct CartMetrics {
    /// Mutations by plugin and outcome (`applied`, `repeated`, `rejected`, `failed`).
    pub(crate) mutations: IntCounterVec,
    /// From arrival in the mailbox to the durable reply.
    pub(crate) latency: HistogramVec,
    /// Carts held in memory.
    pub(crate) active: prometheus::IntGauge,
    /// Journal entries applied again to load a cart.
    pub(crate) replays: IntCounterVec,
    /// Carts dropped from memory (idle, or the cache was full).
    pub(crate) evictions: IntCounter,
    /// Commands waiting in or being handled by any mailbox.
    pub(crate) mailbox_depth: prometheus::IntGauge,
    /// Commit latency of a mailbox round, by store (`lmdb`, `jetstream`).
    pub(crate) commit_seconds: HistogramVec,
    /// Cart leases this node holds (a cluster).
    pub(crate) leases_held: prometheus::IntGauge,
    /// Calls forwarded to the cart's owner, by outcome (`ok`, `error`, `unreachable`).
    pub(crate) forwards: IntCounterVec,
    /// Commits the journal refused because another node moved the cart.
    pub(crate) fenced: IntCounter,
    /// Carts this node took whose journal another node wrote last.
    pub(crate) ownership_moves: IntCounter,
    /// How long taking such a cart took (lease, load, replay).
    pub(crate) takeover_seconds: prometheus::Histogram,
}

/// The metrics of one projection's commits.
pub(crate) struct FoldMetrics {
    pub(crate) applied: IntCounter,
    pub(crate) batch_size: prometheus::Histogram,
    pub(crate) commit_seconds: prometheus::Histogram,
    pub(crate) commit_failures: IntCounter,
}

/// The counters of one event subscription.
pub struct DeliveryMetrics {
    pub(crate) delivered: IntCounter,
    pub(crate) retried: IntCounter,
    pub(crate) dead_lettered: IntCounter,
    /// Events the handler queued, published with its acknowledgements.
    pub(crate) emitted: IntCounter,
}

/// The metrics of one plugin, already labelled (cheap to clone: handles).
#[derive(Clone)]
pub(crate) struct PluginMetrics {
    name: String,
    calls: IntCounter,
    duration: prometheus::Histogram,
    fuel: prometheus::Histogram,
    pub(crate) in_flight: prometheus::IntGauge,
    errors: IntCounterVec,
}

impl PluginMetrics {
    /// Records a finished call.
    pub(crate) fn observe(&self, seconds: f64, fuel: u64) {
        self.calls.inc();
        self.duration.observe(seconds);
        self.fuel.observe(fuel as f64);
    }

    /// Records a failed call by cause (`trap`, `out_of_fuel`, `timeout`, ...).
    pub(crate) fn failed(&self, cause: &str) {
        self.calls.inc();
        self.errors.with_label_values(&[self.name.as_str(), cause]).inc();
    }
}

/// Registers `collector` and hands it back.
fn registered<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> prometheus::Result<C> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

impl Metrics {
    /// A registry with every metric, all at zero.
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new_custom(Some("corral".into()), None)?;
        let calls = registered(
            &registry,
            IntCounterVec::new(Opts::new("plugin_calls_total", "Calls per plugin"), &["plugin"])?,
        )?;
        let errors = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("plugin_errors_total", "Failed calls per plugin and cause"),
                &["plugin", "cause"],
            )?,
        )?;
        let duration = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("plugin_call_duration_seconds", "Call duration, instantiation included")
                    .buckets(prometheus::exponential_buckets(0.000_01, 2.5, 14)?),
                &["plugin"],
            )?,
        )?;
        let fuel = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("plugin_fuel_consumed", "Fuel consumed per call")
                    .buckets(prometheus::exponential_buckets(1_000.0, 10.0, 8)?),
                &["plugin"],
            )?,
        )?;
        let in_flight =
            registered(&registry, IntGaugeVec::new(Opts::new("plugin_in_flight", "Calls running now"), &["plugin"])?)?;
        let kv_ops = registered(
            &registry,
            IntCounterVec::new(Opts::new("kv_operations_total", "kv operations by kind"), &["op"])?,
        )?;
        let emitted = registered(
            &registry,
            IntCounterVec::new(Opts::new("events_emitted_total", "Events appended, by publisher"), &["source"])?,
        )?;
        let schema_refused = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("schema_refusals_total", "Payloads refused for not matching their declared schema"),
                &["schema", "at"],
            )?,
        )?;
        let http_responses = registered(
            &registry,
            IntCounterVec::new(Opts::new("http_responses_total", "Public HTTP responses by status"), &["status"])?,
        )?;
        let delivered = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("events_delivered_total", "Events handled successfully, by plugin and its topic patterns"),
                &["plugin", "topics"],
            )?,
        )?;
        let retried = registered(
            &registry,
            IntCounterVec::new(Opts::new("events_retried_total", "Handler retries"), &["plugin", "topics"])?,
        )?;
        let dead_lettered = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("events_dead_lettered_total", "Events sent to dlq.PLUGIN"),
                &["plugin", "topics"],
            )?,
        )?;
        let lag = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new("subscription_lag", "Head sequence minus the subscription's checkpoint"),
                &["plugin", "topics"],
            )?,
        )?;
        let swaps = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("plugin_swaps_total", "Plugin changes while running, by outcome"),
                &["outcome"],
            )?,
        )?;
        let applied = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("projection_events_applied_total", "Events folded and committed"),
                &["projection"],
            )?,
        )?;
        let projection_lag = registered(
            &registry,
            IntGaugeVec::new(Opts::new("projection_lag", "Head sequence minus checkpoint"), &["projection"])?,
        )?;
        let quarantined = registered(
            &registry,
            IntGaugeVec::new(Opts::new("projection_quarantined", "Events quarantined since start"), &["projection"])?,
        )?;
        let batch_size = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("projection_batch_size", "Events per committed batch")
                    .buckets(prometheus::exponential_buckets(1.0, 2.0, 11)?),
                &["projection"],
            )?,
        )?;
        let commit_seconds = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("projection_commit_seconds", "Duration of a views + checkpoint commit")
                    .buckets(prometheus::exponential_buckets(0.000_05, 2.5, 12)?),
                &["projection"],
            )?,
        )?;
        let commit_failures = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("projection_commit_failures_total", "Views + checkpoint commits that failed"),
                &["projection"],
            )?,
        )?;
        let storage_failures = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "storage_write_failures_total",
                    "LMDB writes that failed for the environment's sake, by kind (map_full, disk, lmdb)",
                ),
                &["kind"],
            )?,
        )?;
        // Every kind shows from the start (at 0), so alerts can use `increase`.
        for kind in ["map_full", "disk", "lmdb"] {
            storage_failures.with_label_values(&[kind]);
        }
        let log_dropped = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("guest_log_lines_dropped_total", "Guest log lines dropped over the plugin's log budget"),
                &["plugin"],
            )?,
        )?;
        let carts = CartMetrics {
            mutations: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "cart_mutations_total",
                        "Cart mutations by plugin, transport (http, grpc, import, forwarded) and outcome",
                    ),
                    &["plugin", "transport", "outcome"],
                )?,
            )?,
            latency: registered(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("cart_mutation_seconds", "Mutation latency, mailbox to durable reply")
                        .buckets(prometheus::exponential_buckets(0.000_05, 2.5, 12)?),
                    &["plugin"],
                )?,
            )?,
            active: registered(&registry, prometheus::IntGauge::new("carts_active", "Carts held in memory")?)?,
            replays: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new("cart_replayed_mutations_total", "Journal entries applied again to load a cart"),
                    &["plugin"],
                )?,
            )?,
            evictions: registered(
                &registry,
                IntCounter::new("cart_evictions_total", "Carts dropped from memory (idle or cache full)")?,
            )?,
            mailbox_depth: registered(
                &registry,
                prometheus::IntGauge::new("cart_mailbox_depth", "Cart commands queued or being handled")?,
            )?,
            commit_seconds: registered(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("cart_commit_seconds", "Commit latency of one mailbox round, by store")
                        .buckets(prometheus::exponential_buckets(0.000_05, 2.5, 12)?),
                    &["store"],
                )?,
            )?,
            leases_held: registered(
                &registry,
                prometheus::IntGauge::new("cart_leases_held", "Cart leases this node holds")?,
            )?,
            forwards: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new("cart_forwards_total", "Calls forwarded to the cart's owner, by outcome"),
                    &["outcome"],
                )?,
            )?,
            fenced: registered(
                &registry,
                IntCounter::new("cart_fenced_commits_total", "Commits refused: another node moved the cart")?,
            )?,
            ownership_moves: registered(
                &registry,
                IntCounter::new("cart_ownership_moves_total", "Carts taken over from another node")?,
            )?,
            takeover_seconds: registered(
                &registry,
                prometheus::Histogram::with_opts(
                    HistogramOpts::new("cart_takeover_seconds", "Taking over a cart: lease, load and replay")
                        .buckets(prometheus::exponential_buckets(0.000_5, 2.5, 12)?),
                )?,
            )?,
        };
        Ok(Metrics {
            registry,
            carts,
            calls,
            errors,
            duration,
            fuel,
            in_flight,
            kv_ops,
            emitted,
            http_responses,
            delivered,
            retried,
            dead_lettered,
            lag,
            swaps,
            applied,
            batch_size,
            commit_seconds,
            commit_failures,
            projection_lag,
            quarantined,
            storage_failures,
            schema_refused,
            log_dropped,
        })
    }

    /// Adds a metric another module keeps (`outbound`).
    pub(crate) fn register(&self, collector: Box<dyn prometheus::core::Collector>) -> prometheus::Result<()> {
        self.registry.register(collector)
    }

    /// The cart runtime's metrics.
    pub fn carts(&self) -> CartMetrics {
        self.carts.clone()
    }

    /// The labelled handles of one plugin.
    pub(crate) fn plugin(&self, name: &str) -> PluginMetrics {
        PluginMetrics {
            name: name.to_string(),
            calls: self.calls.with_label_values(&[name]),
            duration: self.duration.with_label_values(&[name]),
            fuel: self.fuel.with_label_values(&[name]),
            in_flight: self.in_flight.with_label_values(&[name]),
            errors: self.errors.clone(),
        }
    }

    /// The delivery counters of one subscription, labelled with its
    /// plugin and its topic patterns (comma-separated).
    pub fn delivery(&self, plugin: &str, topics: &[String]) -> DeliveryMetrics {
        let labels = [plugin, &topics.join(",")];
        DeliveryMetrics {
            delivered: self.delivered.with_label_values(&labels),
            retried: self.retried.with_label_values(&labels),
            dead_lettered: self.dead_lettered.with_label_values(&labels),
            emitted: self.emitted.with_label_values(&[plugin]),
        }
    }

    /// Sets a subscription's lag (computed when metrics are read).
    pub(crate) fn set_lag(&self, plugin: &str, topics: &[String], lag: u64) {
        let labels = [plugin, &topics.join(",")];
        self.lag.with_label_values(&labels).set(i64::try_from(lag).unwrap_or(i64::MAX));
    }

    /// The commit metrics of a projection: applied events, batch sizes,
    /// commit durations.
    pub(crate) fn folding(&self, projection: &str) -> FoldMetrics {
        FoldMetrics {
            applied: self.applied.with_label_values(&[projection]),
            batch_size: self.batch_size.with_label_values(&[projection]),
            commit_seconds: self.commit_seconds.with_label_values(&[projection]),
            commit_failures: self.commit_failures.with_label_values(&[projection]),
        }
    }

    /// Sets a projection's lag and quarantine count (computed when read).
    pub(crate) fn set_projection(&self, projection: &str, lag: u64, quarantined: usize) {
        self.projection_lag.with_label_values(&[projection]).set(i64::try_from(lag).unwrap_or(i64::MAX));
        self.quarantined.with_label_values(&[projection]).set(i64::try_from(quarantined).unwrap_or(i64::MAX));
    }

    /// Brings the storage write failure counters up to `counted` (read
    /// from storage when metrics are read).
    pub(crate) fn set_storage_failures(&self, kind: &str, counted: u64) {
        raise_to(&self.storage_failures.with_label_values(&[kind]), counted);
    }

    /// Brings a plugin's dropped log lines up to `counted` (the runtime's
    /// count for the plugin name, which only grows; read when metrics are).
    pub(crate) fn set_log_lines_dropped(&self, plugin: &str, counted: u64) {
        raise_to(&self.log_dropped.with_label_values(&[plugin]), counted);
    }

    /// Counts a plugin change (`swapped`, `rejected`, `canary_rolled_back`, ...).
    pub(crate) fn swap(&self, outcome: &str) {
        self.swaps.with_label_values(&[outcome]).inc();
    }

    pub(crate) fn kv_op(&self, op: &str) {
        self.kv_ops.with_label_values(&[op]).inc();
    }

    /// A payload refused by `schema` where it entered (`at`: `emit`,
    /// `route`, `cart`).
    pub(crate) fn schema_refused(&self, schema: &str, at: &str) {
        self.schema_refused.with_label_values(&[schema, at]).inc();
    }

    pub(crate) fn emitted(&self, source: &str, count: u64) {
        self.emitted.with_label_values(&[source]).inc_by(count);
    }

    pub(crate) fn http_response(&self, status: http::StatusCode) {
        self.http_responses.with_label_values(&[status.as_str()]).inc();
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("encoding metrics: {error}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Brings `counter` up to `counted`, a count kept elsewhere that only grows
/// (a counter never goes down: a smaller count leaves it as it is).
fn raise_to(counter: &IntCounter, counted: u64) {
    counter.inc_by(counted.saturating_sub(counter.get()));
}
