//! Tests of the server, in-process: each test starts real hosts with
//! [`serve::Detached`](corral_server::serve::Detached) on free loopback
//! ports — real sockets, real LMDB in temporary folders, real components —
//! and talks to them over HTTP (and gRPC) as a client would. What needs a
//! process of its own (signals, `kill -9`, the command line) is tested in
//! the `host` binary's tests.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod carts;
mod carts_import;
mod cluster;
mod cluster_carts;
mod cluster_rollouts;
mod connections;
mod events;
mod hotswap;
mod outbound;
mod polyglot;
mod projections;
mod properties;
mod queued;
mod schemas;
mod sdk_guests;
mod serve;
mod tenants;
mod tls;
mod view_queries;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub(crate) use corral_test_support::http::{Reply, get, post, request, send};
pub(crate) use corral_test_support::plugins::plugins_dir;
pub(crate) use corral_test_support::wait::eventually;

use corral_server::config::ServerConfig;
use corral_server::serve::Detached;
use corral_storage::Storage;

/// Shared by every test so each component is compiled once per run.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corral-test-cache")
}

/// A running host, stopped gracefully when dropped.
pub(crate) struct Host {
    server: Detached,
    pub(crate) public: SocketAddr,
    pub(crate) admin: SocketAddr,
}

impl Host {
    /// Serves the plugins in `plugins` with its data in `data`, with the
    /// defaults of `host run`.
    pub(crate) fn start(plugins: &Path, data: &Path) -> Host {
        Host::start_with(plugins, data, |_| {})
    }

    /// Like [`Host::start`], with settings changed by `configure` (as flags
    /// of `host run` would).
    pub(crate) fn start_with(plugins: &Path, data: &Path, configure: impl FnOnce(&mut ServerConfig)) -> Host {
        let mut config = ServerConfig::new(plugins.to_path_buf(), data.to_path_buf());
        config.runtime.cache_dir = Some(cache_dir());
        // Several hosts share one test process: a smaller instance pool
        // each, still far above what any test runs at once.
        config.runtime.max_instances = 256;
        configure(&mut config);
        let server = Detached::start(config).expect("starting the server");
        let (public, admin) = (server.public_addr(), server.admin_addr());
        Host { server, public, admin }
    }

    /// The running host's storage (LMDB opens a folder once per process).
    /// Drop clones before stopping the host.
    pub(crate) fn storage(&self) -> Storage {
        self.server.storage().cloned().expect("a running host has storage")
    }

    /// Stops gracefully: in-flight requests finish, storage is flushed and
    /// closed (the data folder can be served again).
    pub(crate) fn stop(self) {
        self.server.stop().expect("stopping the server");
    }
}
