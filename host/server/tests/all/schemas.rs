//! Payload schemas declared in sidecars, checked where payloads enter: an
//! event a plugin emits (at once or queued) or an operator publishes, a
//! cart mutation over HTTP, gRPC and the `carts` import, a cart's new state
//! and outcome events, and a route's request body. A mismatch is refused with the schema, the path
//! and the rule; nothing that does not match is committed. Two plugins
//! declaring different schemas for one topic are not served together.

use corral_fixtures::{CART_COUNTER, ROUTE_CART_CLIENT, ROUTE_EMITTER};
use corral_server::http::grpc::proto::MutateRequest;
use corral_server::http::grpc::proto::cart_actor_client::CartActorClient;
use corral_storage::Storage;

use crate::{Host, get, plugins_dir, post};

/// An order event must have an id and a total of at least 0; a queued
/// event's request must be an object.
const EMITTER: &str = r#"
[schemas.events."orders.placed"]
type = "object"
required = ["id", "total"]
properties.id = { type = "string" }
properties.total = { type = "number", minimum = 0 }

[schemas.routes."POST /queue/:topic"]
request = '{"type": "object", "required": ["id"]}'
"#;

/// A counter's additions are 1 or more, its state at most 10, and what it
/// emits a number.
const COUNTER: &str = r#"
[schemas]
state = { type = "integer", maximum = 10 }
mutations.add = { type = "integer", minimum = 1 }
events."counter.changed" = { type = "integer" }
"#;

/// The emitter's routes moved aside, so only its schema can conflict.
const LATE_ROUTES: &str = r#"routes = [{ method = "POST", pattern = "/late/:topic" }]"#;

fn on_topic(storage: &Storage, topic: &str) -> Vec<String> {
    let events = storage.read_after(0, 1000).unwrap();
    events.into_iter().filter(|e| e.topic == topic).map(|e| String::from_utf8(e.payload).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_requests_that_do_not_match_are_refused_and_never_reach_the_log() {
    let plugins = plugins_dir(&[("emitter", ROUTE_EMITTER)], &[("emitter", EMITTER)]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let storage = host.storage();

    let good = post(host.public, "/emit/orders.placed", br#"{"id": "o1", "total": 12.5}"#).await;
    assert_eq!(good.status, 200, "{}", good.text());
    // The guest's emit gets the refusal (0.1.0 guests see it as invalid-topic).
    let negative = post(host.public, "/emit/orders.placed", br#"{"id": "o2", "total": -1}"#).await;
    assert_eq!(negative.status, 400, "{}", negative.text());
    let text = negative.text();
    assert!(text.contains("InvalidTopic") && text.contains("emitter/events/orders.placed"), "{text}");
    assert!(text.contains("/total") && text.contains("minimum"), "names the path and the rule: {text}");
    let not_json = post(host.public, "/emit/orders.placed", b"o3,7").await;
    assert!(not_json.status == 400 && not_json.text().contains("not JSON"), "{}", not_json.text());
    // Queued events are checked when queued, so the call can still react.
    let queued = post(host.public, "/queue/orders.placed", br#"{"id": "o4"}"#).await;
    assert_eq!(queued.status, 400, "{}", queued.text());
    assert!(queued.text().contains("required"), "{}", queued.text());
    // Topics without a schema take anything.
    assert_eq!(post(host.public, "/emit/other.topic", b"free text").await.status, 200);

    // A request body not matching its route's schema never reaches the plugin.
    let request = post(host.public, "/queue/orders.placed", b"[1, 2]").await;
    assert_eq!(request.status, 400, "{}", request.text());
    let body = request.json();
    assert_eq!(body["error"], "schema_mismatch", "{body}");
    assert_eq!(body["violation"]["schema"], "emitter/routes/POST /queue/:topic/request", "{body}");
    assert_eq!(body["violation"]["rule"], "type", "{body}");

    // The admin API's POST /events/TOPIC too.
    let admin = post(host.admin, "/events/orders.placed", br#"{"id": 7, "total": 1}"#).await;
    assert_eq!(admin.status, 400, "{}", admin.text());
    assert_eq!(admin.json()["violation"]["path"], "/id", "{}", admin.text());

    assert_eq!(on_topic(&storage, "orders.placed"), [r#"{"id": "o1", "total": 12.5}"#], "only the valid event");
    assert_eq!(on_topic(&storage, "other.topic"), ["free text"]);
    let listed = get(host.admin, "/plugins").await.json();
    let names = &listed[0]["schemas"];
    assert_eq!(names[0], "emitter/events/orders.placed", "{listed}");
    assert_eq!(names[1], "emitter/routes/POST /queue/:topic/request", "{listed}");
    let served = get(host.admin, "/schemas").await.json();
    assert_eq!(served["emitter/events/orders.placed"]["properties"]["total"]["minimum"], 0, "{served}");
    let openapi = get(host.admin, "/openapi.json").await.json();
    assert!(openapi["paths"]["/queue/{topic}"]["post"]["requestBody"].is_object(), "{openapi}");
    let metrics = get(host.admin, "/metrics").await.text();
    let refused = r#"corral_schema_refusals_total{at="emit",schema="emitter/events/orders.placed"} 3"#;
    assert!(metrics.contains(refused), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_mutations_states_and_outcome_events_are_checked_on_every_way_in() {
    let plugins = plugins_dir(
        &[("counter", CART_COUNTER), ("client", ROUTE_CART_CLIENT)],
        &[("counter", COUNTER), ("client", "[carts]\nplugins = [\"counter\"]\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let mutation = |payload: serde_json::Value| serde_json::json!({"kind": "add", "payload": payload}).to_string();

    // HTTP: 400 naming the kind's schema and the rule.
    let zero = post(host.public, "/carts/counter/c1", mutation(0.into()).as_bytes()).await;
    assert_eq!(zero.status, 400, "{}", zero.text());
    let body = zero.json();
    assert_eq!(body["error"], "schema_mismatch", "{body}");
    assert_eq!(
        (body["violation"]["schema"].as_str(), body["violation"]["rule"].as_str()),
        (Some("counter/mutations/add"), Some("minimum"))
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("counter/mutations/add") && message.contains("minimum"), "{message}");
    // gRPC: INVALID_ARGUMENT with the same message.
    let mut client = CartActorClient::connect(format!("http://{}", host.public)).await.unwrap();
    let request = MutateRequest {
        plugin: "counter".into(),
        cart_id: "c1".into(),
        kind: "add".into(),
        payload: b"\"two\"".to_vec(),
        client_id: String::new(),
        tenant: String::new(),
    };
    let status = client.mutate(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("counter/mutations/add") && status.message().contains("type"), "{status:?}");
    // The import: the guest gets `invalid`.
    let import = post(host.public, "/cart-client/counter/c1/add", b"-4").await;
    assert_eq!(import.status, 400, "{}", import.text());
    assert_eq!(import.json()["error"], "invalid", "{}", import.text());
    assert_eq!(get(host.public, "/carts/counter/c1").await.json()["version"], 0, "nothing was applied");

    // A valid mutation whose new state breaks the state's schema is the
    // plugin's fault: 500, and nothing is committed.
    let five = post(host.public, "/carts/counter/c1", mutation(5.into()).as_bytes()).await;
    assert_eq!(five.status, 200, "{}", five.text());
    let over = post(host.public, "/carts/counter/c1", mutation(6.into()).as_bytes()).await;
    assert_eq!(over.status, 500, "{}", over.text());
    let body = over.json();
    assert_eq!(
        (body["error"].as_str(), body["violation"]["schema"].as_str()),
        (Some("schema_mismatch"), Some("counter/state"))
    );
    assert_eq!(body["violation"]["rule"], "maximum", "{body}");
    let cart = get(host.public, "/carts/counter/c1").await.json();
    assert_eq!((cart["version"].as_u64(), cart["state"].as_i64()), (Some(1), Some(5)), "{cart}");
    assert_eq!(on_topic(&host.storage(), "counter.changed"), ["5"], "the refused outcome's event is not published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_declaring_different_schemas_for_one_topic_are_not_served_together() {
    let other = "[schemas.events.\"orders.placed\"]\ntype = \"string\"\n";
    let broken = "[schemas.mutations.multiply]\ntype = \"integer\"\n";
    let plugins = plugins_dir(
        &[("emitter", ROUTE_EMITTER), ("late", ROUTE_EMITTER), ("counter", CART_COUNTER)],
        &[("emitter", EMITTER), ("late", &format!("name = \"late\"\n{LATE_ROUTES}\n{other}")), ("counter", broken)],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let listed = get(host.admin, "/plugins").await.json();
    let failures = listed.to_string();
    assert!(failures.contains("orders.placed") && failures.contains("plugin emitter"), "{failures}");
    assert!(failures.contains("multiply") && failures.contains("counter.toml"), "names the sidecar: {failures}");
    // The first declaration stands and is enforced.
    let refused = post(host.public, "/emit/orders.placed", br#""a string""#).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
}
