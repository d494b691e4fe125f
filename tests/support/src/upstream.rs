//! An upstream HTTP server for plugins' outgoing requests to reach: on a
//! free loopback port, plain or over TLS with a certificate it makes for
//! `localhost` and `127.0.0.1` (its PEM, to trust, in
//! [`Upstream::ca_pem`]), keeping the headers of every request it got.
//!
//! - `/hello`: `200 hello from upstream`.
//! - `/stream?kib=N`: N KiB in 1 KiB chunks, each flushed on its own.
//! - `/slow`: answers after 30 s.
//! - `/stall`: answers at once with 1 KiB of body, then nothing for 30 s.
//! - `/redirect?to=URL`: `302` to `URL`.
//! - anything else: `404`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt as _, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Body = BoxBody<Bytes, Infallible>;

/// A running upstream server, stopped on drop.
pub struct Upstream {
    addr: SocketAddr,
    ca_pem: Option<String>,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// A plain HTTP server (call from a tokio runtime).
    pub async fn start() -> Upstream {
        Upstream::serve(None).await
    }

    /// An HTTPS server with a certificate of its own.
    pub async fn start_tls() -> Upstream {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap_or_else(|e| panic!("generating a certificate: {e}"));
        let key = rustls::pki_types::PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .unwrap_or_else(|e| panic!("the generated key: {e}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("TLS versions: {e}"))
            .with_no_client_auth()
            .with_single_cert(vec![generated.cert.der().clone()], key)
            .unwrap_or_else(|e| panic!("the generated certificate: {e}"));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut upstream = Upstream::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
        upstream.ca_pem = Some(generated.cert.pem());
        upstream
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("binding a loopback port: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("its address: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (seen, tls) = (recorded.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| answer(request, seen.clone()));
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => builder.serve_connection(TokioIo::new(stream), service).await,
                            Err(_) => return,
                        },
                        None => builder.serve_connection(TokioIo::new(stream), service).await,
                    };
                });
            }
        });
        Upstream { addr, ca_pem: None, seen, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its certificate (PEM), for a TLS server.
    pub fn ca_pem(&self) -> &str {
        self.ca_pem.as_deref().unwrap_or_default()
    }

    /// The headers of every request so far, in order.
    pub fn seen(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(request: Request<Incoming>, seen: Arc<Mutex<Vec<HeaderMap>>>) -> Result<Response<Body>, Infallible> {
    seen.lock().unwrap_or_else(PoisonError::into_inner).push(request.headers().clone());
    let query = request.uri().query().unwrap_or("").to_string();
    let param = |name: &str| query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='));
    let text = |status: u16, body: &'static str| {
        let mut response = Response::new(http_body_util::Full::new(Bytes::from_static(body.as_bytes())).boxed());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
        response
    };
    Ok(match request.uri().path() {
        "/hello" => text(200, "hello from upstream"),
        "/stream" => {
            let kib: usize = param("kib").and_then(|n| n.parse().ok()).unwrap_or(1);
            Response::new(chunked(kib).boxed())
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            text(200, "slow")
        }
        "/stall" => {
            let (sender, receiver) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                let _ = sender.send(Bytes::from(vec![b'u'; 1024])).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
                let _ = sender.send(Bytes::from(vec![b'u'; 1024])).await;
            });
            Response::new(Chunks(receiver).boxed())
        }
        "/redirect" => {
            let mut response = text(302, "");
            if let Some(Ok(to)) = param("to").map(http::HeaderValue::from_str) {
                response.headers_mut().insert(http::header::LOCATION, to);
            }
            response
        }
        _ => text(404, "no such path upstream"),
    })
}

/// `kib` chunks of 1 KiB, each its own frame, made as they are read.
fn chunked(kib: usize) -> Chunks {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for _ in 0..kib {
            if sender.send(Bytes::from(vec![b'u'; 1024])).await.is_err() {
                return;
            }
        }
    });
    Chunks(receiver)
}

struct Chunks(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
    }
}
