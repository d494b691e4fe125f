//! The route table: method + pattern (`/orders/:id`, `/files/*`) to plugin.
//! Literal segments beat `:params`, which beat a trailing `*`.

/// The first path segments the host keeps for itself, and what for.
pub(crate) const RESERVED: [(&str, &str); 2] = [("views", "projection queries"), ("carts", "the cart API")];

/// What a route leads to: an index into the mounted plugins.
pub(crate) type Target = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

impl Segment {
    /// Higher is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Rest => 0,
        }
    }

    /// Same shape: two patterns that match exactly the same paths.
    fn same_shape(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Param(_), Segment::Param(_)) | (Segment::Rest, Segment::Rest) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    method: String,
    pattern: String,
    segments: Vec<Segment>,
    target: Target,
    owner: String,
}

/// The result of routing a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// A route matched: its target and the captured params.
    Found { target: Target, params: Vec<(String, String)> },
    /// The path matches routes, none for this method; the allowed methods.
    MethodNotAllowed(Vec<String>),
    /// Nothing matches the path.
    NotFound,
}

/// All routes of all mounted plugins.
#[derive(Debug, Default, Clone)]
pub(crate) struct Router {
    entries: Vec<Entry>,
}

fn parse(pattern: &str) -> Result<Vec<Segment>, String> {
    let parts: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let segment = match *part {
            "*" if i + 1 == parts.len() => Segment::Rest,
            "*" => return Err(format!("pattern {pattern:?}: '*' may only end a pattern")),
            p if p.starts_with(':') && p.len() > 1 => Segment::Param(p[1..].to_string()),
            p if p.starts_with(':') => return Err(format!("pattern {pattern:?}: a ':' param needs a name")),
            p => Segment::Literal(p.to_string()),
        };
        segments.push(segment);
    }
    Ok(segments)
}

impl Router {
    /// Adds all routes of one plugin, or none: a route that conflicts with
    /// another plugin's (same method, same shape) is an error naming both.
    pub(crate) fn add(&mut self, owner: &str, target: Target, routes: &[(String, String)]) -> Result<(), String> {
        let mut added = Vec::with_capacity(routes.len());
        for (method, pattern) in routes {
            let segments = parse(pattern)?;
            if let Some(Segment::Literal(first)) = segments.first()
                && let Some((reserved, purpose)) = RESERVED.iter().find(|(r, _)| r == first)
            {
                return Err(format!(
                    "route {method} {pattern} of plugin {owner} is under /{reserved}/, which the host reserves for {purpose}"
                ));
            }
            let clash = self.entries.iter().chain(added.iter()).find(|e: &&Entry| {
                let methods_overlap = e.method == *method || e.method == "*" || method == "*";
                methods_overlap
                    && e.segments.len() == segments.len()
                    && e.segments.iter().zip(&segments).all(|(a, b)| a.same_shape(b))
            });
            if let Some(existing) = clash {
                return Err(format!(
                    "route {method} {pattern} of plugin {owner} conflicts with {} {} of plugin {}",
                    existing.method, existing.pattern, existing.owner
                ));
            }
            added.push(Entry {
                method: method.clone(),
                pattern: pattern.clone(),
                segments,
                target,
                owner: owner.to_string(),
            });
        }
        self.entries.extend(added);
        Ok(())
    }

    /// Routes a request.
    pub(crate) fn route(&self, method: &str, path: &str) -> Match {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(&Entry, Vec<u8>)> = None;
        let mut allowed: Vec<String> = Vec::new();
        for entry in &self.entries {
            if !matches_path(&entry.segments, &parts) {
                continue;
            }
            if entry.method != "*" && entry.method != method {
                if !allowed.contains(&entry.method) {
                    allowed.push(entry.method.clone());
                }
                continue;
            }
            let rank: Vec<u8> = entry.segments.iter().map(Segment::rank).collect();
            if best.as_ref().is_none_or(|(_, best_rank)| rank > *best_rank) {
                best = Some((entry, rank));
            }
        }
        match best {
            Some((entry, _)) => Match::Found { target: entry.target, params: capture(&entry.segments, &parts) },
            None if !allowed.is_empty() => {
                allowed.sort();
                Match::MethodNotAllowed(allowed)
            }
            None => Match::NotFound,
        }
    }
}

fn matches_path(segments: &[Segment], parts: &[&str]) -> bool {
    let rest = matches!(segments.last(), Some(Segment::Rest));
    let fixed = if rest { segments.len() - 1 } else { segments.len() };
    if parts.len() < fixed || (!rest && parts.len() != fixed) {
        return false;
    }
    segments.iter().zip(parts).all(|(segment, part)| match segment {
        Segment::Literal(literal) => literal == part,
        Segment::Param(_) | Segment::Rest => true,
    })
}

fn capture(segments: &[Segment], parts: &[&str]) -> Vec<(String, String)> {
    let mut params = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Param(name) => params.push((name.clone(), parts[i].to_string())),
            Segment::Rest => params.push(("*".to_string(), parts[i..].join("/"))),
            Segment::Literal(_) => {}
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
    }

    #[test]
    fn matches_literals_params_and_rest_by_specificity() {
        let mut router = Router::default();
        router.add("a", 0, &routes(&[("GET", "/orders/:id"), ("POST", "/orders/:id/items")])).unwrap();
        router.add("b", 1, &routes(&[("GET", "/orders/special")])).unwrap();
        router.add("c", 2, &routes(&[("*", "/files/*")])).unwrap();
        assert_eq!(
            router.route("GET", "/orders/42"),
            Match::Found { target: 0, params: vec![("id".into(), "42".into())] }
        );
        assert_eq!(router.route("GET", "/orders/special"), Match::Found { target: 1, params: vec![] });
        assert_eq!(
            router.route("DELETE", "/files/a/b.txt"),
            Match::Found { target: 2, params: vec![("*".into(), "a/b.txt".into())] }
        );
        assert_eq!(router.route("GET", "/files"), Match::Found { target: 2, params: vec![("*".into(), "".into())] });
        assert_eq!(router.route("PUT", "/orders/42/items"), Match::MethodNotAllowed(vec!["POST".into()]));
        assert_eq!(router.route("GET", "/nothing"), Match::NotFound);
    }

    #[test]
    fn conflicts_name_both_plugins() {
        let mut router = Router::default();
        router.add("first", 0, &routes(&[("GET", "/orders/:id")])).unwrap();
        let error = router.add("second", 1, &routes(&[("GET", "/x"), ("*", "/orders/:cart")])).unwrap_err();
        assert!(error.contains("plugin second") && error.contains("plugin first"), "{error}");
        assert_eq!(router.route("GET", "/x"), Match::NotFound, "a plugin's routes are added all or nothing");
        router.add("third", 2, &routes(&[("POST", "/orders/:id")])).unwrap();
        assert!(router.add("bad", 3, &routes(&[("GET", "/a/*/b")])).is_err());
        let reserved = router.add("sneaky", 4, &routes(&[("GET", "/views/:id")])).unwrap_err();
        assert!(reserved.contains("reserves"), "{reserved}");
    }
}
