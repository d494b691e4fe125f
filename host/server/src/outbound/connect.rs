//! How the outbound client opens a connection ([`Connector`]): it resolves
//! a name itself and connects only to its public addresses (a grant for a
//! name never reaches loopback, private, link-local or metadata
//! addresses; a grant naming an address reaches exactly that address),
//! then speaks TLS for `https` with rustls — the system's roots plus the
//! operator's CA file. The client pools what this opens, per destination.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::outbound::addresses::non_public;

/// How long opening one connection (resolving, TCP, TLS) may take; the
/// calling plugin's deadline bounds it further.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

tokio::task_local! {
    /// The connect timeout the guest asked for, around a request it sends
    /// (see [`within`]). The pool calls the connector from the request's
    /// own task, so the connector reads it there.
    static ASKED: Duration;
}

/// Runs `send` with connections it opens bounded by `timeout` (else
/// [`CONNECT_TIMEOUT`]).
pub(crate) async fn within<F: Future>(timeout: Option<Duration>, send: F) -> F::Output {
    match timeout {
        Some(timeout) => ASKED.scope(timeout, send).await,
        None => send.await,
    }
}

/// Why a connection was not opened: what the guest's error code and the
/// log line are made of.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The name resolves to no public address.
    #[error("{host} resolves only to addresses a grant for a name cannot reach ({found}); grant the address itself")]
    Prohibited {
        /// The name.
        host: String,
        /// What it resolved to, and why each is refused.
        found: String,
    },
    /// The name does not resolve.
    #[error("resolving {host}: {cause}")]
    Dns {
        /// The name.
        host: String,
        /// Why.
        cause: String,
    },
    /// No address answered.
    #[error("connecting to {host}: {cause}")]
    Refused {
        /// The host.
        host: String,
        /// The last address's error.
        cause: io::Error,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS with {host}: {cause}")]
    Tls {
        /// The host.
        host: String,
        /// Why.
        cause: io::Error,
    },
    /// Opening took longer than the guest asked, or [`CONNECT_TIMEOUT`].
    #[error("connecting to {0} timed out")]
    Timeout(String),
    /// The URI names no host.
    #[error("the request names no host")]
    NoHost,
}

/// Opens connections for the outbound client (a `tower` service over URIs).
#[derive(Clone)]
pub(crate) struct Connector {
    tls: tokio_rustls::TlsConnector,
}

impl Connector {
    /// TLS trusting the system's roots, plus the PEM certificates in
    /// `ca_file` if given (a private CA an outbound grant needs).
    pub(crate) fn new(ca_file: Option<&Path>) -> anyhow::Result<Connector> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_file {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow::anyhow!("the outbound CA file {} is not PEM certificates: {e}", path.display()))?;
            if certificates.is_empty() {
                anyhow::bail!("the outbound CA file {} holds no PEM certificate", path.display());
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|e| {
                    anyhow::anyhow!("a certificate of the outbound CA file {} is not usable: {e}", path.display())
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Connector { tls: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    async fn open(self, uri: Uri) -> Result<Stream, ConnectError> {
        let host = uri.host().ok_or(ConnectError::NoHost)?.trim_start_matches('[').trim_end_matches(']').to_string();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addresses = resolve(&host, port).await?;
        let mut last = None;
        let mut tcp = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(error) => last = Some(error),
            }
        }
        let tcp = match tcp {
            Some(tcp) => tcp,
            None => {
                let cause = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
                return Err(ConnectError::Refused { host, cause });
            }
        };
        let _ = tcp.set_nodelay(true);
        if !https {
            return Ok(Stream(TokioIo::new(Box::new(tcp))));
        }
        let name = ServerName::try_from(host.clone()).map_err(|e| ConnectError::Tls {
            host: host.clone(),
            cause: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
        })?;
        let tls = self.tls.connect(name, tcp).await.map_err(|cause| ConnectError::Tls { host, cause })?;
        Ok(Stream(TokioIo::new(Box::new(tls))))
    }
}

/// The addresses to try for `host`: the address itself (a grant named it),
/// or the public addresses the name resolves to.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
    if let Ok(address) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(address, port)]);
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnectError::Dns { host: host.to_string(), cause: e.to_string() })?
        .collect();
    let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
        resolved.into_iter().partition(|address| non_public(address.ip()).is_none());
    if public.is_empty() {
        let found = refused
            .iter()
            .map(|address| format!("{} {}", address.ip(), non_public(address.ip()).unwrap_or("refused")))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ConnectError::Prohibited { host: host.to_string(), found });
    }
    Ok(public)
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let host = uri.host().unwrap_or_default().to_string();
        let open = self.clone().open(uri);
        let timeout = ASKED.try_with(|asked| *asked).unwrap_or(CONNECT_TIMEOUT);
        Box::pin(async move {
            match tokio::time::timeout(timeout, open).await {
                Ok(opened) => opened,
                Err(_) => Err(ConnectError::Timeout(host)),
            }
        })
    }
}

/// What a connection's bytes go through: TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// An open connection, as the client drives it.
pub(crate) struct Stream(TokioIo<Box<dyn Io>>);

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
