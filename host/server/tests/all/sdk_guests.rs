//! Guests written on the JavaScript (TypeScript) and Python SDKs, served by
//! the real host — and the behaviours SDK and raw-binding guests share, one
//! test body each, run for every language and both ways of writing a
//! plugin (the raw-binding tests in `polyglot` call them too). The tests
//! are named after their fixtures: `polyglot` re-exports them, where
//! `foreach_polyglot!` checks every fixture has one.

use std::time::Duration;

use corral_fixtures::*;

use crate::events::{publish, settled_subscription};
use crate::projections::{prefill, settled, view};
use crate::{Host, eventually, get, plugins_dir, post};

/// An SDK's router: several routes from one table, params, query, JSON in
/// and out, `HttpError` answers, typed kv errors, events queued until the
/// call succeeds, and a thrown error still a trap.
async fn serves_sdk_routes(guest: Polyglot, language: &str) {
    let plugins = plugins_dir(&[("sdk", guest.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let hello = get(host.public, "/sdk/hello/ann?x=1&y=2").await;
    assert_eq!((hello.status, hello.text().as_str()), (200, format!("hello, ann, from {language}").as_str()));
    assert_eq!(hello.headers["x-query"], "x=1&y=2");
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
    assert_eq!(get(host.public, "/sdk/files/a/b.txt").await.text(), "file a/b.txt");
    assert_eq!(get(host.public, "/sdk/files/readme").await.text(), "the readme");

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
            "GET /sdk/boom",
            "GET /sdk/files/*",
            "GET /sdk/files/readme"
        ]),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn js_route_sdk() {
    serves_sdk_routes(JS_ROUTE_SDK, "typescript").await;
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn python_route_sdk() {
    serves_sdk_routes(PYTHON_ROUTE_SDK, "python").await;
}

/// `event-kv-emit`'s behaviour, written on each SDK.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn js_event_sdk_orders() {
    handles_orders(JS_EVENT_SDK_ORDERS, "js-sdk-orders").await;
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn python_event_sdk_orders() {
    handles_orders(PYTHON_EVENT_SDK_ORDERS, "py-sdk-orders").await;
}

/// `projection-totals`' fold, written on each SDK: the same bytes.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn js_projection_sdk_totals() {
    folds_totals(JS_PROJECTION_SDK_TOTALS, "js-sdk-totals").await;
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn python_projection_sdk_totals() {
    folds_totals(PYTHON_PROJECTION_SDK_TOTALS, "py-sdk-totals").await;
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn js_batched_sdk_totals() {
    folds_totals_in_batches(JS_BATCHED_SDK_TOTALS).await;
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn python_batched_sdk_totals() {
    folds_totals_in_batches(PYTHON_BATCHED_SDK_TOTALS).await;
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn js_cart_sdk_counter() {
    counts_in_a_cart(JS_CART_SDK_COUNTER, "js-sdk-counter").await;
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn python_cart_sdk_counter() {
    counts_in_a_cart(PYTHON_CART_SDK_COUNTER, "py-sdk-counter").await;
}

/// A cart on an SDK: JSON state and payloads, its outbox, and a `Failure`
/// refusing a mutation without changing the cart.
async fn counts_in_a_cart(guest: Polyglot, plugin: &'static str) {
    let plugins = plugins_dir(&[(plugin, guest.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let mutate = |kind: &'static str, payload: serde_json::Value| async move {
        let body = serde_json::json!({"kind": kind, "payload": payload}).to_string();
        post(host.public, &format!("/carts/{plugin}/c1"), body.as_bytes()).await
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
    let now = get(host.public, &format!("/carts/{plugin}/c1")).await.json();
    assert_eq!((now["version"].clone(), now["state"]["count"].clone()), (2.into(), 5.into()), "{now}");
    let reset = mutate("reset", serde_json::Value::Null).await.json();
    assert_eq!(reset["state"], serde_json::json!({"count": 0, "adds": 2}));
    assert_eq!(
        on_topic(&host, "counter.added"),
        [serde_json::json!({"cart": "c1", "count": 2}), serde_json::json!({"cart": "c1", "count": 5})]
    );
}

/// A TypeScript route importing an npm package (zod), bundled into the
/// component at build time: the package's validation runs in the guest.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn js_route_sdk_npm() {
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

/// A Python route importing a PyPI package (python-dateutil), built into the
/// component: the package's calendar arithmetic runs in the guest.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn python_route_sdk_pypi() {
    let plugins = plugins_dir(&[("pypi", PYTHON_ROUTE_SDK_PYPI.path())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let add = |query: &'static str| async move { get(host.public, &format!("/pypi/add-months?{query}")).await };
    let end_of_month = add("date=2026-01-31&months=1").await;
    assert_eq!((end_of_month.status, end_of_month.json()), (200, serde_json::json!({"date": "2026-02-28"})));
    assert_eq!(add("date=2024-01-31&months=13").await.json(), serde_json::json!({"date": "2025-02-28"}));
    let invalid = add("date=someday&months=1").await;
    assert_eq!((invalid.status, invalid.json()["error"].as_str()), (400, Some("invalid_date")), "{}", invalid.text());
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn js_route_sdk_imports() {
    answers_import_errors(JS_ROUTE_SDK_IMPORTS).await;
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn python_route_sdk_imports() {
    answers_import_errors(PYTHON_ROUTE_SDK_IMPORTS).await;
}

/// The SDK's import errors against the real host's backends (the spec
/// `imports.test.toml` runs the rest through `host test`): what only a host
/// knows — a granted cart plugin that is not loaded — and an uncaught import
/// error answered as JSON naming it.
async fn answers_import_errors(guest: Polyglot) {
    let sidecar = "[carts]\nplugins = [\"js-sdk-counter\", \"ghost\"]\n";
    let plugins = plugins_dir(
        &[("imports", guest.path()), ("js-sdk-counter", JS_CART_SDK_COUNTER.path())],
        &[("imports", sidecar)],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let caught = |case: &'static str| async move { get(host.public, &format!("/imports/errors/{case}")).await.json() };
    for (case, class, kind) in [
        ("carts-no-such-cart-plugin", "CartError", "no-such-cart-plugin"),
        ("carts-not-granted", "CartError", "not-granted"),
        ("carts-rejected", "CartError", "rejected"),
        ("kv-not-a-counter", "KvError", "not-a-counter"),
        ("emit-invalid-topic", "EmitError", "invalid-topic"),
        // Only the real host knows which projections are served.
        ("views-no-such-projection", "ViewsError", "no-such-projection"),
        // A malformed query is refused before the projection is looked up.
        ("views-query-invalid", "ViewsError", "invalid"),
    ] {
        let answer = caught(case).await;
        assert_eq!((answer["class"].as_str(), answer["kind"].as_str()), (Some(class), Some(kind)), "{case}: {answer}");
    }
    // The real host's cart answers through the import, its state as JSON.
    let body = serde_json::json!({"by": 4}).to_string();
    let applied = post(host.public, "/imports/carts/c9/add", body.as_bytes()).await.json();
    assert_eq!((applied["version"].clone(), applied["state"]["count"].clone()), (1.into(), 4.into()), "{applied}");
    let uncaught = get(host.public, "/imports/uncaught").await;
    assert_eq!(
        (uncaught.status, uncaught.json()["error"].as_str()),
        (500, Some("kv.invalid-key")),
        "{}",
        uncaught.text()
    );
}

/// The JSON payloads of the first 100 events of the log on `topic`.
fn on_topic(host: &Host, topic: &str) -> Vec<serde_json::Value> {
    let log = host.storage().read_after(0, 100).unwrap();
    log.iter().filter(|e| e.topic == topic).map(|e| serde_json::from_slice(&e.payload).unwrap()).collect()
}

/// Runs an `event-kv-emit` guest: kv effects, emitted events, and a
/// guest failure dead-lettered after its retries.
pub(crate) async fn handles_orders(guest: Polyglot, plugin: &str) {
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

/// Runs a `projection-totals` guest: the exact view bytes (the same for
/// every language), a skipped event, and a failure that halts the fold.
pub(crate) async fn folds_totals(guest: Polyglot, projection: &str) {
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

/// A batched projection on an SDK, as `one` (a batch per event) and `all`
/// (up to 256 events a batch): the same views, across two tenants whose
/// customers share names, a view kept in the guest from one event of a
/// batch to the next; then a `Failure` in the middle of a batch: the events
/// before it stand, and the projection halts before it.
async fn folds_totals_in_batches(guest: Polyglot) {
    let (customers, tenants) = (["ann", "bob", "cyd"], ["acme", "globex"]);
    let mut payloads: Vec<String> = (0..60)
        .map(|i| match i % 10 {
            9 => r#"{"amount":1}"#.to_string(),
            _ => format!(r#"{{"customer":"{}","amount":{i}}}"#, customers[i % 3]),
        })
        .collect();
    let mut expected = std::collections::BTreeMap::<(&str, &str), (u64, u64)>::new();
    for i in (0..60).filter(|i| i % 10 != 9) {
        let totals = expected.entry((tenants[i % 2], customers[i % 3])).or_default();
        *totals = (totals.0 + 1, totals.1 + i as u64);
    }
    payloads.push(r#"{"customer":"ann","amount":"lots"}"#.to_string());
    payloads.extend((0..5).map(|_| r#"{"customer":"ann","amount":1000}"#.to_string()));
    let events: Vec<(&str, &str, &str)> =
        payloads.iter().enumerate().map(|(i, p)| (tenants[i % 2], "orders.created", p.as_str())).collect();
    let data = tempfile::tempdir().unwrap();
    prefill(data.path(), &events).await;
    let sidecar = |name: &str, batch: usize| format!("name = \"{name}\"\n[projection]\nbatch_size = {batch}\n");
    let (one, all) = (sidecar("one", 1), sidecar("all", 256));
    let plugins = plugins_dir(&[("one", guest.path()), ("all", guest.path())], &[("one", &one), ("all", &all)]);
    let host = Host::start(plugins.path(), data.path());
    for name in ["one", "all"] {
        let halted = settled(&host, name, "halted").await;
        assert_eq!(halted["checkpoint"], 60, "{name}: the events before the failing one stand: {halted}");
        assert_eq!(halted["quarantined"][0]["sequence"], 61, "{halted}");
        assert!(halted["quarantined"][0]["error"].as_str().unwrap().contains("invalid-amount"), "{halted}");
        for tenant in tenants {
            let listed = view(&host, tenant, &format!("/views/{name}")).await.json();
            let want: Vec<serde_json::Value> = expected
                .iter()
                .filter(|((t, _), _)| *t == tenant)
                .map(|((_, customer), (orders, total))| {
                    serde_json::json!({"id": customer, "value": {"orders": orders, "total": total}})
                })
                .collect();
            assert_eq!(listed["views"], serde_json::Value::Array(want), "{name}, tenant {tenant}");
        }
    }
    let metrics = get(host.admin, "/metrics").await.text();
    let sample = |series: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series}: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (sum, count) = (
        sample("corral_projection_batch_size_sum{projection=\"all\"}"),
        sample("corral_projection_batch_size_count{projection=\"all\"}"),
    );
    assert!(sum / count > 10.0, "`all` folded in batches: {sum} events in {count} batches");
}
