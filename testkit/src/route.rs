//! Which of a component's described routes a request reaches, and the
//! `params` it captures — the host router's rules in small: literal segments
//! beat `:name` segments, which beat a trailing `*` (captured as `*`).

use corral_runtime::types::Route;

/// The params of the most specific route of `routes` matching the request,
/// or `None` when no route matches.
pub(crate) fn params(routes: &[Route], method: &str, path: &str) -> Option<Params> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    routes
        .iter()
        .filter(|route| route.method == "*" || route.method == method)
        .filter_map(|route| capture(&route.pattern, &parts))
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, params)| params)
}

/// Captured `(name, value)` params.
type Params = Vec<(String, String)>;

/// Matches one pattern: its specificity (a rank per segment) and its params.
fn capture(pattern: &str, parts: &[&str]) -> Option<(Vec<u8>, Params)> {
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut rank = Vec::with_capacity(segments.len());
    let mut params = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        if *segment == "*" && i + 1 == segments.len() {
            rank.push(0);
            params.push(("*".to_string(), parts.get(i..).unwrap_or_default().join("/")));
            return Some((rank, params));
        }
        let part = parts.get(i)?;
        match segment.strip_prefix(':') {
            Some(name) => {
                rank.push(1);
                params.push((name.to_string(), part.to_string()));
            }
            None if segment == part => rank.push(2),
            None => return None,
        }
    }
    (segments.len() == parts.len()).then_some((rank, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, pattern: &str) -> Route {
        Route { method: method.into(), pattern: pattern.into() }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn fills_params_from_the_most_specific_route() {
        let routes = [
            route("GET", "/orders/:id"),
            route("GET", "/orders/special"),
            route("*", "/files/*"),
            route("POST", "/orders/:id/items"),
        ];
        assert_eq!(params(&routes, "GET", "/orders/42"), Some(pairs(&[("id", "42")])));
        assert_eq!(params(&routes, "GET", "/orders/special"), Some(vec![]));
        assert_eq!(params(&routes, "PUT", "/files/a/b.txt"), Some(pairs(&[("*", "a/b.txt")])));
        assert_eq!(params(&routes, "GET", "/files"), Some(pairs(&[("*", "")])));
        assert_eq!(params(&routes, "GET", "/orders/42/items"), None);
        assert_eq!(params(&routes, "GET", "/nothing"), None);
    }
}
