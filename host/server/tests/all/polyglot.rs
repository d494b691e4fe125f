//! JavaScript and Python guests (built from `guests/js` and `guests/python`
//! by `cargo xtask guests-polyglot`) served by the real binary, one test per
//! guest, named after it.
//!
//! Each component is 12-18 MB; compiling it takes Cranelift ~13 s, once per
//! target directory: the tests' artifact caches survive between runs.

use std::time::Duration;

use corral_fixtures::*;

use crate::events::settled_subscription;
pub(crate) use crate::sdk_guests::*;
use crate::{Host, eventually, get, plugins_dir};

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[expect(unused_imports, reason = "only checks that the test exists")]
        use self::$name as _;
    };
}
corral_fixtures::foreach_polyglot!(assert_test_exists);

/// Serves one route guest and checks its greeting, header and `/plugins` entry.
async fn serves_hello(guest: Polyglot, plugin: &str, path: &str, greeting: &str) {
    let plugins = plugins_dir(&[(plugin, guest.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let reply = get(host.public, &format!("{path}?x=1&y=2")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), greeting);
    assert_eq!(reply.headers["x-query"], "x=1&y=2");
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");

    let listed = get(host.admin, "/plugins").await.json();
    assert_eq!(listed[0]["name"], plugin, "{listed}");
    assert_eq!(listed[0]["world"], "route", "{listed}");
    // Each call is a fresh instance of the same pre-initialised snapshot.
    for _ in 0..3 {
        assert_eq!(get(host.public, path).await.text(), greeting);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn js_route_hello() {
    serves_hello(JS_ROUTE_HELLO, "js-hello", "/js/hello/ann", "hello, ann, from javascript").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_route_hello() {
    serves_hello(PYTHON_ROUTE_HELLO, "py-hello", "/py/hello/bob", "hello, bob, from python").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn js_event_kv_emit() {
    handles_orders(JS_EVENT_KV_EMIT, "js-orders").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_event_kv_emit() {
    handles_orders(PYTHON_EVENT_KV_EMIT, "py-orders").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_projection_totals() {
    folds_totals(PYTHON_PROJECTION_TOTALS, "py-totals").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn js_projection_totals() {
    folds_totals(JS_PROJECTION_TOTALS, "js-totals").await;
}

/// The example shop's sweeper (Python, schedule + carts import) asks the
/// cart plugin to abandon every open cart: the idle one is abandoned, the
/// checked-out one is left alone, and each is dropped from its index.
#[tokio::test(flavor = "multi_thread")]
async fn the_shops_python_sweeper_abandons_idle_carts_through_the_carts_import() {
    let sweeper = r#"
[config]
ABANDON_AFTER_S = "5"
[carts]
plugins = ["cart"]
[[schedules]]
name = "abandoned-carts"
cron = "* * * * * *"
"#;
    let plugins = plugins_dir(&[("cart", EXAMPLE_CART), ("sweeper", EXAMPLE_SWEEPER.path())], &[("sweeper", sweeper)]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let mutate = |cart: &str, kind: &str, payload: serde_json::Value| {
        let body = serde_json::json!({"kind": kind, "payload": payload}).to_string();
        let path = format!("/carts/cart/{cart}");
        async move { crate::post(host.public, &path, body.as_bytes()).await }
    };
    let tea = serde_json::json!({"sku": "tea", "name": "Tea", "unit_price_cents": 650, "customer": "ada"});
    assert_eq!(mutate("idle", "add_item", tea.clone()).await.status, 200);
    // Checked out well within ABANDON_AFTER_S of being opened.
    assert_eq!(mutate("done", "add_item", tea.clone()).await.status, 200);
    assert_eq!(mutate("done", "set_pickup_point", serde_json::json!({"id": "pp-1"})).await.status, 200);
    assert_eq!(mutate("done", "checkout", serde_json::json!({})).await.status, 200);

    let status = |cart: &'static str| async move { get(host.public, &format!("/carts/cart/{cart}")).await.json() };
    let started = std::time::Instant::now();
    loop {
        if status("idle").await["state"]["status"] == "abandoned" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the idle cart was never abandoned");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status("done").await["state"]["status"], "checked_out");
    let refused = mutate("idle", "add_item", tea).await;
    assert_eq!((refused.status, refused.json()["code"].as_str()), (422, Some("cart-closed")));

    let storage = host.storage();
    let abandoned: Vec<serde_json::Value> = storage
        .read_after(0, 1000)
        .unwrap()
        .iter()
        .filter(|e| e.topic == "cart.abandoned")
        .map(|e| serde_json::from_slice(&e.payload).unwrap())
        .collect();
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    assert_eq!((abandoned[0]["cart"].as_str(), abandoned[0]["customer"].as_str()), (Some("idle"), Some("ada")));
    assert!(abandoned[0]["idle_ms"].as_u64().unwrap() >= 5000, "{}", abandoned[0]);
    // Both carts leave the sweeper's index: one abandoned, one checked out.
    let index = || storage.kv_list("plugin/sweeper", "open/", None, 10).unwrap().0;
    eventually(Duration::from_secs(30), "an empty index", || index().is_empty().then_some(())).await;
    let subscription = settled_subscription(&host).await;
    assert_eq!(subscription["dead_lettered"], 0, "{subscription}");
}
