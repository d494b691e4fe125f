//! [`Content`]: bytes as a test writes them, and the readable diff shown when
//! expected and actual bytes differ.
//!
//! One rule everywhere (inputs and expectations, Rust and TOML): a string is
//! the bytes of its text, anything else is JSON. Expected JSON is compared
//! as JSON (key order and spacing do not matter, and a member that is null
//! counts as missing, since TOML has no null); expected text byte for byte.

use std::fmt::Write as _;

use serde::{Deserialize, Deserializer};

/// Bytes given to a plugin or expected from it.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Exactly these bytes (UTF-8 text).
    Text(String),
    /// A JSON document: serialised when given, parsed and compared when expected.
    Json(serde_json::Value),
}

impl Content {
    /// The bytes handed to a plugin.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Content::Text(text) => text.clone().into_bytes(),
            Content::Json(value) => value.to_string().into_bytes(),
        }
    }

    /// Whether `actual` is what this content expects.
    pub fn matches(&self, actual: &[u8]) -> bool {
        match self {
            Content::Text(text) => text.as_bytes() == actual,
            Content::Json(value) => serde_json::from_slice::<serde_json::Value>(actual)
                .is_ok_and(|actual| without_nulls(actual) == without_nulls(value.clone())),
        }
    }

    /// How the expectation reads in a diff: JSON pretty-printed.
    fn render(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Json(value) => pretty(value),
        }
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Self {
        Content::Text(text.to_string())
    }
}

impl From<String> for Content {
    fn from(text: String) -> Self {
        Content::Text(text)
    }
}

impl From<serde_json::Value> for Content {
    fn from(value: serde_json::Value) -> Self {
        Content::Json(value)
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => Content::Text(text),
            other => Content::Json(other),
        })
    }
}

/// Drops object members that are null: a member set to null and a missing
/// one compare equal (TOML, which specs are written in, has no null).
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect()
        }
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Actual bytes as they read in a diff: pretty JSON when they are JSON,
/// else text (invalid UTF-8 replaced).
pub fn render_bytes(bytes: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value) if !bytes.is_empty() => pretty(&value),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The difference between what was expected and what came, indented by
/// `indent`: one line each when both are one line, else a line diff
/// (`-` expected, `+` actual).
pub(crate) fn diff(expected: &Content, actual: &[u8], indent: &str) -> String {
    let (expected, actual) = match expected {
        // Text expected, JSON came: compare the texts as they are.
        Content::Text(text) => (text.clone(), String::from_utf8_lossy(actual).into_owned()),
        Content::Json(_) => (expected.render(), render_bytes(actual)),
    };
    lines(&expected, &actual, indent)
}

/// A line diff of two texts (longest common subsequence; the texts a test
/// compares are small).
pub(crate) fn lines(expected: &str, actual: &str, indent: &str) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    if old.len() <= 1 && new.len() <= 1 {
        return format!("{indent}expected: {expected:?}\n{indent}  actual: {actual:?}\n");
    }
    // lcs[i][j]: length of the longest common subsequence of old[i..], new[j..].
    let mut lcs = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out = format!("{indent}(- expected, + actual)\n");
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            let _ = writeln!(out, "{indent}  {}", old[i]);
            (i, j) = (i + 1, j + 1);
        } else if j < new.len() && (i == old.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "{indent}+ {}", new[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "{indent}- {}", old[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_compares_as_json_and_text_byte_for_byte() {
        let expected = Content::Json(serde_json::json!({"a": 1, "b": [1, 2]}));
        assert!(expected.matches(br#"{ "b": [1,2], "a": 1 }"#));
        assert!(!expected.matches(br#"{"a": 2, "b": [1, 2]}"#));
        assert!(!expected.matches(b"not json"));
        assert!(expected.matches(br#"{"a": 1, "b": [1, 2], "c": null}"#), "null members count as missing");
        assert!(!expected.matches(br#"{"a": 1, "b": [1, 2], "c": 0}"#));
        assert!(Content::from("2").matches(b"2"));
        assert!(!Content::from("2").matches(b"2 "));
    }

    #[test]
    fn strings_are_text_and_the_rest_json_in_toml() {
        #[derive(Deserialize)]
        struct Doc {
            text: Content,
            json: Content,
        }
        let doc: Doc = toml::from_str("text = \"hi\"\njson = { n = 1 }").unwrap();
        assert_eq!(doc.text, Content::Text("hi".into()));
        assert_eq!(doc.json, Content::Json(serde_json::json!({"n": 1})));
        assert_eq!(doc.json.to_bytes(), br#"{"n":1}"#);
    }

    #[test]
    fn diffs_pretty_json_line_by_line() {
        let expected = Content::Json(serde_json::json!({"status": "open", "total": 3}));
        let diff = diff(&expected, br#"{"status":"checked_out","total":3}"#, "  ");
        assert!(diff.contains("-   \"status\": \"open\","), "{diff}");
        assert!(diff.contains("+   \"status\": \"checked_out\","), "{diff}");
        assert!(diff.contains("    \"total\": 3"), "{diff}");
        let short = lines("a", "b", "");
        assert_eq!(short, "expected: \"a\"\n  actual: \"b\"\n");
    }
}
