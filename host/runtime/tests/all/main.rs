//! Runtime-level integration tests: real components from `guests/fixtures`,
//! the real engine, in-memory control-plane backends. No HTTP server.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod batch;
mod carts;
mod fixtures;
mod loading;
mod outbound;
mod warm;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use corral_runtime::memory::{MemoryEvents, MemoryKv, MemoryViews};
use corral_runtime::types::{Event, HttpRequest, HttpResponse};
use corral_runtime::{CallContext, ControlPlane, Limits, Plugin, PluginSettings, Runtime, RuntimeConfig};

/// A runtime over in-memory backends the test can inspect.
pub(crate) struct Harness {
    pub(crate) runtime: Runtime,
    /// What every call's imports reach.
    pub(crate) control: Arc<ControlPlane>,
    pub(crate) kv: Arc<MemoryKv>,
    pub(crate) events: Arc<MemoryEvents>,
    pub(crate) views: Arc<MemoryViews>,
    pub(crate) carts: Arc<carts::FakeCarts>,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Harness::with_config(RuntimeConfig::default())
    }

    pub(crate) fn with_config(config: RuntimeConfig) -> Self {
        let kv = Arc::new(MemoryKv::default());
        let events = Arc::new(MemoryEvents::default());
        let views = Arc::new(MemoryViews::default());
        let carts = Arc::new(carts::FakeCarts::default());
        let control = ControlPlane {
            kv: kv.clone(),
            events: events.clone(),
            views: views.clone(),
            carts: carts.clone(),
            http: Arc::new(corral_runtime::Unavailable("the runtime's tests make no outgoing HTTP requests")),
        };
        let runtime = Runtime::new(config).expect("runtime");
        Harness { runtime, control: Arc::new(control), kv, events, views, carts }
    }

    pub(crate) async fn load(&self, fixture: &str) -> Plugin {
        self.load_with(fixture, PluginSettings::default()).await
    }

    pub(crate) async fn load_with(&self, fixture: &str, settings: PluginSettings) -> Plugin {
        self.runtime.load(Path::new(fixture), settings).await.unwrap_or_else(|e| panic!("loading {fixture}: {e}"))
    }
}

pub(crate) fn limits(f: impl FnOnce(&mut Limits)) -> PluginSettings {
    let mut settings = PluginSettings::default();
    f(&mut settings.limits);
    settings
}

pub(crate) fn get(path: &str) -> HttpRequest {
    request("GET", path, &[], b"")
}

pub(crate) fn request(method: &str, path: &str, params: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: vec![("x-test".into(), "1".into())],
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: body.to_vec(),
    }
}

pub(crate) async fn call(harness: &Harness, plugin: &Plugin, request: &HttpRequest) -> HttpResponse {
    plugin
        .handle_http(&harness.control, CallContext::internal("test"), request)
        .await
        .unwrap_or_else(|e| panic!("call failed: {e}"))
        .value
}

pub(crate) fn text(response: &HttpResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

pub(crate) fn event(id: &str, topic: &str, sequence: u64, payload: &[u8]) -> Event {
    Event {
        id: id.into(),
        topic: topic.into(),
        sequence,
        timestamp_ms: 1_700_000_000_000 + sequence,
        tenant: "acme".into(),
        correlation_id: format!("corr-{id}"),
        traceparent: None,
        payload: payload.to_vec(),
    }
}

/// After a failure, the same runtime must still serve a normal call.
pub(crate) async fn still_serves(harness: &Harness) {
    let hello = harness.load(corral_fixtures::ROUTE_HELLO).await;
    let response = call(harness, &hello, &request("GET", "/hello/again", &[("name", "again")], b"")).await;
    assert_eq!(text(&response), "hello, again");
}

pub(crate) const SHORT: Duration = Duration::from_millis(300);
