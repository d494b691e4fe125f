//! `host run` over real sockets: routing, the control plane on LMDB,
//! every status code from the case that should produce it, ops endpoints,
//! graceful shutdown.

use std::time::Duration;

use corral_fixtures::*;

use crate::{Host, get, plugins_dir, post, request, send};

#[tokio::test(flavor = "multi_thread")]
async fn serves_routes_params_and_wasi_http() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO), ("echo", ROUTE_ECHO), ("greeter", HTTP_HELLO)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let hello = get(host.public, "/hello/ann").await;
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello, ann"));
    assert!(hello.headers.contains_key("x-request-id"));

    let mut echo_request = request("PATCH", host.public, "/echo/one/two/three?x=1", b"body!");
    echo_request.headers_mut().insert("x-request-id", "my-request-7".parse().unwrap());
    let echo = send(host.public, echo_request).await;
    assert_eq!(echo.headers["x-request-id"], "my-request-7", "a client's request id is honoured");
    let echoed = echo.json();
    assert_eq!(echoed["method"], "PATCH");
    assert_eq!(echoed["query"], "x=1");
    assert_eq!(echoed["params"], serde_json::json!([["first", "one"], ["*", "two/three"]]));
    assert_eq!(echoed["body"], "body!");

    // A standard wasi:http component, mounted at /NAME/* by default.
    let greeter = get(host.public, "/greeter/some/path?q=2").await;
    assert_eq!(greeter.status, 200);
    assert_eq!(greeter.text(), "hello from wasi:http /greeter/some/path?q=2");
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_h2c() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let stream = tokio::net::TcpStream::connect(host.public).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let uri = format!("http://{}/hello/h2", host.public);
    let response = sender
        .send_request(http::Request::get(uri).body(http_body_util::Full::new(bytes::Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    use http_body_util::BodyExt as _;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello, h2");
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_persists_across_restarts_and_plugins_are_isolated() {
    let plugins = plugins_dir(&[("counter", ROUTE_KV_COUNTER), ("peer", ROUTE_KV_PEER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for expected in 1..=3 {
        assert_eq!(post(host.public, "/counter/hits", b"").await.text(), expected.to_string());
    }
    assert_eq!(get(host.public, "/peer/hits").await.status, 404, "another plugin cannot see the key");
    host.stop();

    let host = Host::start(plugins.path(), data.path());
    assert_eq!(post(host.public, "/counter/hits", b"").await.text(), "4", "the count survived the restart");
    assert_eq!(get(host.public, "/peer/hits").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn emitted_events_are_durable_with_increasing_sequences() {
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    assert_eq!(post(host.public, "/emit/orders.created", b"first").await.text(), "1");
    assert_eq!(post(host.public, "/emit/orders.paid", b"second").await.text(), "2");
    assert_eq!(post(host.public, "/emit/bad..topic", b"x").await.status, 400);
    host.stop();
    let host = Host::start(plugins.path(), data.path());
    assert_eq!(post(host.public, "/emit/orders.created", b"third").await.text(), "3");
    host.stop();

    let storage =
        corral_storage::Storage::open(&data.path().join("lmdb"), &corral_storage::StorageOptions::default()).unwrap();
    let events = storage.read_after(0, 100).unwrap();
    let seen: Vec<(u64, &str, &[u8])> =
        events.iter().map(|e| (e.sequence, e.topic.as_str(), e.payload.as_slice())).collect();
    assert_eq!(
        seen,
        [
            (1, "orders.created", &b"first"[..]),
            (2, "orders.paid", &b"second"[..]),
            (3, "orders.created", &b"third"[..])
        ]
    );
    assert!(events.iter().all(|e| e.source == "emitter" && !e.correlation_id.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_status_code_from_its_cause() {
    let plugins = plugins_dir(
        &[
            ("hello", ROUTE_HELLO),
            ("echo", ROUTE_ECHO),
            ("loop", ROUTE_ENDLESS_LOOP),
            ("slow", ROUTE_SLOW),
            ("panic", ROUTE_PANIC),
            ("hog", ROUTE_MEMORY_HOG),
            ("huge", ROUTE_HUGE_RESPONSE),
            ("logger", ROUTE_LOGGER),
        ],
        &[
            ("loop", "[limits]\nfuel = 10_000_000\n"),
            ("logger", "[limits]\nlog_lines_per_second = 10\n"),
            ("slow", "[limits]\ntimeout_ms = 300\nmax_concurrency = 1\n"),
            ("hog", "[limits]\nmemory_mib = 16\n"),
        ],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| {
        c.http.max_request_bytes = 1024;
        c.http.max_response_bytes = 65536;
    });
    let addr = host.public;

    assert_eq!(get(addr, "/nowhere").await.status, 404);
    let wrong_method = send(addr, request("DELETE", addr, "/hello", b"")).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.headers["allow"], "GET");
    assert_eq!(post(addr, "/echo/a/b", &[b'x'; 2048]).await.status, 413);
    let mut big_headers = request("GET", addr, "/hello", b"");
    big_headers.headers_mut().insert("x-big", "y".repeat(40_000).parse().unwrap());
    assert_eq!(send(addr, big_headers).await.status, 431);

    // 504: the deadline ends the call.
    let timeout = get(addr, "/slow?ms=5000").await;
    assert_eq!(timeout.status, 504, "{}", timeout.text());
    assert_eq!(timeout.json()["plugin"], "slow");
    assert_eq!(timeout.json()["error"], "timeout");

    // 503: the one slot is taken.
    let occupied = tokio::spawn(get(addr, "/slow?ms=250"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy = get(addr, "/slow?ms=10").await;
    assert_eq!(busy.status, 503, "{}", busy.text());
    assert_eq!(busy.json()["error"], "busy");
    assert_eq!(occupied.await.unwrap().status, 200);

    // 500s name the plugin and the cause.
    let cases =
        [("/loop", "endless-loop", "out_of_fuel"), ("/panic", "panic", "trap"), ("/hog", "memory-hog", "memory_limit")];
    for (path, plugin, cause) in cases {
        let reply = get(addr, path).await;
        assert_eq!(reply.status, 500, "{path}: {}", reply.text());
        let body = reply.json();
        assert_eq!((body["plugin"].as_str(), body["error"].as_str()), (Some(plugin), Some(cause)), "{body}");
        assert!(body["request_id"].is_string());
    }
    let panic = get(addr, "/panic").await.json();
    assert!(panic["message"].as_str().unwrap().contains("deliberate panic"), "{panic}");
    let huge = get(addr, "/huge?mib=1").await;
    assert_eq!((huge.status, huge.json()["error"].as_str()), (500, Some("response_too_large")));

    // A log flood is no error: the lines over the budget are dropped.
    assert_eq!(get(addr, "/log/flood?lines=100").await.status, 200);

    // And through all of it, hello kept answering.
    assert_eq!(get(addr, "/hello").await.text(), "hello, world");

    let metrics = get(host.admin, "/metrics").await.text();
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("corral_guest_log_lines_dropped_total{plugin=\"logger\"} "))
        .unwrap_or_else(|| panic!("no dropped log lines counted in\n{metrics}"))
        .parse()
        .unwrap();
    assert!((80.0..=90.0).contains(&dropped), "{dropped} of 100 lines dropped over a budget of 10");
    let listed = get(host.admin, "/plugins").await.json();
    let logger = listed.as_array().unwrap().iter().find(|p| p["name"] == "logger").unwrap();
    assert_eq!(logger["limits"]["log_lines_per_second"], 10, "{logger}");
    assert!(logger["log_lines_dropped"].as_u64().unwrap() >= 80, "{logger}");
    for line in [
        "corral_plugin_errors_total{cause=\"out_of_fuel\",plugin=\"endless-loop\"} 1",
        "corral_plugin_errors_total{cause=\"memory_limit\",plugin=\"memory-hog\"} 1",
        "corral_plugin_errors_total{cause=\"trap\",plugin=\"panic\"} 2",
        "corral_plugin_errors_total{cause=\"timeout\",plugin=\"slow\"} 1",
        "corral_plugin_errors_total{cause=\"busy\",plugin=\"slow\"} 1",
        "corral_http_responses_total{status=\"404\"} 1",
        "corral_http_responses_total{status=\"413\"} 1",
        "corral_plugin_calls_total{plugin=\"hello\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    assert!(metrics.contains("corral_plugin_fuel_consumed_count{plugin=\"hello\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_plugins_are_reported_and_skipped() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO), ("also-hello", ROUTE_ECHO)], &[("bad-sidecar", "colour = 1")]);
    std::fs::write(plugins.path().join("broken.wasm"), b"not wasm").unwrap();
    std::fs::copy(ROUTE_HELLO, plugins.path().join("bad-sidecar.wasm")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    assert_eq!(get(host.public, "/hello").await.status, 200);
    let list = get(host.admin, "/plugins").await.json();
    let list = list.as_array().unwrap();
    let error_of = |file: &str| {
        list.iter()
            .find(|p| p["file"].as_str().unwrap().ends_with(file))
            .map(|p| p["error"].as_str().unwrap_or("").to_string())
            .unwrap()
    };
    assert!(error_of("broken.wasm").contains("not a WebAssembly binary"));
    assert!(error_of("bad-sidecar.wasm").contains("colour"), "{}", error_of("bad-sidecar.wasm"));
    let loaded: Vec<&str> = list.iter().filter(|p| p["error"].is_null()).map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(loaded, ["echo", "hello"]);
    let hello = list.iter().find(|p| p["name"] == "hello").unwrap();
    assert_eq!(hello["world"], "route");
    assert_eq!(hello["routes"], serde_json::json!(["GET /hello", "GET /hello/:name"]));
    assert_eq!(hello["content_hash"].as_str().unwrap().len(), 64);

    let ready = get(host.admin, "/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["plugins_failed"], 2);
    assert_eq!(get(host.admin, "/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_routes_name_both_plugins() {
    let plugins = plugins_dir(&[("a-hello", ROUTE_HELLO), ("b-hello", ROUTE_HELLO)], &[("b-hello", "")]);
    // Same component twice: same name, so the second is refused for that;
    // give it other routes that clash to see the conflict error instead.
    std::fs::write(plugins.path().join("b-hello.toml"), "routes = [{ method = \"GET\", pattern = \"/hello/:who\" }]\n")
        .unwrap();
    std::fs::copy(ROUTE_ECHO, plugins.path().join("c-echo.wasm")).unwrap();
    std::fs::write(plugins.path().join("c-echo.toml"), "routes = [{ method = \"*\", pattern = \"/hello\" }]\n")
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let list = get(host.admin, "/plugins").await.json();
    let errors: Vec<String> =
        list.as_array().unwrap().iter().filter_map(|p| p["error"].as_str().map(str::to_string)).collect();
    assert!(errors.iter().any(|e| e.contains("b-hello.wasm") && e.contains("already used")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("plugin echo") && e.contains("plugin hello") && e.contains("conflicts")),
        "{errors:?}"
    );
}

/// Metric names in a PromQL expression (histograms by their base name).
fn queried_metrics(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("corral_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        names.push(base.to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_grafana_dashboard_queries_only_metrics_the_host_exports() {
    let dashboard = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/grafana/corral.json");
    let dashboard: serde_json::Value = serde_json::from_slice(&std::fs::read(&dashboard).unwrap()).unwrap();
    let plugins = plugins_dir(
        &[
            ("hello", ROUTE_HELLO),
            ("panic", ROUTE_PANIC),
            ("emitter", ROUTE_EMITTER),
            ("recorder", EVENT_KV_RECORDER),
            ("count", PROJECTION_COUNT),
            ("counter", CART_COUNTER),
        ],
        &[],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    // Traffic that touches every area: a route, a failing route, an
    // emitted event delivered and folded, a cart mutation, a deploy.
    assert_eq!(get(host.public, "/hello").await.status, 200);
    assert_eq!(get(host.public, "/panic").await.status, 500);
    assert_eq!(post(host.public, "/emit/orders.created", b"{}").await.status, 200);
    let mutation = serde_json::json!({"kind": "add", "payload": 1}).to_string();
    assert_eq!(post(host.public, "/carts/counter/c1", mutation.as_bytes()).await.status, 200);
    let upload = std::fs::read(ROUTE_HELLO).unwrap();
    assert_eq!(send(host.admin, request("PUT", host.admin, "/plugins/hello-again", &upload)).await.status, 422);
    let admin = host.admin;
    crate::eventually(Duration::from_secs(30), "the event delivered and folded", || {
        let metrics = crate::cluster::futures_block(get(admin, "/metrics")).text();
        let done = |prefix: &str| metrics.lines().any(|l| l.starts_with(prefix) && !l.ends_with(" 0"));
        (done("corral_events_delivered_total{") && done("corral_projection_events_applied_total{")).then_some(())
    })
    .await;
    let metrics = get(admin, "/metrics").await.text();
    let exported: std::collections::BTreeSet<&str> =
        metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    let mut queried = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queried.extend(queried_metrics(target["expr"].as_str().unwrap()));
        }
    }
    assert!(queried.len() >= 20, "the dashboard queries {queried:?}");
    let missing: Vec<&String> = queried.iter().filter(|name| !exported.contains(name.as_str())).collect();
    assert!(missing.is_empty(), "the dashboard queries metrics /metrics does not export: {missing:?}\n{metrics}");
}
