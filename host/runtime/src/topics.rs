//! Topics and subscriptions: the one grammar of event names, shared by
//! `emit`, the host's delivery and the test kit. A topic is dot-separated
//! segments of letters, digits, `-` and `_`; a subscription may use `*`
//! for one segment and, last, `>` for one or more.

/// Longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 255;

/// Checks a topic: dot-separated non-empty segments of letters, digits, `-`
/// and `_`, at most [`MAX_TOPIC_BYTES`]. Wildcards are for subscriptions only.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
        return Err(format!("topic must be 1 to {MAX_TOPIC_BYTES} bytes, got {}", topic.len()));
    }
    for segment in topic.split('.') {
        if segment.is_empty() {
            return Err(format!("topic {topic:?} has an empty segment"));
        }
        if let Some(bad) = segment.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!("topic {topic:?} contains {bad:?}; use letters, digits, '-', '_' and '.'"));
        }
    }
    Ok(())
}

/// Checks a subscription: a topic whose segments may be `*` (one segment)
/// or, as the last one, `>` (one or more segments).
pub fn check_subscription(pattern: &str) -> Result<(), String> {
    let segments: Vec<&str> = pattern.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let ok = *segment == "*"
            || (*segment == ">" && last)
            || (!segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        if !ok {
            return Err(format!("subscription {pattern:?}: segment {segment:?} must be a name, '*', or a final '>'"));
        }
    }
    Ok(())
}

/// Whether `topic` matches the subscription `pattern`.
pub fn matches(pattern: &str, topic: &str) -> bool {
    let mut pattern = pattern.split('.');
    let mut topic = topic.split('.');
    loop {
        match (pattern.next(), topic.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(t)) if p == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(validate_topic("orders.created").is_ok());
        assert!(validate_topic("dlq.my-plugin").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("orders..created").is_err());
        assert!(validate_topic("orders.*").is_err());
        assert!(validate_topic("orders.>").is_err());
        assert!(validate_topic(&"a".repeat(256)).is_err());
    }

    #[test]
    fn subscriptions() {
        assert!(check_subscription("orders.created").is_ok());
        assert!(check_subscription("orders.*").is_ok());
        assert!(check_subscription("orders.>").is_ok());
        assert!(check_subscription("orders.>.x").is_err());
        assert!(check_subscription("orders..x").is_err());
    }

    #[test]
    fn matching() {
        assert!(matches("orders.created", "orders.created"));
        assert!(matches("orders.*", "orders.created"));
        assert!(!matches("orders.*", "orders.eu.created"));
        assert!(matches("orders.>", "orders.eu.created"));
        assert!(!matches("orders.>", "orders"));
        assert!(!matches("orders.*", "payments.done"));
        assert!(matches(">", "anything.at.all"));
        assert!(!matches("cart.checked_out", "cart.created"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn topic() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[A-Za-z0-9_-]{1,8}", 1..6)
    }

    proptest! {
        #[test]
        fn no_input_makes_the_grammar_panic(text in "\\PC{0,300}", other in "\\PC{0,40}") {
            let valid = validate_topic(&text).is_ok();
            let _ = check_subscription(&text);
            let _ = matches(&text, &other);
            let _ = matches(&other, &text);
            // A topic is also a subscription to exactly itself.
            if valid {
                prop_assert!(check_subscription(&text).is_ok());
                prop_assert!(matches(&text, &text));
            }
        }

        #[test]
        fn wildcards_match_what_they_stand_for(segments in topic(), starred in any::<prop::sample::Index>(), extra in topic()) {
            let topic = segments.join(".");
            prop_assert!(validate_topic(&topic).is_ok());
            // `*` for any one segment.
            let mut pattern = segments.clone();
            let star = starred.index(pattern.len());
            pattern[star] = "*".into();
            let pattern = pattern.join(".");
            prop_assert!(check_subscription(&pattern).is_ok());
            prop_assert!(matches(&pattern, &topic), "{} ~ {}", pattern, topic);
            // `>` for one or more segments after a prefix, never for none.
            let deeper = format!("{topic}.{}", extra.join("."));
            let under = format!("{topic}.>");
            prop_assert!(matches(&under, &deeper));
            prop_assert!(!matches(&under, &topic));
            // A longer topic is not matched by a pattern without `>`.
            prop_assert!(!matches(&topic, &deeper));
        }
    }
}
