//! One test per guest fixture, named after it: a fixture without a test does
//! not compile (see `assert_test_exists`).

use corral_fixtures::*;
use corral_runtime::{Bucket, CallContext, FoldStep, InvokeErrorKind, World};

use crate::*;
// Tested with the other batched folds.
use crate::batch::{projection_batch_clock, projection_batch_log};
// Tested with its fake carts client.
use crate::carts::{event_cart_client, route_cart_client};
// Tested with its recording sender.
use crate::outbound::{http_fetch, projection_fetch, route_fetch};
// Tested with the other warm-instance tests.
use crate::warm::route_warm;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[expect(unused_imports, reason = "only checks that the test exists")]
        use self::$name as _;
    };
}
corral_fixtures::foreach_fixture!(assert_test_exists);

#[tokio::test]
async fn route_hello() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_HELLO).await;
    assert_eq!(plugin.world(), World::Route);
    assert_eq!(plugin.name(), "hello");
    assert_eq!(plugin.version(), "1.0.0");
    let routes: Vec<_> = plugin.descriptor().routes.iter().map(|r| (r.method.as_str(), r.pattern.as_str())).collect();
    assert_eq!(routes, [("GET", "/hello"), ("GET", "/hello/:name")]);
    let response = call(&harness, &plugin, &get("/hello")).await;
    assert_eq!(response.status, 200);
    assert_eq!(text(&response), "hello, world");
    let called = plugin
        .handle_http(
            &harness.control,
            CallContext::internal("t"),
            &request("GET", "/hello/ann", &[("name", "ann")], b""),
        )
        .await
        .unwrap();
    assert_eq!(text(&called.value), "hello, ann");
    assert!(called.fuel_used > 0, "fuel is metered");
}

#[tokio::test]
async fn route_echo() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_ECHO).await;
    let response =
        call(&harness, &plugin, &request("PUT", "/echo/a/b/c?x=1", &[("first", "a"), ("*", "b/c")], b"payload")).await;
    let echoed: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["path"], "/echo/a/b/c");
    assert_eq!(echoed["query"], "x=1");
    assert_eq!(echoed["params"], serde_json::json!([["first", "a"], ["*", "b/c"]]));
    assert_eq!(echoed["headers"], serde_json::json!([["x-test", "1"]]));
    assert_eq!(echoed["body"], "payload");
    assert!(response.headers.contains(&("x-echo".into(), "yes".into())));
}

#[tokio::test]
async fn route_kv_counter() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_KV_COUNTER).await;
    let bump = request("POST", "/counter/hits", &[("name", "hits")], b"");
    assert_eq!(text(&call(&harness, &plugin, &bump).await), "1");
    assert_eq!(text(&call(&harness, &plugin, &bump).await), "2");
    let read = request("GET", "/counter/hits", &[("name", "hits")], b"");
    assert_eq!(text(&call(&harness, &plugin, &read).await), "2");
    // The counter lives in the plugin's private bucket, as decimal ASCII.
    assert_eq!(harness.kv.dump(&Bucket::Plugin("kv-counter".into())), [("hits".to_string(), b"2".to_vec())]);
    // compare-and-swap from absent: the first claim wins, the second does not overwrite.
    let claim = |body: &'static [u8]| request("POST", "/claim/k", &[("key", "k")], body);
    assert_eq!(text(&call(&harness, &plugin, &claim(b"first")).await), "won");
    assert_eq!(text(&call(&harness, &plugin, &claim(b"second")).await), "lost");
    let read = request("GET", "/kv/k", &[("key", "k")], b"");
    assert_eq!(text(&call(&harness, &plugin, &read).await), "first");

    call(&harness, &plugin, &request("PUT", "/kv/a1", &[("key", "a1")], b"x")).await;
    call(&harness, &plugin, &request("PUT", "/kv/b1", &[("key", "b1")], b"y")).await;
    assert_eq!(text(&call(&harness, &plugin, &get("/kv?prefix=a")).await), "a1");
    assert_eq!(call(&harness, &plugin, &request("GET", "/kv/zz", &[("key", "zz")], b"")).await.status, 404);

    // A shared bucket is denied unless the sidecar grants it.
    let shared = request("GET", "/shared/team/k", &[("bucket", "team"), ("key", "k")], b"");
    let denied = call(&harness, &plugin, &shared).await;
    assert_eq!(denied.status, 403);
    assert!(text(&denied).contains("AccessDenied"), "{}", text(&denied));
    let granted = harness
        .load_with(ROUTE_KV_COUNTER, PluginSettings { kv_grants: vec!["team".into()], ..Default::default() })
        .await;
    use corral_runtime::KvBackend as _;
    harness.kv.set(&Bucket::Shared("team".into()), "k", b"shared-value".to_vec()).await.unwrap();
    assert_eq!(text(&call(&harness, &granted, &shared).await), "shared-value");
}

#[tokio::test]
async fn route_emitter() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_EMITTER).await;
    let call_context = CallContext {
        request_id: "req-1".into(),
        tenant: "acme".into(),
        correlation_id: "corr-1".into(),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        ..Default::default()
    };
    let emit = request("POST", "/emit/orders.created", &[("topic", "orders.created")], b"{\"id\":1}");
    let response = plugin.handle_http(&harness.control, call_context.clone(), &emit).await.unwrap().value;
    assert_eq!(text(&response), "1");
    let events = harness.events.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].topic, "orders.created");
    assert_eq!(events[0].payload, b"{\"id\":1}");
    assert_eq!(events[0].tenant, "acme");
    assert_eq!(events[0].correlation_id, "corr-1");
    assert_eq!(events[0].traceparent, call_context.traceparent);
    assert_eq!(events[0].source, "emitter");

    let bad = request("POST", "/emit/orders.*", &[("topic", "orders.*")], b"");
    let response = call(&harness, &plugin, &bad).await;
    assert_eq!(response.status, 400);
    assert!(text(&response).contains("InvalidTopic"), "{}", text(&response));
    assert_eq!(harness.events.events().len(), 1, "a rejected event is not appended");
}

#[tokio::test]
async fn route_panic() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_PANIC).await;
    let error = plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/panic")).await.unwrap_err();
    assert_eq!(error.plugin, "panic");
    assert_eq!(error.version, "1.0.0");
    let InvokeErrorKind::Trap(message) = &error.kind else { panic!("expected a trap, got {error}") };
    assert!(message.contains("deliberate panic in the panic fixture"), "{message}");
    assert!(error.to_string().starts_with("plugin panic@1.0.0: trapped"), "{error}");
    still_serves(&harness).await;
}

#[tokio::test]
async fn route_endless_loop() {
    let harness = Harness::new();
    // Fuel stops it first when the budget is small...
    let plugin = harness.load_with(ROUTE_ENDLESS_LOOP, limits(|l| l.fuel = 5_000_000)).await;
    let error = plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/loop")).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::OutOfFuel { budget: 5_000_000 }), "{error}");

    // ...and the epoch deadline when fuel is plentiful.
    let plugin = harness
        .load_with(
            ROUTE_ENDLESS_LOOP,
            limits(|l| {
                l.fuel = u64::MAX / 2;
                l.timeout = SHORT;
            }),
        )
        .await;
    assert!(!plugin.last_call_ran_long());
    let started = std::time::Instant::now();
    let error = plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/loop")).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::Timeout(t) if t == SHORT), "{error}");
    assert!(started.elapsed() < SHORT * 10, "the deadline stopped it: {:?}", started.elapsed());
    assert!(plugin.last_call_ran_long(), "its next call queues for a long-call permit from the start");
    still_serves(&harness).await;
}

#[tokio::test]
async fn the_deadline_ends_a_guest_asleep_on_a_wasi_clock_and_frees_its_slot() {
    let harness = Harness::new();
    let plugin = harness
        .load_with(
            ROUTE_SLOW,
            limits(|l| {
                l.timeout = SHORT;
                l.max_concurrency = 1;
            }),
        )
        .await;
    // The guest sleeps 20 s without running any wasm: no epoch tick can
    // trap it, only the call's own deadline can end it.
    let started = std::time::Instant::now();
    let error =
        plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/slow?ms=20000")).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::Timeout(t) if t == SHORT), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "ended at the deadline: {:?}", started.elapsed());
    assert_eq!(plugin.in_flight(), 0, "the slot is free again");
    let slept = plugin.handle_http(&harness.control, CallContext::internal("u"), &get("/slow?ms=1")).await.unwrap();
    assert_eq!(slept.value.status, 200);
}

#[tokio::test]
async fn concurrency_cap_refuses_instead_of_queueing() {
    let harness = Harness::new();
    let plugin = std::sync::Arc::new(
        harness
            .load_with(
                ROUTE_ENDLESS_LOOP,
                limits(|l| {
                    l.fuel = u64::MAX / 2;
                    l.timeout = SHORT;
                    l.max_concurrency = 1;
                }),
            )
            .await,
    );
    // Start a call and wait until it holds the only slot. Under heavy load
    // it can time out before this task runs again; then start another.
    let mut attempts = 0;
    let first = loop {
        attempts += 1;
        let (busy, control) = (plugin.clone(), harness.control.clone());
        let first =
            tokio::spawn(async move { busy.handle_http(&control, CallContext::internal("a"), &get("/loop")).await });
        while plugin.in_flight() == 0 && !first.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        if plugin.in_flight() == 1 {
            break first;
        }
        assert!(attempts < 20, "the first call never stayed in flight long enough to be seen");
    };
    let error = plugin.handle_http(&harness.control, CallContext::internal("b"), &get("/loop")).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::Busy { max: 1 }), "{error}");
    assert!(matches!(first.await.unwrap().unwrap_err().kind, InvokeErrorKind::Timeout(_)));
    assert_eq!(plugin.in_flight(), 0, "the slot is released after the call");
}

#[tokio::test]
async fn route_memory_hog() {
    let harness = Harness::new();
    let plugin = harness.load_with(ROUTE_MEMORY_HOG, limits(|l| l.memory_bytes = 16 << 20)).await;
    let error = plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/hog")).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::MemoryLimit { limit } if limit == 16 << 20), "{error}");
    still_serves(&harness).await;
}

#[tokio::test]
async fn route_deep_recursion() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_DEEP_RECURSION).await;
    let error = plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/deep")).await.unwrap_err();
    let InvokeErrorKind::Trap(message) = &error.kind else { panic!("expected a trap, got {error}") };
    assert!(message.contains("call stack exhausted"), "{message}");
    still_serves(&harness).await;
}

#[tokio::test]
async fn route_huge_response() {
    let harness = Harness::new();
    let plugin = harness.load_with(ROUTE_HUGE_RESPONSE, limits(|l| l.memory_bytes = 32 << 20)).await;
    let response = call(&harness, &plugin, &get("/huge?mib=4")).await;
    assert_eq!(response.body.len(), 4 << 20);
    // 64 MiB cannot even be built inside a 32 MiB memory.
    let error =
        plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/huge?mib=64")).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::MemoryLimit { .. }), "{error}");
    // A body over the caller's cap is refused as it is lifted out of the
    // guest, naming its length; one at the cap passes whole.
    let (four, one) = (get("/huge?mib=4"), get("/huge?mib=1"));
    let capped = |request| plugin.handle_http_queued(&harness.control, CallContext::internal("t"), request, 1 << 20);
    let error = capped(&four).await.unwrap_err();
    let over = |kind: &InvokeErrorKind| matches!(kind, InvokeErrorKind::ResponseTooLarge { bytes, limit } if (*bytes, *limit) == (4 << 20, 1 << 20));
    assert!(over(&error.kind), "{error}");
    assert_eq!(error.kind.label(), "response_too_large");
    assert_eq!(capped(&one).await.unwrap().value.0.body.len(), 1 << 20);
    still_serves(&harness).await;
}

#[tokio::test]
async fn route_cpu() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_CPU).await;
    let small = plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/cpu?n=1000")).await.unwrap();
    let large = plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/cpu?n=100000")).await.unwrap();
    assert_eq!(small.value.status, 200);
    assert!(large.fuel_used > small.fuel_used * 50, "{} vs {}", large.fuel_used, small.fuel_used);
    // The same work always costs the same fuel: fuel is deterministic.
    let again = plugin.handle_http(&harness.control, CallContext::internal("t"), &get("/cpu?n=100000")).await.unwrap();
    assert_eq!(again.fuel_used, large.fuel_used);
    assert_eq!(again.value.body, large.value.body);
}

#[tokio::test]
async fn event_kv_recorder() {
    let harness = Harness::new();
    let plugin = harness.load(EVENT_KV_RECORDER).await;
    assert_eq!(plugin.world(), World::EventHandler);
    assert_eq!(plugin.descriptor().topics, ["orders.>"]);
    let created = event("e1", "orders.created", 1, b"{}");
    plugin.handle_event(&harness.control, CallContext::for_event(&created), &created).await.unwrap();
    plugin.handle_event(&harness.control, CallContext::for_event(&created), &created).await.unwrap();
    let stored = harness.kv.dump(&Bucket::Plugin("kv-recorder".into()));
    assert!(stored.contains(&("seen.orders.created".to_string(), b"2".to_vec())), "{stored:?}");
    assert!(stored.contains(&("log".to_string(), b"1:{};1:{};".to_vec())), "{stored:?}");

    let poison = event("e2", "orders.created", 2, b"fail");
    let error = plugin.handle_event(&harness.control, CallContext::for_event(&poison), &poison).await.unwrap_err();
    let InvokeErrorKind::Guest { code, message } = &error.kind else { panic!("expected a guest error, got {error}") };
    assert_eq!(code, "rejected");
    assert!(message.contains("e2"), "{message}");

    let flaky = event("e3", "orders.created", 3, b"flaky");
    for _ in 0..2 {
        assert!(plugin.handle_event(&harness.control, CallContext::for_event(&flaky), &flaky).await.is_err());
    }
    plugin.handle_event(&harness.control, CallContext::for_event(&flaky), &flaky).await.unwrap();

    // What a handler emits carries the event's correlation id and traceparent.
    let mut echo = event("e4", "orders.created", 4, b"echo");
    echo.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    plugin.handle_event(&harness.control, CallContext::for_event(&echo), &echo).await.unwrap();
    let emitted = harness.events.events();
    assert_eq!(emitted.len(), 1);
    assert_eq!(emitted[0].topic, "audit.echo");
    assert_eq!(emitted[0].correlation_id, "corr-e4");
    assert_eq!(emitted[0].traceparent, echo.traceparent);
    assert_eq!(emitted[0].tenant, "acme");
}

#[tokio::test]
async fn projection_count() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_COUNT).await;
    assert_eq!(plugin.world(), World::Projection);
    let created = event("e1", "orders.created", 1, b"{}");
    let step = plugin.fold(&created, async |_id: &str| Ok(None)).await.unwrap().value;
    assert_eq!(step, FoldStep::Put { id: "orders.created".into(), value: b"1".to_vec() });
    let mut asked = None;
    let step = plugin
        .fold(&created, async |id: &str| {
            asked = Some(id.to_string());
            Ok(Some(b"41".to_vec()))
        })
        .await
        .unwrap()
        .value;
    assert_eq!(asked.as_deref(), Some("orders.created"), "the current view is read by key");
    assert_eq!(step, FoldStep::Put { id: "orders.created".into(), value: b"42".to_vec() });
    let skipped = event("e2", "orders.ignored", 2, b"{}");
    assert_eq!(plugin.fold(&skipped, async |_id: &str| Ok(None)).await.unwrap().value, FoldStep::Skip);
    let delete = event("e3", "orders.created", 3, b"delete");
    assert_eq!(
        plugin.fold(&delete, async |_id: &str| Ok(Some(b"1".to_vec()))).await.unwrap().value,
        FoldStep::Delete { id: "orders.created".into() }
    );
    let poison = event("e4", "orders.created", 4, b"poison");
    let rejected = plugin.fold(&poison, async |_id: &str| Ok(None)).await.unwrap_err();
    assert!(matches!(rejected.kind, InvokeErrorKind::Guest { ref code, .. } if code == "poison"), "{rejected}");
    let corrupt = plugin.fold(&created, async |_id: &str| Ok(Some(b"x".to_vec()))).await.unwrap_err();
    assert!(matches!(corrupt.kind, InvokeErrorKind::Guest { ref code, .. } if code == "corrupt-view"), "{corrupt}");
}

#[tokio::test]
async fn projection_clock_random() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_CLOCK_RANDOM).await;
    let fold = async |event: &corral_runtime::types::Event| match plugin.fold(event, async |_id: &str| Ok(None)).await {
        Ok(called) => match called.value {
            FoldStep::Put { value, .. } => value,
            other => panic!("unexpected {other:?}"),
        },
        Err(e) => panic!("{e}"),
    };
    let first = event("e1", "orders.created", 7, b"{}");
    let a = fold(&first).await;
    let b = fold(&first).await;
    assert_eq!(a, b, "same event, same bytes");
    // A fresh runtime (another engine, another process in spirit) agrees.
    let other = Harness::new();
    let again = other.load(PROJECTION_CLOCK_RANDOM).await;
    let c = match again.fold(&first, async |_id: &str| Ok(None)).await.unwrap().value {
        FoldStep::Put { value, .. } => value,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(a, c);

    let view: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(view["now_ms"], first.timestamp_ms, "the clock is the event's timestamp");
    assert_eq!(view["elapsed_ns"], 0, "the monotonic clock is frozen");
    let second = event("e2", "orders.created", 7, b"{}");
    let d: serde_json::Value = serde_json::from_slice(&fold(&second).await).unwrap();
    assert_ne!(view["random"], d["random"], "randomness is seeded by the event id");
}

#[tokio::test]
async fn cart_counter() {
    let harness = Harness::new();
    let plugin = harness.load(CART_COUNTER).await;
    assert_eq!(plugin.world(), World::Cart);
    assert_eq!(plugin.descriptor().mutation_kinds, ["add", "reset"]);
    let add = corral_runtime::types::Mutation {
        id: "m1".into(),
        entity: "c1".into(),
        kind: "add".into(),
        timestamp_ms: 1,
        payload: b"3".to_vec(),
    };
    let outcome = plugin.apply_mutation("acme", Some(b"5"), &add).await.unwrap().value;
    assert_eq!(outcome.state, b"8");
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].topic, "counter.changed");
    let fresh = plugin.apply_mutation("acme", None, &add).await.unwrap().value;
    assert_eq!(fresh.state, b"3");
    let bad = corral_runtime::types::Mutation { payload: b"three".to_vec(), ..add };
    let error = plugin.apply_mutation("acme", Some(b"5"), &bad).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::Guest { ref code, .. } if code == "not-a-number"), "{error}");
}

#[tokio::test]
async fn cart_timer_poll() {
    let harness = Harness::new();
    let plugin = harness.load(CART_TIMER_POLL).await;
    assert_eq!(plugin.world(), World::Cart);
    let spin = corral_runtime::types::Mutation {
        id: "m1".into(),
        entity: "c1".into(),
        kind: "spin".into(),
        timestamp_ms: 1,
        payload: Vec::new(),
    };
    // The 10 s timer is ready at the first poll (a real one would run past
    // the 5 s deadline), every time: the state never depends on the machine.
    let mut state: Option<Vec<u8>> = None;
    for _ in 0..5 {
        state = Some(plugin.apply_mutation("", state.as_deref(), &spin).await.unwrap().value.state);
    }
    assert_eq!(state.unwrap(), b"0;0;0;0;0;");
}

#[tokio::test]
async fn cart_counter_v2() {
    let harness = Harness::new();
    let plugin = harness.load(CART_COUNTER_V2).await;
    assert_eq!((plugin.name(), plugin.version()), ("counter", "2.0.0"));
    let add = corral_runtime::types::Mutation {
        id: "m1".into(),
        entity: "c1".into(),
        kind: "add".into(),
        timestamp_ms: 1,
        payload: b"3".to_vec(),
    };
    // Where version 1 answers 8, version 2 answers 11.
    assert_eq!(plugin.apply_mutation("", Some(b"5"), &add).await.unwrap().value.state, b"11");
}

#[tokio::test]
async fn http_hello() {
    use http_body_util::BodyExt as _;
    let harness = Harness::new();
    let plugin = harness.load(HTTP_HELLO).await;
    assert_eq!(plugin.world(), World::WasiHttp);
    assert_eq!(plugin.name(), "http_hello", "named after its file");
    let body = http_body_util::Full::new(bytes::Bytes::new())
        .map_err(|never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} });
    let request = hyper::Request::get("/some/path?q=1").body(body).unwrap();
    let response = plugin.serve_http(&harness.control, CallContext::internal("t"), request, 1 << 20).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello from wasi:http /some/path?q=1");

    // A streamed body ends the way the call ends: whole, and the fuel is
    // reported; cut with the error when the guest traps after answering or
    // writes past the cap.
    let stream = |path: &str, cap: u64| {
        let (plugin, control) = (&plugin, &harness.control);
        let path = path.to_string();
        async move {
            let body = http_body_util::Full::new(bytes::Bytes::new())
                .map_err(|never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} });
            let request = hyper::Request::get(path).body(body).unwrap();
            let (told, outcome) = tokio::sync::oneshot::channel();
            let response = plugin.serve_http(control, CallContext::internal("s"), request, cap).await.unwrap();
            assert_eq!(response.status(), 200, "the head went out before the body");
            let body = response.into_body().on_finish(move |outcome| {
                let _ = told.send(outcome.as_ref().map(|c| c.fuel_used).map_err(|e| e.kind.clone()));
            });
            let collected = body.collect().await.map(|b| b.to_bytes().len());
            (collected.map_err(|e| e.to_string()), outcome.await.unwrap())
        }
    };
    let (whole, outcome) = stream("/stream?kib=64", 1 << 20).await;
    assert_eq!(whole, Ok(64 << 10));
    assert!(outcome.unwrap() > 0, "the streamed call's fuel is reported");
    let (cut, outcome) = stream("/stream?kib=64&trap", 1 << 20).await;
    assert!(cut.as_ref().unwrap_err().contains("deliberate panic after streaming 64 KiB"), "{cut:?}");
    assert!(matches!(outcome, Err(InvokeErrorKind::Trap(_))), "{outcome:?}");
    let (capped, outcome) = stream("/stream?kib=64", 16 << 10).await;
    assert!(capped.as_ref().unwrap_err().contains("passed the limit of 16384 bytes"), "{capped:?}");
    assert!(outcome.is_err());
}

#[tokio::test]
async fn command_unknown_world() {
    let harness = Harness::new();
    let error =
        harness.runtime.load(std::path::Path::new(COMMAND_UNKNOWN_WORLD), Default::default()).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, corral_runtime::LoadError::UnknownWorld { .. }), "{message}");
    assert!(message.contains("command-unknown-world.wasm"), "names the file: {message}");
    assert!(message.contains("wasi:cli/run"), "lists what it exports: {message}");
}

#[tokio::test]
async fn route_views_reader() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_VIEWS_READER).await;
    harness.views.put("acme", "orders", "o-1", b"acme order".to_vec());
    harness.views.put("acme", "orders", "o-2", b"acme order 2".to_vec());
    harness.views.put("other", "orders", "o-3", b"other tenant".to_vec());
    let as_tenant = |tenant: &str| CallContext { tenant: tenant.into(), ..CallContext::internal("t") };
    let one = request("GET", "/views/orders/o-1", &[("projection", "orders"), ("id", "o-1")], b"");
    let response = plugin.handle_http(&harness.control, as_tenant("acme"), &one).await.unwrap().value;
    assert_eq!(text(&response), "acme order");
    // Another tenant sees nothing of acme's views.
    let response = plugin.handle_http(&harness.control, as_tenant("other"), &one).await.unwrap().value;
    assert_eq!(response.status, 404);
    let list = request("GET", "/views/orders?prefix=o-", &[("projection", "orders")], b"");
    assert_eq!(text(&plugin.handle_http(&harness.control, as_tenant("acme"), &list).await.unwrap().value), "o-1,o-2");
    assert_eq!(text(&plugin.handle_http(&harness.control, as_tenant("other"), &list).await.unwrap().value), "o-3");
    // `views.query` (0.1.1): filtered and sorted, within the tenant.
    for (id, total) in [("q-1", 5), ("q-2", 50), ("q-3", 20)] {
        harness.views.put("acme", "totals", id, format!("{{\"total\":{total}}}").into_bytes());
    }
    harness.views.put("other", "totals", "q-9", b"{\"total\":99}".to_vec());
    let ask = |body: &str| request("POST", "/query/totals", &[("projection", "totals")], body.as_bytes());
    let asked = ask(r#"{"filter": "total > 10", "order_by": "total DESC", "limit": 1}"#);
    let page: serde_json::Value = serde_json::from_str(&text(
        &plugin.handle_http(&harness.control, as_tenant("acme"), &asked).await.unwrap().value,
    ))
    .unwrap();
    assert_eq!(page["ids"], serde_json::json!(["q-2"]));
    let next = format!(r#"{{"filter": "total > 10", "order_by": "total DESC", "cursor": {}}}"#, page["next_cursor"]);
    let rest = plugin.handle_http(&harness.control, as_tenant("acme"), &ask(&next)).await.unwrap().value;
    assert_eq!(text(&rest), r#"{"ids":["q-3"],"next_cursor":null}"#);
    let refused = plugin.handle_http(&harness.control, as_tenant("acme"), &ask(r#"{"filter": "total +"}"#)).await;
    let refused = refused.unwrap().value;
    assert_eq!(refused.status, 400);
    assert!(text(&refused).contains(r#""error":"invalid""#), "{}", text(&refused));
}

#[tokio::test]
async fn route_contract_v0_1_0() {
    // Built against the frozen 0.1.0 WIT: loads as a route and its 0.1.0
    // imports and export resolve against this host's 0.1.1 definitions.
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_CONTRACT_V0_1_0).await;
    assert_eq!((plugin.world(), plugin.name(), plugin.version()), (World::Route, "legacy", "0.1.0"));
    harness.views.put("acme", "orders", "o-1", b"from 0.1.0".to_vec());
    let as_acme = CallContext { tenant: "acme".into(), ..CallContext::internal("t") };
    let read = request("GET", "/legacy/orders/o-1", &[("projection", "orders"), ("id", "o-1")], b"");
    let response = plugin.handle_http(&harness.control, as_acme, &read).await.unwrap().value;
    assert_eq!((response.status, text(&response)), (200, "from 0.1.0".to_string()));
}

#[tokio::test]
async fn route_kv_peer() {
    let harness = Harness::new();
    let counter = harness.load(ROUTE_KV_COUNTER).await;
    let peer = harness.load(ROUTE_KV_PEER).await;
    call(&harness, &counter, &request("POST", "/counter/hits", &[("name", "hits")], b"")).await;
    // Same key, another plugin: its own bucket has nothing.
    let response = call(&harness, &peer, &request("GET", "/peer/hits", &[("key", "hits")], b"")).await;
    assert_eq!(response.status, 404);
    use corral_runtime::KvBackend as _;
    harness.kv.set(&Bucket::Plugin("kv-peer".into()), "hits", b"mine".to_vec()).await.unwrap();
    assert_eq!(text(&call(&harness, &peer, &request("GET", "/peer/hits", &[("key", "hits")], b"")).await), "mine");
}

#[tokio::test]
async fn route_slow() {
    let harness = Harness::new();
    let plugin = harness.load(ROUTE_SLOW).await;
    let started = std::time::Instant::now();
    let response = call(&harness, &plugin, &get("/slow?ms=200")).await;
    assert_eq!(text(&response), "slept 200");
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    // Sleeping is waiting, not burning fuel: a tiny budget is enough.
    let frugal = harness.load_with(ROUTE_SLOW, limits(|l| l.fuel = 2_000_000)).await;
    assert_eq!(text(&call(&harness, &frugal, &get("/slow?ms=100")).await), "slept 100");
}

#[tokio::test]
async fn event_counter() {
    let harness = Harness::new();
    let plugin = harness.load(EVENT_COUNTER).await;
    assert_eq!(plugin.descriptor().topics, [">"]);
    for sequence in 1..=3 {
        let event = event(&format!("e{sequence}"), "orders.created", sequence, b"{}");
        plugin.handle_event(&harness.control, CallContext::for_event(&event), &event).await.unwrap();
    }
    assert_eq!(
        harness.kv.dump(&Bucket::Plugin("event-counter".into())),
        [("seen.orders.created".to_string(), b"3".to_vec())]
    );
}

#[tokio::test]
async fn route_version_a() {
    let harness = Harness::new();
    let a = harness.load(ROUTE_VERSION_A).await;
    assert_eq!((a.name(), a.version()), ("versioned", "a.0.0"));
    assert_eq!(text(&call(&harness, &a, &get("/version")).await), "a");
}

#[tokio::test]
async fn route_version_b() {
    let harness = Harness::new();
    let b = harness.load(ROUTE_VERSION_B).await;
    assert_eq!((b.name(), b.version()), ("versioned", "b.0.0"));
    assert_eq!(text(&call(&harness, &b, &get("/version?sleep_ms=10")).await), "b");
}

#[tokio::test]
async fn route_version_broken() {
    let harness = Harness::new();
    let broken = harness.load(ROUTE_VERSION_BROKEN).await;
    assert_eq!(broken.name(), "versioned");
    let error = broken.handle_http(&harness.control, CallContext::internal("t"), &get("/version")).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::Trap(ref m) if m.contains("this release is broken")), "{error}");
}

#[tokio::test]
async fn route_logger() {
    let harness = Harness::new();
    let logger = harness.load(ROUTE_LOGGER).await;
    assert_eq!((logger.name(), logger.version()), ("logger", "1.2.3"));
    let request = crate::request("GET", "/log/x", &[("what", "x")], b"");
    let response = call(&harness, &logger, &request).await;
    assert_eq!((response.status, text(&response).as_str()), (200, "logged"));
    assert_eq!(logger.log_lines_dropped(), 0, "one line is well within the default budget");
}

/// A plugin writing more lines a second than its budget has the rest
/// dropped and counted; the budget and the count belong to the plugin name,
/// so a new version neither resets them nor gets a budget of its own.
#[tokio::test]
async fn a_log_flood_is_cut_to_the_plugin_budget_across_versions() {
    let harness = Harness::new();
    let settings = crate::limits(|limits| limits.log_lines_per_second = 50);
    let logger = harness.load_with(ROUTE_LOGGER, settings.clone()).await;
    let flood = crate::request("GET", "/log/x?lines=500", &[("what", "x")], b"");
    assert_eq!(call(&harness, &logger, &flood).await.status, 200, "dropping lines never fails the call");
    let dropped = logger.log_lines_dropped();
    // 50 lines of burst, and what trickles back while the call runs.
    assert!((400..=450).contains(&dropped), "dropped {dropped} of 500 over a budget of 50");
    let next = harness.load_with(ROUTE_LOGGER, settings).await;
    assert_eq!(next.log_lines_dropped(), dropped, "the count is the plugin name's");
    assert_eq!(call(&harness, &next, &flood).await.status, 200);
    assert!(
        next.log_lines_dropped() >= dropped + 400,
        "the new version found the budget spent: {}",
        next.log_lines_dropped()
    );
    assert_eq!(logger.log_lines_dropped(), next.log_lines_dropped(), "one budget, both versions");
}

#[tokio::test]
async fn route_version_flaky() {
    let harness = Harness::new();
    let flaky = harness.load(ROUTE_VERSION_FLAKY).await;
    assert_eq!((flaky.name(), flaky.version()), ("versioned", "f.0.0"));
    let even = call(&harness, &flaky, &get("/version?n=2")).await;
    assert_eq!((even.status, text(&even).as_str()), (200, "flaky"));
    assert_eq!(call(&harness, &flaky, &get("/version?n=3")).await.status, 500);
}

#[tokio::test]
async fn projection_documents() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_DOCUMENTS).await;
    let order = br#"{"id":"o1","customer":"ada","total":120}"#;
    let step = plugin.fold(&event("e1", "docs.orders", 1, order), async |_id: &str| Ok(None)).await.unwrap().value;
    assert_eq!(step, FoldStep::Put { id: "o1".into(), value: order.to_vec() }, "the view is the document");
    let gone = event("e2", "docs.orders", 2, br#"{"id":"o1","deleted":true}"#);
    let step = plugin.fold(&gone, async |_id: &str| Ok(Some(order.to_vec()))).await.unwrap().value;
    assert_eq!(step, FoldStep::Delete { id: "o1".into() });
    let anonymous = event("e3", "docs.orders", 3, br#"{"customer":"ada"}"#);
    assert_eq!(plugin.fold(&anonymous, async |_id: &str| Ok(None)).await.unwrap().value, FoldStep::Skip);
}

#[tokio::test]
async fn projection_count_v2() {
    let harness = Harness::new();
    let plugin = harness.load(PROJECTION_COUNT_V2).await;
    assert_eq!((plugin.name(), plugin.version()), ("count", "2.0.0"));
    let created = event("e1", "orders.created", 1, b"{}");
    let step = plugin.fold(&created, async |_id: &str| Ok(Some(b"10".to_vec()))).await.unwrap().value;
    assert_eq!(step, FoldStep::Put { id: "orders.created".into(), value: b"20".to_vec() });
    let legacy = event("e2", "orders.legacy", 2, b"{}");
    let error = plugin.fold(&legacy, async |_id: &str| Ok(None)).await.unwrap_err();
    assert!(matches!(error.kind, InvokeErrorKind::Guest { ref code, .. } if code == "legacy"), "{error}");
}
