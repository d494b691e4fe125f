//! Tests of the `host` binary, run as a user would: real processes, real
//! sockets on 127.0.0.1, real LMDB in temporary folders.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod carts;
mod carts_import;
mod dev;
mod events;
mod hotswap;
mod inspect;
mod polyglot;
mod projections;
mod scaffold;
mod serve;
mod testkit;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

/// Shared by every test so each component is compiled once per run.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corral-test-cache")
}

/// A plugins folder built from fixtures (file name → fixture path), plus
/// optional sidecars.
pub(crate) fn plugins_dir(components: &[(&str, &str)], sidecars: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, fixture) in components {
        std::fs::copy(fixture, dir.path().join(format!("{name}.wasm"))).unwrap();
    }
    for (name, toml) in sidecars {
        std::fs::write(dir.path().join(format!("{name}.toml")), toml).unwrap();
    }
    dir
}

/// A running `host run`, killed when dropped.
pub(crate) struct Host {
    child: Child,
    pub(crate) public: SocketAddr,
    pub(crate) admin: SocketAddr,
}

impl Host {
    /// Starts `host run` on free loopback ports and waits until it serves.
    pub(crate) fn start(plugins: &Path, data: &Path, extra: &[&str]) -> Host {
        let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
            .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "error"])
            .arg("--plugins")
            .arg(plugins)
            .arg("--data-dir")
            .arg(data)
            .arg("--cache-dir")
            .arg(cache_dir())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting host");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addresses: Vec<SocketAddr> = line
            .split("http://")
            .skip(1)
            .map(|part| part.split([' ', ')']).next().unwrap().trim().parse().unwrap())
            .collect();
        assert_eq!(addresses.len(), 2, "unexpected first line: {line:?}");
        Host { child, public: addresses[0], admin: addresses[1] }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no flush.
    pub(crate) fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "host did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read whole.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one HTTP/1.1 request on a new connection.
pub(crate) async fn send(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply { status: parts.status.as_u16(), headers: parts.headers, body }
}

pub(crate) fn request(method: &str, addr: SocketAddr, path: &str, body: &[u8]) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        // One connection per request, closed after it: thousands of
        // requests must not pile up thousands of idle sockets.
        .header("connection", "close")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, request("GET", addr, path, b"")).await
}

pub(crate) async fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    send(addr, request("POST", addr, path, body)).await
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub(crate) async fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
