//! One compiled JSON Schema ([`Schema`]) and what a payload that does not
//! match it gets back ([`Violation`]): the schema's name, where in the
//! document, and the rule broken.

use std::fmt;

use serde_json::Value;

/// A JSON Schema, compiled once when its plugin is loaded.
pub struct Schema {
    name: String,
    document: Value,
    validator: jsonschema::Validator,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").field("name", &self.name).field("document", &self.document).finish_non_exhaustive()
    }
}

impl Schema {
    /// Compiles `document` as the schema `name`, or says why it is not a
    /// schema (a `$ref` to a remote document is refused: nothing is fetched).
    /// `pattern`s run on the linear-time `regex` engine, so no payload can
    /// make a check backtrack without end; a pattern that needs
    /// lookaround or backreferences is refused here, at load.
    pub fn compile(name: String, document: Value) -> Result<Schema, String> {
        let options = jsonschema::options().with_pattern_options(jsonschema::PatternOptions::regex());
        match options.build(&document) {
            Ok(validator) => Ok(Schema { name, document, validator }),
            Err(error) => {
                let at = error.instance_path().to_string();
                let at = if at.is_empty() { String::new() } else { format!(" at {at}") };
                Err(format!("schema {name} is not a valid JSON Schema{at}: {error}"))
            }
        }
    }

    /// Its name: `PLUGIN/events/TOPIC`, `PLUGIN/mutations/KIND`,
    /// `PLUGIN/state`, `PLUGIN/routes/METHOD PATTERN/request|response`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document as declared.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Checks a payload: it must be JSON and match.
    pub fn check(&self, payload: &[u8]) -> Result<(), Violation> {
        match serde_json::from_slice::<Value>(payload) {
            Ok(value) => self.check_value(&value),
            Err(error) => Err(Violation {
                schema: self.name.clone(),
                path: String::new(),
                rule: "json".into(),
                message: format!("the payload is not JSON ({error})"),
            }),
        }
    }

    /// Checks a JSON value.
    pub fn check_value(&self, value: &Value) -> Result<(), Violation> {
        match self.validator.validate(value) {
            Ok(()) => Ok(()),
            Err(error) => Err(Violation {
                schema: self.name.clone(),
                path: error.instance_path().to_string(),
                rule: error.kind().keyword().to_string(),
                message: error.to_string(),
            }),
        }
    }
}

/// Why a payload does not match a schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("does not match schema {schema} at {}: {message} (rule `{rule}`)", if path.is_empty() { "the top" } else { path })]
pub struct Violation {
    /// The schema's name.
    pub schema: String,
    /// JSON Pointer to the offending part of the payload (empty: the whole).
    pub path: String,
    /// The schema keyword broken (`type`, `required`, `minimum`, ...), or
    /// `json` when the payload is not JSON at all.
    pub rule: String,
    /// What is wrong, for people.
    pub message: String,
}

impl Violation {
    /// The violation as a JSON object, for error bodies.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"schema": self.schema, "path": self.path, "rule": self.rule, "message": self.message})
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order() -> Schema {
        let document = json!({
            "type": "object",
            "required": ["id", "total"],
            "properties": {"id": {"type": "string"}, "total": {"type": "number", "minimum": 0}}
        });
        Schema::compile("shop/events/orders.placed".into(), document).unwrap()
    }

    #[test]
    fn a_violation_names_the_schema_the_path_and_the_rule() {
        let schema = order();
        assert_eq!(schema.check(br#"{"id": "o1", "total": 3}"#), Ok(()));
        let violation = schema.check(br#"{"id": "o1", "total": -1}"#).unwrap_err();
        assert_eq!((violation.path.as_str(), violation.rule.as_str()), ("/total", "minimum"));
        let text = violation.to_string();
        assert!(text.contains("shop/events/orders.placed") && text.contains("/total"), "{text}");
        let missing = schema.check(br#"{"total": 1}"#).unwrap_err();
        assert_eq!((missing.path.as_str(), missing.rule.as_str()), ("", "required"));
        assert!(missing.to_string().contains("at the top"), "{missing}");
        let garbage = schema.check(b"{not json").unwrap_err();
        assert_eq!(garbage.rule, "json");
    }

    #[test]
    fn patterns_take_linear_time_and_lookaround_is_refused_at_load() {
        let nested = Schema::compile("p/state".into(), json!({"type": "string", "pattern": "^(a+)+$"})).unwrap();
        // Exponential for a backtracking engine; one pass for this one.
        let hostile = format!("\"{}b\"", "a".repeat(100_000));
        assert_eq!(nested.check(hostile.as_bytes()).unwrap_err().rule, "pattern");
        // Only a backtracking engine takes lookaround: this one is not.
        let lookahead = Schema::compile("p/state".into(), json!({"pattern": "^(?=a)"})).unwrap_err();
        assert!(lookahead.contains("p/state"), "{lookahead}");
    }

    #[test]
    fn a_document_that_is_no_schema_or_reaches_the_network_is_refused() {
        let bad = Schema::compile("p/state".into(), json!({"type": 5})).unwrap_err();
        assert!(bad.contains("p/state") && bad.contains("/type"), "{bad}");
        let remote = Schema::compile("p/state".into(), json!({"$ref": "https://example.com/s.json"})).unwrap_err();
        assert!(remote.contains("example.com"), "{remote}");
    }
}
