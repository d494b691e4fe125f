//! Outgoing HTTP and chained plugin calls, each beside its baseline in
//! the same run: a native hyper client calling a local hello server, a
//! request through Corral to a `wasi:http` plugin that answers on its own,
//! and the same plugin fetching the hello server (so the outbound hop's
//! cost is the difference); and a route reached directly beside the same
//! route reached through another plugin's in-process call.
//!
//! Run with `just bench-outbound`. `BENCH_REQUESTS` sets the sequential
//! calls per case (latency); `BENCH_SECONDS` how long each case runs with
//! `BENCH_CONNECTIONS` concurrent connections (throughput).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corral_fixtures::{HTTP_FETCH, HTTP_HELLO, ROUTE_ECHO};
use corral_server::config::ServerConfig;
use corral_server::serve::Detached;
use corral_test_support::plugins::plugins_dir;
use corral_test_support::upstream::Upstream;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Http = Client<HttpConnector, Empty<Bytes>>;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn call(client: &Http, url: &str) {
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_success(), "{url}: {status} {}", String::from_utf8_lossy(&body));
}

/// p50 and p99 of `requests` sequential calls on one kept-alive connection.
async fn latency(url: &str, requests: u64) -> (Duration, Duration) {
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..requests / 10 {
        call(&client, url).await;
    }
    let mut samples = Vec::with_capacity(requests as usize);
    for _ in 0..requests {
        let started = Instant::now();
        call(&client, url).await;
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.99))
}

/// Calls per second from `connections` clients calling back to back.
async fn throughput(url: &str, connections: u64, seconds: u64) -> f64 {
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(async move {
                let client: Http = Client::builder(TokioExecutor::new()).build_http();
                let mut calls = 0u64;
                while Instant::now() < until {
                    call(&client, &url).await;
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let mut calls = 0;
    for task in tasks {
        calls += task.await.unwrap();
    }
    calls as f64 / seconds as f64
}

fn main() {
    let requests = env("BENCH_REQUESTS", 2000);
    let seconds = env("BENCH_SECONDS", 5);
    let connections = env("BENCH_CONNECTIONS", 16);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let upstream = runtime.block_on(Upstream::start());
    let hello: SocketAddr = upstream.addr();
    let origin = format!("http://127.0.0.1:{}", hello.port());
    let plugins = plugins_dir(
        &[("fetch", HTTP_FETCH), ("hello", HTTP_HELLO), ("echo", ROUTE_ECHO)],
        &[("fetch", &format!("[http]\nallowed_hosts = [\"{origin}\"]\nplugins = [\"echo\"]\n"))],
    );
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(plugins.path().to_path_buf(), data.path().to_path_buf());
    config.watch = false;
    let host = Detached::start(config).unwrap();
    let public = host.public_addr();

    let cases = [
        ("native hyper client -> hello server", format!("{origin}/hello"), None),
        ("corral -> wasi:http plugin (answers itself)", format!("http://{public}/hello/x"), None),
        (
            "corral -> plugin -> outbound -> hello server",
            format!("http://{public}/fetch/fetch?url={origin}/hello"),
            Some(0),
        ),
        ("corral -> route plugin directly", format!("http://{public}/echo/a/b"), None),
        (
            "corral -> plugin -> in-process -> route plugin",
            format!("http://{public}/fetch/fetch?url=http://echo.plugin/echo/a/b"),
            Some(3),
        ),
    ];
    runtime.block_on(async {
        println!("outbound benchmark: {requests} sequential calls per case, then {connections} connections for {seconds} s");
        let mut measured = Vec::new();
        for (what, url, _) in &cases {
            let (p50, p99) = latency(url, requests).await;
            let rate = throughput(url, connections, seconds).await;
            println!(
                "  {what:<48} p50 {:>7.3} ms  p99 {:>7.3} ms  {:>9.0} req/s",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
                rate
            );
            measured.push((p50, rate));
        }
        // Each composite case beside its baseline.
        for (i, (what, _, baseline)) in cases.iter().enumerate() {
            let Some(baseline) = baseline else { continue };
            let (p50, rate) = measured[i];
            let (base_p50, base_rate) = measured[*baseline];
            println!(
                "  {what}: {:.2}x the p50 and {:.2}x the throughput of \"{}\"",
                p50.as_secs_f64() / base_p50.as_secs_f64(),
                rate / base_rate,
                cases[*baseline].0
            );
        }
        let (own, _) = measured[1];
        let (with_hop, _) = measured[2];
        let (native, _) = measured[0];
        println!(
            "  the outbound hop adds {:.3} ms at p50 to a plugin call; the same call from a native client takes {:.3} ms",
            (with_hop.as_secs_f64() - own.as_secs_f64()) * 1e3,
            native.as_secs_f64() * 1e3
        );
    });
    drop(host);
    drop(upstream);
}
