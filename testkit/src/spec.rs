//! Test specs as TOML files (`*.test.toml`), so plugin authors in any
//! language test without writing Rust; the format is documented at the crate
//! root. `host test` finds the files, runs them and prints the reports.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::content::Content;
use crate::expect::Expect;
use crate::given::{Event, Mutation, Request};
use crate::kit::{KitError, Options, TestKit};
use crate::run::Run;
use corral_schemas::SchemasSection;

/// The suffix of spec files found in folders.
pub const SUFFIX: &str = ".test.toml";

/// Why a spec file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid spec.
    #[error("{path}: {message}")]
    Parse {
        /// The spec file.
        path: PathBuf,
        /// What is wrong, with its position.
        message: String,
    },
    /// The component did not load.
    #[error("{path}: {source}")]
    Load {
        /// The spec file.
        path: PathBuf,
        /// Why.
        source: KitError,
    },
}

/// A spec file: one component and its cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The component, relative to the spec file.
    pub component: PathBuf,
    /// Run the plugin under this name (like a sidecar's `name`).
    pub name: Option<String>,
    /// Config values (environment variables of non-deterministic guests).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Shared kv buckets granted to the plugin.
    #[serde(default)]
    pub kv_buckets: Vec<String>,
    /// Cart plugins granted to the plugin, by name, each a component path
    /// relative to the spec file: the plugin's `carts` calls run them.
    #[serde(default)]
    pub carts: BTreeMap<String, PathBuf>,
    /// The plugin's sidecar, relative to the spec file: its `[schemas]` are
    /// checked where the host checks them (its other settings are not read:
    /// set them here).
    pub sidecar: Option<PathBuf>,
    /// The cases.
    #[serde(rename = "case", default)]
    pub cases: Vec<Case>,
}

/// One case: what is given, what is expected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Printed on its line.
    pub name: String,
    /// Preconditions and the input.
    #[serde(default)]
    pub given: Given,
    /// What must come out.
    #[serde(default)]
    pub expect: Expect,
}

/// A case's preconditions and its input: one of `request`, `events`, `mutations`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// Tenant of every input.
    #[serde(default)]
    pub tenant: String,
    /// Carts: the cart id [default: `cart-1`].
    pub cart: Option<String>,
    /// Entries of the plugin's kv bucket.
    #[serde(default)]
    pub kv: BTreeMap<String, Content>,
    /// Entries of shared kv buckets (granted with `kv_buckets`), by bucket
    /// then key.
    #[serde(default)]
    pub shared_kv: BTreeMap<String, BTreeMap<String, Content>>,
    /// Views, by projection then id (in the case's tenant).
    #[serde(default)]
    pub views: BTreeMap<String, BTreeMap<String, Content>>,
    /// Carts: the state before the first mutation.
    pub state: Option<Content>,
    /// Every `emit` fails as unavailable.
    #[serde(default)]
    pub emit_unavailable: bool,
    /// Routes: the request.
    pub request: Option<GivenRequest>,
    /// Projections and event handlers: the events.
    pub events: Option<Vec<GivenEvent>>,
    /// Carts: the mutations.
    pub mutations: Option<Vec<GivenMutation>>,
}

/// A request in a spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenRequest {
    /// Method [default: GET].
    #[serde(default = "get")]
    pub method: String,
    /// Path, with an optional `?query`.
    pub path: String,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body (JSON also sets `content-type`).
    pub body: Option<Content>,
}

fn get() -> String {
    "GET".into()
}

/// An event in a spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenEvent {
    /// Topic.
    pub topic: String,
    /// Payload [default: empty].
    pub payload: Option<Content>,
    /// Tenant [default: the case's].
    pub tenant: Option<String>,
    /// Id [default: `evt-SEQUENCE`].
    pub id: Option<String>,
    /// Timestamp, Unix ms [default: the kit's clock].
    pub timestamp_ms: Option<u64>,
}

/// A mutation in a spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenMutation {
    /// Kind.
    pub kind: String,
    /// Payload [default: empty].
    pub payload: Option<Content>,
    /// Id [default: `mut-N`].
    pub id: Option<String>,
    /// Timestamp, Unix ms [default: the kit's clock].
    pub timestamp_ms: Option<u64>,
}

/// How one case went.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// The case's name.
    pub name: String,
    /// How long it took.
    pub elapsed: Duration,
    /// `Err` holds the readable reason (the diff, or why it could not run).
    pub outcome: Result<(), String>,
}

impl fmt::Display for CaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.elapsed.as_millis();
        match &self.outcome {
            Ok(()) => write!(f, "ok    {} ({millis} ms)", self.name),
            Err(reason) => {
                write!(f, "FAIL  {} ({millis} ms)", self.name)?;
                for line in reason.trim_end().lines() {
                    write!(f, "\n        {line}")?;
                }
                Ok(())
            }
        }
    }
}

/// The `[schemas]` section of the sidecar at `path` (none: no schemas).
fn schemas_of(path: &Path) -> Result<SchemasSection, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read { path: path.into(), source })?;
    let parse = |message: String| SpecError::Parse { path: path.into(), message };
    let table: toml::Table = toml::from_str(&text).map_err(|e| parse(e.to_string()))?;
    match table.get("schemas") {
        Some(schemas) => schemas.clone().try_into().map_err(|e: toml::de::Error| parse(format!("[schemas]: {e}"))),
        None => Ok(SchemasSection::default()),
    }
}

impl Spec {
    /// Reads and parses a spec file.
    pub fn read(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read { path: path.into(), source })?;
        let spec: Spec =
            toml::from_str(&text).map_err(|e| SpecError::Parse { path: path.into(), message: e.to_string() })?;
        if spec.cases.is_empty() {
            return Err(SpecError::Parse { path: path.into(), message: "no [[case]] in the spec".into() });
        }
        Ok(spec)
    }
}

/// Runs every case of the spec at `path`, calling `report` after each.
/// `cache_dir` caches compiled components (none: compile every time).
pub async fn run_file(
    path: &Path,
    cache_dir: Option<PathBuf>,
    mut report: impl FnMut(&CaseReport),
) -> Result<Vec<CaseReport>, SpecError> {
    let spec = Spec::read(path)?;
    let component = path.parent().unwrap_or(Path::new(".")).join(&spec.component);
    let mut options = Options { cache_dir, ..Options::default() };
    options.settings.name = spec.name.clone();
    options.settings.env = spec.config.clone().into_iter().collect();
    options.settings.kv_grants = spec.kv_buckets.clone();
    options.settings.cart_grants = spec.carts.keys().cloned().collect();
    if let Some(sidecar) = &spec.sidecar {
        options.schemas = schemas_of(&path.parent().unwrap_or(Path::new(".")).join(sidecar))?;
    }
    let load_error = |source| SpecError::Load { path: path.into(), source };
    let mut kit = TestKit::load_with(&component, options).await.map_err(load_error)?;
    for (name, cart) in &spec.carts {
        let cart = path.parent().unwrap_or(Path::new(".")).join(cart);
        kit.with_cart_plugin(name, &cart).await.map_err(load_error)?;
    }
    let mut reports = Vec::with_capacity(spec.cases.len());
    for case in &spec.cases {
        let started = Instant::now();
        kit.reset();
        let outcome = match run_case(&mut kit, &case.given).await {
            Ok(run) => case.expect.clone().with_tenant(&case.given.tenant).check(&run).map_err(|m| m.to_string()),
            Err(reason) => Err(reason),
        };
        let case_report = CaseReport { name: case.name.clone(), elapsed: started.elapsed(), outcome };
        report(&case_report);
        reports.push(case_report);
    }
    Ok(reports)
}

/// Sets up the scene and runs the case's one input.
async fn run_case(kit: &mut TestKit, given: &Given) -> Result<Run, String> {
    let tenant = given.tenant.as_str();
    for (key, value) in &given.kv {
        kit.given_kv(key, value.clone()).await;
    }
    for (bucket, entries) in &given.shared_kv {
        for (key, value) in entries {
            kit.given_shared_kv(bucket, key, value.clone()).await;
        }
    }
    for (projection, views) in &given.views {
        for (id, value) in views {
            kit.given_view(projection, tenant, id, value.clone());
        }
    }
    let cart = given.cart.as_deref().unwrap_or("cart-1");
    if let Some(state) = &given.state {
        kit.given_state(tenant, cart, state.clone());
    }
    if given.emit_unavailable {
        kit.emit_unavailable(Some("the event log is unavailable (emit_unavailable = true)"));
    }
    let run = match (&given.request, &given.events, &given.mutations) {
        (Some(request), None, None) => {
            let mut built = Request::new(&request.method, &request.path).tenant(tenant);
            for (name, value) in &request.headers {
                built = built.header(name, value);
            }
            if let Some(body) = &request.body {
                built = built.body(body.clone());
            }
            kit.request(built).await
        }
        (None, Some(events), None) => {
            let events = events.iter().map(|e| Event {
                topic: e.topic.clone(),
                payload: e.payload.as_ref().map(Content::to_bytes).unwrap_or_default(),
                tenant: e.tenant.clone().unwrap_or_else(|| tenant.to_string()),
                id: e.id.clone(),
                timestamp_ms: e.timestamp_ms,
            });
            kit.events(events.collect::<Vec<_>>()).await
        }
        (None, None, Some(mutations)) => {
            let mutations = mutations.iter().map(|m| Mutation {
                kind: m.kind.clone(),
                payload: m.payload.as_ref().map(Content::to_bytes).unwrap_or_default(),
                id: m.id.clone(),
                timestamp_ms: m.timestamp_ms,
            });
            kit.mutations_for(tenant, cart, mutations.collect::<Vec<_>>()).await
        }
        _ => return Err("given needs exactly one of `request`, `events` or `mutations`".into()),
    };
    run.map_err(|error| error.to_string())
}

impl Expect {
    /// Checks views in `tenant` unless the expectation names its own.
    fn with_tenant(mut self, tenant: &str) -> Self {
        self.tenant.get_or_insert_with(|| tenant.to_string());
        self
    }
}

/// The spec files under `paths`: files as given, folders searched for
/// `*.test.toml` (skipping `target`, `node_modules` and hidden folders).
pub fn find(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SpecError> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut found)?;
        } else {
            found.push(path.clone());
        }
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), SpecError> {
    let read = |source| SpecError::Read { path: dir.into(), source };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                walk(&path, found)?;
            }
        } else if name.ends_with(SUFFIX) {
            found.push(path);
        }
    }
    Ok(())
}
