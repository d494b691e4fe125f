//! Plugins' outgoing HTTP against real servers on loopback: a granted call
//! succeeds and streams, carrying the caller's traceparent; an ungranted
//! one is denied; a grant for a name never reaches loopback; a redirect is
//! handed to the guest, not followed; a call past the plugin's deadline
//! stops there; HTTPS trusts the operator's CA; a chained call to another
//! plugin carries tenant and request id and counts in both plugins'
//! metrics; and two plugins calling each other stop at the depth limit.
//! A `route`-world plugin calls out through the same grants.

use std::time::Duration;

use corral_fixtures::{HTTP_FETCH, ROUTE_ECHO, ROUTE_FETCH};
use corral_test_support::upstream::Upstream;

use crate::{Host, get, plugins_dir, send};

/// `GET path` on the public listener with extra headers.
async fn get_with(host: &Host, path: &str, headers: &[(&str, &str)]) -> corral_test_support::http::Reply {
    let mut request = corral_test_support::http::request("GET", host.public, path, b"");
    for (name, value) in headers {
        request.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    tokio::time::timeout(Duration::from_secs(20), send(host.public, request)).await.expect("an answer within 20 s")
}

/// The value of one sample of `/metrics`, 0 if absent.
async fn metric(host: &Host, sample: &str) -> f64 {
    let text = get(host.admin, "/metrics").await.text();
    text.lines().find_map(|line| line.strip_prefix(sample)?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn granted_calls_stream_and_carry_the_trace_while_the_rest_are_refused() {
    let upstream = Upstream::start().await;
    let origin = format!("http://127.0.0.1:{}", upstream.addr().port());
    let sidecar = format!(
        "[limits]\ntimeout_ms = 1500\n[http]\nallowed_hosts = [\"{origin}\", \"http://localhost:{}\"]\n",
        upstream.addr().port()
    );
    let plugins = plugins_dir(&[("fetch", HTTP_FETCH)], &[("fetch", &sidecar)]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let hello = get_with(&host, &format!("/fetch/fetch?url={origin}/hello"), &[("traceparent", traceparent)]).await;
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello from upstream"));
    let sent = upstream.seen().pop().unwrap();
    let arrived = sent.get("traceparent").unwrap().to_str().unwrap().to_string();
    assert!(arrived.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "the caller's trace goes on: {arrived}");

    // 2 MiB streamed through the guest, chunk by chunk, whole.
    let streamed = get_with(&host, &format!("/fetch/fetch?url={origin}/stream?kib=2048"), &[]).await;
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.body.len(), 2048 * 1024);
    assert!(streamed.body.iter().all(|b| *b == b'u'));

    // Not granted: the guest gets HTTP-request-denied; nothing leaves.
    let before = upstream.seen().len();
    let other = format!("http://127.0.0.2:{}", upstream.addr().port());
    let denied = get_with(&host, &format!("/fetch/fetch?url={other}/hello"), &[]).await;
    assert_eq!((denied.status, denied.text().as_str()), (502, "error: ErrorCode::HttpRequestDenied"));
    // Denials share one label: a guest cannot mint metric series.
    let sample = "corral_outbound_requests_total{destination=\"(not granted)\",outcome=\"denied\",plugin=\"fetch\"}";
    assert_eq!(metric(&host, sample).await, 1.0);

    // A grant for a *name* never reaches a loopback address, even when
    // the name resolves to one.
    let by_name = format!("http://localhost:{}/hello", upstream.addr().port());
    let prohibited = get_with(&host, &format!("/fetch/fetch?url={by_name}"), &[]).await;
    assert_eq!((prohibited.status, prohibited.text().as_str()), (502, "error: ErrorCode::DestinationIpProhibited"));

    // A redirect comes back to the guest as it is; where it points is
    // checked like any other request (and is not granted here).
    let redirect = format!("/fetch/fetch?url={origin}/redirect?to={other}/hello");
    let redirected = get_with(&host, &redirect, &[]).await;
    assert_eq!(redirected.status, 302, "{}", redirected.text());
    assert_eq!(upstream.seen().len(), before + 1, "only the redirecting request reached the upstream");

    // An upstream slower than the plugin's deadline: the call ends at the
    // deadline (504), not when the upstream answers 30 s later.
    let slow = get_with(&host, &format!("/fetch/fetch?url={origin}/slow"), &[]).await;
    assert_eq!(slow.status, 504, "{}", slow.text());

    // The operator sees what the plugin was granted.
    let listed = get(host.admin, "/plugins").await.json();
    assert_eq!(listed[0]["http_grants"]["allowed_hosts"][0], origin.as_str(), "{listed}");

    let ok = format!("corral_outbound_requests_total{{destination=\"{origin}\",outcome=\"ok\",plugin=\"fetch\"}}");
    assert_eq!(metric(&host, &ok).await, 3.0, "hello, stream, redirect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_reaches_a_server_whose_ca_the_operator_trusts_and_no_other() {
    let upstream = Upstream::start_tls().await;
    let origin = format!("https://127.0.0.1:{}", upstream.addr().port());
    let sidecar = format!("[http]\nallowed_hosts = [\"{origin}\"]\n");
    let plugins = plugins_dir(&[("fetch", HTTP_FETCH)], &[("fetch", &sidecar)]);
    let certs = tempfile::tempdir().unwrap();
    let ca = certs.path().join("upstream-ca.pem");
    std::fs::write(&ca, upstream.ca_pem()).unwrap();

    let data = tempfile::tempdir().unwrap();
    let trusting = Host::start_with(plugins.path(), data.path(), |config| config.outbound_ca = Some(ca.clone()));
    let hello = get_with(&trusting, &format!("/fetch/fetch?url={origin}/hello"), &[]).await;
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello from upstream"));
    drop(trusting);

    let data = tempfile::tempdir().unwrap();
    let system_roots_only = Host::start(plugins.path(), data.path());
    let refused = get_with(&system_roots_only, &format!("/fetch/fetch?url={origin}/hello"), &[]).await;
    assert_eq!((refused.status, refused.text().as_str()), (502, "error: ErrorCode::TlsCertificateError"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chained_call_keeps_tenant_and_request_id_and_a_loop_stops_at_the_depth_limit() {
    let plugins = plugins_dir(
        &[("fetch", HTTP_FETCH), ("echo", ROUTE_ECHO), ("ping", HTTP_FETCH), ("pong", HTTP_FETCH)],
        &[
            ("fetch", "[http]\nplugins = [\"echo\"]\n"),
            ("ping", "[config]\nNEXT = \"pong\"\n[http]\nplugins = [\"pong\"]\n"),
            ("pong", "[config]\nNEXT = \"ping\"\n[http]\nplugins = [\"ping\"]\n"),
        ],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());

    let headers = [("x-corral-tenant", "acme"), ("x-request-id", "req-42"), ("x-corral-caller", "forged")];
    let chained = get_with(&host, "/fetch/fetch?url=http://echo.plugin/echo/a/b", &headers).await;
    assert_eq!(chained.status, 200, "{}", chained.text());
    let seen = chained.json();
    let header = |name: &str| {
        seen["headers"].as_array().unwrap().iter().find(|h| h[0] == name).map(|h| h[1].as_str().unwrap().to_string())
    };
    assert_eq!(header("x-corral-tenant").as_deref(), Some("acme"), "{seen}");
    assert_eq!(header("x-request-id").as_deref(), Some("req-42"), "{seen}");
    assert_eq!(header("x-corral-caller").as_deref(), Some("fetch"), "set by the host, not the guest: {seen}");
    assert_eq!(seen["path"], "/echo/a/b");
    assert_eq!(metric(&host, "corral_plugin_calls_total{plugin=\"echo\"}").await, 1.0);
    assert_eq!(metric(&host, "corral_plugin_calls_total{plugin=\"fetch\"}").await, 1.0);
    let chained_sample = "corral_outbound_requests_total{destination=\"echo.plugin\",outcome=\"ok\",plugin=\"fetch\"}";
    assert_eq!(metric(&host, chained_sample).await, 1.0);

    // Only the granted plugin: `ping` is served here, but not to `fetch`.
    let denied = get_with(&host, "/fetch/fetch?url=http://ping.plugin/ping/bounce", &[]).await;
    assert_eq!((denied.status, denied.text().as_str()), (502, "error: ErrorCode::HttpRequestDenied"));

    // ping → pong → ping → …: the host answers the call past the limit 508,
    // and each plugin passes that back up.
    let looped = get_with(&host, "/ping/bounce", &[]).await;
    assert_eq!(looped.status, 508, "{}", looped.text());
    let error = looped.json();
    assert_eq!(error["error"], "call_depth", "{error}");
    assert!(error["message"].as_str().unwrap().contains("past the limit of 8 nested plugin calls"), "{error}");
    let calls = metric(&host, "corral_plugin_calls_total{plugin=\"ping\"}").await
        + metric(&host, "corral_plugin_calls_total{plugin=\"pong\"}").await;
    assert_eq!(calls, 9.0, "the public call and eight nested ones");
}

/// Outbound calls are not only for `wasi:http` components: a plugin of the
/// `route` world imports `wasi:http/outgoing-handler` too, and its requests
/// pass the same grant check and are counted the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_route_world_plugin_calls_out_through_the_same_grants() {
    let upstream = Upstream::start().await;
    let origin = format!("http://127.0.0.1:{}", upstream.addr().port());
    let sidecar = format!("[http]\nallowed_hosts = [\"{origin}\"]\n");
    let plugins = plugins_dir(&[("relay", ROUTE_FETCH)], &[("relay", &sidecar)]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());

    let hello = get_with(&host, &format!("/relay?url={origin}/hello"), &[]).await;
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello from upstream"));
    assert_eq!(upstream.seen().len(), 1);

    let other = format!("http://127.0.0.2:{}", upstream.addr().port());
    let denied = get_with(&host, &format!("/relay?url={other}/hello"), &[]).await;
    assert_eq!((denied.status, denied.text().as_str()), (502, "error: ErrorCode::HttpRequestDenied"));
    assert_eq!(upstream.seen().len(), 1, "nothing left for the ungranted destination");

    let ok = format!("corral_outbound_requests_total{{destination=\"{origin}\",outcome=\"ok\",plugin=\"relay\"}}");
    assert_eq!(metric(&host, &ok).await, 1.0);
    let refused = "corral_outbound_requests_total{destination=\"(not granted)\",outcome=\"denied\",plugin=\"relay\"}";
    assert_eq!(metric(&host, refused).await, 1.0);
}

/// A listener whose accept queue is full: a new connection to it is never
/// answered (the kernel drops its SYN), as with a host that has gone dark.
/// Returns its address, and the listener and connections that fill it, to
/// hold for the test's length.
async fn unanswering() -> (std::net::SocketAddr, tokio::net::TcpListener, Vec<tokio::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(error)) => panic!("connecting to the filling listener: {error}"),
            Err(_) => return (addr, listener, held),
        }
    }
    panic!("the accept queue of a listen(1) socket never filled");
}

/// The guest's own request options apply within the host's bounds: its
/// connect timeout ends a connection that is never answered, and its
/// between-bytes timeout a body that goes quiet — each well before the
/// plugin's deadline and the host's own 10 s connect bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_guests_connect_and_between_bytes_timeouts_apply() {
    let upstream = Upstream::start().await;
    let origin = format!("http://127.0.0.1:{}", upstream.addr().port());
    let (dark, _listener, _held) = unanswering().await;
    let dark = format!("http://{dark}");
    let sidecar = format!("[limits]\ntimeout_ms = 20000\n[http]\nallowed_hosts = [\"{origin}\", \"{dark}\"]\n");
    let plugins = plugins_dir(&[("relay", ROUTE_FETCH)], &[("relay", &sidecar)]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());

    let started = std::time::Instant::now();
    let connect = get_with(&host, &format!("/relay?connect_ms=300&url={dark}/hello"), &[]).await;
    assert_eq!((connect.status, connect.text().as_str()), (502, "error: ErrorCode::ConnectionTimeout"));
    assert!(started.elapsed() < Duration::from_secs(5), "ended by the guest's 300 ms: {:?}", started.elapsed());

    let started = std::time::Instant::now();
    let quiet = get_with(&host, &format!("/relay?between_ms=300&url={origin}/stall"), &[]).await;
    assert_eq!(quiet.status, 502, "{}", quiet.text());
    assert!(quiet.text().contains("connection read timeout"), "{}", quiet.text());
    assert!(started.elapsed() < Duration::from_secs(5), "ended by the guest's 300 ms: {:?}", started.elapsed());

    // A generous between-bytes timeout leaves a body that keeps coming alone.
    let patient = get_with(&host, &format!("/relay?between_ms=60000&url={origin}/hello"), &[]).await;
    assert_eq!((patient.status, patient.text().as_str()), (200, "hello from upstream"));
}
