//! TLS on the public listener: HTTPS over HTTP/1.1 and HTTP/2 (chosen by
//! ALPN), gRPC over it, a plain-HTTP client getting no answer, a rotated
//! certificate served to new connections without a restart, and a host
//! given an unreadable pair refusing to start with the file named.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use corral_fixtures::{CART_COUNTER, ROUTE_HELLO};
use corral_server::config::{ServerConfig, TlsConfig};
use http_body_util::BodyExt as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{Host, eventually, plugins_dir};

/// A self-signed certificate for `localhost` and its key, written as PEM
/// files `NAME.crt` and `NAME.key` in `dir` (atomically, as an operator's
/// rotation would), and the certificate itself.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    for (path, pem) in [(&cert, generated.cert.pem()), (&key, generated.signing_key.serialize_pem())] {
        let staged = dir.join(format!(".{name}.partial"));
        std::fs::write(&staged, pem).unwrap();
        std::fs::rename(&staged, path).unwrap();
    }
    (cert, key, generated.cert.der().clone())
}

/// A TLS connection to `addr` trusting only `root`, offering `alpn`.
async fn connect(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(ServerName::try_from("localhost").unwrap(), stream).await
}

fn get(path: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::get(format!("https://localhost{path}")).body(http_body_util::Full::new(bytes::Bytes::new())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_serves_http1_http2_and_grpc_and_picks_up_a_rotated_certificate() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO), ("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, first) = certificate(certs.path(), "first");
    let files = TlsConfig { cert, key };
    let host = Host::start_with(plugins.path(), data.path(), |c| c.tls = Some(files.clone()));

    // HTTP/1.1, chosen by ALPN.
    let stream = connect(host.public, &first, &[b"http/1.1"]).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(get("/hello")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "hello, world");

    // HTTP/2, preferred when offered.
    let stream = connect(host.public, &first, &[b"h2", b"http/1.1"]).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(get("/hello")).await.unwrap();
    assert_eq!((response.status().as_u16(), response.version()), (200, http::Version::HTTP_2));

    // gRPC over the same connection: the cart service answers.
    use prost::Message as _;
    let message = corral_server::http::grpc::proto::GetStateRequest {
        plugin: "counter".into(),
        cart_id: "c1".into(),
        tenant: String::new(),
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend(message);
    let request = http::Request::post("https://localhost/corral.cart.v1.CartActor/GetState")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::from(frame)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let trailers = response.into_body().collect().await.unwrap().trailers().cloned().unwrap_or_default();
    assert_eq!(trailers.get("grpc-status").map(|v| v.to_str().unwrap()), Some("0"), "{trailers:?}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(host.public).await.unwrap();
    plain.write_all(b"GET /hello HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "plain HTTP was served: {}", String::from_utf8_lossy(&answer));

    // A rotated pair reaches new connections without a restart.
    let (_, _, second) = certificate(certs.path(), "second");
    let public = host.public;
    eventually(Duration::from_secs(30), "the rotated certificate served", || {
        crate::cluster::futures_block(connect(public, &second, &[b"http/1.1"])).ok().map(drop)
    })
    .await;
    assert!(connect(public, &first, &[b"http/1.1"]).await.is_err(), "the old certificate is no longer served");
}

#[test]
fn a_host_given_an_unreadable_pair_refuses_to_start_naming_the_file() {
    let plugins = plugins_dir(&[("hello", ROUTE_HELLO)], &[]);
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, _, _) = certificate(certs.path(), "only");
    let missing = certs.path().join("missing.key");
    let mut config = ServerConfig::new(plugins.path().to_path_buf(), data.path().to_path_buf());
    config.tls = Some(TlsConfig { cert, key: missing.clone() });
    let error = corral_server::serve::Detached::start(config).err().expect("started without a key");
    let message = format!("{error:#}");
    assert!(message.contains(&missing.display().to_string()) && message.contains("--tls-key"), "{message}");
}
