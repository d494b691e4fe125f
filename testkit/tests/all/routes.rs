//! Routes: request → response, kv, emitted events; params from the routes
//! the component describes.

use corral_fixtures::{ROUTE_ECHO, ROUTE_EMITTER, ROUTE_HELLO, ROUTE_KV_COUNTER, ROUTE_PANIC, ROUTE_VIEWS_READER};
use corral_testkit::{Expect, ExpectedError, KitError, Request};
use serde_json::json;

use crate::{kit, mismatch};

#[tokio::test]
async fn hello_is_answered_with_the_name_param() {
    let mut kit = kit(ROUTE_HELLO).await;
    kit.request(Request::get("/hello/ada"))
        .await
        .unwrap()
        .expect(&Expect::new().status(200).body("hello, ada"))
        .unwrap();
    kit.request(Request::get("/hello")).await.unwrap().expect(&Expect::new().body("hello, world")).unwrap();

    let run = kit.request(Request::get("/hello/ada")).await.unwrap();
    let text = mismatch(run.expect(&Expect::new().status(404).body("hello, bob")));
    assert!(text.contains("status: expected 404, got 200"), "{text}");
    assert!(text.contains(r#"expected: "hello, bob""#) && text.contains(r#"actual: "hello, ada""#), "{text}");
}

#[tokio::test]
async fn echo_gets_params_query_headers_tenant_and_body() {
    let mut kit = kit(ROUTE_ECHO).await;
    let request = Request::post("/echo/one/two/three?x=1").header("X-Trace", "t").tenant("acme").body(json!({"a": 1}));
    let run = kit.request(request).await.unwrap();
    run.expect(&Expect::new().status(200).header("x-echo", "yes")).unwrap();
    let echoed = run.response.as_ref().unwrap().json().unwrap();
    assert_eq!(echoed["params"], json!([["first", "one"], ["*", "two/three"]]));
    assert_eq!(echoed["query"], "x=1");
    assert_eq!(echoed["path"], "/echo/one/two/three");
    assert_eq!(echoed["body"], r#"{"a":1}"#);
    let headers = echoed["headers"].as_array().unwrap();
    for header in
        [json!(["x-trace", "t"]), json!(["x-corral-tenant", "acme"]), json!(["content-type", "application/json"])]
    {
        assert!(headers.contains(&header), "{header} missing from {headers:?}");
    }
}

#[tokio::test]
async fn kv_persists_across_requests_until_reset() {
    let mut kit = kit(ROUTE_KV_COUNTER).await;
    kit.request(Request::post("/counter/a")).await.unwrap();
    let run = kit.request(Request::post("/counter/a")).await.unwrap();
    run.expect(&Expect::new().body("2").kv("a", "2").no_kv("b")).unwrap();
    let text = mismatch(run.expect(&Expect::new().kv("a", "3").kv("b", "1").no_kv("a")));
    assert!(text.contains(r#"kv "a" differs"#) && text.contains(r#"expected: "3""#), "{text}");
    assert!(text.contains(r#"kv "b": expected a value, but there is none"#), "{text}");
    assert!(text.contains(r#"kv "a": expected none"#), "{text}");

    kit.given_kv("k", "stored before").await;
    kit.request(Request::get("/kv/k")).await.unwrap().expect(&Expect::new().body("stored before")).unwrap();
    kit.reset();
    kit.request(Request::get("/counter/a")).await.unwrap().expect(&Expect::new().body("0").no_kv("a")).unwrap();
}

#[tokio::test]
async fn a_request_no_described_route_matches_is_an_error() {
    let mut kit = kit(ROUTE_HELLO).await;
    let error = kit.request(Request::post("/hello")).await.unwrap_err();
    assert!(matches!(error, KitError::NoRoute { .. }), "{error}");
    assert!(error.to_string().contains("GET /hello/:name"), "{error}");
    let error = kit.events([corral_testkit::Event::new("orders.created", "x")]).await.unwrap_err();
    assert!(matches!(error, KitError::WrongWorld { .. }), "{error}");
}

#[tokio::test]
async fn a_panicking_route_is_a_trap_failure() {
    let mut kit = kit(ROUTE_PANIC).await;
    let run = kit.request(Request::get("/panic")).await.unwrap();
    assert!(run.response.is_none());
    run.expect(&Expect::new().error(ExpectedError::kind("trap").at(0))).unwrap();
    let text = mismatch(run.expect(&Expect::new().status(200)));
    assert!(text.contains("response: expected one, but the call failed"), "{text}");
    assert!(text.contains("failures differ") && text.contains("request GET /panic failed: trap"), "{text}");
}

#[tokio::test]
async fn emitted_events_are_captured_and_emit_can_be_made_to_fail() {
    let mut kit = kit(ROUTE_EMITTER).await;
    let run = kit.request(Request::post("/emit/orders.created").body("x").tenant("acme")).await.unwrap();
    run.expect(&Expect::new().body("1").emits("orders.created", "x")).unwrap();
    assert_eq!(run.emitted[0].tenant, "acme");
    let text = mismatch(run.expect(&Expect::new().emits("orders.created", "y").emits_topic("orders.more")));
    assert!(text.contains("emitted topics differ") && text.contains("- orders.more"), "{text}");

    kit.emit_unavailable(Some("log down"));
    let run = kit.request(Request::post("/emit/orders.created").body("x")).await.unwrap();
    run.expect(&Expect::new().status(400).emits_nothing()).unwrap();
    assert!(run.response.unwrap().text().contains("log down"));
}

#[tokio::test]
async fn views_given_to_a_route_are_scoped_to_the_tenant() {
    let mut kit = kit(ROUTE_VIEWS_READER).await;
    kit.given_view("count", "acme", "orders.created", "7");
    let run = kit.request(Request::get("/read/count/orders.created").tenant("acme")).await.unwrap();
    run.expect(&Expect::new().status(200).body("7")).unwrap();
    let run = kit.request(Request::get("/read/count/orders.created").tenant("other")).await.unwrap();
    run.expect(&Expect::new().status(404)).unwrap();
}
