//! The secondary indexes a projection declares (`[projection] indexes` in
//! its sidecar): each a list of fields, and for each view one entry whose
//! key is the fields' encoded values followed by the view id.
//!
//! Every view has exactly one entry per index, a missing field encoded as
//! `null`, so walking an index visits every view of the tenant. Strings
//! are cut so that a whole key — tenant, index, values, id — stays within
//! LMDB's 511 bytes; a query re-checks each view's full values.

use serde::Deserialize;
use serde_json::Value;

use crate::QueryError;
use crate::key::{Field, encode};

/// Most indexes a projection may declare.
pub const MAX_INDEXES: usize = 8;
/// Most fields in one index.
pub const MAX_FIELDS: usize = 4;
/// Bytes of a key left for the encoded values (511 bytes less the scope's
/// hash and index number, a tenant id, its separator and a view id).
const VALUE_BUDGET: usize = 180;

/// One index as the sidecar spells it: a field or a list of fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IndexSpec {
    /// `"total"`
    One(String),
    /// `["customer", "placed_at"]`
    Many(Vec<String>),
}

/// One index: its fields, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    fields: Vec<Field>,
}

impl Index {
    /// The fields, in key order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The index's name: its fields joined by commas.
    pub fn name(&self) -> String {
        self.fields.iter().map(Field::to_string).collect::<Vec<_>>().join(",")
    }

    /// Encoded bytes a string value may take in this index's keys.
    pub fn cap(&self) -> usize {
        VALUE_BUDGET / self.fields.len() - 3
    }

    /// The entry of a view: its fields' encoded values, then its id.
    pub fn entry(&self, id: &str, view: Option<&Value>) -> Vec<u8> {
        let mut key = Vec::with_capacity(32 + id.len());
        for field in &self.fields {
            encode(view.and_then(|view| field.get(view)), self.cap(), &mut key);
        }
        key.extend_from_slice(id.as_bytes());
        key
    }
}

/// A projection's indexes, numbered by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes(Vec<Index>);

impl Indexes {
    /// The indexes a sidecar declares, checked.
    pub fn declare(specs: &[IndexSpec]) -> Result<Indexes, QueryError> {
        if specs.len() > MAX_INDEXES {
            return Err(QueryError::Invalid(format!("{} indexes declared; at most {MAX_INDEXES}", specs.len())));
        }
        let mut indexes = Vec::new();
        for spec in specs {
            let names = match spec {
                IndexSpec::One(name) => vec![name.clone()],
                IndexSpec::Many(names) => names.clone(),
            };
            if names.is_empty() || names.len() > MAX_FIELDS {
                return Err(QueryError::Invalid(format!("index {names:?}: give 1 to {MAX_FIELDS} fields")));
            }
            let mut fields = Vec::new();
            for name in &names {
                let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
                let field = Field::parse(name)
                    .filter(|_| name.len() <= 128 && name.split('.').all(|m| m.chars().all(plain)))
                    .ok_or_else(|| {
                        QueryError::Invalid(format!(
                            "index field {name:?}: members of letters, digits, '_' and '-', joined by '.', at most 128 bytes"
                        ))
                    })?;
                if fields.contains(&field) {
                    return Err(QueryError::Invalid(format!("index {names:?} names {name} twice")));
                }
                fields.push(field);
            }
            let index = Index { fields };
            if indexes.contains(&index) {
                return Err(QueryError::Invalid(format!("index {names:?} is declared twice")));
            }
            indexes.push(index);
        }
        Ok(Indexes(indexes))
    }

    /// The indexes, numbered by position.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &Index)> {
        self.0.iter().enumerate().map(|(number, index)| (number as u8, index))
    }

    /// Whether none is declared.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The index numbered `number`.
    pub fn get(&self, number: u8) -> Option<&Index> {
        self.0.get(usize::from(number))
    }

    /// Each index's entry for a view (its stored bytes, JSON or not).
    pub fn entries(&self, id: &str, value: &[u8]) -> Vec<(u8, Vec<u8>)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let view = serde_json::from_slice::<Value>(value).ok();
        self.iter().map(|(number, index)| (number, index.entry(id, view.as_ref()))).collect()
    }

    /// The definitions as stored beside the entries (`a,b;c`), so a
    /// changed declaration is noticed and the entries rebuilt.
    pub fn to_definition(&self) -> String {
        self.0.iter().map(Index::name).collect::<Vec<_>>().join(";")
    }

    /// Definitions read back from storage.
    pub fn from_definition(definition: &str) -> Result<Indexes, QueryError> {
        if definition.is_empty() {
            return Ok(Indexes::default());
        }
        let specs: Vec<IndexSpec> = definition
            .split(';')
            .map(|index| IndexSpec::Many(index.split(',').map(str::to_string).collect()))
            .collect();
        Indexes::declare(&specs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declare(list: &str) -> Result<Indexes, QueryError> {
        let specs: Vec<IndexSpec> = serde_json::from_str(list).unwrap_or_else(|e| panic!("{list}: {e}"));
        Indexes::declare(&specs)
    }

    #[test]
    fn declarations_round_trip_through_their_stored_definition() {
        let indexes = declare(r#"[["customer.id", "placed_at"], "total"]"#).unwrap();
        assert_eq!(indexes.to_definition(), "customer.id,placed_at;total");
        assert_eq!(Indexes::from_definition(&indexes.to_definition()).unwrap(), indexes);
        assert_eq!(Indexes::from_definition("").unwrap(), Indexes::default());
    }

    #[test]
    fn bad_declarations_say_what_is_wrong() {
        for (list, said) in [
            (r#"[[]]"#, "1 to 4"),
            (r#"[["a", "a"]]"#, "twice"),
            (r#"["a", "a"]"#, "declared twice"),
            (r#"["a;b"]"#, "letters, digits"),
            (r#"["a..b"]"#, "letters, digits"),
            (r#"["a","b","c","d","e","f","g","h","i"]"#, "at most 8"),
        ] {
            let error = declare(list).unwrap_err().to_string();
            assert!(error.contains(said), "{list}: {error}");
        }
    }

    #[test]
    fn entries_fit_lmdb_keys_whatever_the_values() {
        let indexes = declare(r#"[["a", "b", "c", "d"], "a"]"#).unwrap();
        let long = "\u{0}".repeat(10_000);
        let view = serde_json::json!({"a": long, "b": long, "c": long, "d": long}).to_string();
        for (_, entry) in indexes.entries("id", view.as_bytes()) {
            assert!(entry.len() <= VALUE_BUDGET + 2, "{} bytes", entry.len());
        }
        let not_json = indexes.entries("x", b"\xff not json");
        assert_eq!(not_json[1].1, [&[1u8][..], b"x"].concat(), "a view that is not JSON has every field missing");
    }
}
