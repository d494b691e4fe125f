//! Warm instances (`Reuse`): one instance serves calls one after another,
//! keeping its own globals and nothing of the host's — each call has its
//! own tenant, request id, deadline and queued events — and is recycled
//! after `max_calls`, after a trap, an exhausted fuel budget or a timeout,
//! past its memory threshold, and after its idle time.

use std::time::Duration;

use corral_fixtures::ROUTE_WARM;
use corral_runtime::{CallContext, InvokeErrorKind, Plugin, PluginSettings, Reuse};

use crate::{Harness, get, text};

fn reusing(reuse: Reuse) -> PluginSettings {
    let mut settings = PluginSettings { reuse: Some(reuse), ..PluginSettings::default() };
    settings.limits.timeout = Duration::from_millis(400);
    settings.limits.fuel = 50_000_000;
    settings
}

/// The `calls` the instance serving `path` reports, or the failure's kind.
async fn calls(harness: &Harness, plugin: &Plugin, call: CallContext, path: &str) -> Result<u32, InvokeErrorKind> {
    match plugin.handle_http(&harness.control, call, &get(path)).await {
        Ok(called) => {
            let body: serde_json::Value = serde_json::from_str(&text(&called.value)).unwrap();
            Ok(body["calls"].as_u64().unwrap() as u32)
        }
        Err(error) => Err(error.kind),
    }
}

async fn count(harness: &Harness, plugin: &Plugin, path: &str) -> u32 {
    calls(harness, plugin, CallContext::internal("t"), path).await.unwrap()
}

#[tokio::test]
pub(crate) async fn route_warm() {
    let harness = Harness::new();
    // Without reuse, every call is a fresh instance.
    let fresh = harness.load(ROUTE_WARM).await;
    for _ in 0..3 {
        assert_eq!(count(&harness, &fresh, "/warm").await, 1);
    }
    // With it, one instance serves max_calls calls, then a new one.
    let reuse = Reuse { max_calls: 3, ..Reuse::default() };
    let warm = harness.runtime.load(std::path::Path::new(ROUTE_WARM), reusing(reuse)).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(count(&harness, &warm, "/warm").await);
    }
    assert_eq!(seen, [1, 2, 3, 1, 2]);
    assert_eq!(warm.warm_instances(), 1);
}

#[tokio::test]
async fn a_failed_call_recycles_its_instance() {
    let harness = Harness::new();
    let plugin = harness.runtime.load(std::path::Path::new(ROUTE_WARM), reusing(Reuse::default())).await.unwrap();
    let call = || CallContext::internal("t");
    for (fail, kind) in [("trap", "trap"), ("loop", "out_of_fuel"), ("sleep", "timeout")] {
        assert_eq!(count(&harness, &plugin, "/warm").await, 1, "a new instance after the last failure");
        assert_eq!(count(&harness, &plugin, "/warm").await, 2);
        let path = match fail {
            "sleep" => "/warm?sleep=2000".to_string(),
            other => format!("/warm?fail={other}"),
        };
        let error = calls(&harness, &plugin, call(), &path).await.unwrap_err();
        assert_eq!(error.label(), kind, "{error}");
        assert_eq!(plugin.warm_instances(), 0, "the failed instance is not kept");
    }
    assert_eq!(count(&harness, &plugin, "/warm").await, 1);
}

#[tokio::test]
async fn memory_past_the_threshold_and_idle_time_recycle_an_instance() {
    let harness = Harness::new();
    let reuse = Reuse { max_memory_bytes: 24 << 20, max_idle: Duration::from_millis(300), ..Reuse::default() };
    let plugin = harness.runtime.load(std::path::Path::new(ROUTE_WARM), reusing(reuse)).await.unwrap();
    assert_eq!(count(&harness, &plugin, "/warm").await, 1);
    assert_eq!(count(&harness, &plugin, "/warm?grow=32").await, 2);
    assert_eq!(count(&harness, &plugin, "/warm").await, 1, "grown past 24 MiB: not reused");
    assert_eq!(count(&harness, &plugin, "/warm").await, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&harness, &plugin, "/warm").await, 1, "idle past 300 ms: not reused");
}

#[tokio::test]
async fn host_state_belongs_to_each_call_not_to_the_instance() {
    let harness = Harness::new();
    let plugin = harness.runtime.load(std::path::Path::new(ROUTE_WARM), reusing(Reuse::default())).await.unwrap();
    let as_tenant = |tenant: &str, request: &str| CallContext {
        tenant: tenant.into(),
        correlation_id: format!("corr-{request}"),
        ..CallContext::internal(request)
    };
    // Each call sleeps most of its 400 ms deadline: a deadline counted
    // from the instance's first call would end the second.
    assert_eq!(calls(&harness, &plugin, as_tenant("acme", "r1"), "/warm?sleep=250").await.unwrap(), 1);
    assert_eq!(calls(&harness, &plugin, as_tenant("globex", "r2"), "/warm?sleep=250").await.unwrap(), 2);
    assert_eq!(calls(&harness, &plugin, as_tenant("acme", "r3"), "/warm").await.unwrap(), 3);
    let events: Vec<(String, String, String)> = harness
        .events
        .events()
        .into_iter()
        .map(|e| (e.tenant, e.correlation_id, String::from_utf8(e.payload).unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("acme".to_string(), "corr-r1".to_string(), "1".to_string()),
            ("globex".to_string(), "corr-r2".to_string(), "2".to_string()),
            ("acme".to_string(), "corr-r3".to_string(), "3".to_string()),
        ],
        "each call's events carry its own tenant and correlation, once"
    );
}
