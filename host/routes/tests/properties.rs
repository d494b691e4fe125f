//! Property tests of the route grammar, which parses what plugins describe
//! and what sidecars write: no pattern or request path makes it panic, and
//! a path built from a pattern is routed to it with the params it holds.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use corral_routes::{Match, Pattern, RouteTable};
use proptest::prelude::*;

/// One segment of a well-formed pattern, and a path segment it matches.
fn segment() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[a-z0-9_-]{1,8}".prop_map(|literal| (literal.clone(), literal)),
        ("[a-z]{1,6}", "[A-Za-z0-9_.~-]{1,10}").prop_map(|(name, value)| (format!(":{name}"), value)),
    ]
}

proptest! {
    #[test]
    fn no_pattern_makes_the_parser_panic(pattern in "\\PC{0,64}") {
        if let Ok(parsed) = Pattern::parse(&pattern) {
            prop_assert_eq!(parsed.as_str(), pattern.as_str());
            prop_assert!(pattern.starts_with('/'));
        }
    }

    #[test]
    fn no_request_path_makes_routing_panic(method in "[A-Z]{1,7}", path in "\\PC{0,128}") {
        let mut table = RouteTable::new();
        table.add("p", 0, &[("GET".into(), "/a/:b".into()), ("*".into(), "/c/*".into())]).unwrap();
        let _ = table.route(&method, &path);
    }

    #[test]
    fn a_path_built_from_a_pattern_is_routed_to_it_with_its_params(
        segments in prop::collection::vec(segment(), 0..6),
        rest in prop::option::of("[a-z0-9/]{0,12}"),
    ) {
        let mut pattern: String = segments.iter().map(|(p, _)| format!("/{p}")).collect();
        let mut path: String = segments.iter().map(|(_, v)| format!("/{v}")).collect();
        if let Some(rest) = &rest {
            pattern.push_str("/*");
            path.push('/');
            path.push_str(rest);
        }
        if pattern.is_empty() {
            pattern.push('/');
            path.push('/');
        }
        let names: Vec<&String> = segments.iter().map(|(p, _)| p).filter(|p| p.starts_with(':')).collect();
        let unique = names.iter().collect::<std::collections::BTreeSet<_>>().len() == names.len();
        let mut table = RouteTable::new();
        match table.add("plugin", 7u8, &[("GET".into(), pattern.clone())]) {
            Ok(()) => {}
            // A pattern naming one param twice may be refused; nothing else.
            Err(_) => { prop_assert!(!unique, "{} refused", pattern); return Ok(()); }
        }
        match table.route("GET", &path) {
            Match::Found { target, params, .. } => {
                prop_assert_eq!(*target, 7);
                for (name, value) in segments.iter().filter(|(p, _)| p.starts_with(':')) {
                    let name = &name[1..];
                    if unique {
                        let captured = params.iter().find(|(n, _)| n == name).map(|(_, v)| v);
                        prop_assert_eq!(captured, Some(value), "{} for {}", name, path);
                    }
                }
            }
            _ => prop_assert!(false, "{} did not route {}", pattern, path),
        }
        prop_assert!(matches!(table.route("POST", &path), Match::MethodNotAllowed(_)));
    }
}
