//! The `carts` import at the runtime's level, from a route and from an event
//! handler: grants, the call's tenant, traceparent and idempotency key
//! handed to the [`CartClient`], and its errors reaching the guest as the
//! WIT's cases. The host's real carts are tested over the
//! binary (`host/server/tests/all/carts_import.rs`).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use corral_fixtures::{EVENT_CART_CLIENT, ROUTE_CART_CLIENT};
use corral_runtime::{
    CallContext, CartApplied, CartClient, CartMutation, CartState, CartsError, ControlPlane, InvokeErrorKind,
    PluginSettings, Unavailable,
};

use crate::*;

/// What a [`FakeCarts`] was asked, per call: tenant, plugin, id and the
/// mutation (none for a read).
type Call = (String, String, String, Option<CartMutation>);

/// Carts of one plugin, `counter`, adding decimal payloads; it refuses what
/// is not a number, as `guests/fixtures/cart-counter` does.
#[derive(Default)]
pub(crate) struct FakeCarts {
    carts: Mutex<BTreeMap<(String, String), (u64, i64)>>,
    keys: Mutex<BTreeMap<String, CartApplied>>,
    calls: Mutex<Vec<Call>>,
}

impl FakeCarts {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[async_trait::async_trait]
impl CartClient for FakeCarts {
    async fn mutate(
        &self,
        tenant: &str,
        plugin: &str,
        id: &str,
        mutation: CartMutation,
    ) -> Result<CartApplied, CartsError> {
        self.calls.lock().unwrap().push((tenant.into(), plugin.into(), id.into(), Some(mutation.clone())));
        if plugin != "counter" {
            return Err(CartsError::NoSuchCartPlugin(plugin.into()));
        }
        if let Some(recorded) =
            mutation.idempotency_key.as_ref().and_then(|k| self.keys.lock().unwrap().get(k).cloned())
        {
            return Ok(recorded);
        }
        let amount: i64 = std::str::from_utf8(&mutation.payload)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| CartsError::Rejected("not-a-number: the payload is not a number".into()))?;
        let mut carts = self.carts.lock().unwrap();
        let cart = carts.entry((tenant.into(), id.into())).or_default();
        *cart = (cart.0 + 1, cart.1 + amount);
        let applied =
            CartApplied { version: cart.0, state: cart.1.to_string().into_bytes(), events: vec![cart.0 * 10] };
        if let Some(key) = mutation.idempotency_key {
            self.keys.lock().unwrap().insert(key, applied.clone());
        }
        Ok(applied)
    }

    async fn get(&self, tenant: &str, plugin: &str, id: &str) -> Result<Option<CartState>, CartsError> {
        self.calls.lock().unwrap().push((tenant.into(), plugin.into(), id.into(), None));
        let carts = self.carts.lock().unwrap();
        Ok(carts
            .get(&(tenant.into(), id.into()))
            .map(|(version, value)| CartState { version: *version, state: value.to_string().into_bytes() }))
    }
}

fn as_tenant(tenant: &str) -> CallContext {
    CallContext { tenant: tenant.into(), traceparent: Some("00-trace-span-01".into()), ..CallContext::internal("t") }
}

fn post(plugin: &str, id: &str, kind: &str, body: &[u8], key: Option<&str>) -> corral_runtime::types::HttpRequest {
    let mut request = request(
        "POST",
        &format!("/cart-client/{plugin}/{id}/{kind}"),
        &[("plugin", plugin), ("id", id), ("kind", kind)],
        body,
    );
    if let Some(key) = key {
        request.headers.push(("idempotency-key".into(), key.into()));
    }
    request
}

fn read(plugin: &str, id: &str) -> corral_runtime::types::HttpRequest {
    request("GET", &format!("/cart-client/{plugin}/{id}"), &[("plugin", plugin), ("id", id)], b"")
}

async fn json(
    control: &Arc<ControlPlane>,
    plugin: &Plugin,
    context: CallContext,
    request: &corral_runtime::types::HttpRequest,
) -> (u16, serde_json::Value) {
    let response = plugin.handle_http(control, context, request).await.unwrap().value;
    let body = serde_json::from_slice(&response.body).unwrap_or_else(|_| text(&response).into());
    (response.status, body)
}

#[tokio::test]
pub(crate) async fn route_cart_client() {
    let harness = Harness::new();
    let granted = PluginSettings { cart_grants: vec!["counter".into(), "ghost".into()], ..Default::default() };
    let plugin = harness.load_with(ROUTE_CART_CLIENT, granted).await;

    let (status, body) =
        json(&harness.control, &plugin, as_tenant("acme"), &post("counter", "c1", "add", b"5", None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"version": 1, "state": "5", "events": [10]}));
    // The call's tenant and traceparent reach the client, and nothing else decides them.
    let calls = harness.carts.calls();
    let (tenant, cart_plugin, id, mutation) = &calls[0];
    assert_eq!((tenant.as_str(), cart_plugin.as_str(), id.as_str()), ("acme", "counter", "c1"));
    let mutation = mutation.clone().unwrap();
    assert_eq!((mutation.kind.as_str(), mutation.payload.as_slice()), ("add", &b"5"[..]));
    assert_eq!(mutation.traceparent.as_deref(), Some("00-trace-span-01"));
    assert_eq!(mutation.idempotency_key, None);

    // Reads are the same tenant's: another tenant has no such cart.
    let (status, body) = json(&harness.control, &plugin, as_tenant("acme"), &read("counter", "c1")).await;
    assert_eq!((status, body), (200, serde_json::json!({"version": 1, "state": "5"})));
    let (status, _) = json(&harness.control, &plugin, as_tenant("globex"), &read("counter", "c1")).await;
    assert_eq!(status, 404);

    // The idempotency key is passed on.
    json(&harness.control, &plugin, as_tenant("acme"), &post("counter", "c1", "add", b"2", Some("k1"))).await;
    let (_, body) =
        json(&harness.control, &plugin, as_tenant("acme"), &post("counter", "c1", "add", b"2", Some("k1"))).await;
    assert_eq!(body["version"], 2);
    assert_eq!(harness.carts.calls().last().unwrap().3.as_ref().unwrap().idempotency_key.as_deref(), Some("k1"));

    // The client's errors reach the guest as their WIT cases.
    let (status, body) =
        json(&harness.control, &plugin, as_tenant("acme"), &post("counter", "c1", "add", b"two", None)).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("rejected")));
    assert!(body["message"].as_str().unwrap().starts_with("not-a-number"), "{body}");
    let (status, body) =
        json(&harness.control, &plugin, as_tenant("acme"), &post("ghost", "c1", "add", b"1", None)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("no-such-cart-plugin")));

    // A cart plugin not granted never reaches the client.
    let before = harness.carts.calls().len();
    for request in [post("orders", "c1", "add", b"1", None), read("orders", "c1")] {
        let (status, body) = json(&harness.control, &plugin, as_tenant("acme"), &request).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("not-granted")), "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("\"orders\"") && message.contains("route_cart_client.toml"), "{message}");
    }
    assert_eq!(harness.carts.calls().len(), before);

    // A call whose control plane serves no carts: unavailable.
    let control = ControlPlane {
        carts: Arc::new(Unavailable("this host serves no carts")),
        ..ControlPlane::clone(&harness.control)
    };
    let settings = PluginSettings { cart_grants: vec!["counter".into()], ..Default::default() };
    let plugin = harness.runtime.load(Path::new(ROUTE_CART_CLIENT), settings).await.unwrap();
    let (status, body) = json(&Arc::new(control), &plugin, as_tenant("acme"), &read("counter", "c1")).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")), "{body}");
}

#[tokio::test]
pub(crate) async fn event_cart_client() {
    let harness = Harness::new();
    let granted = PluginSettings { cart_grants: vec!["counter".into()], ..Default::default() };
    let plugin = harness.load_with(EVENT_CART_CLIENT, granted).await;
    assert_eq!(plugin.descriptor().topics, ["counter.requested"]);

    // Delivered twice (at least once): the event id as idempotency key
    // makes the second a repeat, for the event's tenant.
    let add = event("e1", "counter.requested", 1, b"c1:5");
    for _ in 0..2 {
        plugin.handle_event(&harness.control, CallContext::for_event(&add), &add).await.unwrap();
    }
    let calls = harness.carts.calls();
    assert_eq!(calls.len(), 2);
    for (tenant, cart_plugin, id, mutation) in &calls {
        assert_eq!((tenant.as_str(), cart_plugin.as_str(), id.as_str()), ("acme", "counter", "c1"));
        assert_eq!(mutation.as_ref().unwrap().idempotency_key.as_deref(), Some("e1"));
    }
    let state = harness.carts.get("acme", "counter", "c1").await.unwrap().unwrap();
    assert_eq!((state.version, state.state.as_slice()), (1, &b"5"[..]));

    // A cart error fails the delivery with its case as the code.
    let bad = event("e2", "counter.requested", 2, b"c1:five");
    let error = plugin.handle_event(&harness.control, CallContext::for_event(&bad), &bad).await.unwrap_err();
    let InvokeErrorKind::Guest { code, .. } = &error.kind else { panic!("expected a guest error, got {error}") };
    assert_eq!(code, "rejected");
    let ungranted = harness.load(EVENT_CART_CLIENT).await;
    let error = ungranted.handle_event(&harness.control, CallContext::for_event(&add), &add).await.unwrap_err();
    let InvokeErrorKind::Guest { code, .. } = &error.kind else { panic!("expected a guest error, got {error}") };
    assert_eq!(code, "not-granted");
}
