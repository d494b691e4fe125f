//! Slow and greedy clients against real sockets: a client that trickles
//! its request head, or leaves a keep-alive connection idle, is
//! disconnected after the header timeout while others are served; past
//! the connection cap a new connection gets a 503 that says why, and a
//! freed slot serves again. A streamed response whose guest fails after
//! answering is aborted (no last chunk), never ended as if whole. A
//! stopping host turns not ready first and serves on through its drain
//! delay.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corral_fixtures::ROUTE_HELLO;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{Host, get, plugins_dir};

/// Reads until the server closes the connection; what it sent, or `None`
/// if it was still open after `limit`.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_heads_and_idle_keep_alives_are_cut_at_the_header_timeout() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| {
        c.http.header_read_timeout = Duration::from_millis(600);
    });
    let addr = host.public;

    // Twenty clients trickle a request head one byte at a time.
    let started = Instant::now();
    let trickles: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                for byte in b"GET /hello HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().cycle() {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if started.elapsed() > Duration::from_secs(20) {
                        panic!("a trickling client was never disconnected");
                    }
                }
            })
        })
        .collect();
    // Meanwhile others are served.
    assert_eq!(get(addr, "/hello").await.status, 200);
    for trickle in trickles {
        trickle.await.unwrap();
    }

    // A keep-alive connection left idle after a response is closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(until_closed(&mut idle, Duration::from_secs(10)).await.is_some(), "the idle connection stayed open");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_get_a_503_and_a_freed_slot_serves_again() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| c.http.max_connections = 3);
    let addr: SocketAddr = host.public;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // A whole request on each, so every one is accepted and counted.
        stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut over = TcpStream::connect(addr).await.unwrap();
    let _ = over.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let answer = until_closed(&mut over, Duration::from_secs(10)).await.expect("the refused connection is closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_connections") && answer.contains("--max-connections"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");

    // The slot frees once the server sees the client go.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        let answer = until_closed(&mut stream, Duration::from_secs(10)).await.unwrap_or_default();
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(answer.starts_with(b"HTTP/1.1 503"), "{}", String::from_utf8_lossy(&answer));
        assert!(Instant::now() < deadline, "the freed slot never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_response_whose_guest_fails_after_answering_is_aborted_not_ended() {
    let plugins = plugins_dir(&[("greeter", corral_fixtures::HTTP_HELLO)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let fetch = |path: &'static str| async move {
        let mut stream = TcpStream::connect(host.public).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        until_closed(&mut stream, Duration::from_secs(20)).await.expect("the server closes the connection")
    };
    let whole = fetch("/greeter/stream?kib=64").await;
    assert!(whole.starts_with(b"HTTP/1.1 200"));
    assert!(whole.ends_with(b"\r\n0\r\n\r\n"), "a whole chunked body ends with the last chunk");

    let cut = fetch("/greeter/stream?kib=64&trap").await;
    assert!(cut.starts_with(b"HTTP/1.1 200"), "the head went out before the guest failed");
    assert!(cut.len() > 64 << 10, "what the guest wrote was sent");
    assert!(!cut.ends_with(b"\r\n0\r\n\r\n"), "no last chunk: the client can tell the body is cut");

    let metrics = get(host.admin, "/metrics").await.text();
    let trapped = metrics
        .lines()
        .find(|l| l.starts_with("corral_plugin_errors_total") && l.contains("greeter") && l.contains("trap"));
    assert!(trapped.is_some_and(|l| l.ends_with(" 1")), "the failure is counted: {trapped:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_turns_readiness_off_and_serves_on_through_the_drain_delay() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| c.drain_delay = Duration::from_secs(3));
    let (public, admin) = (host.public, host.admin);
    assert_eq!(get(admin, "/readyz").await.status, 200);
    let stopping = tokio::task::spawn_blocking(move || host.stop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = get(admin, "/readyz").await;
        if ready.status == 503 {
            assert_eq!(ready.json()["draining"], true, "{}", ready.text());
            break;
        }
        assert!(Instant::now() < deadline, "readiness never turned off");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Not ready, yet still serving, and telling clients to reconnect.
    let hello = get(public, "/hello").await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.headers["connection"], "close");
    assert!(!stopping.is_finished(), "the listener waits out the drain delay");
    stopping.await.unwrap();
    assert!(TcpStream::connect(public).await.is_err(), "closed after the drain delay");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_lagging_past_ready_max_lag_turns_readiness_off_until_it_is_gone() {
    // Version 2 of the count projection halts before an `orders.legacy` event.
    let plugins = plugins_dir(&[("count", corral_fixtures::PROJECTION_COUNT_V2)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| c.ready_max_lag = Some(3));
    let admin = host.admin;
    let ready = get(admin, "/readyz").await;
    assert_eq!((ready.status, ready.json()["lagging"].clone()), (200, serde_json::json!([])), "{}", ready.text());
    for topic in ["orders.legacy", "orders.created", "orders.created", "orders.created", "orders.created"] {
        assert_eq!(crate::post(admin, &format!("/events/{topic}"), b"{}").await.status, 200);
    }
    let lagging = crate::eventually(Duration::from_secs(30), "readiness off while the projection lags", || {
        let ready = crate::cluster::futures_block(get(admin, "/readyz"));
        (ready.status == 503).then(|| ready.json())
    })
    .await;
    assert_eq!(lagging["lagging"][0]["projection"], "count", "{lagging}");
    assert!(lagging["lagging"][0]["lag"].as_u64().unwrap() > 3, "{lagging}");
    assert_eq!(lagging["draining"], false, "{lagging}");
    // The halted projection removed, nothing lags: ready again.
    std::fs::remove_file(plugins.path().join("count.wasm")).unwrap();
    crate::eventually(Duration::from_secs(30), "ready again", || {
        (crate::cluster::futures_block(get(admin, "/readyz")).status == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_storage_map_turns_readiness_off_and_is_counted_until_writes_succeed() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| c.storage_map_size = 1 << 20);
    let admin = host.admin;
    assert_eq!(get(admin, "/readyz").await.status, 200);
    let payload = format!("\"{}\"", "x".repeat(60_000)).into_bytes();
    let mut refused = None;
    for _ in 0..100 {
        let reply = crate::post(admin, "/events/bulk.fill", &payload).await;
        if reply.status != 200 {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("100 events of 60 kB never filled a 1 MiB map");
    assert_eq!(refused.status, 503, "{}", refused.text());
    let ready = get(admin, "/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    let storage = ready.json()["storage"].as_str().unwrap().to_string();
    assert!(storage.contains("not writable (map_full)"), "{storage}");
    let metrics = get(admin, "/metrics").await.text();
    let counted = metrics.lines().find(|l| l.starts_with("corral_storage_write_failures_total{kind=\"map_full\"}"));
    assert!(counted.is_some_and(|l| !l.ends_with(" 0")), "{counted:?}");
    // The operator grows the map: the host is ready and takes writes again.
    tokio::task::spawn_blocking(move || host.stop()).await.unwrap();
    let host = Host::start_with(plugins.path(), data.path(), |c| c.storage_map_size = 64 << 20);
    assert_eq!(get(host.admin, "/readyz").await.status, 200);
    assert_eq!(crate::post(host.admin, "/events/bulk.fill", &payload).await.status, 200);
    assert_eq!(get(host.admin, "/readyz").await.status, 200);
}
