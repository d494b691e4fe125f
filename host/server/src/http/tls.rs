//! TLS on the public listener: the certificate chain and private key from
//! PEM files (`--tls-cert`, `--tls-key`), offered with ALPN `h2` then
//! `http/1.1` (gRPC and HTTP/2 clients get HTTP/2, others HTTP/1.1), and
//! reloaded when either file changes — checked every [`RELOAD_EVERY`], so a
//! rotated certificate reaches new connections without a restart. A pair
//! that fails to load at start stops the host with the file and the cause;
//! one that fails on reload is logged and the previous pair keeps serving.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use crate::config::TlsConfig;
use crate::shutdown::pause;

/// How often the certificate and key files are checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The public listener's TLS settings, swapped when the files change.
pub(crate) struct Tls {
    files: TlsConfig,
    current: ArcSwap<rustls::ServerConfig>,
    /// The files' modification times when last loaded.
    loaded: std::sync::Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl Tls {
    /// Loads the pair; an error names the file, the cause and the fix.
    pub(crate) fn load(files: &TlsConfig) -> anyhow::Result<Arc<Tls>> {
        let stamps = stamps(files);
        let config = server_config(&files.cert, &files.key)?;
        Ok(Arc::new(Tls {
            files: files.clone(),
            current: ArcSwap::from_pointee(config),
            loaded: std::sync::Mutex::new(stamps),
        }))
    }

    /// An acceptor with the pair loaded now.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Reloads the pair whenever a file changes, until `stop`.
    pub(crate) async fn watch(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if pause(&mut stop, RELOAD_EVERY).await {
                return;
            }
            let now = stamps(&self.files);
            let changed = *self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) != now;
            if !changed {
                continue;
            }
            match server_config(&self.files.cert, &self.files.key) {
                Ok(config) => {
                    self.current.store(Arc::new(config));
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                }
                Err(error) => {
                    tracing::error!("TLS certificate not reloaded, the previous one keeps serving: {error:#}");
                }
            }
            // Also after a failure: a half-written pair is tried again on its next change.
            *self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
        }
    }
}

fn stamps(files: &TlsConfig) -> (Option<SystemTime>, Option<SystemTime>) {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key))
}

/// A rustls server configuration from PEM files.
fn server_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .with_context(|| format!("{}: reading the TLS certificate chain (PEM) failed", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "{}: no certificate found; --tls-cert takes PEM `CERTIFICATE` blocks, leaf first",
            cert.display()
        );
    }
    let key_der = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "{}: reading the TLS private key failed; --tls-key takes one PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .with_context(|| format!("{} and {} do not make a usable pair", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
