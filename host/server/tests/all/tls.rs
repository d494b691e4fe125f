//! TLS on the public listener: HTTPS over HTTP/1.1 and HTTP/2 (chosen by
//! ALPN), gRPC over it, a plain-HTTP client getting no answer, a rotated
//! certificate served to new connections without a restart, a host given
//! an unreadable pair refusing to start with the file named, and nodes of a
//! cluster serving TLS forwarding cart calls to each other over TLS.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_serving_tls_forward_cart_calls_to_each_other_over_tls() {
    use corral_server::http::grpc::proto::MutateRequest;
    use corral_server::http::grpc::proto::cart_actor_client::CartActorClient;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};

    // One certificate for both nodes, valid for the address they advertise
    // (127.0.0.1), trusted by each as the peers' CA.
    let certs = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (certs.path().join("node.crt"), certs.path().join("node.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let files = TlsConfig { cert: cert.clone(), key };
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let (nodes, _plugins) = tokio::task::spawn_blocking(move || {
        let nodes = crate::cluster::nodes_with("carts-tls", 2, plugins.path(), |config| {
            config.tls = Some(files.clone());
            config.cluster.as_mut().unwrap().peer_ca = Some(cert.clone());
        });
        (nodes, plugins)
    })
    .await
    .unwrap();

    // Every cart is called through both nodes: one of the two calls is
    // forwarded to the owner, over TLS, and must succeed the first time.
    let tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(generated.cert.pem())).domain_name("localhost");
    let mut clients = Vec::new();
    for node in &nodes {
        let channel = Channel::from_shared(format!("https://{}", node.host.public))
            .unwrap()
            .tls_config(tls.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        clients.push(CartActorClient::new(channel));
    }
    for cart in 0..6 {
        for (i, client) in clients.iter_mut().enumerate() {
            let request = MutateRequest {
                plugin: "counter".into(),
                cart_id: format!("cart-{cart}"),
                kind: "add".into(),
                payload: b"1".to_vec(),
                client_id: format!("c{cart}-n{i}"),
                tenant: String::new(),
            };
            let state = client.mutate(request).await.unwrap_or_else(|e| panic!("cart-{cart} via node {i}: {e:?}"));
            assert_eq!(state.into_inner().version, i as u64 + 1);
        }
    }
    let forwarded: f64 = nodes
        .iter()
        .map(|node| {
            let metrics = crate::cluster::futures_block(crate::get(node.host.admin, "/metrics")).text();
            metrics
                .lines()
                .filter(|line| line.starts_with("corral_cart_forwards_total"))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum();
    assert!(forwarded >= 6.0, "each cart was reached once through a node that does not own it: {forwarded}");
}
