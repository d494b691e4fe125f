//! A `host run` process for benchmarks, on free loopback ports.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The running host, killed when dropped.
pub(crate) struct Spawned {
    child: Child,
    /// The public listener.
    pub(crate) public: SocketAddr,
}

impl Spawned {
    /// Starts the release `host run` on `plugins` with its data in `data`.
    pub(crate) fn start(plugins: &Path, data: &Path) -> Spawned {
        let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
            .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "warn"])
            .arg("--plugins")
            .arg(plugins)
            .arg("--data-dir")
            .arg(data)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let public = line.split("http://").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        Spawned { child, public }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
