//! What a set of plugins declares, exported for clients: every schema as a
//! JSON Schema document ([`schemas`]), and an OpenAPI 3.1 document
//! ([`openapi`]) of the public API they make — each route of each route
//! plugin with its declared request and response bodies, the cart API of
//! each cart plugin with each kind's payload and the state, and the views
//! of each projection. Served by
//! the admin API (`GET /schemas`, `GET /openapi.json`) and written by
//! `host schema export`.

use corral_runtime::World;
use serde_json::{Map, Value, json};

use crate::plugins::Mounted;
use corral_schemas::Schema;

/// Methods a `*` route stands for in the document.
const ANY_METHOD: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every declared schema by name (`PLUGIN/events/TOPIC`, ...), in
/// `plugins`' order; a topic declared by several plugins once, under the
/// first one's name.
pub fn schemas<'a>(plugins: impl IntoIterator<Item = &'a Mounted>) -> Map<String, Value> {
    let mut all = Map::new();
    let mut topics = std::collections::HashSet::new();
    for mounted in plugins {
        for (topic, schema) in mounted.schemas.events() {
            if topics.insert(topic.clone()) {
                all.insert(schema.name().to_string(), schema.document().clone());
            }
        }
        let declared = &mounted.schemas;
        let routes = declared.routes().iter().flat_map(|r| r.request.iter().chain(r.response.iter()));
        for schema in declared.mutations().values().chain(declared.state()).chain(routes) {
            all.insert(schema.name().to_string(), schema.document().clone());
        }
    }
    all
}

/// The OpenAPI 3.1 document of `plugins`' routes and carts.
pub fn openapi<'a>(plugins: impl IntoIterator<Item = &'a Mounted>) -> Value {
    let mut paths = Map::new();
    for mounted in plugins {
        match mounted.plugin.world() {
            World::Route | World::WasiHttp => routes(mounted, &mut paths),
            World::Cart => cart(mounted, &mut paths),
            World::Projection => views(mounted.plugin.name(), &mut paths),
            World::EventHandler => {}
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Corral plugins",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The routes, cart APIs and views the plugins serve, with the payload schemas their sidecars declare. \
                Every operation takes the optional `x-corral-tenant` header: the tenant whose data it reaches.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": problem_schema()},
            "parameters": {
                "Tenant": {
                    "name": "x-corral-tenant",
                    "in": "header",
                    "required": false,
                    "description": "The tenant whose data the call reaches (none: the default tenant).",
                    "schema": {"type": "string", "maxLength": corral_runtime::tenants::MAX_TENANT_BYTES, "pattern": "^[A-Za-z0-9._-]*$"},
                },
            },
        },
    })
}

/// A route plugin's routes.
fn routes(mounted: &Mounted, paths: &mut Map<String, Value>) {
    let plugin = mounted.plugin.name();
    for (method, pattern) in &mounted.routes {
        let (path, mut parameters) = path_of(pattern);
        parameters.push(tenant());
        let declared = mounted.schemas.routes().iter().find(|r| &r.method == method && &r.pattern == pattern);
        let request = declared.and_then(|r| r.request.as_deref());
        let response = declared.and_then(|r| r.response.as_deref());
        let methods: Vec<String> = match method.as_str() {
            "*" => ANY_METHOD.iter().map(|m| m.to_string()).collect(),
            other => vec![other.to_ascii_lowercase()],
        };
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        for verb in methods {
            let mut operation = json!({
                "operationId": operation_id(plugin, &verb, pattern),
                "tags": [plugin],
                "summary": format!("{method} {pattern} (plugin {plugin})"),
                "parameters": parameters.clone(),
                "responses": {
                    "200": body("What the plugin answers (any status it chooses).", response.map(Schema::document)),
                    "default": problem("The host's answer when the call fails: 4xx for the caller, 5xx for the plugin or the host."),
                },
            });
            if let Some(schema) = request {
                operation["requestBody"] =
                    json!({"required": true, "content": {"application/json": {"schema": schema.document()}}});
                operation["responses"]["400"] =
                    problem(&format!("The body does not match {} (error `schema_mismatch`).", schema.name()));
            }
            entry[verb.as_str()] = operation;
        }
    }
}

/// A cart plugin's API: a mutation (each kind with its payload's schema)
/// and the state.
fn cart(mounted: &Mounted, paths: &mut Map<String, Value>) {
    let plugin = mounted.plugin.name();
    let kinds = &mounted.plugin.descriptor().mutation_kinds;
    let mutation = |kind: &String| {
        let payload = mounted.schemas.mutation(kind).map_or(json!({}), |s| s.document().clone());
        json!({
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": {"const": kind},
                "payload": payload,
                "id": {"type": "string", "description": "Idempotency id: a repeat answers the recorded result."},
            },
            "additionalProperties": false,
        })
    };
    let state = mounted.schemas.state().map_or(json!({}), |s| s.document().clone());
    let reply = json!({
        "type": "object",
        "properties": {
            "plugin": {"type": "string"},
            "cart": {"type": "string"},
            "version": {"type": "integer", "minimum": 0},
            "state": state,
            "events": {"type": "array", "items": {"type": "integer"}},
            "repeated": {"type": "boolean"},
        },
    });
    let parameters = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}, tenant()]);
    let idempotency = json!({"name": "idempotency-key", "in": "header", "required": false,
        "description": "Makes a retry safe: a repeat answers the recorded result (as the body's `id` does).",
        "schema": {"type": "string"}});
    let path = format!("/carts/{plugin}/{{id}}");
    paths.insert(path, json!({
        "parameters": parameters,
        "get": {
            "operationId": format!("{}.state", ident(plugin)),
            "tags": [plugin],
            "summary": format!("The state of a {plugin} cart (version 0 and no state if never mutated)."),
            "responses": {"200": body("The cart.", Some(&reply)), "default": problem("The call failed.")},
        },
        "post": {
            "operationId": format!("{}.mutate", ident(plugin)),
            "tags": [plugin],
            "summary": format!("Applies a mutation to a {plugin} cart and answers once it is durable."),
            "parameters": [idempotency],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": kinds.iter().map(mutation).collect::<Vec<_>>()}}}},
            "responses": {
                "200": body("The new state.", Some(&reply)),
                "400": problem("An unknown kind, or a payload that does not match its kind's schema."),
                "422": problem("The plugin refused the mutation; nothing changed."),
                "default": problem("The call failed; nothing changed."),
            },
        },
    }));
}

/// A projection's views: one by id, and a page of them.
fn views(projection: &str, paths: &mut Map<String, Value>) {
    let view = json!({"type": "object", "properties": {"id": {"type": "string"}, "value": {}}});
    let page = json!({
        "type": "object",
        "properties": {
            "views": {"type": "array", "items": view},
            "next_cursor": {"type": ["string", "null"]},
            "index": {"type": ["string", "null"], "description": "The index walked (with `where` or `order_by`); null: scanned."},
            "scanned": {"type": "integer", "description": "Views examined (with `where` or `order_by`)."},
        },
    });
    let query = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema});
    paths.insert(format!("/views/{projection}"), json!({"get": {
        "operationId": format!("{}.views", ident(projection)),
        "tags": [projection],
        "summary": format!("A page of projection {projection}'s views: by id, or filtered and sorted through its indexes."),
        "parameters": [
            tenant(),
            query("where", "A SQL WHERE expression over the views' JSON fields, e.g. `customer = 'ada' AND total > 100`.", json!({"type": "string"})),
            query("order_by", "A field, then ASC (default) or DESC.", json!({"type": "string"})),
            query("prefix", "Only ids starting with this.", json!({"type": "string"})),
            query("cursor", "The previous page's `next_cursor`.", json!({"type": "string"})),
            query("limit", "Most views in the page.", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})),
        ],
        "responses": {
            "200": body("The page.", Some(&page)),
            "400": problem("The query is malformed (`invalid_query`) or would examine more views than the projection's scan limit (`query_too_broad`, naming the index to add)."),
            "default": problem("The call failed."),
        },
    }}));
    paths.insert(format!("/views/{projection}/{{id}}"), json!({"get": {
        "operationId": format!("{}.view", ident(projection)),
        "tags": [projection],
        "summary": format!("One view of projection {projection}: the value the projection folded."),
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}, tenant()],
        "responses": {"200": {"description": "The view (JSON when it is JSON)."}, "404": problem("No such view."), "default": problem("The call failed.")},
    }}));
}

/// The tenant header every operation takes.
fn tenant() -> Value {
    json!({"$ref": "#/components/parameters/Tenant"})
}

/// A JSON response of `schema` (any body without one).
fn body(description: &str, schema: Option<&Value>) -> Value {
    match schema {
        Some(schema) => json!({"description": description, "content": {"application/json": {"schema": schema}}}),
        None => json!({"description": description}),
    }
}

/// A response with the host's error body.
fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// The body of every error the host answers.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "A stable label to branch on (`schema_mismatch`, `not_found`, `trap`, ...)."},
            "message": {"type": "string", "description": "What went wrong and how to fix it."},
            "request_id": {"type": "string"},
            "violation": {
                "type": "object",
                "description": "With `schema_mismatch`: what did not match.",
                "properties": {
                    "schema": {"type": "string"},
                    "path": {"type": "string", "description": "JSON Pointer into the payload."},
                    "rule": {"type": "string", "description": "The schema keyword broken."},
                    "message": {"type": "string"},
                },
            },
        },
    })
}

/// A route pattern as an OpenAPI path (`/orders/:id` → `/orders/{id}`; a
/// trailing `*` is the parameter `rest`, which may hold `/`), with its
/// path parameters.
fn path_of(pattern: &str) -> (String, Vec<Value>) {
    let mut parameters = Vec::new();
    let mut parameter = |name: &str, description: &str| {
        parameters.push(json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}}));
    };
    let segments: Vec<String> = pattern
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|segment| {
            if let Some(name) = segment.strip_prefix(':') {
                parameter(name, "A path segment.");
                format!("{{{name}}}")
            } else if segment == "*" {
                parameter("rest", "The rest of the path; it may hold `/`.");
                "{rest}".to_string()
            } else {
                segment.to_string()
            }
        })
        .collect();
    (format!("/{}", segments.join("/")), parameters)
}

/// A unique operation id: plugin, method and pattern, in identifier
/// characters.
fn operation_id(plugin: &str, method: &str, pattern: &str) -> String {
    format!("{}.{method}.{}", ident(plugin), ident(pattern.trim_start_matches('/')))
}

fn ident(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_become_openapi_paths_with_their_parameters() {
        let (path, parameters) = path_of("/orders/:id/files/*");
        assert_eq!(path, "/orders/{id}/files/{rest}");
        let names: Vec<&str> = parameters.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["id", "rest"]);
        assert_eq!(path_of("/").0, "/");
        assert_eq!(operation_id("shop", "get", "/orders/:id"), "shop.get.orders__id");
    }
}
