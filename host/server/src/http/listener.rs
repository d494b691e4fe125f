//! Accepting connections on a listener — HTTP/1.1 and HTTP/2, in clear
//! (h2c) or over TLS (ALPN), one task per connection — until told to stop;
//! then waiting for open connections to finish their requests, at most the
//! shutdown timeout.
//!
//! Slow and greedy clients are bounded: an HTTP/1 client that does not
//! send a whole request head within the header timeout (a new one, or the
//! next on an idle keep-alive connection) is disconnected; HTTP/2
//! connections are pinged and carry a bounded number of streams; past the
//! connection cap, a new connection is answered 503 and closed.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::config::HttpLimits;
use crate::http::respond::Body;
use crate::http::tls::Tls;

/// Accepts connections (HTTP/1.1 and HTTP/2; over TLS when `tls` is given)
/// until told to stop, then waits for open connections to finish their
/// requests, at most the timeout.
pub(crate) async fn accept<H, F>(
    listener: TcpListener,
    handler: H,
    mut stop: watch::Receiver<bool>,
    limits: HttpLimits,
    shutdown_timeout: Duration,
    tls: Option<Arc<Tls>>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(128);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_EVERY)
        .max_concurrent_streams(limits.max_h2_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let open = Arc::new(Semaphore::new(limits.max_connections));
    // Refusals are bounded too: under a flood, the ones past this many are
    // closed without an answer.
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let Ok(slot) = open.clone().try_acquire_owned() else {
                        if let Ok(permit) = refusing.clone().try_acquire_owned() {
                            let max = limits.max_connections;
                            tokio::spawn(async move {
                                refuse(stream, max).await;
                                drop(permit);
                            });
                        }
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let handler = handler.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(request).await) }
                    });
                    let Some(tls) = &tls else {
                        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                        let connection = graceful.watch(connection);
                        tokio::spawn(async move {
                            if let Err(error) = connection.await {
                                tracing::debug!("connection ended with an error: {error}");
                            }
                            drop(slot);
                        });
                        continue;
                    };
                    // The handshake has as long as a request head to finish.
                    let (acceptor, builder, watcher) = (tls.acceptor(), builder.clone(), graceful.watcher());
                    tokio::spawn(async move {
                        let handshake = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await;
                        let stream = match handshake {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!("TLS handshake failed: {error}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake timed out");
                                return;
                            }
                        };
                        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                        if let Err(error) = watcher.watch(connection).await {
                            tracing::debug!("connection ended with an error: {error}");
                        }
                        drop(slot);
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(shutdown_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {:?}; closing them", shutdown_timeout);
    }
}

/// How often an HTTP/2 connection is pinged, and how long the answer may take.
const H2_PING_EVERY: Duration = Duration::from_secs(20);

/// Most connections over the cap being answered at once.
const MAX_REFUSING: usize = 256;

/// Answers a connection over the cap with a 503 and closes it.
async fn refuse(mut stream: TcpStream, max: usize) {
    let body = format!(
        "{{\"error\":\"too_many_connections\",\"message\":\"this listener already has {max} open connections (--max-connections); retry shortly\"}}"
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let answered = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent before closing, so the close does not
        // reset the connection under the answer.
        let mut sink = [0u8; 4096];
        while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answered).await;
}
