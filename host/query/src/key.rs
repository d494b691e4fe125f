//! Fields of a JSON view, the scalar values a filter compares them with,
//! and the order-preserving bytes an index stores them as.
//!
//! An encoded value is self-delimiting and compares, byte by byte, the way
//! the values do: `null` (or a missing field) < `false` < `true` < numbers <
//! strings < arrays and objects (which compare equal to each other). So a
//! key `enc(a) enc(b) id` sorts by `a`, then `b`, then the view id.

use std::fmt;

use serde_json::Value;

/// Tags that start an encoded value, in sort order.
const NULL: u8 = 0x01;
const FALSE: u8 = 0x02;
const TRUE: u8 = 0x03;
const NUMBER: u8 = 0x04;
const STRING: u8 = 0x05;
const OTHER: u8 = 0x06;

/// A field of a JSON view: a dotted path of object members (`customer.name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field(Vec<String>);

impl Field {
    /// A field from its members, outermost first; none is refused.
    pub fn new(members: Vec<String>) -> Option<Field> {
        (!members.is_empty() && members.iter().all(|m| !m.is_empty())).then_some(Field(members))
    }

    /// A field from its dotted name (`customer.name`).
    pub fn parse(dotted: &str) -> Option<Field> {
        Field::new(dotted.split('.').map(str::to_string).collect())
    }

    /// The field's value in a view, if the view has it.
    pub fn get<'a>(&self, view: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(view, |value, member| value.get(member))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A literal a filter compares a field with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// A number (compared as a 64-bit float, as JSON numbers are).
    Number(f64),
    /// A string, compared byte by byte (code point order).
    String(String),
}

impl Scalar {
    /// How this literal compares with a view's value: `None` when the value
    /// is missing or of another type (such a comparison is false).
    pub fn compare(&self, value: Option<&Value>) -> Option<std::cmp::Ordering> {
        match (value?, self) {
            (Value::Bool(value), Scalar::Bool(literal)) => Some(value.cmp(literal)),
            (Value::Number(value), Scalar::Number(literal)) => value.as_f64()?.partial_cmp(literal),
            (Value::String(value), Scalar::String(literal)) => Some(value.as_bytes().cmp(literal.as_bytes())),
            _ => None,
        }
    }

    /// Appends this literal's encoding, strings capped at `cap` encoded
    /// bytes; returns whether it was cut short.
    pub(crate) fn encode(&self, cap: usize, out: &mut Vec<u8>) -> bool {
        match self {
            Scalar::Bool(false) => out.push(FALSE),
            Scalar::Bool(true) => out.push(TRUE),
            Scalar::Number(number) => encode_number(*number, out),
            Scalar::String(string) => return encode_string(string, cap, out),
        }
        false
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(value) => write!(f, "{value}"),
            Scalar::Number(value) => write!(f, "{value}"),
            Scalar::String(value) => write!(f, "'{}'", value.replace('\'', "''")),
        }
    }
}

/// Appends the encoding of a view's value at a field (`None`: missing),
/// strings capped at `cap` encoded bytes.
pub fn encode(value: Option<&Value>, cap: usize, out: &mut Vec<u8>) {
    match value {
        None | Some(Value::Null) => out.push(NULL),
        Some(Value::Bool(false)) => out.push(FALSE),
        Some(Value::Bool(true)) => out.push(TRUE),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(number) => encode_number(number, out),
            None => out.push(OTHER),
        },
        Some(Value::String(string)) => {
            encode_string(string, cap, out);
        }
        Some(Value::Array(_) | Value::Object(_)) => out.push(OTHER),
    }
}

/// The first byte after every encoding of a literal's type: the end of a
/// range `field > literal` reaches.
pub(crate) fn type_end(literal: &Scalar) -> u8 {
    match literal {
        Scalar::Bool(_) => NUMBER,
        Scalar::Number(_) => STRING,
        Scalar::String(_) => OTHER,
    }
}

/// The first byte of every encoding of a literal's type.
pub(crate) fn type_start(literal: &Scalar) -> u8 {
    match literal {
        Scalar::Bool(_) => FALSE,
        Scalar::Number(_) => NUMBER,
        Scalar::String(_) => STRING,
    }
}

/// The smallest byte string greater than every string starting with
/// `prefix`; none when there is no such string (all bytes 0xFF).
pub fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < 0xFF {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// Numbers as big-endian bits with the sign flipped (negatives inverted
/// whole), so byte order is numeric order; `-0` is `0`.
fn encode_number(number: f64, out: &mut Vec<u8>) {
    let number = if number == 0.0 { 0.0 } else { number };
    let bits = number.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    out.push(NUMBER);
    out.extend_from_slice(&ordered.to_be_bytes());
}

/// A string's bytes with NUL escaped as `00 FF` and ended by `00 00`, cut
/// after `cap` bytes of escaped content; returns whether it was cut.
fn encode_string(string: &str, cap: usize, out: &mut Vec<u8>) -> bool {
    out.push(STRING);
    let mut written = 0;
    let mut cut = false;
    for byte in string.bytes() {
        let width = if byte == 0 { 2 } else { 1 };
        if written + width > cap {
            cut = true;
            break;
        }
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
        written += width;
    }
    out.extend_from_slice(&[0, 0]);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(value: Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(Some(&value), 64, &mut out);
        out
    }

    #[test]
    fn encodings_sort_as_the_values_do() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1e300),
            json!(-2.5),
            json!(-1),
            json!(0),
            json!(0.5),
            json!(1),
            json!(10),
            json!(1e300),
            json!(""),
            json!("\u{0}"),
            json!("a"),
            json!("a\u{0}"),
            json!("ab"),
            json!("b"),
            json!("é"),
            json!([1]),
        ];
        for pair in ordered.windows(2) {
            assert!(key(pair[0].clone()) < key(pair[1].clone()), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(key(json!(-0.0)), key(json!(0)), "-0 is 0");
        assert_eq!(key(json!({"a": 1})), key(json!([2])), "arrays and objects are not ordered");
    }

    #[test]
    fn long_strings_are_cut_and_said_to_be() {
        let mut out = Vec::new();
        assert!(Scalar::String("x".repeat(100)).encode(10, &mut out));
        assert_eq!(out.len(), 1 + 10 + 2);
        let mut short = Vec::new();
        assert!(!Scalar::String("x".repeat(10)).encode(10, &mut short));
        assert_eq!(short, out, "a string cut at the cap encodes as its first cap bytes");
    }

    #[test]
    fn successors_follow_every_extension() {
        assert_eq!(successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(successor(&[0xFF]), None);
    }

    #[test]
    fn fields_read_nested_members() {
        let view = json!({"customer": {"name": "ada"}, "total": 3});
        assert_eq!(Field::parse("customer.name").and_then(|f| f.get(&view).cloned()), Some(json!("ada")));
        assert_eq!(Field::parse("customer.age").and_then(|f| f.get(&view).cloned()), None);
        assert!(Field::parse("a..b").is_none());
    }
}
