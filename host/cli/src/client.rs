//! Talking to a running host's admin listener: `host emit TOPIC --data
//! JSON` publishes an event into its log; `host deploy FILE` uploads a
//! component (with its sidecar and rollout settings, to a cluster); `host
//! rollout` follows and steers a cluster rollout; `host projection
//! rebuild` and `host cart verify` ask it to rebuild a projection or to
//! verify a cart's journal.

use std::process::ExitCode;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

/// Posts the event and prints the sequence the host assigned.
pub(crate) async fn emit(
    admin: &str,
    token: Option<&str>,
    topic: &str,
    data: Vec<u8>,
    tenant: &str,
) -> anyhow::Result<ExitCode> {
    let headers = [("x-corral-tenant", tenant.to_string())];
    send(admin, token, http::Method::POST, &format!("/events/{topic}"), data, &headers).await
}

/// How a deploy to a cluster rolls out (each wins over the sidecar's
/// `[rollout]`), and the sidecar sent with it.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct RolloutFlags {
    /// The sidecar to send with the component (to a cluster; without it the
    /// sidecar of the version it replaces is kept).
    #[arg(long)]
    sidecar: Option<std::path::PathBuf>,
    /// Switch the cluster's nodes in this many waves.
    #[arg(long)]
    waves: Option<u32>,
    /// Send this percent of every node's requests to the new version first.
    #[arg(long)]
    canary: Option<u8>,
    /// How long the canary is judged: `30s`, `5m`.
    #[arg(long)]
    window: Option<String>,
    /// Roll back if more than this share of the canary's requests fail.
    #[arg(long)]
    max_error_rate: Option<f64>,
    /// Let each wave run the new version this long before the next: `10s`.
    #[arg(long)]
    pause: Option<String>,
    /// Deploy only if the plugin's desired state is at this revision.
    #[arg(long)]
    expect_revision: Option<u64>,
}

impl RolloutFlags {
    fn query(&self) -> String {
        let settings = [
            ("waves", self.waves.map(|v| v.to_string())),
            ("canary", self.canary.map(|v| v.to_string())),
            ("window", self.window.clone()),
            ("max_error_rate", self.max_error_rate.map(|v| v.to_string())),
            ("pause", self.pause.clone()),
            ("expect_revision", self.expect_revision.map(|v| v.to_string())),
        ];
        let pairs: Vec<String> =
            settings.into_iter().filter_map(|(key, value)| value.map(|value| format!("{key}={value}"))).collect();
        if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) }
    }
}

/// Uploads a component; prints what the host did with it.
pub(crate) async fn deploy(
    admin: &str,
    token: Option<&str>,
    file: &std::path::Path,
    name: Option<&str>,
    rollout: &RolloutFlags,
) -> anyhow::Result<ExitCode> {
    use base64::Engine as _;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.unwrap_or(&stem);
    let mut headers = Vec::new();
    if let Some(sidecar) = &rollout.sidecar {
        let text = std::fs::read(sidecar).with_context(|| format!("reading the sidecar {}", sidecar.display()))?;
        headers.push(("x-corral-sidecar", base64::engine::general_purpose::STANDARD.encode(text)));
    }
    let path = format!("/plugins/{name}{}", rollout.query());
    send(admin, token, http::Method::PUT, &path, bytes, &headers).await
}

/// `host rollout status|abort|rollback NAME`.
pub(crate) async fn rollout(admin: &str, token: Option<&str>, action: &str, name: &str) -> anyhow::Result<ExitCode> {
    match action {
        "status" => send(admin, token, http::Method::GET, &format!("/cluster/plugins/{name}"), Vec::new(), &[]).await,
        action => {
            send(admin, token, http::Method::POST, &format!("/cluster/plugins/{name}/{action}"), Vec::new(), &[]).await
        }
    }
}

/// Asks the host to rebuild a projection.
pub(crate) async fn rebuild(admin: &str, token: Option<&str>, name: &str) -> anyhow::Result<ExitCode> {
    send(admin, token, http::Method::POST, &format!("/projections/{name}/rebuild"), Vec::new(), &[]).await
}

/// Lists a projection's quarantined events, or skips or retries the one
/// a halted projection stopped before.
pub(crate) async fn quarantine(
    admin: &str,
    token: Option<&str>,
    name: &str,
    action: Option<(u64, &str)>,
) -> anyhow::Result<ExitCode> {
    list_or_act(admin, token, &format!("/projections/{name}/quarantine"), action).await
}

/// Lists an event handler's dead letters, or retries or skips one.
pub(crate) async fn dead_letters(
    admin: &str,
    token: Option<&str>,
    plugin: &str,
    action: Option<(u64, &str)>,
) -> anyhow::Result<ExitCode> {
    list_or_act(admin, token, &format!("/subscriptions/{plugin}/dead-letters"), action).await
}

/// `GET list`, or `POST list/SEQUENCE/VERB`.
async fn list_or_act(
    admin: &str,
    token: Option<&str>,
    list: &str,
    action: Option<(u64, &str)>,
) -> anyhow::Result<ExitCode> {
    match action {
        None => send(admin, token, http::Method::GET, list, Vec::new(), &[]).await,
        Some((sequence, verb)) => {
            send(admin, token, http::Method::POST, &format!("{list}/{sequence}/{verb}"), Vec::new(), &[]).await
        }
    }
}

/// Asks the host to replay a cart's journal; fails when the replay does
/// not reproduce the stored state.
pub(crate) async fn verify_cart(
    admin: &str,
    token: Option<&str>,
    plugin: &str,
    cart: &str,
    tenant: &str,
) -> anyhow::Result<ExitCode> {
    let headers = [("x-corral-tenant", tenant.to_string())];
    send(admin, token, http::Method::POST, &format!("/carts/{plugin}/{cart}/verify"), Vec::new(), &headers).await
}

async fn send(
    admin: &str,
    token: Option<&str>,
    method: http::Method,
    path: &str,
    data: Vec<u8>,
    headers: &[(&str, String)],
) -> anyhow::Result<ExitCode> {
    let url: http::Uri = format!("{}{path}", admin.trim_end_matches('/'))
        .parse()
        .with_context(|| format!("invalid admin URL {admin:?}"))?;
    let authority = url.authority().context("the admin URL needs host:port")?.clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .with_context(|| format!("connecting to the admin listener at {authority} (is `host run` running?)"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(url.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority.as_str());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::from(data)))?;
    let response = sender.send_request(request).await.context("sending the request")?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body);
    if status.is_success() {
        println!("{text}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: the host answered {status}: {text}");
        Ok(ExitCode::FAILURE)
    }
}
