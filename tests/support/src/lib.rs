//! Test harness for Corral: real `nats-server` processes on loopback and a
//! TCP proxy that can cut a connection, so cluster tests exercise JetStream
//! itself rather than a fake; and the small tools every test of the host
//! uses (an HTTP client, plugins folders, polling).
//!
//! The NATS harness and the proxy are synchronous (std threads and
//! processes), so they work from plain `#[test]`s and from async tests alike. Calls that wait for a
//! server (`NatsCluster::start`, `restart`) block the calling thread for up
//! to a few seconds: from an async test, use a multi-threaded runtime or
//! `spawn_blocking`.
//!
//! The harness panics with a message naming the cause (what to install,
//! which server did not come up and the tail of its log) instead of
//! returning errors: its callers are tests, where a panic is the failure.
//!
//! # Layout
//!
//! - [`nats::server_path`]: the pinned `nats-server` binary, installed into
//!   `.tools/nats/` on first use (or `CORRAL_NATS_SERVER`).
//! - [`nats::NatsCluster`]: one or more JetStream servers with their own
//!   store dirs, killed and restarted on demand, stopped on drop (and by a
//!   watchdog when the test process ends without dropping them).
//! - [`otlp::Collector`]: an OpenTelemetry collector (OTLP/gRPC traces)
//!   keeping the spans a host exports.
//! - [`proxy::TcpProxy`]: a loopback TCP forwarder with `cut` and `restore`.
//! - [`http`]: one request per connection, read whole ([`http::Reply`]).
//! - [`plugins`]: a temporary plugins folder of components and sidecars.
//! - [`upstream::Upstream`]: an HTTP(S) server on loopback for plugins'
//!   outgoing requests to reach, keeping the headers it got.
//! - [`wait`]: [`wait::eventually`], polling until a condition holds.

pub mod http;
pub mod nats;
pub mod otlp;
pub mod plugins;
pub mod proxy;
pub mod upstream;
pub mod wait;
