//! The grant check on plugins' outgoing `wasi:http` requests, in the
//! runtime: a request no grant covers never reaches the host's sender (the
//! guest gets `HTTP-request-denied` and the host is told the fix); a
//! granted one reaches it with the caller's plugin, tenant, request id and
//! deadline. (The sender itself — the network, in-process calls — is
//! tested against real servers in the server's tests.) A `route`-world
//! plugin's requests go through the same check as a `wasi:http` component's;
//! a projection cannot make one at all.

use std::sync::{Arc, Mutex};

use corral_fixtures::{HTTP_FETCH, PROJECTION_FETCH, ROUTE_FETCH};
use corral_runtime::{
    CallContext, Caller, ControlPlane, Denied, Destination, HttpGrants, OutboundHttp, PluginSettings,
};
use http_body_util::BodyExt as _;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::Harness;

/// A sender that answers `200 upstream` and records what it was given.
#[derive(Default)]
struct Recording {
    sent: Mutex<Vec<(Caller, Destination, String)>>,
    denied: Mutex<Vec<(String, Denied)>>,
}

#[async_trait::async_trait]
impl OutboundHttp for Recording {
    async fn send(
        &self,
        caller: Caller,
        destination: Destination,
        request: http::Request<WasiBody>,
        _: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        self.sent.lock().unwrap().push((caller, destination, request.uri().to_string()));
        let body = http_body_util::Full::new(bytes::Bytes::from_static(b"upstream"))
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(http::Response::new(body))
    }

    fn denied(&self, caller: &Caller, denied: &Denied) {
        self.denied.lock().unwrap().push((caller.sidecar.clone(), denied.clone()));
    }
}

async fn get(
    harness: &Harness,
    plugin: &corral_runtime::Plugin,
    control: &Arc<ControlPlane>,
    path: &str,
) -> (u16, String) {
    let body = http_body_util::Full::new(bytes::Bytes::new())
        .map_err(|never: std::convert::Infallible| -> HttpError { match never {} });
    let request = hyper::Request::get(path).body(body).unwrap();
    let call = CallContext { tenant: "acme".into(), ..CallContext::internal("req-7") };
    let response = plugin.serve_http(control, call, request, 1 << 20).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let _ = harness;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
pub(crate) async fn http_fetch() {
    let harness = Harness::new();
    let recording = Arc::new(Recording::default());
    let control = Arc::new(ControlPlane { http: recording.clone(), ..ControlPlane::clone(&harness.control) });
    let grants = HttpGrants::parse(&["http://127.0.0.1:9".into(), "https://*.example.org".into()], &["orders".into()]);
    let settings = PluginSettings { http: grants.unwrap(), ..PluginSettings::default() };
    let plugin = harness.runtime.load(std::path::Path::new(HTTP_FETCH), settings).await.unwrap();

    let (status, body) = get(&harness, &plugin, &control, "/fetch?url=http://127.0.0.1:9/x").await;
    assert_eq!((status, body.as_str()), (200, "upstream"));
    let (status, _) = get(&harness, &plugin, &control, "/fetch?url=https://api.example.org/pay").await;
    assert_eq!(status, 200);
    let (status, _) = get(&harness, &plugin, &control, "/fetch?url=http://orders.plugin/orders/1").await;
    assert_eq!(status, 200);
    {
        let sent = recording.sent.lock().unwrap();
        let labels: Vec<String> = sent.iter().map(|(_, destination, _)| destination.label()).collect();
        assert_eq!(labels, ["http://127.0.0.1:9", "https://*.example.org", "orders.plugin"]);
        let (caller, _, uri) = &sent[0];
        assert_eq!(uri, "http://127.0.0.1:9/x");
        assert_eq!((caller.plugin.as_str(), caller.call.tenant.as_str()), ("http_fetch", "acme"));
        assert_eq!(caller.call.request_id, "req-7");
        assert_eq!(caller.sidecar, "http_fetch.toml");
        assert!(caller.deadline > std::time::Instant::now(), "the call's deadline bounds the request");
    }

    // Not granted: another port, a bare wildcard's parent, another plugin.
    for (url, denied) in [
        ("http://127.0.0.1:10/x", Denied::Host("http://127.0.0.1:10".into())),
        ("https://example.org/", Denied::Host("https://example.org".into())),
        ("http://billing.plugin/b", Denied::Plugin("billing".into())),
    ] {
        let (status, body) = get(&harness, &plugin, &control, &format!("/fetch?url={url}")).await;
        assert_eq!((status, body.as_str()), (502, "error: ErrorCode::HttpRequestDenied"), "{url}");
        let (sidecar, recorded) = recording.denied.lock().unwrap().pop().unwrap();
        assert_eq!(recorded, denied, "{url}");
        assert!(recorded.fix(&sidecar).contains("http_fetch.toml"), "{}", recorded.fix(&sidecar));
    }
    assert_eq!(recording.sent.lock().unwrap().len(), 3, "nothing denied reached the sender");
}

/// The `route` world imports `wasi:http/outgoing-handler` as well: its
/// requests meet the same grants and reach the same sender.
#[tokio::test]
pub(crate) async fn route_fetch() {
    let harness = Harness::new();
    let recording = Arc::new(Recording::default());
    let control = Arc::new(ControlPlane { http: recording.clone(), ..ControlPlane::clone(&harness.control) });
    let grants = HttpGrants::parse(&["http://127.0.0.1:9".into()], &[]).unwrap();
    let plugin = harness.load_with(ROUTE_FETCH, PluginSettings { http: grants, ..PluginSettings::default() }).await;
    assert_eq!(plugin.world(), corral_runtime::World::Route);
    let relay = async |url: &str| {
        let request = crate::request("GET", &format!("/relay?url={url}"), &[], b"");
        let call = CallContext { tenant: "acme".into(), ..CallContext::internal("req-8") };
        let response = plugin.handle_http(&control, call, &request).await.unwrap().value;
        (response.status, String::from_utf8_lossy(&response.body).into_owned())
    };
    assert_eq!(relay("http://127.0.0.1:9/x").await, (200, "upstream".to_string()));
    let denied = relay("http://127.0.0.1:10/x").await;
    assert_eq!(denied, (502, "error: ErrorCode::HttpRequestDenied".to_string()));
    let sent = recording.sent.lock().unwrap();
    assert_eq!(sent.len(), 1, "the denied request never reached the sender");
    let (caller, _, uri) = &sent[0];
    assert_eq!(
        (caller.plugin.as_str(), caller.call.tenant.as_str(), uri.as_str()),
        ("relay", "acme", "http://127.0.0.1:9/x")
    );
    let (sidecar, refused) = recording.denied.lock().unwrap().pop().unwrap();
    assert_eq!(refused, Denied::Host("http://127.0.0.1:10".into()));
    assert_eq!(sidecar, "route_fetch.toml");
}

/// The deterministic worlds are not offered `wasi:http/outgoing-handler`: a
/// projection that imports it is refused at load, the import named.
#[tokio::test]
pub(crate) async fn projection_fetch() {
    let harness = Harness::new();
    let refused = harness.runtime.load(std::path::Path::new(PROJECTION_FETCH), PluginSettings::default()).await;
    let Err(error) = refused else { panic!("a projection importing outgoing-handler must not load") };
    let text = error.to_string();
    assert!(
        matches!(error, corral_runtime::LoadError::Link { world: corral_runtime::World::Projection, .. }),
        "{text}"
    );
    assert!(text.contains("imports wasi:http/"), "the import is named: {text}");
    assert!(text.contains("route and event-handler plugins"), "and where outgoing HTTP belongs: {text}");
}
