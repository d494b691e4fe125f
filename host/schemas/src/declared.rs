//! What one plugin declares: the sidecar's `[schemas]` section
//! ([`SchemasSection`]) and, compiled and checked against what the plugin
//! serves, [`Declared`].

use std::collections::BTreeMap;
use std::sync::Arc;

use corral_runtime::World;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::Schema;

/// `[schemas]`: a JSON Schema per payload the plugin emits or takes.
///
/// ```toml
/// [schemas.events."orders.placed"]          # a topic it emits or consumes
/// type = "object"
/// required = ["id", "total"]
/// properties.total = { type = "number", minimum = 0 }
///
/// [schemas.mutations]                       # cart plugins: per kind
/// add = '{"type": "object", "required": ["sku"]}'
///
/// [schemas.routes."POST /orders"]           # route plugins: per served route
/// request = { type = "object" }
/// ```
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchemasSection {
    /// Per topic.
    #[serde(default)]
    pub events: BTreeMap<String, Document>,
    /// Per mutation kind (cart plugins).
    #[serde(default)]
    pub mutations: BTreeMap<String, Document>,
    /// The cart's state (cart plugins).
    pub state: Option<Document>,
    /// Per route, keyed `"METHOD PATTERN"` as the plugin serves it.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteSection>,
}

/// `[schemas.routes."METHOD PATTERN"]`.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// The request body, checked before the plugin is called.
    pub request: Option<Document>,
    /// The response body: documented (exported), not checked.
    pub response: Option<Document>,
}

/// A schema as a sidecar writes it: a TOML table, or a string holding the
/// JSON document (so a schema can be pasted as it is).
#[derive(Debug, Clone, PartialEq)]
pub struct Document(pub Value);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => serde_json::from_str(&text).map(Document).map_err(|error| {
                serde::de::Error::custom(format!("a schema written as a string must be a JSON document: {error}"))
            }),
            document => Ok(Document(document)),
        }
    }
}

/// The schemas of one plugin's route.
#[derive(Debug)]
pub struct RouteSchemas {
    /// The route's method, as served.
    pub method: String,
    /// The route's pattern, as served.
    pub pattern: String,
    /// Its request body's schema.
    pub request: Option<Arc<Schema>>,
    /// Its response body's schema.
    pub response: Option<Arc<Schema>>,
}

/// What a plugin serves, which its declarations must name.
pub struct Serves<'a> {
    /// The plugin's name.
    pub plugin: &'a str,
    /// Its world.
    pub world: World,
    /// The routes it serves (sidecar overrides applied).
    pub routes: &'a [(String, String)],
    /// The mutation kinds it accepts (carts).
    pub kinds: &'a [String],
}

/// One plugin's schemas, compiled.
#[derive(Debug, Default)]
pub struct Declared {
    events: BTreeMap<String, Arc<Schema>>,
    mutations: BTreeMap<String, Arc<Schema>>,
    state: Option<Arc<Schema>>,
    routes: Vec<RouteSchemas>,
}

impl Declared {
    /// Compiles `section`, refusing a declaration for something the plugin
    /// does not serve (a route, a mutation kind) or cannot have (a state
    /// for a plugin that is no cart).
    pub fn compile(section: &SchemasSection, serves: &Serves<'_>) -> Result<Declared, String> {
        let plugin = serves.plugin;
        let compile = |what: String, document: &Document| Schema::compile(what, document.0.clone()).map(Arc::new);
        let mut declared = Declared::default();
        for (topic, document) in &section.events {
            corral_runtime::topics::validate_topic(topic)
                .map_err(|reason| format!("[schemas.events] names {topic:?}, which is not a topic: {reason}"))?;
            declared.events.insert(topic.clone(), compile(format!("{plugin}/events/{topic}"), document)?);
        }
        let is_cart = serves.world == World::Cart;
        let only_carts = |table: &str| {
            format!(
                "[schemas.{table}] is for cart plugins; {plugin} is a {} plugin: remove it from the sidecar",
                serves.world.name()
            )
        };
        for (kind, document) in &section.mutations {
            if !is_cart {
                return Err(only_carts("mutations"));
            }
            if !serves.kinds.contains(kind) {
                return Err(format!(
                    "[schemas.mutations] names kind {kind:?}, which {plugin} does not accept (its kinds: {})",
                    serves.kinds.join(", ")
                ));
            }
            declared.mutations.insert(kind.clone(), compile(format!("{plugin}/mutations/{kind}"), document)?);
        }
        if let Some(document) = &section.state {
            if !is_cart {
                return Err(only_carts("state"));
            }
            declared.state = Some(compile(format!("{plugin}/state"), document)?);
        }
        for (key, route) in &section.routes {
            if serves.world != World::Route {
                return Err(format!(
                    "[schemas.routes] is for route plugins; {plugin} is a {} plugin: remove it from the sidecar",
                    serves.world.name()
                ));
            }
            let served = key.split_once(' ').and_then(|(method, pattern)| {
                serves.routes.iter().find(|(m, p)| m == method && p == pattern.trim_start())
            });
            let Some((method, pattern)) = served else {
                let list: Vec<String> = serves.routes.iter().map(|(m, p)| format!("\"{m} {p}\"")).collect();
                return Err(format!(
                    "[schemas.routes] names {key:?}, which {plugin} does not serve; write \"METHOD PATTERN\" as one of: {}",
                    list.join(", ")
                ));
            };
            let named = |part: &str| format!("{plugin}/routes/{method} {pattern}/{part}");
            declared.routes.push(RouteSchemas {
                method: method.clone(),
                pattern: pattern.clone(),
                request: route.request.as_ref().map(|d| compile(named("request"), d)).transpose()?,
                response: route.response.as_ref().map(|d| compile(named("response"), d)).transpose()?,
            });
        }
        Ok(declared)
    }

    /// The schema of each topic it declares.
    pub fn events(&self) -> &BTreeMap<String, Arc<Schema>> {
        &self.events
    }

    /// The schema of a mutation kind, if declared.
    pub fn mutation(&self, kind: &str) -> Option<&Arc<Schema>> {
        self.mutations.get(kind)
    }

    /// The schema of each mutation kind.
    pub fn mutations(&self) -> &BTreeMap<String, Arc<Schema>> {
        &self.mutations
    }

    /// The cart state's schema, if declared.
    pub fn state(&self) -> Option<&Arc<Schema>> {
        self.state.as_ref()
    }

    /// The routes that have schemas.
    pub fn routes(&self) -> &[RouteSchemas] {
        &self.routes
    }

    /// The request schema of the route `method` `pattern`, if declared.
    pub fn request(&self, method: &str, pattern: &str) -> Option<&Arc<Schema>> {
        self.routes.iter().find(|r| r.method == method && r.pattern == pattern).and_then(|r| r.request.as_ref())
    }

    /// Every schema it declares.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Schema>> {
        let routes = self.routes.iter().flat_map(|r| r.request.iter().chain(r.response.iter()));
        self.events.values().chain(self.mutations.values()).chain(self.state.iter()).chain(routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> SchemasSection {
        toml::from_str(toml_text).unwrap()
    }

    fn cart<'a>(kinds: &'a [String]) -> Serves<'a> {
        Serves { plugin: "basket", world: World::Cart, routes: &[], kinds }
    }

    #[test]
    fn tables_and_json_strings_are_both_schemas() {
        let kinds = vec!["add".to_string()];
        let section = section(
            r#"
            state = '{"type": "object", "required": ["items"]}'
            [mutations.add]
            type = "object"
            properties.qty = { type = "integer", minimum = 1 }
            "#,
        );
        let declared = Declared::compile(&section, &cart(&kinds)).unwrap();
        let add = declared.mutation("add").unwrap();
        assert_eq!(add.name(), "basket/mutations/add");
        assert!(add.check(br#"{"qty": 2}"#).is_ok());
        assert_eq!(add.check(br#"{"qty": 0}"#).unwrap_err().path, "/qty");
        assert_eq!(declared.state().unwrap().check(b"{}").unwrap_err().rule, "required");
        assert_eq!(declared.all().count(), 2);
        let broken: Result<SchemasSection, _> = toml::from_str("state = '{not json'");
        assert!(broken.unwrap_err().to_string().contains("must be a JSON document"));
    }

    #[test]
    fn declarations_must_name_what_the_plugin_serves() {
        let kinds = vec!["add".to_string()];
        let unknown = Declared::compile(&section("[mutations.remove]\ntype = 'object'"), &cart(&kinds)).unwrap_err();
        assert!(unknown.contains("\"remove\"") && unknown.contains("its kinds: add"), "{unknown}");
        let routes = vec![("POST".to_string(), "/orders".to_string())];
        let route = Serves { plugin: "shop", world: World::Route, routes: &routes, kinds: &[] };
        let state = Declared::compile(&section("state = true"), &route).unwrap_err();
        assert!(state.contains("cart plugins") && state.contains("route plugin"), "{state}");
        let declared = Declared::compile(&section("[routes.\"POST /orders\"]\nrequest = { type = 'object' }"), &route);
        let declared = declared.unwrap();
        assert!(declared.request("POST", "/orders").is_some());
        assert!(declared.request("GET", "/orders").is_none());
        let missing = Declared::compile(&section("[routes.\"GET /orders\"]\nrequest = true"), &route).unwrap_err();
        assert!(missing.contains("\"POST /orders\""), "{missing}");
        let topic = Declared::compile(&section("[events.\"orders.>\"]\ntype = 'object'"), &route).unwrap_err();
        assert!(topic.contains("not a topic"), "{topic}");
    }
}
