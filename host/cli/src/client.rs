//! Talking to a running host's admin listener: `host emit TOPIC --data
//! JSON` publishes an event into its log; `host deploy FILE` uploads a
//! component; `host projection rebuild` and `host cart verify` ask it to
//! rebuild a projection or to verify a cart's journal.

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
    send(admin, token, http::Method::POST, &format!("/events/{topic}"), data, tenant).await
}

/// Uploads a component; prints what the host did with it.
pub(crate) async fn deploy(
    admin: &str,
    token: Option<&str>,
    file: &std::path::Path,
    name: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.unwrap_or(&stem);
    send(admin, token, http::Method::PUT, &format!("/plugins/{name}"), bytes, "").await
}

/// Asks the host to rebuild a projection.
pub(crate) async fn rebuild(admin: &str, token: Option<&str>, name: &str) -> anyhow::Result<ExitCode> {
    send(admin, token, http::Method::POST, &format!("/projections/{name}/rebuild"), Vec::new(), "").await
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
    send(admin, token, http::Method::POST, &format!("/carts/{plugin}/{cart}/verify"), Vec::new(), tenant).await
}

async fn send(
    admin: &str,
    token: Option<&str>,
    method: http::Method,
    path: &str,
    data: Vec<u8>,
    tenant: &str,
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
        .uri(url.path())
        .header(http::header::HOST, authority.as_str())
        .header("x-corral-tenant", tenant);
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
