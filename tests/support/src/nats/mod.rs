//! JetStream servers for tests: [`NatsCluster::start`] runs one server or a
//! cluster of several on free loopback ports, each from a config file the
//! harness writes, with its own store dir in a temp dir.
//!
//! Servers fsync every write (`sync_interval: always`, so a killed server
//! loses nothing it acknowledged) and accept 1000 open atomic batches per
//! stream instead of 50, so tests can run many concurrent batches.
//!
//! No server outlives its test: `Drop` kills them by pid, and a small
//! watchdog process kills them (and removes the temp dir) once the test
//! process is gone, which covers clusters kept in a `static` (never
//! dropped) and test binaries that abort.

mod config;
mod install;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use install::{NATS_SERVER_VERSION, SERVER_OVERRIDE_ENV, server_path};

/// How long a server may take to report healthy before the harness gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The name every test cluster uses; clusters of different tests never meet
/// because their routes name only their own ports.
const CLUSTER_NAME: &str = "corral-test";

/// One server's ports and files; the ports and store dir survive restarts.
struct Node {
    name: String,
    client_port: u16,
    http_port: u16,
    config: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// A running set of `nats-server` processes with JetStream enabled.
pub struct NatsCluster {
    nodes: Vec<Node>,
    watchdog: Option<Child>,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `n` servers (1 for a single server, 3 for a cluster that
    /// survives one server down) and returns once every one reports healthy
    /// with JetStream current.
    ///
    /// # Panics
    ///
    /// When `n` is 0, when nats-server cannot be installed, or when a
    /// server does not come up within 30 s (the message holds its log).
    pub fn start(n: usize) -> NatsCluster {
        NatsCluster::start_without(n, None)
    }

    /// Like [`NatsCluster::start`], but server `down` is configured and
    /// never started, as if it had not booted yet: the others do not know
    /// it, so they cannot place replicas on it until
    /// [`NatsCluster::restart`] starts it.
    ///
    /// # Panics
    ///
    /// As [`NatsCluster::start`]; also when the rest cannot form a quorum.
    pub fn start_without(n: usize, down: Option<usize>) -> NatsCluster {
        assert!(n > 0, "a cluster needs at least one server");
        let binary = server_path();
        let dir = match tempfile::Builder::new().prefix("corral-nats-").tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("cannot create a temp dir for nats-server: {e}"),
        };
        let ports = free_ports(3 * n);
        let route_ports: Vec<u16> = (0..n).map(|i| ports[3 * i + 1]).collect();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("n{i}");
            let peers: Vec<u16> = route_ports.iter().copied().filter(|&port| port != route_ports[i]).collect();
            let store = dir.path().join(&name);
            let config = dir.path().join(format!("{name}.conf"));
            let log = dir.path().join(format!("{name}.log"));
            let text = config::render(&config::ServerConfig {
                name: &name,
                cluster: CLUSTER_NAME,
                client_port: ports[3 * i],
                route_port: route_ports[i],
                http_port: ports[3 * i + 2],
                store: &store,
                log: &log,
                peers: &peers,
                clustered: n > 1,
            });
            write_file(&config, &text);
            nodes.push(Node {
                name,
                client_port: ports[3 * i],
                http_port: ports[3 * i + 2],
                config,
                log,
                process: None,
            });
        }
        let mut cluster = NatsCluster { nodes, watchdog: None, dir };
        cluster.watchdog = Some(spawn_watchdog(cluster.dir.path()));
        let up: Vec<usize> = (0..n).filter(|&i| Some(i) != down).collect();
        assert!(2 * up.len() > n, "{} of {n} servers cannot elect a leader", up.len());
        for &i in &up {
            cluster.spawn(i, &binary);
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for &i in &up {
            cluster.wait_healthy(i, deadline);
        }
        cluster
    }

    /// Client URLs, `nats://127.0.0.1:PORT`, in server order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| format!("nats://127.0.0.1:{}", node.client_port)).collect()
    }

    /// The client address of server `i` (for a [`TcpProxy`](crate::proxy::TcpProxy)).
    pub fn client_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[i].client_port))
    }

    /// The process id of server `i`, `None` while it is killed.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].process.as_ref().map(Child::id)
    }

    /// Kills server `i` with SIGKILL (no shutdown, no flush) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].process.take() {
            // Already exited is fine: the point is that it is gone.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.write_pids();
    }

    /// Starts server `i` again on the same ports with the same store dir
    /// (killing it first if it still runs) and waits until it is healthy,
    /// i.e. caught up with the cluster.
    ///
    /// # Panics
    ///
    /// When it does not come up within 30 s.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i, &server_path());
        self.wait_healthy(i, Instant::now() + READY_TIMEOUT);
    }

    /// Whether server `i` answers its health check now (JetStream current).
    pub fn is_healthy(&self, i: usize) -> bool {
        http_status(self.nodes[i].http_port, "/healthz") == Some(200)
    }

    /// The body of server `i`'s monitoring endpoint `path` (e.g.
    /// `/jsz?...`), `None` when it does not answer.
    pub fn monitor(&self, i: usize, path: &str) -> Option<String> {
        let response = http_get(self.nodes[i].http_port, path)?;
        Some(response.split_once("\r\n\r\n")?.1.to_string())
    }

    fn spawn(&mut self, i: usize, binary: &Path) {
        let node = &mut self.nodes[i];
        let child = Command::new(binary)
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => node.process = Some(child),
            Err(e) => panic!("cannot start {} for server {}: {e}", binary.display(), node.name),
        }
        self.write_pids();
    }

    fn wait_healthy(&mut self, i: usize, deadline: Instant) {
        let mut pause = Duration::from_millis(5);
        loop {
            if self.is_healthy(i) {
                return;
            }
            let node = &mut self.nodes[i];
            let exited = node.process.as_mut().and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let why = match exited {
                    Some(status) => format!("exited with {status}"),
                    None => format!("not healthy after {READY_TIMEOUT:?}"),
                };
                panic!("nats-server {} (port {}) {why}; log:\n{}", node.name, node.client_port, log_tail(&node.log));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Writes the live pids for the watchdog (atomically, by rename).
    fn write_pids(&self) {
        let pids: Vec<String> =
            self.nodes.iter().filter_map(|node| node.process.as_ref().map(|c| c.id().to_string())).collect();
        let temp = self.dir.path().join("pids.tmp");
        write_file(&temp, &pids.join(" "));
        if let Err(e) = fs::rename(&temp, self.dir.path().join("pids")) {
            panic!("cannot write the pid file in {}: {e}", self.dir.path().display());
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if let Some(mut child) = self.nodes[i].process.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// A shell that waits for this test process to end, then kills the servers
/// listed in `DIR/pids` and removes `DIR`.
fn spawn_watchdog(dir: &Path) -> Child {
    const SCRIPT: &str = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
kill -9 $(cat "$2/pids" 2>/dev/null) 2>/dev/null
rm -rf "$2""#;
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("nats-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => child,
        Err(e) => panic!("cannot start the nats-server watchdog (sh): {e}"),
    }
}

/// `count` distinct free loopback ports. They are free when returned and
/// are taken by the servers right after; another process could take one
/// in between, which would show as a server that does not start.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(e) => panic!("cannot bind a free loopback port: {e}"),
        })
        .collect();
    listeners
        .iter()
        .map(|listener| match listener.local_addr() {
            Ok(addr) => addr.port(),
            Err(e) => panic!("cannot read a bound port: {e}"),
        })
        .collect()
}

/// The status code of `GET path` on the monitoring port, `None` when the
/// server does not answer (yet).
fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path)?.split(' ').nth(1)?.parse().ok()
}

/// The whole HTTP/1.0 response (status line, headers, body) to a GET.
fn http_get(port: u16, path: &str) -> Option<String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn write_file(path: &Path, text: &str) {
    if let Err(e) = fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
