//! JavaScript and Python guests (built from `guests/js` and `guests/python`
//! by `cargo xtask guests-polyglot`) served by the real binary, one test per
//! guest, named after it.
//!
//! Each component is 12-18 MB; compiling it takes Cranelift ~13 s, once per
//! run thanks to the shared artifact cache.

use std::time::Duration;

use corral_fixtures::*;

use crate::events::{open, publish, settled_subscription};
use crate::projections::settled;
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
    let host = Host::start(plugins.path(), data.path(), &[]);
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
    let plugins = plugins_dir(
        &[("orders", JS_EVENT_KV_EMIT.path())],
        &[("orders", "[delivery]\nmax_attempts = 2\nbackoff_ms = 10\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path(), &[]);
    let first = publish(&host, "orders.created", r#"{"order":"a1","amount":5}"#).await;
    let poison = publish(&host, "orders.created", "not an order").await;
    let second = publish(&host, "orders.created", r#"{"order":"a2","amount":7}"#).await;
    publish(&host, "payments.done", r#"{"order":"a3","amount":1}"#).await;

    let storage = open(data.path());
    let kv = |key: &str| storage.kv_get("plugin/js-orders", key).unwrap().map(|v| String::from_utf8(v).unwrap());
    eventually(Duration::from_secs(30), "two orders counted", || (kv("orders.count")? == "2").then_some(())).await;
    assert_eq!(kv("orders.total").as_deref(), Some("12"));
    assert_eq!(kv("order.a1").as_deref(), Some(r#"{"order":"a1","amount":5}"#));
    assert_eq!(kv("order.a3"), None, "payments.done is not subscribed");

    let subscription = settled_subscription(&host).await;
    assert_eq!(subscription["plugin"], "js-orders");
    assert_eq!((subscription["delivered"].as_u64(), subscription["dead_lettered"].as_u64()), (Some(2), Some(1)));
    let log = storage.read_after(0, 100).unwrap();
    let counted: Vec<serde_json::Value> = log
        .iter()
        .filter(|e| e.topic == "orders.counted")
        .map(|e| serde_json::from_slice(&e.payload).unwrap())
        .collect();
    assert_eq!(
        counted,
        [
            serde_json::json!({"order": "a1", "count": 1, "after": first}),
            serde_json::json!({"order": "a2", "count": 2, "after": second}),
        ]
    );
    // A thrown `{code, message}` is the guest's failure, not a trap.
    let dead = log.iter().find(|e| e.topic == "dlq.js-orders").expect("a dead letter");
    let letter: serde_json::Value = serde_json::from_slice(&dead.payload).unwrap();
    assert_eq!(letter["event"]["sequence"], poison);
    let error = letter["error"].as_str().unwrap();
    assert!(error.contains("invalid-order") && error.contains("has no order id"), "{letter}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_projection_totals() {
    let plugins = plugins_dir(&[("totals", PYTHON_PROJECTION_TOTALS.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path(), &[]);
    for payload in [
        r#"{"customer":"alice","amount":10}"#,
        r#"{"customer":"bob","amount":5}"#,
        r#"{"amount":99}"#,
        r#"{"customer":"alice","amount":20}"#,
    ] {
        publish(&host, "orders.created", payload).await;
    }
    settled(&host, "py-totals", "running").await;
    let alice = get(host.public, "/views/py-totals/alice").await;
    assert_eq!(alice.status, 200, "{}", alice.text());
    assert_eq!(alice.text(), r#"{"orders":2,"total":30}"#);
    let listed = get(host.public, "/views/py-totals").await.json();
    assert_eq!(
        listed["views"],
        serde_json::json!([
            {"id": "alice", "value": {"orders": 2, "total": 30}},
            {"id": "bob", "value": {"orders": 1, "total": 5}},
        ]),
        "the event without a customer was skipped"
    );

    // A raised `Err(Failure(..))` quarantines the event and halts before it.
    publish(&host, "orders.created", r#"{"customer":"bob","amount":"lots"}"#).await;
    let halted = settled(&host, "py-totals", "halted").await;
    assert_eq!(halted["checkpoint"], 4);
    assert_eq!(halted["quarantined"][0]["sequence"], 5);
    assert!(halted["quarantined"][0]["error"].as_str().unwrap().contains("invalid-amount"), "{halted}");
    assert_eq!(get(host.public, "/views/py-totals/bob").await.text(), r#"{"orders":1,"total":5}"#);
}
