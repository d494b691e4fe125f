//! Tests of the `host` binary, run as a user would: real processes, real
//! sockets on 127.0.0.1, real LMDB in temporary folders. What needs a
//! process — its command line and output, signals, `kill -9` — is tested
//! here; the server itself is tested in-process in `corral-server`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod client;
mod cluster;
mod cluster_carts;
mod cluster_rollouts;
mod dev;
mod inspect;
mod logs;
mod process;
mod scaffold;
mod testkit;
mod traces;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One JetStream cluster of three servers for the whole test binary; each
/// test has its own Corral cluster name on it.
pub(crate) fn nats() -> &'static corral_test_support::nats::NatsCluster {
    static NATS: std::sync::OnceLock<corral_test_support::nats::NatsCluster> = std::sync::OnceLock::new();
    NATS.get_or_init(|| corral_test_support::nats::NatsCluster::start(3))
}

/// Shared by every test so each component is compiled once per run.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corral-test-cache")
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
