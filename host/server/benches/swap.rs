//! Hot-swap latency: the time from a new component landing in the plugins
//! folder (an atomic rename) to the new version answering requests, cold
//! (compiled on arrival) and warm (found in the artifact cache).
//!
//! Run with `just bench-swap` (`cargo bench -p corral-server --bench swap`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "benchmark binary")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

fn version(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET /version HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.rsplit("\r\n\r\n").next().unwrap_or_default().to_string()
}

fn place(dir: &Path, fixture: &str) {
    let staged = dir.join(".versioned.partial");
    std::fs::copy(fixture, &staged).unwrap();
    std::fs::rename(&staged, dir.join("versioned.wasm")).unwrap();
}

fn swap(addr: SocketAddr, dir: &Path, fixture: &str, expected: &str) -> Duration {
    let started = Instant::now();
    place(dir, fixture);
    while version(addr) != expected {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_micros(200));
    }
    started.elapsed()
}

fn main() {
    let plugins = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    place(plugins.path(), corral_fixtures::ROUTE_VERSION_A);
    let config = corral_server::config::ServerConfig::new(plugins.path().to_path_buf(), data.path().to_path_buf());
    let host = corral_server::serve::Detached::start(config).unwrap();
    let public = host.public_addr();
    assert_eq!(version(public), "a");

    let cold = swap(public, plugins.path(), corral_fixtures::ROUTE_VERSION_B, "b");
    let mut warm: Vec<Duration> = (0..20)
        .map(|i| {
            let (fixture, expected) = if i % 2 == 0 {
                (corral_fixtures::ROUTE_VERSION_A, "a")
            } else {
                (corral_fixtures::ROUTE_VERSION_B, "b")
            };
            swap(public, plugins.path(), fixture, expected)
        })
        .collect();
    warm.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("hot swap: file renamed into the plugins folder -> new version answering");
    println!("  cold (compiled on arrival)   {:>8.1} ms", ms(cold));
    println!(
        "  warm (artifact cache hit)    p50 {:>6.1} ms   max {:>6.1} ms   (target < 100 ms)",
        ms(warm[warm.len() / 2]),
        ms(warm[warm.len() - 1])
    );
    println!("  (includes the watcher's 20 ms debounce)");
    drop(host);
}
