//! What a running host serves: an immutable [`Catalog`] snapshot of the
//! mounted plugins (each in a [`Slot`], with a canary if one is on trial),
//! the components that failed and why, and the route table over them.
//! Swapping plugins builds a new catalog and replaces the old one
//! atomically; a call keeps the snapshot it started with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral_routes::RouteTable;
use corral_runtime::World;

use crate::plugins::canary::Canary;
use crate::plugins::deploy::DeployError;
use crate::plugins::mounted::Mounted;
use corral_schemas::{Schema, TopicSchemas};

/// The first path segments the host keeps for itself, and what for.
const RESERVED: [(&str, &str); 2] = [("views", "projection queries"), ("carts", "the cart API")];

/// A component that could not be mounted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The component file.
    pub file: PathBuf,
    /// The [`DeployError`] label of the step that refused it.
    pub kind: &'static str,
    /// What went wrong and how to fix it.
    pub error: String,
}

impl Failure {
    /// The failure `error` of `file`.
    pub(crate) fn new(file: &Path, error: &DeployError) -> Failure {
        Failure { file: file.to_path_buf(), kind: error.label(), error: error.to_string() }
    }

    /// Whether it is about the plugin file `stem`.
    pub fn is_of(&self, stem: &str) -> bool {
        self.file.file_stem().is_some_and(|s| s == stem)
    }
}

/// One served plugin of a catalog: the file it came from, its current
/// version, and a canary version if one is being tried.
#[derive(Clone)]
pub struct Slot {
    /// The plugin file's stem (`NAME` of `NAME.wasm`).
    pub stem: String,
    /// The version serving.
    pub mounted: Arc<Mounted>,
    /// A version on trial, if any.
    pub canary: Option<Arc<Canary>>,
}

impl Slot {
    /// A slot serving `mounted` alone.
    pub(crate) fn new(stem: &str, mounted: Arc<Mounted>) -> Slot {
        Slot { stem: stem.to_string(), mounted, canary: None }
    }
}

/// An immutable snapshot of what is served.
pub struct Catalog {
    /// Served plugins, in the order they were admitted.
    pub slots: Vec<Slot>,
    /// Components that failed, with the reason.
    pub failures: Vec<Failure>,
    /// Every route of every slot, to the slot's index.
    pub router: RouteTable<usize>,
    /// The schema of each topic that has one, across the slots.
    pub topics: Arc<TopicSchemas>,
}

impl Default for Catalog {
    fn default() -> Self {
        let Admission { routes, topics, .. } = Admission::default();
        Catalog { slots: Vec::new(), failures: Vec::new(), router: routes, topics: Arc::new(topics) }
    }
}

impl Catalog {
    /// Builds a catalog from slots in order. A slot whose plugin name is
    /// taken or whose routes conflict is left out and reported (in
    /// `failures`, and returned by stem); the earlier slot wins, so callers
    /// put the slot being deployed last.
    pub(crate) fn build(candidates: Vec<Slot>, mut failures: Vec<Failure>) -> (Catalog, Vec<(String, DeployError)>) {
        let mut admission = Admission::default();
        let mut slots = Vec::with_capacity(candidates.len());
        let mut rejected = Vec::new();
        for slot in candidates {
            let plugin = &slot.mounted.plugin;
            match admission.admit(
                slots.len(),
                plugin.name(),
                plugin.path(),
                &slot.mounted.routes,
                slot.mounted.schemas.events(),
            ) {
                Ok(()) => slots.push(slot),
                Err(error) => {
                    failures.push(Failure::new(plugin.path(), &error));
                    rejected.push((slot.stem, error));
                }
            }
        }
        let Admission { routes, topics, .. } = admission;
        (Catalog { slots, failures, router: routes, topics: Arc::new(topics) }, rejected)
    }

    /// Whether a projection of that name is served.
    pub fn has_projection(&self, name: &str) -> bool {
        self.projection(name).is_some()
    }

    /// The projection of that name, as served.
    pub fn projection(&self, name: &str) -> Option<&Arc<Mounted>> {
        self.slots
            .iter()
            .map(|s| &s.mounted)
            .find(|mounted| mounted.plugin.world() == World::Projection && mounted.plugin.name() == name)
    }

    /// The slot of a file stem.
    pub fn slot(&self, stem: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.stem == stem)
    }

    /// Every slot but `stem`'s.
    pub(crate) fn others<'a>(&'a self, stem: &'a str) -> impl Iterator<Item = Slot> + 'a {
        self.slots.iter().filter(move |s| s.stem != stem).cloned()
    }

    /// Every failure but those of `stem`.
    pub(crate) fn failures_without(&self, stem: &str) -> Vec<Failure> {
        without(&self.failures, stem)
    }
}

/// What keeps each of `mounted` (in order) from being served beside the
/// ones before it — a taken name, a conflicting route, a topic schema that
/// differs — the checks a catalog makes, for `host check`.
pub fn conflicts<'a>(mounted: impl IntoIterator<Item = &'a Mounted>) -> Vec<DeployError> {
    let mut admission = Admission::default();
    let mut refused = Vec::new();
    for (index, mounted) in mounted.into_iter().enumerate() {
        let plugin = &mounted.plugin;
        let events = mounted.schemas.events();
        if let Err(error) = admission.admit(index, plugin.name(), plugin.path(), &mounted.routes, events) {
            refused.push(error);
        }
    }
    refused
}

fn without(failures: &[Failure], stem: &str) -> Vec<Failure> {
    failures.iter().filter(|f| !f.is_of(stem)).cloned().collect()
}

/// The plugin names, routes and topic schemas admitted so far into a
/// catalog being built.
pub(crate) struct Admission {
    names: Vec<(String, PathBuf)>,
    routes: RouteTable<usize>,
    topics: TopicSchemas,
}

impl Default for Admission {
    fn default() -> Self {
        let routes = RESERVED.iter().fold(RouteTable::new(), |table, (prefix, purpose)| table.reserve(prefix, purpose));
        Admission { names: Vec::new(), routes, topics: TopicSchemas::default() }
    }
}

impl Admission {
    /// Admits plugin `name` (from `path`, serving `routes`, declaring
    /// schemas for the topics of `events`) as slot `index`, or says why not:
    /// its name is taken, a route is invalid, reserved or another plugin's,
    /// or a topic's schema differs from another plugin's.
    pub(crate) fn admit(
        &mut self,
        index: usize,
        name: &str,
        path: &Path,
        routes: &[(String, String)],
        events: &BTreeMap<String, Arc<Schema>>,
    ) -> Result<(), DeployError> {
        let conflict = |reason: String| DeployError::Conflict { path: path.to_path_buf(), reason };
        if let Some((_, other)) = self.names.iter().find(|(taken, _)| taken == name) {
            return Err(conflict(format!(
                "plugin name {name:?} is already used by {}; plugin names must be unique (set `name` in the sidecar)",
                other.display()
            )));
        }
        self.topics.agrees(name, events).map_err(conflict)?;
        self.routes.add(name, index, routes).map_err(|error| conflict(error.to_string()))?;
        self.topics.add(name, events);
        self.names.push((name.to_string(), path.to_path_buf()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use corral_routes::Match;

    use super::*;

    fn routes(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
    }

    fn none() -> BTreeMap<String, Arc<Schema>> {
        BTreeMap::new()
    }

    fn topic(plugin: &str, document: serde_json::Value) -> BTreeMap<String, Arc<Schema>> {
        let schema = Schema::compile(format!("{plugin}/events/orders.placed"), document).unwrap();
        BTreeMap::from([("orders.placed".to_string(), Arc::new(schema))])
    }

    #[test]
    fn a_plugin_whose_topic_schema_differs_is_refused_whole() {
        let mut admission = Admission::default();
        let placed = serde_json::json!({"type": "object", "required": ["id"]});
        admission.admit(0, "shop", Path::new("shop.wasm"), &[], &topic("shop", placed.clone())).unwrap();
        let other = topic("mail", serde_json::json!({"type": "object"}));
        let refused = admission.admit(1, "mail", Path::new("mail.wasm"), &routes(&[("GET", "/m")]), &other);
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("orders.placed") && message.contains("plugin shop"), "{message}");
        assert!(matches!(admission.routes.route("GET", "/m"), Match::NotFound), "a refused plugin routes nothing");
        admission.admit(1, "audit", Path::new("audit.wasm"), &[], &topic("audit", placed)).unwrap();
        assert_eq!(admission.topics.list()[0].2, ["shop", "audit"]);
    }

    #[test]
    fn the_first_of_two_plugins_with_one_name_wins() {
        let mut admission = Admission::default();
        admission.admit(0, "shop", Path::new("/p/a.wasm"), &routes(&[("GET", "/a")]), &none()).unwrap();
        let error = admission.admit(1, "shop", Path::new("/p/b.wasm"), &routes(&[("GET", "/b")]), &none()).unwrap_err();
        assert_eq!(error.label(), "conflict");
        let message = error.to_string();
        assert!(message.starts_with("/p/b.wasm") && message.contains("/p/a.wasm"), "{message}");
        assert!(matches!(admission.routes.route("GET", "/b"), Match::NotFound), "a refused plugin routes nothing");
    }

    #[test]
    fn routes_are_admitted_all_or_nothing_and_never_under_reserved_prefixes() {
        let mut admission = Admission::default();
        admission.admit(0, "a", Path::new("a.wasm"), &routes(&[("GET", "/orders/:id")]), &none()).unwrap();
        let clash =
            admission.admit(1, "b", Path::new("b.wasm"), &routes(&[("GET", "/x"), ("*", "/orders/:o")]), &none());
        let message = clash.unwrap_err().to_string();
        assert!(message.contains("plugin b") && message.contains("plugin a"), "{message}");
        assert!(matches!(admission.routes.route("GET", "/x"), Match::NotFound));
        admission.admit(1, "b", Path::new("b.wasm"), &routes(&[("GET", "/x")]), &none()).unwrap();
        assert!(matches!(admission.routes.route("GET", "/x"), Match::Found { target: 1, .. }));
        for reserved in ["/views/:id", "/carts/*"] {
            let error =
                admission.admit(2, "c", Path::new("c.wasm"), &routes(&[("GET", reserved)]), &none()).unwrap_err();
            assert!(error.to_string().contains("reserves"), "{error}");
        }
        let bad = admission.admit(2, "c", Path::new("c.wasm"), &routes(&[("GET", "/a/*/b")]), &none()).unwrap_err();
        assert_eq!(bad.label(), "conflict", "{bad}");
    }

    #[test]
    fn failures_are_kept_per_file_stem() {
        let error = DeployError::Storage { path: "x".into(), reason: "gone".into() };
        let failures =
            vec![Failure::new(Path::new("/p/a.wasm"), &error), Failure::new(Path::new("/p/ab.wasm"), &error)];
        assert_eq!(without(&failures, "a"), [failures[1].clone()]);
        assert_eq!(without(&failures, "b").len(), 2);
        assert_eq!(failures[0].kind, "storage");
    }
}
