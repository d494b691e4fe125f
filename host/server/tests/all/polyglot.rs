//! JavaScript and Python guests (built from `guests/js` and `guests/python`
//! by `cargo xtask guests-polyglot`) served by the real binary, one test per
//! guest, named after it.
//!
//! Each component is 12-18 MB; compiling it takes Cranelift ~13 s, once per
//! target directory: the tests' artifact caches survive between runs.

use std::time::Duration;

use corral_fixtures::*;

use crate::events::{publish, settled_subscription};
use crate::projections::settled;
use crate::{Host, eventually, get, plugins_dir, post};

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

/// The TypeScript SDK's router: several routes from one table, params,
/// query, JSON in and out, `HttpError` answers, typed kv errors, events
/// queued until the call succeeds, and a thrown `Error` still a trap.
#[tokio::test(flavor = "multi_thread")]
async fn js_route_sdk() {
    let plugins = plugins_dir(&[("sdk", JS_ROUTE_SDK.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let hello = get(host.public, "/sdk/hello/ann?x=1").await;
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello, ann, from typescript"));
    assert_eq!(hello.headers["x-query"], "1");
    assert_eq!(hello.headers["content-type"], "text/plain; charset=utf-8");

    let put = |id: &'static str, body: &'static str| async move {
        crate::send(host.public, crate::request("PUT", host.public, &format!("/sdk/notes/{id}"), body.as_bytes())).await
    };
    let saved = put("n1", r#"{"text":"tea"}"#).await;
    assert_eq!((saved.status, saved.json()), (201, serde_json::json!({"id": "n1", "count": 1})));
    assert_eq!(put("n2", r#"{"text":"milk"}"#).await.json()["count"], 2);
    let not_json = put("n3", "tea").await;
    assert_eq!(
        (not_json.status, not_json.json()["error"].as_str()),
        (400, Some("invalid_json")),
        "{}",
        not_json.text()
    );
    let no_text = put("n3", r#"{"text":""}"#).await;
    assert_eq!((no_text.status, no_text.json()["error"].as_str()), (422, Some("no_text")));
    assert_eq!(get(host.public, "/sdk/notes/n1").await.json(), serde_json::json!({"text": "tea"}));
    // The literal route wins over `:id`, as the host's table decides.
    assert_eq!(get(host.public, "/sdk/notes/count").await.json(), serde_json::json!({"count": 2}));
    let missing = get(host.public, "/sdk/notes/n9").await;
    assert_eq!((missing.status, missing.json()["error"].as_str()), (404, Some("no_note")));
    let caught = post(host.public, "/sdk/counter-of-words", b"").await;
    assert_eq!(
        (caught.status, caught.json()),
        (409, serde_json::json!({"kind": "not-a-counter", "code": "kv.not-a-counter"}))
    );
    let boom = get(host.public, "/sdk/boom").await;
    assert_eq!((boom.status, boom.json()["error"].as_str()), (500, Some("trap")), "{}", boom.text());

    // Only the two notes saved were announced (a refused call queues nothing).
    assert_eq!(
        on_topic(&host, "notes.saved"),
        [serde_json::json!({"id": "n1", "count": 1}), serde_json::json!({"id": "n2", "count": 2})]
    );
    // describe() reports the router's table.
    let listed = get(host.admin, "/plugins").await.json();
    assert_eq!(
        listed[0]["routes"],
        serde_json::json!([
            "GET /sdk/hello/:name",
            "PUT /sdk/notes/:id",
            "GET /sdk/notes/count",
            "GET /sdk/notes/:id",
            "POST /sdk/counter-of-words",
            "GET /sdk/boom"
        ]),
        "{listed}"
    );
}

/// A TypeScript route importing an npm package (zod), bundled into the
/// component at build time: the package's validation runs in the guest.
#[tokio::test(flavor = "multi_thread")]
async fn js_route_sdk_npm() {
    let plugins = plugins_dir(&[("npm", JS_ROUTE_SDK_NPM.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let order =
        |body: serde_json::Value| async move { post(host.public, "/npm/orders", body.to_string().as_bytes()).await };
    let valid = order(serde_json::json!({"customer": "ada", "lines": [{"sku": "tea", "quantity": 2}]})).await;
    assert_eq!(valid.status, 201, "{}", valid.text());
    assert_eq!(
        valid.json(),
        serde_json::json!({"customer": "ada", "lines": [{"sku": "tea", "quantity": 2}], "currency": "EUR"}),
        "zod filled in the default"
    );
    let invalid = order(serde_json::json!({"customer": "", "lines": [{"sku": "tea", "quantity": 0}]})).await;
    assert_eq!((invalid.status, invalid.json()["error"].as_str()), (422, Some("invalid_order")), "{}", invalid.text());
    let issues = invalid.json();
    let paths: Vec<&str> = issues["issues"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["customer", "lines.0.quantity"], "{}", invalid.text());
    let forbidden = order(serde_json::json!({"customer": "ada", "lines": [{"sku": "forbidden", "quantity": 1}]})).await;
    assert_eq!((forbidden.status, forbidden.json()["error"].as_str()), (403, Some("forbidden_sku")));
}

/// `event-kv-emit`'s behaviour, written on the TypeScript SDK.
#[tokio::test(flavor = "multi_thread")]
async fn js_event_sdk_orders() {
    handles_orders(JS_EVENT_SDK_ORDERS, "js-sdk-orders").await;
}

/// `projection-totals`' fold, written on the TypeScript SDK: the same bytes.
#[tokio::test(flavor = "multi_thread")]
async fn js_projection_sdk_totals() {
    folds_totals(JS_PROJECTION_SDK_TOTALS, "js-sdk-totals").await;
}

/// A cart on the TypeScript SDK: JSON state and payloads, its outbox, and
/// a `Failure` refusing a mutation without changing the cart.
#[tokio::test(flavor = "multi_thread")]
async fn js_cart_sdk_counter() {
    let plugins = plugins_dir(&[("js-sdk-counter", JS_CART_SDK_COUNTER.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let mutate = |kind: &'static str, payload: serde_json::Value| async move {
        let body = serde_json::json!({"kind": kind, "payload": payload}).to_string();
        post(host.public, "/carts/js-sdk-counter/c1", body.as_bytes()).await
    };
    let first = mutate("add", serde_json::json!({"by": 2})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        (first.json()["version"].clone(), first.json()["state"].clone()),
        (1.into(), serde_json::json!({"count": 2, "adds": 1}))
    );
    assert_eq!(mutate("add", serde_json::json!({"by": 3})).await.json()["state"]["count"], 5);
    let refused = mutate("add", serde_json::json!({"by": -1})).await;
    assert_eq!((refused.status, refused.json()["code"].as_str()), (422, Some("not-positive")), "{}", refused.text());
    let now = get(host.public, "/carts/js-sdk-counter/c1").await.json();
    assert_eq!((now["version"].clone(), now["state"]["count"].clone()), (2.into(), 5.into()), "{now}");
    let reset = mutate("reset", serde_json::Value::Null).await.json();
    assert_eq!(reset["state"], serde_json::json!({"count": 0, "adds": 2}));
    assert_eq!(
        on_topic(&host, "counter.added"),
        [serde_json::json!({"cart": "c1", "count": 2}), serde_json::json!({"cart": "c1", "count": 5})]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn js_event_kv_emit() {
    handles_orders(JS_EVENT_KV_EMIT, "js-orders").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_event_kv_emit() {
    handles_orders(PYTHON_EVENT_KV_EMIT, "py-orders").await;
}

/// The JSON payloads of the first 100 events of the log on `topic`.
fn on_topic(host: &Host, topic: &str) -> Vec<serde_json::Value> {
    let log = host.storage().read_after(0, 100).unwrap();
    log.iter().filter(|e| e.topic == topic).map(|e| serde_json::from_slice(&e.payload).unwrap()).collect()
}

/// Runs an `event-kv-emit` guest: kv effects, emitted events, and a
/// guest failure dead-lettered after its retries.
async fn handles_orders(guest: Polyglot, plugin: &str) {
    let plugins =
        plugins_dir(&[("orders", guest.path())], &[("orders", "[delivery]\nmax_attempts = 2\nbackoff_ms = 10\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let first = publish(&host, "orders.created", r#"{"order":"a1","amount":5}"#).await;
    let poison = publish(&host, "orders.created", "not an order").await;
    let second = publish(&host, "orders.created", r#"{"order":"a2","amount":7}"#).await;
    publish(&host, "payments.done", r#"{"order":"a3","amount":1}"#).await;

    let storage = host.storage();
    let bucket = format!("plugin/{plugin}");
    let kv = |key: &str| storage.kv_get(&bucket, key).unwrap().map(|v| String::from_utf8(v).unwrap());
    eventually(Duration::from_secs(30), "two orders counted", || (kv("orders.count")? == "2").then_some(())).await;
    // Settled: the second order's handler has returned, so all its writes are in.
    let subscription = settled_subscription(&host).await;
    assert_eq!(kv("orders.total").as_deref(), Some("12"));
    assert_eq!(kv("order.a1").as_deref(), Some(r#"{"order":"a1","amount":5}"#));
    assert_eq!(kv("order.a3"), None, "payments.done is not subscribed");
    assert_eq!(subscription["plugin"], plugin);
    assert_eq!((subscription["delivered"].as_u64(), subscription["dead_lettered"].as_u64()), (Some(2), Some(1)));
    assert_eq!(
        on_topic(&host, "orders.counted"),
        [
            serde_json::json!({"order": "a1", "count": 1, "after": first}),
            serde_json::json!({"order": "a2", "count": 2, "after": second}),
        ]
    );
    // A thrown `{code, message}` (JS) or a raised `Err(Failure)` (Python)
    // is the guest's failure, not a trap.
    let log = storage.read_after(0, 100).unwrap();
    let dead = log.iter().find(|e| e.topic == format!("dlq.{plugin}")).expect("a dead letter");
    let letter: serde_json::Value = serde_json::from_slice(&dead.payload).unwrap();
    assert_eq!(letter["event"]["sequence"], poison);
    let error = letter["error"].as_str().unwrap();
    assert!(error.contains("invalid-order") && error.contains("has no order id"), "{letter}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_projection_totals() {
    folds_totals(PYTHON_PROJECTION_TOTALS, "py-totals").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn js_projection_totals() {
    folds_totals(JS_PROJECTION_TOTALS, "js-totals").await;
}

/// Runs a `projection-totals` guest: the exact view bytes (the same for
/// every language), a skipped event, and a failure that halts the fold.
async fn folds_totals(guest: Polyglot, projection: &str) {
    let plugins = plugins_dir(&[("totals", guest.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for payload in [
        r#"{"customer":"alice","amount":10}"#,
        r#"{"customer":"bob","amount":5}"#,
        r#"{"amount":99}"#,
        r#"{"customer":"alice","amount":20}"#,
    ] {
        publish(&host, "orders.created", payload).await;
    }
    settled(&host, projection, "running").await;
    let alice = get(host.public, &format!("/views/{projection}/alice")).await;
    assert_eq!(alice.status, 200, "{}", alice.text());
    assert_eq!(alice.text(), r#"{"orders":2,"total":30}"#);
    let listed = get(host.public, &format!("/views/{projection}")).await.json();
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
    let halted = settled(&host, projection, "halted").await;
    assert_eq!(halted["checkpoint"], 4);
    assert_eq!(halted["quarantined"][0]["sequence"], 5);
    assert!(halted["quarantined"][0]["error"].as_str().unwrap().contains("invalid-amount"), "{halted}");
    assert_eq!(get(host.public, &format!("/views/{projection}/bob")).await.text(), r#"{"orders":1,"total":5}"#);
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
