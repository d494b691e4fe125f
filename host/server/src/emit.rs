//! `host emit TOPIC --data JSON`: publishes through a running host's admin
//! listener, so the event lands in that host's log.

use std::process::ExitCode;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

/// Posts the event and prints the sequence the host assigned.
pub(crate) async fn emit(admin: &str, topic: &str, data: Vec<u8>, tenant: &str) -> anyhow::Result<ExitCode> {
    let url: http::Uri = format!("{}/events/{topic}", admin.trim_end_matches('/'))
        .parse()
        .with_context(|| format!("invalid admin URL {admin:?}"))?;
    let authority = url.authority().context("the admin URL needs host:port")?.clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .with_context(|| format!("connecting to the admin listener at {authority} (is `host run` running?)"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::post(url.path())
        .header(http::header::HOST, authority.as_str())
        .header("x-corral-tenant", tenant)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(data)))?;
    let response = sender.send_request(request).await.context("sending the event")?;
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
