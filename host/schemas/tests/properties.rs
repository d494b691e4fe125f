//! Property tests of what parses sidecars' schemas and checks untrusted
//! payloads against them: no document makes compiling panic, no payload
//! makes checking panic, a violation always points into the payload, and a
//! sidecar's `[schemas]` section never panics its parser.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use corral_runtime::World;
use corral_schemas::{Declared, Schema, SchemasSection, Serves};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, a few levels deep, with keys JSON Schema knows among
/// the others (so many documents are schemas, some of them strange).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["object", "array", "string", "integer", "number", "boolean", "null"])
            .prop_map(|t| Value::String(t.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            prop::sample::select(vec![
                "type",
                "properties",
                "required",
                "items",
                "minimum",
                "maximum",
                "pattern",
                "enum",
                "const",
                "anyOf",
                "oneOf",
                "not",
                "$ref",
                "minLength",
                "additionalProperties",
                "format",
            ])
            .prop_map(str::to_string),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn no_document_makes_compiling_panic_and_no_payload_makes_checking_panic(
        document in value(),
        payload in value(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        if let Ok(schema) = Schema::compile("p/state".into(), document) {
            if let Err(violation) = schema.check_value(&payload) {
                prop_assert_eq!(violation.schema.as_str(), "p/state");
                prop_assert!(violation.path.is_empty() || violation.path.starts_with('/'), "{}", violation.path);
                prop_assert!(!violation.rule.is_empty());
            }
            let _ = schema.check(&bytes);
        }
    }

    #[test]
    fn a_valid_payload_passes_and_a_wrong_type_names_its_path(n in any::<i64>(), s in "\\PC{0,16}") {
        let schema = Schema::compile(
            "p/mutations/add".into(),
            json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}),
        ).unwrap();
        let valid = json!({"n": n, "s": s});
        prop_assert!(schema.check_value(&valid).is_ok(), "{}", valid);
        let wrong = schema.check_value(&json!({"n": s, "s": n})).unwrap_err();
        prop_assert!(wrong.path == "/n" || wrong.path == "/s", "{}", wrong.path);
        prop_assert_eq!(wrong.rule.as_str(), "type");
    }

    #[test]
    fn no_sidecar_section_makes_parsing_or_compiling_panic(text in "\\PC{0,200}") {
        if let Ok(section) = toml::from_str::<SchemasSection>(&text) {
            let kinds = vec!["add".to_string()];
            let routes = vec![("POST".to_string(), "/orders".to_string())];
            for world in [World::Cart, World::Route, World::EventHandler] {
                let serves = Serves { plugin: "p", world, routes: &routes, kinds: &kinds };
                let _ = Declared::compile(&section, &serves);
            }
        }
    }
}
