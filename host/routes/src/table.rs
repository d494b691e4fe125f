//! [`RouteTable`]: the routes of many owners (plugins), checked for
//! conflicts as they are added, and matched against requests.

use crate::error::{RouteError, RouteRef};
use crate::pattern::{Params, Pattern, Segment};

#[derive(Debug, Clone)]
struct Entry<T> {
    method: String,
    pattern: Pattern,
    target: T,
    owner: String,
}

/// What a request reaches.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'a, T> {
    /// A route matched: its target and the params its pattern captured.
    Found {
        /// The route's target.
        target: &'a T,
        /// What the pattern captured.
        params: Params,
        /// The matched route's method, as added (`*` for any).
        method: &'a str,
        /// The matched route's pattern, as added.
        pattern: &'a str,
    },
    /// Routes match the path, none for this method: the methods allowed.
    MethodNotAllowed(Vec<String>),
    /// Nothing matches the path.
    NotFound,
}

/// Routes of many owners, each leading to a target.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    entries: Vec<Entry<T>>,
    reserved: Vec<(String, String)>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable { entries: Vec::new(), reserved: Vec::new() }
    }
}

impl<T: Clone> RouteTable<T> {
    /// An empty table.
    pub fn new() -> RouteTable<T> {
        RouteTable::default()
    }

    /// Refuses routes whose first segment is `prefix`: the host serves
    /// `purpose` there.
    pub fn reserve(mut self, prefix: &str, purpose: &str) -> RouteTable<T> {
        self.reserved.push((prefix.to_string(), purpose.to_string()));
        self
    }

    /// Adds every route of one owner, or none: a route that is invalid,
    /// reserved, or conflicts with another (overlapping methods, the same
    /// shape) is an error naming both routes.
    pub fn add(&mut self, owner: &str, target: T, routes: &[(String, String)]) -> Result<(), RouteError> {
        let mut added: Vec<Entry<T>> = Vec::with_capacity(routes.len());
        for (method, pattern) in routes {
            let parsed = Pattern::parse(pattern)?;
            let route =
                || Box::new(RouteRef { method: method.clone(), pattern: pattern.clone(), owner: owner.to_string() });
            if let Some(Segment::Literal(first)) = parsed.segments().first()
                && let Some((prefix, purpose)) = self.reserved.iter().find(|(prefix, _)| prefix == first)
            {
                return Err(RouteError::Reserved { route: route(), prefix: prefix.clone(), purpose: purpose.clone() });
            }
            let overlaps = |e: &Entry<T>| {
                (e.method == *method || e.method == "*" || method == "*") && e.pattern.same_shape(&parsed)
            };
            if let Some(existing) = self.entries.iter().chain(added.iter()).find(|e| overlaps(e)) {
                let other = RouteRef {
                    method: existing.method.clone(),
                    pattern: existing.pattern.as_str().to_string(),
                    owner: existing.owner.clone(),
                };
                return Err(RouteError::Conflict { route: route(), other: Box::new(other) });
            }
            added.push(Entry { method: method.clone(), pattern: parsed, target: target.clone(), owner: owner.into() });
        }
        self.entries.extend(added);
        Ok(())
    }
}

impl<T> RouteTable<T> {
    /// Routes a request: the most specific matching route for its method.
    pub fn route(&self, method: &str, path: &str) -> Match<'_, T> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(&Entry<T>, Vec<u8>, Params)> = None;
        let mut allowed: Vec<String> = Vec::new();
        for entry in &self.entries {
            let Some(params) = entry.pattern.capture(&parts) else { continue };
            if entry.method != "*" && entry.method != method {
                if !allowed.contains(&entry.method) {
                    allowed.push(entry.method.clone());
                }
                continue;
            }
            let rank = entry.pattern.rank();
            if best.as_ref().is_none_or(|(_, best_rank, _)| rank > *best_rank) {
                best = Some((entry, rank, params));
            }
        }
        match best {
            Some((entry, _, params)) => {
                Match::Found { target: &entry.target, params, method: &entry.method, pattern: entry.pattern.as_str() }
            }
            None if !allowed.is_empty() => {
                allowed.sort();
                Match::MethodNotAllowed(allowed)
            }
            None => Match::NotFound,
        }
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
    }

    /// The target and params a request reaches, if it reaches one.
    fn hit(table: &RouteTable<usize>, method: &str, path: &str) -> Option<(usize, Params)> {
        match table.route(method, path) {
            Match::Found { target, params, .. } => Some((*target, params)),
            _ => None,
        }
    }

    fn params(list: &[(&str, &str)]) -> Params {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn matches_literals_params_and_rest_by_specificity() {
        let mut table = RouteTable::new();
        table.add("a", 0, &routes(&[("GET", "/orders/:id"), ("POST", "/orders/:id/items")])).unwrap();
        table.add("b", 1, &routes(&[("GET", "/orders/special")])).unwrap();
        table.add("c", 2, &routes(&[("*", "/files/*")])).unwrap();
        assert_eq!(hit(&table, "GET", "/orders/42"), Some((0, params(&[("id", "42")]))));
        assert_eq!(hit(&table, "GET", "/orders/special"), Some((1, vec![])));
        assert_eq!(hit(&table, "DELETE", "/files/a/b.txt"), Some((2, params(&[("*", "a/b.txt")]))));
        assert_eq!(hit(&table, "GET", "/files"), Some((2, params(&[("*", "")]))));
        assert_eq!(table.route("PUT", "/orders/42/items"), Match::MethodNotAllowed(vec!["POST".into()]));
        assert_eq!(table.route("GET", "/nothing"), Match::NotFound);
    }

    #[test]
    fn conflicts_name_both_owners_and_add_nothing() {
        let mut table = RouteTable::new().reserve("views", "projection queries");
        table.add("first", 0, &routes(&[("GET", "/orders/:id")])).unwrap();
        let error = table.add("second", 1, &routes(&[("GET", "/x"), ("*", "/orders/:cart")])).unwrap_err();
        assert!(matches!(&error, RouteError::Conflict { other, .. } if other.owner == "first"), "{error}");
        let message = error.to_string();
        assert!(message.contains("plugin second") && message.contains("plugin first"), "{message}");
        assert_eq!(table.route("GET", "/x"), Match::NotFound, "an owner's routes are added all or nothing");
        table.add("third", 2, &routes(&[("POST", "/orders/:id")])).unwrap();
        assert!(matches!(table.add("bad", 3, &routes(&[("GET", "/a/*/b")])), Err(RouteError::InvalidPattern { .. })));
        let reserved = table.add("sneaky", 4, &routes(&[("GET", "/views/:id")])).unwrap_err();
        assert!(reserved.to_string().contains("reserves"), "{reserved}");
    }
}
