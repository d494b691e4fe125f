//! The optional sidecar `NAME.toml` beside `NAME.wasm`: what the operator
//! overrides (routes, topics, mount point), the limits, config values and
//! grants. Unknown keys are an error, never a silent default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use corral_runtime::{HttpGrants, Limits, PluginSettings};
use serde::Deserialize;

/// A parsed sidecar.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// Runs the plugin under this name instead of the one it describes.
    pub name: Option<String>,
    /// Per-call limits; unset ones keep the host defaults.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Replaces the routes the component describes.
    pub routes: Option<Vec<RouteSpec>>,
    /// Replaces the topics the component describes.
    pub topics: Option<Vec<String>>,
    /// Replaces the schedules the component describes.
    pub schedules: Option<Vec<ScheduleSpec>>,
    /// Delivery policy of an event handler.
    #[serde(default)]
    pub delivery: DeliverySection,
    /// Where a wasi:http component is mounted (default `/NAME/*`).
    pub mount: Option<String>,
    /// Configuration values, visible to the guest as environment variables:
    /// a string, or `{ env = "NAME" }` for the value of the host's
    /// environment variable NAME (read when the sidecar is, so secrets need
    /// not be written in plugin folders).
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Shared kv buckets granted to the plugin.
    #[serde(default)]
    pub kv: KvSection,
    /// Cart plugins granted to the plugin (routes and event handlers).
    #[serde(default)]
    pub carts: CartsSection,
    /// Where its outgoing HTTP may go (routes, event handlers, wasi:http
    /// components).
    #[serde(default)]
    pub http: HttpSection,
    /// Roll new versions out as a canary (route plugins).
    pub canary: Option<CanarySection>,
    /// How a new version rolls out across a cluster's nodes.
    pub rollout: Option<RolloutSection>,
    /// How a projection folds and what it does with a poison event.
    #[serde(default)]
    pub projection: ProjectionSection,
    /// How a cart's state is snapshotted.
    #[serde(default)]
    pub cart: CartSection,
    /// Warm instances (route and event-handler plugins).
    #[serde(default)]
    pub instances: crate::plugins::instances::InstancesSection,
    /// JSON Schemas of the payloads it emits and takes.
    #[serde(default)]
    pub schemas: corral_schemas::SchemasSection,
}

/// One `[config]` value.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(untagged)]
pub enum ConfigValue {
    /// Written in the sidecar.
    Text(String),
    /// Taken from the host's environment when the sidecar is read (after
    /// [`Sidecar::load`], always resolved into [`ConfigValue::Text`]).
    Env {
        /// The variable's name.
        env: String,
    },
}

/// `[cart]`.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct CartSection {
    /// Store a snapshot of the state every N mutations (default 1: every
    /// mutation). Loading a cart replays at most N - 1 journal entries with
    /// the plugin's current version, so N > 1 needs new versions to be
    /// replay-compatible with the entries they may replay.
    pub snapshot_every: u64,
    /// Most commands one cart's mailbox may hold (default: the host's
    /// `--cart-max-queued`); over it calls are refused with 503 /
    /// `RESOURCE_EXHAUSTED` and a retry hint.
    pub max_queue: Option<usize>,
}

impl Default for CartSection {
    fn default() -> Self {
        CartSection { snapshot_every: 1, max_queue: None }
    }
}

/// `[projection]`.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionSection {
    /// `halt` (default: stop before a poison event, so views are never
    /// silently wrong) or `skip` (quarantine it and go on).
    pub on_error: PoisonPolicy,
    /// Most events folded into one commit.
    pub batch_size: usize,
    /// Longest wait for more events before committing a partial batch.
    pub max_latency_ms: u64,
    /// Secondary indexes on the views' JSON fields: each a field or a list
    /// of fields (`["customer.id", "placed_at"]`), kept in the same
    /// transaction as the views.
    pub indexes: Vec<corral_query::IndexSpec>,
    /// Most views one query may examine; a query that would examine more
    /// is refused with the index to add.
    pub scan_limit: usize,
}

impl Default for ProjectionSection {
    fn default() -> Self {
        ProjectionSection {
            on_error: PoisonPolicy::Halt,
            batch_size: 256,
            max_latency_ms: 20,
            indexes: Vec::new(),
            scan_limit: 10_000,
        }
    }
}

/// What a projection does with an event its `apply` rejects or traps on.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum PoisonPolicy {
    /// Quarantine it and stop before it.
    Halt,
    /// Quarantine it and go on.
    Skip,
}

/// How a canary is run, from the sidecar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CanaryPolicy {
    /// Share of requests sent to the new version, 1 to 100.
    pub percent: u8,
    /// How long the new version is watched.
    pub window: Duration,
    /// Highest share of failed requests tolerated.
    pub max_error_rate: f64,
}

impl CanaryPolicy {
    /// Checks the sidecar's section.
    pub fn parse(section: &CanarySection) -> Result<CanaryPolicy, String> {
        if !(1..=100).contains(&section.percent) {
            return Err(format!("canary.percent must be 1 to 100, got {}", section.percent));
        }
        if !(0.0..=1.0).contains(&section.max_error_rate) {
            return Err(format!("canary.max_error_rate must be 0.0 to 1.0, got {}", section.max_error_rate));
        }
        Ok(CanaryPolicy {
            percent: section.percent,
            window: parse_duration(&section.window)?,
            max_error_rate: section.max_error_rate,
        })
    }
}

/// `"250ms"`, `"60s"`, `"5m"`, `"12h"`, `"7d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("invalid duration {text:?}; use e.g. \"500ms\", \"60s\", \"5m\", \"12h\", \"7d\"");
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = |per: u64| n.checked_mul(per).map(Duration::from_secs).ok_or_else(invalid);
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => Err(invalid()),
    }
}

/// `canary = { percent = 10, window = "60s", max_error_rate = 0.05 }`.
#[derive(Debug, Deserialize, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
pub struct CanarySection {
    /// Share of requests sent to the new version, 1 to 100.
    pub percent: u8,
    /// How long the new version is watched: `"500ms"`, `"60s"`, `"5m"`.
    pub window: String,
    /// Highest share of failed requests (5xx caused by the plugin) tolerated.
    pub max_error_rate: f64,
}

/// `[rollout]`: how a new version rolls out across a cluster. Each key
/// may also be given to `host deploy`, which wins.
#[derive(Debug, Default, Deserialize, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
pub struct RolloutSection {
    /// Nodes switch in this many groups, one after the other (default 1).
    pub waves: Option<u32>,
    /// Percent of every node's requests the new version gets first (route
    /// plugins; default: `canary.percent`, else none).
    pub canary: Option<u8>,
    /// How long the canary is judged: `"30s"`.
    pub window: Option<String>,
    /// Highest share of the canary's requests that may fail, all nodes together.
    pub max_error_rate: Option<f64>,
    /// How long each wave runs the new version before the next switches: `"10s"`.
    pub pause: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// Wall-clock deadline per call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Linear memory cap, in MiB.
    pub memory_mib: Option<u64>,
    /// Concurrent calls; more are answered 503.
    pub max_concurrency: Option<u32>,
    /// Log lines a second, all calls together; more are dropped (0: none).
    pub log_lines_per_second: Option<u32>,
}

/// `[kv]`.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KvSection {
    /// Shared buckets this plugin may use.
    #[serde(default)]
    pub buckets: Vec<String>,
}

/// `[carts]`: the cart plugins whose carts a route or event handler may
/// mutate and read through the `carts` import. Granted by the operator
/// only: a component cannot ask for it in `describe()`.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CartsSection {
    /// Names of the cart plugins.
    #[serde(default)]
    pub plugins: Vec<String>,
}

/// `[http]`: where a plugin's outgoing `wasi:http` requests may go —
/// `allowed_hosts` (`"https://api.example.com"`, `"http://10.0.0.5:8080"`,
/// `"https://*.example.org"`) and `plugins` whose routes it may call at
/// `http://NAME.plugin/…`. Granted by the operator only; nothing by default.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Origins the plugin may call.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Plugins whose routes it may call in-process.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Both, checked when the sidecar is read.
    #[serde(skip)]
    pub grants: HttpGrants,
}

/// `[delivery]`: how an event handler's failures are retried.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    /// Attempts per event before it goes to `dlq.NAME`.
    pub max_attempts: u32,
    /// Backoff after the first failure, doubled after each further one.
    pub backoff_ms: u64,
    /// Longest backoff.
    pub max_backoff_ms: u64,
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection { max_attempts: 5, backoff_ms: 100, max_backoff_ms: 10_000 }
    }
}

/// One `[[schedules]]` entry.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Unique within the plugin; the event topic is `schedule.PLUGIN.NAME`.
    pub name: String,
    /// Cron expression with seconds.
    pub cron: String,
}

/// One `[[routes]]` entry.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Upper-case method or `*`.
    pub method: String,
    /// Path pattern.
    pub pattern: String,
}

impl Sidecar {
    /// The sidecar path for a component: `dir/NAME.wasm` → `dir/NAME.toml`.
    pub fn path_for(component: &Path) -> PathBuf {
        component.with_extension("toml")
    }

    /// Reads the sidecar beside `component`, or the defaults if there is none.
    pub fn load_for(component: &Path) -> anyhow::Result<Sidecar> {
        Sidecar::load(&Sidecar::path_for(component))
    }

    /// Reads a sidecar file, or the defaults if there is none.
    pub fn load(path: &Path) -> anyhow::Result<Sidecar> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Sidecar::default()),
            Err(error) => return Err(error).with_context(|| format!("reading sidecar {}", path.display())),
        };
        Sidecar::parse(&text).with_context(|| format!("sidecar {}", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Sidecar> {
        let mut sidecar: Sidecar = toml::from_str(text)?;
        for (key, value) in &mut sidecar.config {
            if let ConfigValue::Env { env } = value {
                let resolved = std::env::var(&*env).map_err(|error| {
                    anyhow::anyhow!(
                        "config.{key} = {{ env = {env:?} }}: the host's environment variable {env} is {}; set it \
                         before starting the host",
                        match error {
                            std::env::VarError::NotPresent => "not set",
                            std::env::VarError::NotUnicode(_) => "not valid UTF-8",
                        }
                    )
                })?;
                *value = ConfigValue::Text(resolved);
            }
        }
        if sidecar.limits.memory_mib == Some(0) || sidecar.limits.max_concurrency == Some(0) {
            anyhow::bail!("limits.memory_mib and limits.max_concurrency must be at least 1");
        }
        if sidecar.projection.batch_size == 0 {
            anyhow::bail!("projection.batch_size must be at least 1");
        }
        if sidecar.cart.max_queue == Some(0) {
            anyhow::bail!("cart.max_queue must be at least 1 (commands one cart's mailbox may hold)");
        }
        if sidecar.cart.snapshot_every == 0 {
            anyhow::bail!("cart.snapshot_every must be at least 1 (1 snapshots every mutation)");
        }
        if sidecar.carts.plugins.iter().any(String::is_empty) {
            anyhow::bail!("carts.plugins must name cart plugins, not empty strings");
        }
        sidecar.http.grants = HttpGrants::parse(&sidecar.http.allowed_hosts, &sidecar.http.plugins)
            .map_err(|reason| anyhow::anyhow!("[http] {reason}"))?;
        sidecar.instances.reuse()?;
        if sidecar.delivery.max_attempts == 0 {
            anyhow::bail!("delivery.max_attempts must be at least 1");
        }
        Ok(sidecar)
    }

    /// The runtime settings: host defaults overridden by this sidecar.
    pub fn settings(&self) -> PluginSettings {
        let defaults = Limits::default();
        let limits = &self.limits;
        PluginSettings {
            name: self.name.clone(),
            limits: Limits {
                fuel: limits.fuel.unwrap_or(defaults.fuel),
                timeout: limits.timeout_ms.map(Duration::from_millis).unwrap_or(defaults.timeout),
                memory_bytes: limits.memory_mib.map(|mib| mib << 20).unwrap_or(defaults.memory_bytes),
                table_elements: defaults.table_elements,
                max_concurrency: limits.max_concurrency.unwrap_or(defaults.max_concurrency),
                log_lines_per_second: limits.log_lines_per_second.unwrap_or(defaults.log_lines_per_second),
            },
            kv_grants: self.kv.buckets.clone(),
            cart_grants: self.carts.plugins.clone(),
            http: self.http.grants.clone(),
            // Checked when the sidecar was read.
            reuse: self.instances.reuse().unwrap_or_default(),
            env: self
                .config
                .iter()
                .filter_map(|(key, value)| match value {
                    ConfigValue::Text(text) => Some((key.clone(), text.clone())),
                    ConfigValue::Env { .. } => None,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_sidecar() {
        let sidecar = Sidecar::parse(
            r#"
            mount = "/legacy/*"
            topics = ["orders.>"]
            [limits]
            fuel = 1000
            timeout_ms = 250
            memory_mib = 16
            max_concurrency = 4
            [[routes]]
            method = "GET"
            pattern = "/x/:id"
            [config]
            greeting = "hi"
            [kv]
            buckets = ["team"]
            [carts]
            plugins = ["cart"]
            "#,
        )
        .unwrap();
        let settings = sidecar.settings();
        assert_eq!(settings.limits.fuel, 1000);
        assert_eq!(settings.limits.timeout, Duration::from_millis(250));
        assert_eq!(settings.limits.memory_bytes, 16 << 20);
        assert_eq!(settings.limits.max_concurrency, 4);
        assert_eq!(settings.kv_grants, ["team"]);
        assert_eq!(settings.cart_grants, ["cart"]);
        assert_eq!(settings.env, [("greeting".to_string(), "hi".to_string())]);
        assert_eq!(sidecar.routes.unwrap()[0].pattern, "/x/:id");
    }

    #[test]
    fn config_values_can_come_from_the_hosts_environment() {
        let path = std::env::var("PATH").expect("tests run with a PATH");
        let sidecar = Sidecar::parse("[config]\nsearch = { env = \"PATH\" }\nplain = \"x\"\n").unwrap();
        assert_eq!(
            sidecar.settings().env,
            [("plain".to_string(), "x".to_string()), ("search".to_string(), path)],
            "resolved when read"
        );
        let error = Sidecar::parse("[config]\nkey = { env = \"CORRAL_TEST_SURELY_UNSET_4f2a\" }\n").unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("config.key") && message.contains("CORRAL_TEST_SURELY_UNSET_4f2a is not set"),
            "{message}"
        );
        assert!(Sidecar::parse("[config]\nkey = { file = \"x\" }\n").is_err(), "only env references");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = Sidecar::parse("[limits]\nfule = 3\n").unwrap_err();
        assert!(format!("{error:#}").contains("fule"), "{error:#}");
        assert!(Sidecar::parse("colour = 1").is_err());
        assert!(Sidecar::parse("[limits]\nmax_concurrency = 0").is_err());
        // `[cart]` configures a cart plugin; `[carts]` grants carts to a caller.
        let error = Sidecar::parse("[carts]\nsnapshot_every = 2\n").unwrap_err();
        assert!(format!("{error:#}").contains("snapshot_every"), "{error:#}");
        assert!(Sidecar::parse("[carts]\nplugins = [\"\"]\n").is_err());
    }

    #[test]
    fn durations_and_policies() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("soon").is_err());
        let section = CanarySection { percent: 0, window: "1s".into(), max_error_rate: 0.1 };
        assert!(CanaryPolicy::parse(&section).is_err());
    }

    #[test]
    fn no_sidecar_means_defaults() {
        let settings = Sidecar::default().settings();
        assert_eq!(settings, PluginSettings::default());
    }

    #[test]
    fn http_grants_are_checked_when_the_sidecar_is_read() {
        let sidecar = Sidecar::parse("[http]\nallowed_hosts = [\"https://api.example.com\"]\nplugins = [\"orders\"]\n");
        let grants = sidecar.unwrap().settings().http;
        assert_eq!(grants.plugins, ["orders"]);
        assert_eq!(grants.hosts[0].text, "https://api.example.com");
        let error = Sidecar::parse("[http]\nallowed_hosts = [\"api.example.com\"]\n").unwrap_err();
        assert!(format!("{error:#}").contains("scheme://host[:port]"), "{error:#}");
        assert!(Sidecar::parse("[http]\nhosts = []\n").is_err(), "an unknown key");
    }
}
