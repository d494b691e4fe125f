//! The schema of each topic across a catalog ([`TopicSchemas`]): a topic
//! has one schema, whichever plugins declare it (those that emit it and
//! those that consume it), so two plugins declaring different documents for
//! one topic cannot both be served.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::{Schema, Violation};

/// Every declared topic's schema, and which plugins declared it.
#[derive(Debug, Default)]
pub struct TopicSchemas {
    topics: HashMap<String, Declaration>,
}

#[derive(Debug)]
struct Declaration {
    schema: Arc<Schema>,
    plugins: Vec<String>,
}

impl TopicSchemas {
    /// Whether `plugin`'s declarations agree with those already here: for
    /// each of its topics, the same document. Else why not, naming both.
    pub fn agrees(&self, plugin: &str, events: &BTreeMap<String, Arc<Schema>>) -> Result<(), String> {
        for (topic, schema) in events {
            if let Some(declared) = self.topics.get(topic)
                && declared.schema.document() != schema.document()
            {
                return Err(format!(
                    "plugin {plugin} declares a schema for topic {topic:?} ({}) that differs from the one plugin {} \
                     declares ({}); a topic has one schema: make the two documents the same, or remove one",
                    schema.name(),
                    declared.plugins.join(", "),
                    declared.schema.name()
                ));
            }
        }
        Ok(())
    }

    /// Adds `plugin`'s declarations (after [`TopicSchemas::agrees`]).
    pub fn add(&mut self, plugin: &str, events: &BTreeMap<String, Arc<Schema>>) {
        for (topic, schema) in events {
            let declaration = self
                .topics
                .entry(topic.clone())
                .or_insert_with(|| Declaration { schema: schema.clone(), plugins: Vec::new() });
            declaration.plugins.push(plugin.to_string());
        }
    }

    /// Checks an event's payload against its topic's schema, if it has one.
    pub fn check(&self, topic: &str, payload: &[u8]) -> Result<(), Violation> {
        if self.topics.is_empty() {
            return Ok(());
        }
        match self.topics.get(topic) {
            Some(declared) => declared.schema.check(payload),
            None => Ok(()),
        }
    }

    /// Each topic with a schema, its schema and the plugins declaring it,
    /// sorted by topic.
    pub fn list(&self) -> Vec<(&str, &Arc<Schema>, &[String])> {
        let mut list: Vec<_> =
            self.topics.iter().map(|(topic, d)| (topic.as_str(), &d.schema, d.plugins.as_slice())).collect();
        list.sort_by(|a, b| a.0.cmp(b.0));
        list
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn events(plugin: &str, topic: &str, document: serde_json::Value) -> BTreeMap<String, Arc<Schema>> {
        let schema = Schema::compile(format!("{plugin}/events/{topic}"), document).unwrap();
        BTreeMap::from([(topic.to_string(), Arc::new(schema))])
    }

    #[test]
    fn a_topic_has_one_schema_whoever_declares_it() {
        let mut topics = TopicSchemas::default();
        assert!(topics.check("orders.placed", b"not json").is_ok(), "no schema, nothing checked");
        let shop = events("shop", "orders.placed", json!({"type": "object", "required": ["id"]}));
        topics.add("shop", &shop);
        let same = events("audit", "orders.placed", json!({"required": ["id"], "type": "object"}));
        assert_eq!(topics.agrees("audit", &same), Ok(()), "key order does not matter");
        topics.add("audit", &same);
        let other = events("mail", "orders.placed", json!({"type": "object"}));
        let refused = topics.agrees("mail", &other).unwrap_err();
        assert!(refused.contains("plugin mail") && refused.contains("shop, audit"), "{refused}");
        assert_eq!(topics.check("orders.placed", b"{}").unwrap_err().schema, "shop/events/orders.placed");
        assert!(topics.check("orders.placed", br#"{"id": 1}"#).is_ok());
        assert!(topics.check("other", b"{}").is_ok());
        assert_eq!(topics.list()[0].2, ["shop", "audit"]);
    }
}
