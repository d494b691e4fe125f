//! The `carts` import over the real binary: a route plugin
//! (`guests/fixtures/route-cart-client`) mutating and reading the carts of
//! `cart-counter` through the host's own mailboxes, as the HTTP API sees
//! them; idempotency keys, tenants, grants and the guest's refusals; and an
//! event handler (`guests/fixtures/event-cart-client`) whose redelivered
//! event applies once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corral_fixtures::{CART_COUNTER, EVENT_CART_CLIENT, ROUTE_CART_CLIENT};

use crate::{Host, Reply, plugins_dir, request, send};

/// `client` may call `counter` (and `ghost`, which is not loaded); the
/// second counter, `counter2`, is served but not granted.
fn start() -> (Host, tempfile::TempDir, tempfile::TempDir) {
    let plugins = plugins_dir(
        &[("counter", CART_COUNTER), ("counter2", CART_COUNTER), ("client", ROUTE_CART_CLIENT)],
        &[("client", "[carts]\nplugins = [\"counter\", \"ghost\"]\n"), ("counter2", "name = \"counter2\"\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    (host, plugins, data)
}

async fn call(addr: SocketAddr, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = request(method, addr, path, body.as_bytes());
    for (name, value) in headers {
        request.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    send(addr, request).await
}

/// A mutation through the route, for `tenant`.
async fn mutate(addr: SocketAddr, tenant: &str, path: &str, body: &str) -> Reply {
    call(addr, "POST", path, body, &[("x-corral-tenant", tenant)]).await
}

/// The cart as the HTTP cart API answers it, for `tenant`.
async fn cart_api(addr: SocketAddr, tenant: &str, path: &str) -> serde_json::Value {
    let reply = call(addr, "GET", path, "", &[("x-corral-tenant", tenant)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_mutates_and_reads_a_cart_through_the_same_mailbox_as_the_cart_api() {
    let (host, _plugins, _data) = start();
    let public = host.public;

    let first = mutate(public, "acme", "/cart-client/counter/c1/add", "5").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    assert_eq!((first["version"].as_u64(), first["state"].as_str()), (Some(1), Some("5")));
    // `counter.changed`, published with the commit: its sequence comes back.
    assert_eq!(first["events"].as_array().unwrap().len(), 1, "{first}");
    let second = mutate(public, "acme", "/cart-client/counter/c1/add", "3").await.json();
    assert_eq!((second["version"].as_u64(), second["state"].as_str()), (Some(2), Some("8")));
    assert!(second["events"][0].as_u64() > first["events"][0].as_u64(), "{first} {second}");

    // The HTTP API sees what the route did, and the route what the API did.
    let seen = cart_api(public, "acme", "/carts/counter/c1").await;
    assert_eq!((seen["version"].as_u64(), seen["state"].as_u64()), (Some(2), Some(8)));
    let body = serde_json::json!({"kind": "add", "payload": 1}).to_string();
    let reply = call(public, "POST", "/carts/counter/c1", &body, &[("x-corral-tenant", "acme")]).await;
    assert_eq!(reply.json()["version"], 3);
    let read = call(public, "GET", "/cart-client/counter/c1", "", &[("x-corral-tenant", "acme")]).await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json(), serde_json::json!({"version": 3, "state": "9"}));

    // A cart never mutated is none, not an empty state.
    let never = call(public, "GET", "/cart-client/counter/never", "", &[("x-corral-tenant", "acme")]).await;
    assert_eq!((never.status, never.text().as_str()), (404, "no such cart"));

    // The cart metrics count the import's mutations like the API's, each
    // by the way it came.
    let metrics = crate::get(host.admin, "/metrics").await.text();
    let applied = "corral_cart_mutations_total{outcome=\"applied\",plugin=\"counter\"";
    assert!(metrics.contains(&format!("{applied},transport=\"import\"}} 2")), "{metrics}");
    assert!(metrics.contains(&format!("{applied},transport=\"http\"}} 1")), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_applies_once_and_carts_stay_within_the_callers_tenant() {
    let (host, _plugins, _data) = start();
    let public = host.public;
    let keyed = |key: &'static str| [("x-corral-tenant", "acme"), ("idempotency-key", key)];

    let once = call(public, "POST", "/cart-client/counter/c1/add", "5", &keyed("k1")).await.json();
    let again = call(public, "POST", "/cart-client/counter/c1/add", "5", &keyed("k1")).await.json();
    assert_eq!(once, again, "a repeat answers the recorded result");
    assert_eq!((again["version"].as_u64(), again["state"].as_str()), (Some(1), Some("5")));
    let next = call(public, "POST", "/cart-client/counter/c1/add", "5", &keyed("k2")).await.json();
    assert_eq!((next["version"].as_u64(), next["state"].as_str()), (Some(2), Some("10")));
    let seen = cart_api(public, "acme", "/carts/counter/c1").await;
    assert_eq!((seen["version"].as_u64(), seen["state"].as_u64()), (Some(2), Some(10)));
    let metrics = crate::get(host.admin, "/metrics").await.text();
    let repeated = "corral_cart_mutations_total{outcome=\"repeated\",plugin=\"counter\",transport=\"import\"} 1";
    assert!(metrics.contains(repeated), "{metrics}");

    // Tenant globex's route calls neither see nor touch acme's cart c1.
    let read = call(public, "GET", "/cart-client/counter/c1", "", &[("x-corral-tenant", "globex")]).await;
    assert_eq!(read.status, 404, "{}", read.text());
    let theirs = mutate(public, "globex", "/cart-client/counter/c1/add", "1").await.json();
    assert_eq!((theirs["version"].as_u64(), theirs["state"].as_str()), (Some(1), Some("1")));
    // Nor does the same idempotency key under another tenant replay acme's result.
    let keyed_globex = [("x-corral-tenant", "globex"), ("idempotency-key", "k1")];
    let theirs = call(public, "POST", "/cart-client/counter/c1/add", "1", &keyed_globex).await.json();
    assert_eq!((theirs["version"].as_u64(), theirs["state"].as_str()), (Some(2), Some("2")));
    let seen = cart_api(public, "acme", "/carts/counter/c1").await;
    assert_eq!((seen["version"].as_u64(), seen["state"].as_u64()), (Some(2), Some(10)));
    let seen = cart_api(public, "globex", "/carts/counter/c1").await;
    assert_eq!((seen["version"].as_u64(), seen["state"].as_u64()), (Some(2), Some(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_refusals_and_bad_calls_come_back_as_typed_cart_errors() {
    let (host, _plugins, _data) = start();
    let public = host.public;
    let error = |reply: &Reply| {
        let json = reply.json();
        (reply.status, json["error"].as_str().unwrap().to_string(), json["message"].as_str().unwrap().to_string())
    };

    // counter2 is served but not granted to client: refused before reaching it.
    for (method, path) in [("POST", "/cart-client/counter2/c1/add"), ("GET", "/cart-client/counter2/c1")] {
        let reply = call(public, method, path, "1", &[]).await;
        let (status, case, message) = error(&reply);
        assert_eq!((status, case.as_str()), (403, "not-granted"), "{message}");
        assert!(message.contains("\"counter2\"") && message.contains("[carts] plugins"), "{message}");
        assert!(message.contains("client.toml"), "names the sidecar to edit: {message}");
    }
    assert_eq!(cart_api(public, "", "/carts/counter2/c1").await["version"], 0);

    // The guest's own refusal: nothing changed.
    let (status, case, message) = error(&mutate(public, "", "/cart-client/counter/c1/add", "two").await);
    assert_eq!((status, case.as_str()), (422, "rejected"), "{message}");
    assert!(message.starts_with("not-a-number: "), "{message}");
    let (status, case, message) = error(&mutate(public, "", "/cart-client/counter/c1/explode", "1").await);
    assert_eq!((status, case.as_str()), (400, "unknown-kind"), "{message}");
    assert!(message.contains("\"explode\"") && message.contains("add, reset"), "{message}");
    assert_eq!(cart_api(public, "", "/carts/counter/c1").await["version"], 0);

    // Granted, but no such cart plugin is loaded.
    let (status, case, message) = error(&mutate(public, "", "/cart-client/ghost/c1/add", "1").await);
    assert_eq!((status, case.as_str(), message.as_str()), (404, "no-such-cart-plugin", "ghost"));

    // A malformed idempotency key.
    let long = "k".repeat(300);
    let reply = call(public, "POST", "/cart-client/counter/c1/add", "1", &[("idempotency-key", &long)]).await;
    let (status, case, message) = error(&reply);
    assert_eq!((status, case.as_str()), (400, "invalid"), "{message}");
    assert_eq!(cart_api(public, "", "/carts/counter/c1").await["version"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_handler_mutates_a_cart_once_per_event_even_when_the_event_is_redelivered() {
    let plugins = plugins_dir(
        &[("counter", CART_COUNTER), ("feeder", EVENT_CART_CLIENT)],
        &[("feeder", "[carts]\nplugins = [\"counter\"]\n[delivery]\nbackoff_ms = 10\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    // The first delivery fails after its mutation; the retry repeats the
    // mutation under the same key (the event id), which applies nothing.
    for payload in ["c1:5:flaky", "c1:1"] {
        let reply =
            call(host.admin, "POST", "/events/counter.requested", payload, &[("x-corral-tenant", "acme")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    // Events reach a handler in order: once the second is applied, the
    // first is done with, retry included.
    let deadline = Instant::now() + Duration::from_secs(20);
    let cart = loop {
        let cart = cart_api(host.public, "acme", "/carts/counter/c1").await;
        if cart["state"].as_u64() == Some(6) || Instant::now() > deadline {
            break cart;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((cart["version"].as_u64(), cart["state"].as_u64()), (Some(2), Some(6)), "{cart}");
    let metrics = crate::get(host.admin, "/metrics").await.text();
    let repeated = "corral_cart_mutations_total{outcome=\"repeated\",plugin=\"counter\",transport=\"import\"} 1";
    assert!(metrics.contains(repeated), "{metrics}");
    // The event's tenant, not the default one.
    assert_eq!(cart_api(host.public, "", "/carts/counter/c1").await["version"], 0);
}
