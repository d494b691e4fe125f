//! The listeners: the public one (plugins' routes, projection queries, the
//! cart API over HTTP and gRPC) and the admin one.
//!
//! - `respond`: the response body type and the JSON error bodies.
//! - `gateway`: the public request path — route, call, respond;
//!   `internal`: the same for plugins calling plugins in-process.
//! - `views`: `GET /views/...`.
//! - `carts`, `grpc`: the cart API (`/carts/...`, `corral.cart.v1.CartActor`).
//! - `cluster`: the cluster's control plane over gRPC (`corral.cluster.v1.ControlPlane`).
//! - `peers`: forwarding cart calls to their owner over gRPC; `wire`: cart
//!   errors carried across that hop; `peer_auth`: the signature that tells
//!   a peer's call (control plane, forwarded cart call) from a client's.
//! - `admin`: the admin API; `openapi`: the declared schemas and the
//!   OpenAPI document it (and `host schema export`) gives out.
//! - `listener`: accepting connections (HTTP/1.1 and HTTP/2, in clear or
//!   over TLS) until shutdown; `tls`: the certificate, reloaded on change.

pub(crate) mod admin;
pub mod carts;
pub mod cluster;
pub(crate) mod gateway;
pub mod grpc;
pub(crate) mod internal;
pub(crate) mod listener;
pub mod openapi;
pub mod peer_auth;
pub(crate) mod peers;
pub mod respond;
pub mod tls;
pub(crate) mod views;
pub(crate) mod wire;
