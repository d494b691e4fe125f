//! [`GrpcPeers`]: the carts' [`Peers`] over gRPC `CartActor`, one HTTP/2
//! connection per peer, reused. A forwarded call names this node in the
//! `x-corral-forwarded-by` metadata, so the owner serves it rather than
//! forwarding it on; every call carries this node's peer signature
//! (`peer_auth`), without which the owner would not take it as forwarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use corral_storage::carts::CartKey;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::carts::{CartError, CartReply, MutateRequest, PeerError, Peers};
use crate::http::cluster::proto as control;
use crate::http::cluster::proto::control_plane_client::ControlPlaneClient;
use crate::http::grpc::FORWARDED_BY;
use crate::http::grpc::proto::cart_actor_client::CartActorClient;
use crate::http::grpc::proto::{self};
use crate::http::peer_auth::PeerKey;

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The other nodes over gRPC.
pub(crate) struct GrpcPeers {
    node: String,
    /// How long a forwarded call may take: the lease TTL. An owner that
    /// does not answer for that long (frozen, cut off) has lost its carts
    /// or is about to; the caller is answered 503, outcome unknown.
    call_timeout: Duration,
    /// Signs every call.
    key: Arc<PeerKey>,
    /// Set when peers serve TLS: how to trust them.
    tls: Option<PeerTls>,
    channels: Mutex<HashMap<String, Channel>>,
}

/// How a node trusts its peers' certificates: the operator's CA file
/// (`--cluster-peer-ca`) if given, else the system's roots. The name
/// checked is the host of the peer's advertised address (a DNS name, or an
/// IP address the certificate must list).
#[derive(Clone)]
pub(crate) struct PeerTls {
    extra: Vec<Certificate>,
}

impl PeerTls {
    /// Trusting the PEM certificates in `ca` if given, else the system's roots.
    pub(crate) fn load(ca: Option<&std::path::Path>) -> anyhow::Result<PeerTls> {
        let Some(path) = ca else { return Ok(PeerTls { extra: Vec::new() }) };
        let pem =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("reading the peers' CA file {}: {e}", path.display()))?;
        // Checked here, so a bad file stops the host at start, naming it.
        let parsed = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<CertificateDer<'static>>, _>>()
            .map_err(|e| anyhow::anyhow!("the peers' CA file {} is not PEM certificates: {e}", path.display()))?;
        if parsed.is_empty() {
            anyhow::bail!("the peers' CA file {} holds no PEM certificate", path.display());
        }
        Ok(PeerTls { extra: vec![Certificate::from_pem(pem)] })
    }

    fn config(&self, address: &str) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().domain_name(host_of(address));
        match self.extra.is_empty() {
            true => config.with_native_roots(),
            false => config.ca_certificates(self.extra.clone()),
        }
    }
}

impl GrpcPeers {
    /// Peers of the node `node` (named in forwarded calls), whose calls
    /// wait at most `call_timeout`, are signed with `key`, and go over TLS
    /// when `tls` is given.
    pub(crate) fn new(node: &str, call_timeout: Duration, key: Arc<PeerKey>, tls: Option<PeerTls>) -> GrpcPeers {
        GrpcPeers { node: node.to_string(), call_timeout, key, tls, channels: Mutex::default() }
    }

    async fn client(&self, address: &str) -> Result<CartActorClient<Channel>, PeerError> {
        Ok(CartActorClient::new(self.channel(address).await?))
    }

    async fn channel(&self, address: &str) -> Result<Channel, PeerError> {
        let cached = self.channels.lock().unwrap_or_else(PoisonError::into_inner).get(address).cloned();
        if let Some(channel) = cached {
            return Ok(channel);
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| PeerError::Unreachable(format!("bad peer address {address:?}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(self.call_timeout);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.config(address))
                .map_err(|e| PeerError::Unreachable(format!("TLS to peer {address}: {}", chain(&e))))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| PeerError::Unreachable(format!("connecting to {address}: {}", chain(&e))))?;
        self.channels.lock().unwrap_or_else(PoisonError::into_inner).insert(address.to_string(), channel.clone());
        Ok(channel)
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(node) = self.node.parse() {
            request.metadata_mut().insert(FORWARDED_BY, node);
        }
        self.key.attach(request.metadata_mut());
        request
    }

    /// An error answer: the connection is dropped if it broke, so the next
    /// call connects afresh.
    fn answered(&self, address: &str, status: tonic::Status) -> PeerError {
        if status.code() == tonic::Code::Unavailable || status.code() == tonic::Code::Unknown {
            self.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(address);
        }
        // The connection could not be made again (the peer is gone): the
        // call never left this node.
        if never_sent(&status) {
            return PeerError::Unreachable(format!("connecting to {address}: {}", chain(&status)));
        }
        // A status made here from a transport error (the peer did not
        // answer): whether the call was applied is unknown.
        if std::error::Error::source(&status).is_some() {
            return PeerError::Answered(CartError::Forwarded {
                node: address.to_string(),
                code: tonic::Code::Unavailable,
                message: format!(
                    "the connection broke before it answered ({}): the outcome is unknown; retry with the same client id",
                    chain(&status)
                ),
            });
        }
        if let Some(error) = crate::http::wire::detach(&status) {
            return PeerError::Answered(error);
        }
        PeerError::Answered(CartError::Forwarded {
            node: address.to_string(),
            code: status.code(),
            message: status.message().to_string(),
        })
    }
}

#[async_trait::async_trait]
impl Peers for GrpcPeers {
    async fn mutate(&self, address: &str, key: &CartKey, request: &MutateRequest) -> Result<CartReply, PeerError> {
        let message = proto::MutateRequest {
            plugin: key.plugin.clone(),
            cart_id: key.cart.clone(),
            kind: request.kind.clone(),
            payload: request.payload.clone(),
            client_id: request.client_id.clone().unwrap_or_default(),
            tenant: key.tenant.clone(),
        };
        let mut outgoing = self.request(message);
        if let Some(traceparent) = request.traceparent.as_deref().and_then(|t| t.parse().ok()) {
            outgoing.metadata_mut().insert("traceparent", traceparent);
        }
        match self.client(address).await?.mutate(outgoing).await {
            Ok(response) => Ok(reply(response.into_inner())),
            Err(status) => Err(self.answered(address, status)),
        }
    }

    async fn state(&self, address: &str, key: &CartKey) -> Result<CartReply, PeerError> {
        let message = proto::GetStateRequest {
            plugin: key.plugin.clone(),
            cart_id: key.cart.clone(),
            tenant: key.tenant.clone(),
        };
        match self.client(address).await?.get_state(self.request(message)).await {
            Ok(response) => Ok(reply(response.into_inner())),
            Err(status) => Err(self.answered(address, status)),
        }
    }

    async fn closing(&self, address: &str, carts: &[(CartKey, u64)]) -> Result<(), PeerError> {
        let carts = carts
            .iter()
            .map(|(key, epoch)| control::CartRef {
                tenant: key.tenant.clone(),
                plugin: key.plugin.clone(),
                cart_id: key.cart.clone(),
                epoch: *epoch,
            })
            .collect();
        let mut client = ControlPlaneClient::new(self.channel(address).await?);
        let mut request = tonic::Request::new(control::ClosingRequest { from_node: self.node.clone(), carts });
        self.key.attach(request.metadata_mut());
        let told = tokio::time::timeout(CONNECT_TIMEOUT, client.closing(request)).await;
        match told {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(self.answered(address, status)),
            Err(_) => Err(PeerError::Unreachable(format!("{address} did not answer within {CONNECT_TIMEOUT:?}"))),
        }
    }
}

fn reply(state: proto::CartState) -> CartReply {
    CartReply { version: state.version, state: state.state, events: state.events, repeated: state.repeated }
}

/// Whether a call failed connecting, before anything was sent.
fn never_sent(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if cause.to_string().starts_with("tcp connect error") {
            return true;
        }
        source = cause.source();
    }
    false
}

fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The host part of `host:port` (an IPv6 address without its brackets).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}
