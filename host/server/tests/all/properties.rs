//! Property tests of what the host parses from untrusted hands: sidecars,
//! durations, cron expressions and plugin names never make it panic, and
//! no cart mutation or event body a client sends is answered with a 5xx.
//! And the sidecars the README shows parse as written.

use std::time::Duration;

use corral_fixtures::CART_COUNTER;
use corral_server::plugins::cron::Schedule;
use corral_server::plugins::mounted::valid_stem;
use corral_server::plugins::sidecar::{Sidecar, parse_duration};
use proptest::prelude::*;

use crate::{Host, plugins_dir, post};

/// TOML-ish text: keys, sections, values the sidecar grammar knows, mixed
/// with noise.
fn sidecar_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[limits]".to_string()),
        Just("[rollout]".to_string()),
        Just("[cart]".to_string()),
        Just("[projection]".to_string()),
        Just("[config]".to_string()),
        (
            "[a-z_]{1,12}",
            prop_oneof!["-?[0-9]{1,20}", "\"\\PC{0,12}\"", "(true|false)", "\\{ env = \"[A-Z]{0,5}\" \\}"]
        )
            .prop_map(|(key, value)| format!("{key} = {value}")),
        "\\PC{0,30}",
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_sidecar_makes_loading_panic(text in sidecar_text()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, &text).unwrap();
        if let Err(error) = Sidecar::load(&path) {
            // A refusal names the file.
            prop_assert!(format!("{error:#}").contains("p.toml"), "{error:#}");
        }
    }

    #[test]
    fn durations_parse_exactly_or_are_refused(text in "\\PC{0,12}", n in 0u64..1_000_000, unit in "(ms|s|m|h|d)") {
        let _ = parse_duration(&text);
        let expected = match unit.as_str() {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => Duration::from_secs(n * 86_400),
        };
        prop_assert_eq!(parse_duration(&format!("{n}{unit}")), Ok(expected));
    }

    #[test]
    fn no_cron_expression_makes_the_parser_panic(expression in "\\PC{0,40}", fields in prop::collection::vec("(\\*|[0-9]{1,2}|\\*/[1-9]|[0-9]-[0-9]{1,2})", 6)) {
        let _ = Schedule::new("p", "s", &expression);
        let _ = Schedule::new("p", "s", &fields.join(" "));
    }

    #[test]
    fn a_valid_plugin_name_is_a_safe_file_name(name in "\\PC{0,140}") {
        if valid_stem(&name) {
            prop_assert!(!name.contains('/') && !name.contains('\\') && !name.starts_with('.'));
            prop_assert!(!name.is_empty() && name.len() <= 128);
        }
    }
}

/// Bodies a client might send as a cart mutation or an event.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let json = prop_oneof![
        Just(serde_json::json!({"kind": "add", "payload": 1})),
        ("\\PC{0,10}", any::<i64>(), prop::option::of("\\PC{0,300}"))
            .prop_map(|(kind, n, id)| { serde_json::json!({"kind": kind, "payload": n, "id": id}) }),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        Just(serde_json::json!({"kind": ["add"], "payload": {"deep": [1, 2, {"x": null}]}})),
    ];
    prop_oneof![json.prop_map(|v| v.to_string().into_bytes()), prop::collection::vec(any::<u8>(), 0..200)]
}

#[test]
fn no_cart_or_event_body_gets_a_server_error() {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    // Topics as a URI carries them (`>` would be `%3E`, taken literally).
    let cases = (body(), "[a-zA-Z0-9._*%-]{0,20}", "[a-z0-9-]{1,12}");
    runner
        .run(&cases, |(body, topic, cart)| {
            let (mutated, published) = runtime.block_on(async {
                let mutated = post(host.public, &format!("/carts/counter/{cart}"), &body).await;
                let published = post(host.admin, &format!("/events/{topic}"), &body).await;
                (mutated, published)
            });
            prop_assert!(mutated.status < 500, "cart {}: {} {}", cart, mutated.status, mutated.text());
            prop_assert!(published.status < 500, "event {}: {} {}", topic, published.status, published.text());
            Ok(())
        })
        .unwrap();
}

/// Every sidecar the README shows parses as it is written (its
/// `{ env = … }` value aside, which needs the host's environment): a user
/// copies these.
#[test]
fn the_readmes_sidecars_parse() {
    let readme = include_str!("../../../../README.md");
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .filter(|block| !block.contains("[[case]]"))
        .collect();
    assert!(blocks.len() >= 3, "the README's sidecar examples: {blocks:?}");
    let dir = tempfile::tempdir().unwrap();
    for block in blocks {
        let text = block.replace("{ env = \"STRIPE_KEY\" }", "\"sk_test\"");
        let path = dir.path().join("shop.toml");
        std::fs::write(&path, &text).unwrap();
        if let Err(error) = Sidecar::load(&path) {
            panic!("a README sidecar does not parse: {error:#}\n{text}");
        }
    }
}
