//! Names in JetStream: what Corral's strings become as stream and bucket
//! names, KV keys, subject tokens and header values, and how topic patterns
//! become subject filters.
//!
//! Keys and tokens are escaped byte by byte: bytes of `[A-Za-z0-9_-]` stay,
//! every other byte (`=` included) becomes `=XX` (upper-case hex). Each byte
//! maps on its own, so a prefix of a string escapes to a prefix of its
//! escape, and the escape holds no `.`, `*`, `>` or whitespace: it is one
//! subject token and a valid KV key.

use crate::ClusterError;

/// Longest cluster name (it is part of every stream and bucket name).
pub const MAX_CLUSTER_NAME: usize = 32;

/// Longest KV key, in bytes before escaping.
pub const MAX_KEY: usize = 256;

/// Checks a cluster name: 1 to 32 characters of `[A-Za-z0-9_-]`.
pub fn validate_cluster_name(name: &str) -> Result<(), ClusterError> {
    if name.is_empty() || name.len() > MAX_CLUSTER_NAME || !name.bytes().all(is_plain) {
        return Err(ClusterError::invalid(
            format!("cluster name {name:?}"),
            format!("use 1 to {MAX_CLUSTER_NAME} characters of A-Z, a-z, 0-9, '_' and '-'"),
        ));
    }
    Ok(())
}

/// Bytes kept as they are by every escaping here.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn escape_with(raw: &str, escape: u8, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if keep(byte) && byte != escape {
            out.push(char::from(byte));
        } else {
            out.push(char::from(escape));
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

fn unescape_with(escaped: &str, escape: u8) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == escape {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes any string into one subject token (and KV key): `[A-Za-z0-9_-]`
/// stay, every other byte becomes `=XX`. Use it for the tokens of journal
/// subjects (`cj.<plugin>.<tenant>.<cart>`).
pub fn escape_token(raw: &str) -> String {
    escape_with(raw, b'=', is_plain)
}

/// Reverses [`escape_token`]; `None` if `escaped` is not one's output.
pub fn unescape_token(escaped: &str) -> Option<String> {
    unescape_with(escaped, b'=')
}

/// Escapes a KV key after checking its length (1 to 256 bytes).
pub(crate) fn key(raw: &str) -> Result<String, ClusterError> {
    if raw.is_empty() || raw.len() > MAX_KEY {
        return Err(ClusterError::invalid(format!("key {raw:?}"), format!("keys are 1 to {MAX_KEY} bytes")));
    }
    Ok(escape_token(raw))
}

/// A bucket name for this cluster: `corral-<len>-<cluster>-<kind>`. The
/// length makes the name unambiguous although cluster names may hold `-`.
pub(crate) fn bucket(cluster: &str, kind: &str) -> String {
    format!("corral-{}-{cluster}-{kind}", cluster.len())
}

/// The bucket holding a plugin (or shared) kv bucket: its name escaped into
/// a bucket name's charset (`_XX` for bytes outside `[A-Za-z0-9-]`).
pub(crate) fn plugin_bucket(cluster: &str, name: &str) -> Result<String, ClusterError> {
    let escaped = escape_with(name, b'_', is_plain);
    // Stream names (KV_ + bucket) must stay well under the server's 255.
    if name.is_empty() || escaped.len() > 160 {
        return Err(ClusterError::invalid(
            format!("kv bucket name {name:?}"),
            "bucket names are 1 to about 50 bytes (160 once escaped)",
        ));
    }
    Ok(bucket(cluster, &format!("kv-{escaped}")))
}

/// Escapes a header value so it survives NATS headers exactly (they trim
/// whitespace and cannot hold line breaks): printable ASCII but `=` stays,
/// every other byte becomes `=XX`.
pub(crate) fn escape_header(raw: &str) -> String {
    escape_with(raw, b'=', |byte| byte.is_ascii_graphic())
}

/// Reverses [`escape_header`].
pub(crate) fn unescape_header(escaped: &str) -> Option<String> {
    unescape_with(escaped, b'=')
}

/// Checks a topic (or, with `wildcards`, a topic pattern): dot-separated
/// tokens of `[A-Za-z0-9_-]`, patterns may use `*` for a token and a final
/// `>` for the rest.
pub(crate) fn validate_topic(topic: &str, wildcards: bool) -> Result<(), ClusterError> {
    let mut tokens = topic.split('.').peekable();
    while let Some(token) = tokens.next() {
        let ok = match token {
            "*" => wildcards,
            ">" => wildcards && tokens.peek().is_none(),
            _ => !token.is_empty() && token.bytes().all(is_plain),
        };
        if !ok {
            let what = if wildcards { "topic pattern" } else { "topic" };
            return Err(ClusterError::invalid(
                format!("{what} {topic:?}"),
                "use dot-separated tokens of A-Z, a-z, 0-9, '_' and '-'",
            ));
        }
    }
    Ok(())
}

/// Whether every topic `pattern` matches is matched by `wider`.
fn covers(wider: &str, pattern: &str) -> bool {
    let mut wide = wider.split('.');
    let mut narrow = pattern.split('.');
    loop {
        match (wide.next(), narrow.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(token)) if token != ">" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether some topic matches both patterns.
fn overlaps(a: &str, b: &str) -> bool {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some("*"), Some(_)) | (Some(_), Some("*")) => {}
            (Some(x), Some(y)) if x == y => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The topic patterns a consumer filters on: duplicates and patterns
/// covered by another dropped. JetStream refuses overlapping filters, so
/// when patterns still overlap (`a.*` and `*.b`) the answer is `None`: read
/// every topic and match on the client. No filters means every topic.
pub(crate) fn consumer_filters(patterns: &[String]) -> Option<Vec<String>> {
    let mut kept: Vec<String> = Vec::new();
    for pattern in patterns {
        if kept.iter().any(|k| covers(k, pattern)) {
            continue;
        }
        kept.retain(|k| !covers(pattern, k));
        kept.push(pattern.clone());
    }
    if kept.is_empty() {
        return None;
    }
    for (i, a) in kept.iter().enumerate() {
        if kept[i + 1..].iter().any(|b| overlaps(a, b)) {
            return None;
        }
    }
    Some(kept)
}

/// Whether `topic` matches one of `patterns` (no patterns: every topic).
pub(crate) fn matches_any(patterns: &[String], topic: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|pattern| covers(pattern, topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_escape_byte_by_byte_and_back() {
        for raw in ["plain-Key_9", "a.b c", "=", "x=y", "ünï/cødé", "tab\there", "🦀"] {
            let escaped = escape_token(raw);
            assert!(escaped.bytes().all(|b| is_plain(b) || b == b'='), "{escaped}");
            assert_eq!(unescape_token(&escaped).as_deref(), Some(raw));
        }
        assert_eq!(escape_token("a.b c=d"), "a=2Eb=20c=3Dd");
        assert_eq!(unescape_token("=4"), None);
        assert_eq!(unescape_token("=ZZ"), None);
    }

    #[test]
    fn a_prefix_escapes_to_a_prefix() {
        let key = "user/ü.x y";
        for end in (0..=key.len()).filter(|&i| key.is_char_boundary(i)) {
            assert!(escape_token(key).starts_with(&escape_token(&key[..end])));
        }
    }

    #[test]
    fn keys_have_bounded_length() {
        assert!(key("").is_err());
        assert!(key(&"k".repeat(256)).is_ok());
        assert!(key(&"k".repeat(257)).is_err());
    }

    #[test]
    fn bucket_names_are_unambiguous() {
        assert_eq!(bucket("shop", "leases"), "corral-4-shop-leases");
        assert_ne!(bucket("a-kv", "x"), bucket("a", "kv-x"));
        assert_eq!(plugin_bucket("c", "plugin/a_b").unwrap(), "corral-1-c-kv-plugin_2Fa_5Fb");
        assert!(plugin_bucket("c", "").is_err());
    }

    #[test]
    fn cluster_names_are_checked() {
        assert!(validate_cluster_name("prod_eu-1").is_ok());
        assert!(validate_cluster_name("").is_err());
        assert!(validate_cluster_name("a.b").is_err());
        assert!(validate_cluster_name(&"x".repeat(33)).is_err());
    }

    #[test]
    fn header_values_survive_whitespace_and_line_breaks() {
        for raw in [" padded ", "line\r\nbreak", "00-abc-01", "ünï"] {
            let escaped = escape_header(raw);
            assert!(escaped.bytes().all(|b| b.is_ascii_graphic()), "{escaped}");
            assert_eq!(unescape_header(&escaped).as_deref(), Some(raw));
        }
        assert_eq!(escape_header("00-abc-01"), "00-abc-01");
    }

    #[test]
    fn topics_are_checked() {
        assert!(validate_topic("orders.created", false).is_ok());
        assert!(validate_topic("orders.*", false).is_err());
        assert!(validate_topic("orders.*.x", true).is_ok());
        assert!(validate_topic("orders.>", true).is_ok());
        assert!(validate_topic("orders.>.x", true).is_err());
        assert!(validate_topic("orders..x", true).is_err());
        assert!(validate_topic("a b", true).is_err());
    }

    #[test]
    fn filters_drop_covered_patterns_and_give_up_on_overlaps() {
        let filters = |p: &[&str]| consumer_filters(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(filters(&["a.b", "a.*", "c"]), Some(vec!["a.*".to_string(), "c".to_string()]));
        assert_eq!(filters(&["a.>", "a.b.c", "a.*"]), Some(vec!["a.>".to_string()]));
        assert_eq!(filters(&["a.b", "a.b"]), Some(vec!["a.b".to_string()]));
        assert_eq!(filters(&["a.*", "*.b"]), None);
        assert_eq!(filters(&[]), None);
        assert!(matches_any(&["a.*".to_string()], "a.x"));
        assert!(!matches_any(&["a.*".to_string()], "a.x.y"));
        assert!(matches_any(&["a.>".to_string()], "a.x.y"));
        assert!(!matches_any(&["a.>".to_string()], "a"));
        assert!(matches_any(&[], "anything"));
    }
}
