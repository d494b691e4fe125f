//! HTTP throughput of the real server, each beside its baseline in the same
//! run, driven by `wrk` over loopback:
//!
//! - a native hyper hello (the limit) on the same server setup (hyper-util's
//!   auto builder, one task per connection);
//! - the hello route plugin through `host run` (a fresh instance per request);
//! - the same for the standard wasi:http hello component;
//! - the hello route written in JavaScript and in Python (built by
//!   `cargo xtask guests-polyglot`; `just bench-http` runs it first), and
//!   the same hello on the SDKs of `sdk/js` and `sdk/python` (`route-sdk`:
//!   each SDK's cost per call over the raw bindings, fresh and warm, on
//!   hosts serving both, measured in turns three times and the median ratio
//!   taken: one after the other, the machine's drift alone moved the ratio
//!   by 0.3);
//! - the Rust, JavaScript and Python routes again on a second host whose
//!   sidecars turn warm instances on (`[instances] reuse = true`), beside
//!   what their authors would run instead: Node.js's own `http` server and
//!   a plain Python asyncio server answering the same hello;
//! - the hello route again with traces exported (OpenTelemetry over OTLP/gRPC
//!   to a collector in this process, every request sampled): the first
//!   route figure is with traces off, which must cost nothing.
//!
//! Run with `just bench-http` (needs `wrk`: `apt-get install wrk`).
//! `BENCH_SECONDS` and `BENCH_CONNECTIONS` tune the load.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn wrk(url: &str) -> Load {
    let seconds = std::env::var("BENCH_SECONDS").unwrap_or_else(|_| "10".into());
    let connections = std::env::var("BENCH_CONNECTIONS").unwrap_or_else(|_| "32".into());
    let output = Command::new("wrk")
        .args(["-t", "1", "-c", &connections, "-d", &format!("{seconds}s"), "--latency", url])
        .output()
        .expect("running wrk (install it: apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let number = |prefix: &str| -> Option<&str> {
        text.lines().map(str::trim).find(|l| l.starts_with(prefix)).and_then(|l| l.split_whitespace().nth(1))
    };
    let millis = |value: &str| -> f64 {
        let (digits, unit): (String, String) = value.chars().partition(|c| c.is_ascii_digit() || *c == '.');
        let n: f64 = digits.parse().unwrap_or(f64::NAN);
        match unit.as_str() {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => f64::NAN,
        }
    };
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Load {
        requests_per_second: number("Requests/sec:").and_then(|n| n.parse().ok()).unwrap_or(f64::NAN),
        p50_ms: number("50%").map(millis).unwrap_or(f64::NAN),
        p99_ms: number("99%").map(millis).unwrap_or(f64::NAN),
        errors,
    }
}

/// A host serving `plugins` (file stem, component), with warm instances or
/// not; with its plugins and data folders.
fn host_of(
    plugins: &[(&str, &str)],
    warm: bool,
) -> (corral_server::serve::Detached, tempfile::TempDir, tempfile::TempDir) {
    let (dir, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (stem, component) in plugins {
        std::fs::copy(component, dir.path().join(format!("{stem}.wasm"))).unwrap();
        if warm {
            std::fs::write(dir.path().join(format!("{stem}.toml")), "[instances]\nreuse = true\n").unwrap();
        }
    }
    let config = corral_server::config::ServerConfig::new(dir.path().to_path_buf(), data.path().to_path_buf());
    (corral_server::serve::Detached::start(config).unwrap(), dir, data)
}

/// How many times [`paired`] measures each side.
const ROUNDS: usize = 3;

/// `raw` and `sdk` measured in turns, [`ROUNDS`] times each, so the
/// machine's drift falls on both alike: the median load of each and the
/// median of the rounds' ratios (sdk / raw).
fn paired(raw: &str, sdk: &str) -> (Load, Load, f64) {
    let (mut raws, mut sdks, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (a, b) = (wrk(raw), wrk(sdk));
        ratios.push(b.requests_per_second / a.requests_per_second);
        raws.push(a);
        sdks.push(b);
    }
    ratios.sort_by(f64::total_cmp);
    let median = |mut loads: Vec<Load>| {
        loads.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
        loads.swap_remove(ROUNDS / 2)
    };
    (median(raws), median(sdks), ratios[ROUNDS / 2])
}

fn print(name: &str, load: &Load) {
    println!(
        "{name:<34} {:>10.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms   non-2xx {}",
        load.requests_per_second, load.p50_ms, load.p99_ms, load.errors
    );
}

/// The native baseline: hyper answering "hello, world" with the host's
/// server setup.
async fn native_hello() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    let mut response = http::Response::new(Full::new(Bytes::from_static(b"hello, world")));
                    response
                        .headers_mut()
                        .insert("content-type", http::HeaderValue::from_static("text/plain; charset=utf-8"));
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// `wasmtime serve` on the same component, if a `wasmtime` binary is given
/// (`WASMTIME`) or on the PATH: the reference implementation of wasi:http.
fn wasmtime_serve(component: &str) -> Option<(std::process::Child, SocketAddr)> {
    let binary = std::env::var("WASMTIME").unwrap_or_else(|_| "wasmtime".into());
    let free = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = free.local_addr().ok()?;
    drop(free);
    let child = Command::new(binary)
        .args(["serve", "-S", "cli=y", "--addr", &addr.to_string(), component])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    listening(child, addr)
}

/// Node's own `http` server answering the same hello: what a JavaScript
/// author would run instead.
const NODE_HELLO: &str = "require('http').createServer((q, s) => { \
    s.writeHead(200, {'content-type': 'text/plain; charset=utf-8'}); s.end('hello, world'); \
}).listen(PORT, '127.0.0.1');";

/// A plain asyncio server answering the same hello (keep-alive, no
/// framework): what a Python author would run instead.
const PYTHON_HELLO: &str = r#"
import asyncio
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 12\r\n\r\nhello, world"
class Hello(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)
async def main():
    server = await asyncio.get_running_loop().create_server(Hello, "127.0.0.1", PORT)
    await server.serve_forever()
asyncio.run(main())
"#;

/// `program` running `source` (its `PORT` replaced by a free port), once
/// it listens; none if the program is not installed.
fn own_server(program: &str, flag: &str, source: &str) -> Option<(std::process::Child, SocketAddr)> {
    let free = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = free.local_addr().ok()?;
    drop(free);
    let child = Command::new(program)
        .args([flag, &source.replace("PORT", &addr.port().to_string())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    listening(child, addr)
}

/// `child` once `addr` accepts connections (at most a minute).
fn listening(mut child: std::process::Child, addr: SocketAddr) -> Option<(std::process::Child, SocketAddr)> {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some((child, addr))
}

/// Load on `server` (then stopped), if it started.
fn load_on(server: Option<(std::process::Child, SocketAddr)>, path: &str) -> Option<Load> {
    let (mut child, addr) = server?;
    let load = wrk(&format!("http://{addr}{path}"));
    let _ = child.kill();
    let _ = child.wait();
    Some(load)
}

fn main() {
    if Command::new("wrk").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        eprintln!("wrk is not installed: apt-get install wrk (just bench-http does it)");
        std::process::exit(1);
    }
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(corral_fixtures::ROUTE_HELLO, plugins.path().join("hello.wasm")).unwrap();
    std::fs::copy(corral_fixtures::HTTP_HELLO, plugins.path().join("greeter.wasm")).unwrap();
    // The same hello route in JavaScript and Python (built by `cargo xtask guests-polyglot`).
    std::fs::copy(corral_fixtures::JS_ROUTE_HELLO.path(), plugins.path().join("js-hello.wasm")).unwrap();
    std::fs::copy(corral_fixtures::PYTHON_ROUTE_HELLO.path(), plugins.path().join("python-hello.wasm")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = corral_server::config::ServerConfig::new(plugins.path().to_path_buf(), data.path().to_path_buf());
    let host = corral_server::serve::Detached::start(config).unwrap();
    let public = host.public_addr();
    // The same routes on a host that reuses warm instances.
    let warm_plugins = tempfile::tempdir().unwrap();
    for (name, file) in [
        ("hello", corral_fixtures::ROUTE_HELLO.to_string()),
        ("js-hello", corral_fixtures::JS_ROUTE_HELLO.path().to_string()),
        ("python-hello", corral_fixtures::PYTHON_ROUTE_HELLO.path().to_string()),
    ] {
        std::fs::copy(file, warm_plugins.path().join(format!("{name}.wasm"))).unwrap();
        std::fs::write(warm_plugins.path().join(format!("{name}.toml")), "[instances]\nreuse = true\n").unwrap();
    }
    let warm_data = tempfile::tempdir().unwrap();
    let warm_config =
        corral_server::config::ServerConfig::new(warm_plugins.path().to_path_buf(), warm_data.path().to_path_buf());
    let warm_host = corral_server::serve::Detached::start(warm_config).unwrap();
    let warm = warm_host.public_addr();

    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let native = tokio.block_on(native_hello());

    println!("HTTP benchmark: wrk, 1 thread, loopback; same machine runs load and server\n");
    let baseline = wrk(&format!("http://{native}/hello"));
    print("native hyper hello (the limit)", &baseline);
    let route = wrk(&format!("http://{public}/hello"));
    print("hello route plugin (fresh instance)", &route);
    let wasi_http = wrk(&format!("http://{public}/greeter/hello"));
    print("wasi:http hello (fresh instance)", &wasi_http);
    let js = wrk(&format!("http://{public}/js/hello/bench"));
    print("hello route in JavaScript", &js);
    let python = wrk(&format!("http://{public}/py/hello/bench"));
    print("hello route in Python", &python);
    let route_warm = wrk(&format!("http://{warm}/hello"));
    print("hello route plugin (warm instances)", &route_warm);
    let js_warm = wrk(&format!("http://{warm}/js/hello/bench"));
    print("hello route in JavaScript (warm instances)", &js_warm);
    let python_warm = wrk(&format!("http://{warm}/py/hello/bench"));
    print("hello route in Python (warm instances)", &python_warm);
    // Each SDK beside the raw bindings on hosts of their own (both SDK
    // fixtures serve `/sdk/hello/:name`), in turns.
    let mut sdk_ratios = Vec::new();
    for (language, raw, sdk, path) in [
        ("JavaScript", corral_fixtures::JS_ROUTE_HELLO.path(), corral_fixtures::JS_ROUTE_SDK.path(), "/js/hello/bench"),
        (
            "Python",
            corral_fixtures::PYTHON_ROUTE_HELLO.path(),
            corral_fixtures::PYTHON_ROUTE_SDK.path(),
            "/py/hello/bench",
        ),
    ] {
        for warm in [false, true] {
            let host = host_of(&[("raw", raw), ("sdk", sdk)], warm);
            let at = host.0.public_addr();
            let (raw_load, sdk_load, ratio) =
                paired(&format!("http://{at}{path}"), &format!("http://{at}/sdk/hello/bench"));
            let how = if warm { "warm instances" } else { "fresh" };
            print(&format!("hello in {language}, raw ({how}, median of {ROUNDS})"), &raw_load);
            print(&format!("hello in {language} on the SDK ({how})"), &sdk_load);
            sdk_ratios.push(format!("{language} {how} {ratio:.2}x"));
        }
    }
    drop(warm_host);
    let node = load_on(own_server("node", "-e", NODE_HELLO), "/hello");
    let asyncio = load_on(own_server("python3", "-c", PYTHON_HELLO), "/hello");
    for (what, load) in [("Node.js http server (what JS authors run)", &node), ("Python asyncio server", &asyncio)] {
        match load {
            Some(load) => print(what, load),
            None => println!("{what}: not installed"),
        }
    }
    let reference = load_on(wasmtime_serve(corral_fixtures::HTTP_HELLO), "/greeter/hello");
    if let Some(load) = &reference {
        print("wasmtime serve, same component", load);
    }
    // Last, as installing the exporter cannot be undone in this process.
    let collector = corral_test_support::otlp::Collector::counting();
    let exporter = tokio.block_on(async {
        corral_server::traces::Exporter::start(Some(&collector.endpoint()), None).expect("starting the trace exporter")
    });
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        tracing_subscriber::registry().with(exporter.layer()).init();
    }
    corral_server::traces::enable();
    let traced = wrk(&format!("http://{public}/hello"));
    print("hello route plugin, traces exported", &traced);
    tokio.block_on(exporter.shutdown());
    let native_again = wrk(&format!("http://{native}/hello"));
    print("native hyper hello, again", &native_again);
    println!("spans the collector received: {}", collector.count());
    println!();
    println!(
        "traced route / native: {:.2}x   traced / untraced route: {:.2}x",
        traced.requests_per_second / baseline.requests_per_second,
        traced.requests_per_second / route.requests_per_second
    );
    println!(
        "route plugin / native: {:.2}x   (target >= 0.3x, stretch 0.5x)",
        route.requests_per_second / baseline.requests_per_second
    );
    println!("wasi:http / native:    {:.2}x", wasi_http.requests_per_second / baseline.requests_per_second);
    println!(
        "JavaScript / native:   {:.3}x   Python / native: {:.3}x",
        js.requests_per_second / baseline.requests_per_second,
        python.requests_per_second / baseline.requests_per_second
    );
    println!(
        "warm / fresh instances: Rust {:.2}x   JavaScript {:.1}x   Python {:.1}x",
        route_warm.requests_per_second / route.requests_per_second,
        js_warm.requests_per_second / js.requests_per_second,
        python_warm.requests_per_second / python.requests_per_second
    );
    println!(
        "SDK / raw bindings, median of {ROUNDS} rounds in turns (goal >= 0.9x: an SDK costs at most 10%): {}",
        sdk_ratios.join("   ")
    );
    if let (Some(node), Some(asyncio)) = (&node, &asyncio) {
        println!(
            "warm JavaScript / Node.js: {:.2}x   warm Python / asyncio: {:.2}x   (goal >= 0.5x each)",
            js_warm.requests_per_second / node.requests_per_second,
            python_warm.requests_per_second / asyncio.requests_per_second
        );
    }
    match &reference {
        Some(load) => println!(
            "wasi:http on corral / on wasmtime serve: {:.2}x   (target > 1x)",
            wasi_http.requests_per_second / load.requests_per_second
        ),
        None => println!("(set WASMTIME=/path/to/wasmtime to compare with `wasmtime serve`)"),
    }
    drop(host);
}
