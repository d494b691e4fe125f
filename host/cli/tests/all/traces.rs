//! Traces over the binary: `host run --otlp-endpoint` exports its spans to
//! a real OTLP/gRPC collector in this process, and one request — a route
//! that emits, the event handler the event reaches (failing once, then
//! retried), the cart that handler mutates, the projection folding the
//! event — is one connected trace: every span's parent is in it, and each
//! kind of work sits under the span that caused it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corral_fixtures::{CART_COUNTER, EVENT_CART_CLIENT, PROJECTION_COUNT, ROUTE_EMITTER, ROUTE_VIEWS_READER};
use corral_test_support::http::{Reply, request, send};
use corral_test_support::otlp::{Collector, Received};
use corral_test_support::plugins::plugins_dir;

use crate::Host;

/// The upstream caller of the second request (a load balancer, say).
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn call(public: SocketAddr, method: &str, path: &str, body: &[u8], traceparent: Option<&str>) -> Reply {
    let mut call = request(method, public, path, body);
    call.headers_mut().insert("x-corral-tenant", "acme".parse().unwrap());
    if let Some(traceparent) = traceparent {
        call.headers_mut().insert("traceparent", traceparent.parse().unwrap());
    }
    send(public, call).await
}

/// Polls `path` until it answers 200.
async fn until_ok(public: SocketAddr, path: &str, traceparent: Option<&str>) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = call(public, "GET", path, b"", traceparent).await;
        if reply.status == 200 || Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn named<'a>(spans: &'a [&'a Received], name: &str) -> Vec<&'a Received> {
    spans.iter().copied().filter(|s| s.span.name == name).collect()
}

fn one<'a>(spans: &'a [&'a Received], name: &str, key: &str, value: &str) -> &'a Received {
    let found: Vec<_> = named(spans, name).into_iter().filter(|s| s.attribute(key).as_deref() == Some(value)).collect();
    assert!(!found.is_empty(), "no {name} span with {key} = {value} in {:#?}", summary(spans));
    found[0]
}

fn summary(spans: &[&Received]) -> Vec<String> {
    spans
        .iter()
        .map(|s| format!("{} {} <- {} {:?}", s.span.name, s.span_id(), s.parent_id(), s.span.attributes))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_is_one_connected_trace_from_the_route_through_the_handler_to_the_cart() {
    let collector = Collector::start();
    let plugins = plugins_dir(
        &[
            ("emitter", ROUTE_EMITTER),
            ("feeder", EVENT_CART_CLIENT),
            ("counter", CART_COUNTER),
            ("count", PROJECTION_COUNT),
            ("reader", ROUTE_VIEWS_READER),
        ],
        &[("feeder", "topics = [\"orders.placed\"]\n[carts]\nplugins = [\"counter\"]\n[delivery]\nbackoff_ms = 10\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path(), &["--otlp-endpoint", &collector.endpoint()]);

    // No traceparent: the host starts the trace. The handler's first
    // delivery fails after its mutation; the retry repeats it.
    let emitted = call(host.public, "POST", "/emit/orders.placed", b"c1:5:flaky", None).await;
    assert_eq!(emitted.status, 200, "{}", emitted.text());
    // From an upstream caller: the host continues its trace.
    let view = until_ok(host.public, "/read/count/orders.placed", Some(TRACEPARENT)).await;
    assert_eq!((view.status, view.text()), (200, "1".to_string()));
    // The exporter sends in batches: wait until the retried delivery is in.
    collector.wait_for(Duration::from_secs(30), |spans| {
        spans.iter().any(|s| s.span.name == "delivery" && s.attribute("attempt").as_deref() == Some("2"))
    });
    // Exiting flushes what the exporter still holds.
    assert!(host.terminate().success());
    let spans = collector.wait_for(Duration::from_secs(10), |spans| {
        spans
            .iter()
            .any(|s| s.span.name == "request" && s.attribute("path").as_deref() == Some("/read/count/orders.placed"))
    });
    assert!(spans.iter().all(|s| s.service == "corral"), "every span names the service");

    // The first request's trace.
    let root = spans
        .iter()
        .find(|s| s.span.name == "request" && s.attribute("path").as_deref() == Some("/emit/orders.placed"))
        .unwrap_or_else(|| panic!("no request span for the emit: {spans:#?}"));
    assert_eq!(root.parent_id(), "", "a request without traceparent starts a trace");
    assert_eq!(root.attribute("status").as_deref(), Some("200"));
    let trace: Vec<&Received> = spans.iter().filter(|s| s.trace_id() == root.trace_id()).collect();
    let ids: HashSet<String> = trace.iter().map(|s| s.span_id()).collect();
    for span in &trace {
        assert!(
            span.parent_id().is_empty() && span.span_id() == root.span_id() || ids.contains(&span.parent_id()),
            "{} is not connected to the trace: {:#?}",
            span.span.name,
            summary(&trace)
        );
    }
    let route = one(&trace, "call", "plugin", "emitter");
    assert_eq!(route.parent_id(), root.span_id(), "the route's call runs in the request");
    assert_eq!(
        (
            route.attribute("world").as_deref(),
            route.attribute("version").as_deref(),
            route.attribute("outcome").as_deref()
        ),
        (Some("route"), Some("1.0.0"), Some("ok"))
    );
    assert!(route.attribute("fuel_used").is_some(), "the call records the fuel it used");
    let emit = one(&trace, "emit.publish", "topic", "orders.placed");
    assert_eq!(emit.parent_id(), route.span_id(), "the emit import runs in the route's call");
    let event = one(&trace, "event", "plugin", "counter-feeder");
    assert_eq!(event.parent_id(), emit.span_id(), "the delivery continues from the emit");
    let attempts: Vec<_> = named(&trace, "delivery").iter().filter_map(|s| s.attribute("attempt")).collect();
    assert!(attempts.contains(&"1".to_string()) && attempts.contains(&"2".to_string()), "{attempts:?}");
    let handler_calls =
        named(&trace, "call").into_iter().filter(|s| s.attribute("plugin").as_deref() == Some("counter-feeder"));
    let outcomes: Vec<_> = handler_calls.filter_map(|s| s.attribute("outcome")).collect();
    assert_eq!(outcomes.len(), 2, "two deliveries, two calls: {outcomes:?}");
    assert!(!named(&trace, "kv.increment").is_empty(), "the handler's kv import: {:#?}", summary(&trace));
    let mutate = one(&trace, "carts.mutate", "plugin", "counter");
    let mutation = one(&trace, "cart.mutation", "plugin", "counter");
    assert_eq!(mutation.parent_id(), mutate.span_id(), "the mutation continues from the carts import");
    assert_eq!(mutation.attribute("outcome").as_deref(), Some("applied"));
    let cart_call = one(&trace, "call", "plugin", "counter");
    assert_eq!(cart_call.parent_id(), mutation.span_id());
    assert_eq!(cart_call.attribute("world").as_deref(), Some("cart"));

    // The projection's batch is its own work, linked to the events it folded.
    let batch = spans
        .iter()
        .find(|s| s.span.name == "projection.batch" && s.span.links.iter().any(|l| hex(&l.trace_id) == root.trace_id()))
        .unwrap_or_else(|| panic!("no projection batch linked to the request's trace: {spans:#?}"));
    assert_eq!(batch.attribute("projection").as_deref(), Some("count"));
    assert!(batch.attribute("generation").is_some_and(|g| g.starts_with("count@")), "{batch:?}");

    // The second request joined its caller's trace.
    let upstream: Vec<&Received> =
        spans.iter().filter(|s| s.trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736").collect();
    let read = one(&upstream, "request", "status", "200");
    assert_eq!(read.attribute("path").as_deref(), Some("/read/count/orders.placed"));
    assert_eq!(read.parent_id(), "00f067aa0ba902b7", "the request is a child of the caller's span");
    let reader = upstream.iter().find(|s| s.span.name == "call" && s.parent_id() == read.span_id());
    let reader = reader.unwrap_or_else(|| panic!("no call in the read: {:#?}", summary(&upstream)));
    assert_eq!(reader.attribute("plugin").as_deref(), Some("views-reader"));
    let views = upstream.iter().find(|s| s.span.name == "views.get" && s.parent_id() == reader.span_id());
    let views = views.unwrap_or_else(|| panic!("no views import in the reader's call: {:#?}", summary(&upstream)));
    assert_eq!(views.attribute("projection").as_deref(), Some("count"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Two `host run --cluster` nodes exporting to one collector: a mutation
/// sent to one node for a cart the other owns is one trace across both —
/// the first node's request, the owner's forwarded request under it, and
/// the mutation under that — each span naming its node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_cart_mutation_is_one_trace_across_the_nodes() {
    let nats = tokio::task::spawn_blocking(crate::nats).await.unwrap();
    let collector = Collector::start();
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let urls = nats.urls().join(",");
    let hosts: Vec<Host> = (0..2)
        .map(|i| {
            let node = format!("node-{i}");
            let flags = ["--cluster", &urls, "--cluster-name", "traces", "--node-id", &node];
            let endpoint = collector.endpoint();
            Host::start(plugins.path(), data[i].path(), &[&flags[..], &["--otlp-endpoint", &endpoint]].concat())
        })
        .collect();
    // Both nodes are members before carts are placed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = corral_test_support::http::get(hosts[0].admin, "/cluster").await.json();
        if view["members"].as_array().is_some_and(|members| members.len() == 2) {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes did not see each other: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Through node-0 only: the carts node-1 owns are forwarded to it.
    for cart in 0..16 {
        let body = serde_json::json!({"kind": "add", "payload": 1}).to_string();
        let reply = call(hosts[0].public, "POST", &format!("/carts/counter/t{cart}"), body.as_bytes(), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let forwarded = |spans: &[Received]| {
        spans.iter().any(|s| {
            s.span.name == "cart.mutation"
                && s.instance == "node-1"
                && s.attribute("transport").as_deref() == Some("forwarded")
        })
    };
    let spans = collector.wait_for(Duration::from_secs(30), forwarded);
    for host in hosts {
        assert!(host.terminate().success());
    }
    let mutation = spans
        .iter()
        .find(|s| {
            s.span.name == "cart.mutation"
                && s.instance == "node-1"
                && s.attribute("transport").as_deref() == Some("forwarded")
        })
        .unwrap_or_else(|| panic!("no mutation forwarded to node-1 among {} spans", spans.len()));
    let trace: Vec<&Received> = spans.iter().filter(|s| s.trace_id() == mutation.trace_id()).collect();
    let parent = |span: &Received| trace.iter().copied().find(|s| s.span_id() == span.parent_id());
    let owner_request = parent(mutation).unwrap_or_else(|| panic!("{:#?}", summary(&trace)));
    assert_eq!((owner_request.span.name.as_str(), owner_request.instance.as_str()), ("request", "node-1"));
    let first_request = parent(owner_request).unwrap_or_else(|| panic!("{:#?}", summary(&trace)));
    assert_eq!((first_request.span.name.as_str(), first_request.instance.as_str()), ("request", "node-0"));
    assert!(first_request.attribute("path").is_some_and(|p| p.starts_with("/carts/counter/t")), "{first_request:?}");
    assert_eq!(first_request.parent_id(), "", "the client's request started the trace");
    let call = trace.iter().find(|s| s.span.name == "call" && s.parent_id() == mutation.span_id());
    assert!(call.is_some_and(|c| c.instance == "node-1"), "the cart plugin ran on its owner: {:#?}", summary(&trace));
}
