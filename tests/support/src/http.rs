//! A small HTTP/1.1 client for tests: one request per connection, the
//! response read whole.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

/// A response, read whole.
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as text (lossily).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics, quoting the body, if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request on a new connection; panics if the exchange fails.
pub async fn send(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> Reply {
    try_send(addr, request).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Sends one request on a new connection; an error says which step of the
/// exchange failed (for tests where the server may be gone).
pub async fn try_send(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> Result<Reply, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| format!("request to {addr}: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| format!("reading the body from {addr}: {e}"))?.to_bytes();
    Ok(Reply { status: parts.status.as_u16(), headers: parts.headers, body })
}

/// A request to `addr` that closes its connection after the response:
/// thousands of requests must not pile up thousands of idle sockets.
pub fn request(method: &str, addr: SocketAddr, path: &str, body: &[u8]) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("connection", "close")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap_or_else(|e| panic!("building {method} {path}: {e}"))
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, request("GET", addr, path, b"")).await
}

/// `POST path` with `body`.
pub async fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    send(addr, request("POST", addr, path, body)).await
}
