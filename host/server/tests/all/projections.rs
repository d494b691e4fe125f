//! Projections over the real binary: folds into checkpointed views, tenant
//! scoped queries, crash recovery, rebuilds, quarantine.

use std::path::Path;
use std::time::{Duration, Instant};

use corral_fixtures::*;

use crate::{Host, Reply, get, plugins_dir, send};

async fn publish(host: &Host, tenant: &str, topic: &str, payload: &str) {
    let mut request = crate::request("POST", host.admin, &format!("/events/{topic}"), payload.as_bytes());
    request.headers_mut().insert("x-corral-tenant", tenant.parse().unwrap());
    assert_eq!(send(host.admin, request).await.status, 200);
}

pub(crate) async fn view(host: &Host, tenant: &str, path: &str) -> Reply {
    let mut request = crate::request("GET", host.public, path, b"");
    request.headers_mut().insert("x-corral-tenant", tenant.parse().unwrap());
    send(host.public, request).await
}

/// Waits until the projection has folded everything (lag 0) and is `state`.
pub(crate) async fn settled(host: &Host, projection: &str, state: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let list = get(host.admin, "/projections").await.json();
        let status = list.as_array().unwrap().iter().find(|p| p["projection"] == projection).cloned();
        if let Some(status) = status
            && status["state"] == state
            && (state == "halted" || status["lag"] == 0)
        {
            return status;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{projection} never settled as {state}: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn digest(host: &Host, generation: &str) -> (String, usize) {
    host.storage().views_digest(generation).unwrap()
}

/// The storage scope (`NAME@HASH`) of a component's generation.
fn generation(name: &str, component: &str) -> String {
    let hash = blake3::hash(&std::fs::read(component).unwrap()).to_hex().to_string();
    format!("{name}@{}", &hash[..12])
}

#[tokio::test(flavor = "multi_thread")]
async fn views_match_a_hand_computed_fold_and_queries_are_tenant_scoped() {
    let plugins = plugins_dir(&[("count", PROJECTION_COUNT), ("reader", ROUTE_VIEWS_READER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for (tenant, topic) in [
        ("acme", "orders.created"),
        ("acme", "orders.created"),
        ("acme", "orders.paid"),
        ("acme", "orders.x.ignored"),
        ("globex", "orders.created"),
        ("acme", "orders.created"),
        ("acme", "payments.done"),
    ] {
        publish(&host, tenant, topic, "{}").await;
    }
    settled(&host, "count", "running").await;
    assert_eq!(view(&host, "acme", "/views/count/orders.created").await.text(), "3");
    assert_eq!(view(&host, "globex", "/views/count/orders.created").await.text(), "1");
    assert_eq!(view(&host, "", "/views/count/orders.created").await.status, 404, "the default tenant has nothing");
    assert_eq!(view(&host, "acme", "/views/count/orders.x.ignored").await.status, 404, "key() skipped it");
    assert_eq!(view(&host, "acme", "/views/nope/x").await.status, 404);

    let listed = view(&host, "acme", "/views/count?prefix=orders.").await.json();
    assert_eq!(
        listed["views"],
        serde_json::json!([{"id": "orders.created", "value": 3}, {"id": "orders.paid", "value": 1}])
    );
    let first = view(&host, "acme", "/views/count?prefix=orders.&limit=1").await.json();
    assert_eq!(first["views"][0]["id"], "orders.created");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = view(&host, "acme", &format!("/views/count?prefix=orders.&limit=1&cursor={cursor}")).await.json();
    assert_eq!(second["views"], serde_json::json!([{"id": "orders.paid", "value": 1}]));
    assert!(second["next_cursor"].is_null());
    let other = view(&host, "globex", "/views/count").await.json();
    assert_eq!(other["views"].as_array().unwrap().len(), 1, "tenant globex never lists acme's views");

    let metrics = get(host.admin, "/metrics").await.text();
    assert!(metrics.contains("corral_projection_events_applied_total{projection=\"count\"} 6"), "{metrics}");
    assert!(metrics.contains("corral_projection_batch_size_count{projection=\"count\"}"), "{metrics}");
    assert!(metrics.contains("corral_projection_commit_seconds_count{projection=\"count\"}"), "{metrics}");
    assert!(metrics.contains("corral_projection_lag{projection=\"count\"} 0"), "{metrics}");

    // Route plugins read views through the `views` import, same scoping.
    assert_eq!(view(&host, "acme", "/read/count/orders.paid").await.text(), "1");
    assert_eq!(view(&host, "globex", "/read/count/orders.paid").await.status, 404);
    // A projection that is not served is the import's `no-such-projection`.
    let unknown = view(&host, "acme", "/read/nope/orders.paid").await;
    let text = unknown.text();
    assert_eq!(unknown.status, 500, "{text}");
    assert!(text.contains("NoSuchProjection") && text.contains("\"nope\""), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_event_is_quarantined_and_the_halt_policy_stops_before_it() {
    let plugins = plugins_dir(
        &[("halting", PROJECTION_COUNT), ("skipping", PROJECTION_COUNT)],
        &[
            ("halting", "name = \"halting\"\n"),
            ("skipping", "name = \"skipping\"\n[projection]\non_error = \"skip\"\n"),
        ],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for payload in ["{}", "poison", "{}"] {
        publish(&host, "acme", "orders.created", payload).await;
    }
    let halted = settled(&host, "halting", "halted").await;
    assert_eq!(halted["checkpoint"], 1, "the checkpoint stops before the poison event");
    assert_eq!(halted["quarantined"][0]["sequence"], 2);
    assert!(halted["quarantined"][0]["error"].as_str().unwrap().contains("cannot be folded"), "{halted}");
    assert_eq!(view(&host, "acme", "/views/halting/orders.created").await.text(), "1");

    let skipped = settled(&host, "skipping", "running").await;
    assert_eq!(skipped["checkpoint"], 3);
    assert_eq!(skipped["quarantined"].as_array().unwrap().len(), 1);
    assert_eq!(view(&host, "acme", "/views/skipping/orders.created").await.text(), "2");
    let metrics = get(host.admin, "/metrics").await.text();
    assert!(metrics.contains("corral_projection_quarantined{projection=\"halting\"} 1"), "{metrics}");
    let ready = get(host.admin, "/readyz").await.json();
    assert_eq!(ready["projections"]["halting"], "halted");
}

#[tokio::test(flavor = "multi_thread")]
async fn clock_and_random_give_identical_views_on_every_run() {
    let plugins = plugins_dir(&[("clock", PROJECTION_CLOCK_RANDOM)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for i in 0..5 {
        publish(&host, "", "ticks.tick", &i.to_string()).await;
    }
    settled(&host, "clock-random", "running").await;
    let storage = host.storage();
    let clock = generation("clock-random", PROJECTION_CLOCK_RANDOM);
    let first = storage.views_digest(&clock).unwrap();
    let sample = view(&host, "", "/views/clock-random/sample").await.json();
    let last = storage.read_after(0, 100).unwrap().last().unwrap().clone();
    assert_eq!(sample["now_ms"], last.timestamp_ms, "the clock is the event's timestamp");
    let rebuilt = send(host.admin, crate::request("POST", host.admin, "/projections/clock-random/rebuild", b"")).await;
    assert_eq!(rebuilt.status, 202);
    settled(&host, "clock-random", "running").await;
    assert_eq!(storage.views_digest(&clock).unwrap(), first, "a second run produces the same bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_builds_beside_the_old_and_cuts_over_with_a_diff() {
    let plugins = plugins_dir(&[("count", PROJECTION_COUNT)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for _ in 0..40 {
        publish(&host, "acme", "orders.created", "{}").await;
    }
    publish(&host, "acme", "orders.paid", "{}").await;
    settled(&host, "count", "running").await;
    assert_eq!(view(&host, "acme", "/views/count/orders.created").await.text(), "40");

    // Deploy version 2 the safe way; watch the answers while it builds.
    let staged = plugins.path().join(".count.wasm.partial");
    std::fs::copy(PROJECTION_COUNT_V2, &staged).unwrap();
    std::fs::rename(&staged, plugins.path().join("count.wasm")).unwrap();
    let started = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let answer = view(&host, "acme", "/views/count/orders.created").await.text();
        seen.insert(answer.clone());
        if answer == "400" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never cut over: {seen:?}");
    }
    assert!(seen.iter().all(|a| a == "40" || a == "400"), "only whole generations are ever served: {seen:?}");
    assert_eq!(view(&host, "acme", "/views/count/orders.paid").await.text(), "10");

    let list = get(host.admin, "/projections").await.json();
    let status = &list.as_array().unwrap()[0];
    assert_eq!(status["generation"], generation("count", PROJECTION_COUNT_V2));
    assert_eq!(status["version"], "2.0.0");
    let diff = &status["last_diff"];
    assert_eq!(diff["equal"], false);
    assert_eq!(diff["differing_count"], 2, "{diff}");
    assert_eq!(diff["from"], generation("count", PROJECTION_COUNT));
    assert_eq!(list.as_array().unwrap().len(), 1, "the old generation is gone");
    let storage = host.storage();
    assert_eq!(storage.views_digest(&generation("count", PROJECTION_COUNT)).unwrap().1, 0, "old views dropped");
}

#[tokio::test(flavor = "multi_thread")]
async fn putting_the_old_version_back_before_the_cutover_discards_the_new_generation() {
    let plugins = plugins_dir(&[("count", PROJECTION_COUNT)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for topic in ["orders.created", "orders.created", "orders.legacy", "orders.created"] {
        publish(&host, "acme", topic, "{}").await;
    }
    settled(&host, "count", "running").await;
    let place = |fixture: &str| {
        let staged = plugins.path().join(".count.wasm.partial");
        std::fs::copy(fixture, &staged).unwrap();
        std::fs::rename(&staged, plugins.path().join("count.wasm")).unwrap();
    };
    // Version 2 halts before the legacy event: its generation never catches up.
    place(PROJECTION_COUNT_V2);
    let started = Instant::now();
    loop {
        let list = get(host.admin, "/projections").await.json();
        let building = list.as_array().unwrap().iter().find(|p| p["active"] == false).cloned();
        if building.is_some_and(|b| b["state"] == "halted") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "version 2 never halted: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(view(&host, "acme", "/views/count/orders.created").await.text(), "3", "the active generation serves");

    // Rolling back before the cutover discards the new generation.
    place(PROJECTION_COUNT);
    let started = Instant::now();
    loop {
        let list = get(host.admin, "/projections").await.json();
        if list.as_array().unwrap().len() == 1 {
            assert_eq!(list[0]["generation"], generation("count", PROJECTION_COUNT));
            assert_eq!(list[0]["active"], true);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the new generation was never discarded: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(view(&host, "acme", "/views/count/orders.created").await.text(), "3");
    assert_eq!(view(&host, "acme", "/views/count/orders.legacy").await.text(), "1");
    assert_eq!(digest(&host, &generation("count", PROJECTION_COUNT_V2)).1, 0, "its views are gone");
}

/// Publishes `events` (tenant, topic, payload) into `data`'s log while no
/// projection runs, so a projection started afterwards finds them all at
/// once: one batch.
pub(crate) async fn prefill(data: &Path, events: &[(&str, &str, &str)]) {
    let empty = plugins_dir(&[], &[]);
    let host = Host::start(empty.path(), data);
    for (tenant, topic, payload) in events {
        publish(&host, tenant, topic, payload).await;
    }
    host.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_event_in_the_middle_of_a_batch_commits_the_events_before_it() {
    let data = tempfile::tempdir().unwrap();
    let mut events = vec![("acme", "orders.created", "{}"); 9];
    events[4].2 = "poison";
    prefill(data.path(), &events).await;
    let plugins = plugins_dir(
        &[("halting", PROJECTION_COUNT), ("skipping", PROJECTION_COUNT)],
        &[
            ("halting", "name = \"halting\"\n"),
            ("skipping", "name = \"skipping\"\n[projection]\non_error = \"skip\"\n"),
        ],
    );
    let host = Host::start(plugins.path(), data.path());
    let halted = settled(&host, "halting", "halted").await;
    assert_eq!(halted["checkpoint"], 4, "the checkpoint stops right before the poison event");
    assert_eq!(halted["quarantined"][0]["sequence"], 5);
    assert_eq!(view(&host, "acme", "/views/halting/orders.created").await.text(), "4", "the prefix is committed");

    let skipped = settled(&host, "skipping", "running").await;
    assert_eq!(skipped["checkpoint"], 9);
    assert_eq!(skipped["quarantined"].as_array().unwrap().len(), 1);
    assert_eq!(skipped["quarantined"][0]["sequence"], 5);
    assert_eq!(view(&host, "acme", "/views/skipping/orders.created").await.text(), "8");
}

#[tokio::test(flavor = "multi_thread")]
async fn batched_clock_and_random_do_not_depend_on_where_batches_start() {
    let data = tempfile::tempdir().unwrap();
    let topics = ["ticks.a", "ticks.b", "ticks.c"];
    let events: Vec<_> = (0..30).map(|i| ("", topics[i % 3], "{}")).collect();
    prefill(data.path(), &events).await;
    let sidecar = |name: &str, batch: usize| format!("name = \"{name}\"\n[projection]\nbatch_size = {batch}\n");
    let (one, seven, all) = (sidecar("one", 1), sidecar("seven", 7), sidecar("all", 256));
    let plugins = plugins_dir(
        &[("one", PROJECTION_BATCH_CLOCK), ("seven", PROJECTION_BATCH_CLOCK), ("all", PROJECTION_BATCH_CLOCK)],
        &[("one", one.as_str()), ("seven", seven.as_str()), ("all", all.as_str())],
    );
    let host = Host::start(plugins.path(), data.path());
    for name in ["one", "seven", "all"] {
        settled(&host, name, "running").await;
    }
    let digests: Vec<(String, usize)> =
        ["one", "seven", "all"].iter().map(|name| digest(&host, &generation(name, PROJECTION_BATCH_CLOCK))).collect();
    assert_eq!(digests[0].1, 3);
    assert_eq!(digests[0], digests[1], "batches of 7 give the bytes of one event at a time");
    assert_eq!(digests[0], digests[2], "one batch gives the bytes of one event at a time");
    let samples = view(&host, "", "/views/all/a").await.json();
    let log = host.storage().read_after(0, 100).unwrap();
    assert_eq!(samples[0]["now_ms"], log[0].timestamp_ms, "the clock of the event folded, not of the batch");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projection_sidecar_that_overrides_topics_is_refused_with_the_fix() {
    let sidecar = "topics = [\"orders.paid\"]\n";
    let plugins = plugins_dir(&[("count", PROJECTION_COUNT), ("hello", ROUTE_HELLO)], &[("count", sidecar)]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let list = get(host.admin, "/plugins").await.json();
    let count = list.as_array().unwrap().iter().find(|p| p["file"].as_str().unwrap().ends_with("count.wasm")).unwrap();
    let error = count["error"].as_str().unwrap_or_default();
    assert!(error.contains("count.toml"), "names the sidecar: {error}");
    assert!(error.contains("describe()") && error.contains("remove them from the sidecar"), "{error}");
    assert_eq!(
        get(host.admin, "/projections").await.json(),
        serde_json::json!([]),
        "nothing folds under the wrong topics"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_view_id_too_long_to_store_quarantines_its_event_and_the_projection_goes_on() {
    // The shop's orders projection names its views after the customer in
    // the payload: a 2,000-byte customer cannot be stored.
    let plugins = plugins_dir(&[("orders", EXAMPLE_ORDERS)], &[("orders", "[projection]\non_error = \"skip\"\n")]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let order = |customer: &str, order: &str| {
        serde_json::json!({"cart": "c1", "order_id": order, "customer": customer, "total_cents": 650}).to_string()
    };
    publish(&host, "acme", "cart.checked_out", &order(&"x".repeat(2000), "o-1")).await;
    publish(&host, "acme", "cart.checked_out", &order("ada", "o-2")).await;
    let status = settled(&host, "orders", "running").await;
    let quarantined = status["quarantined"].as_array().unwrap();
    assert_eq!(quarantined.len(), 1, "{status}");
    assert_eq!(quarantined[0]["sequence"], 1);
    assert!(quarantined[0]["error"].as_str().unwrap().contains("at most 256"), "{status}");
    let ada = view(&host, "acme", "/views/orders/customer/ada").await.json();
    assert_eq!(ada["orders"][0]["order_id"], "o-2", "the next event folded: {ada}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantined_events_survive_a_restart_and_an_operator_retries_or_skips_the_one_halted_before() {
    let plugins = plugins_dir(&[("count", PROJECTION_COUNT)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    for payload in ["{}", "poison", "{}"] {
        publish(&host, "acme", "orders.created", payload).await;
    }
    settled(&host, "count", "halted").await;
    let listed = get(host.admin, "/projections/count/quarantine").await.json();
    assert_eq!(
        (listed["quarantined"][0]["sequence"].as_u64(), listed["quarantined"][0]["halted"].as_bool()),
        (Some(2), Some(true)),
        "{listed}"
    );

    // Kept across a restart (where the projection halts before it again).
    tokio::task::spawn_blocking(move || host.stop()).await.unwrap();
    let host = Host::start(plugins.path(), data.path());
    settled(&host, "count", "halted").await;
    let listed = get(host.admin, "/projections/count/quarantine").await.json();
    assert_eq!(listed["quarantined"].as_array().unwrap().len(), 1, "{listed}");
    let admin = host.admin;

    // Only the event it halted before can be dealt with.
    let wrong = crate::post(admin, "/projections/count/quarantine/3/skip", b"").await;
    assert_eq!(wrong.status, 409, "{}", wrong.text());
    assert!(wrong.json()["message"].as_str().unwrap().contains("halted before event 2"), "{}", wrong.text());

    // Retried, it fails the same way and halts again.
    let retried = crate::post(admin, "/projections/count/quarantine/2/retry", b"").await;
    assert_eq!(retried.status, 200, "{}", retried.text());
    let halted = settled(&host, "count", "halted").await;
    assert_eq!(halted["checkpoint"], 1, "{halted}");

    // Skipped, the projection folds on past it; the record stays, marked.
    let skipped = crate::post(admin, "/projections/count/quarantine/2/skip", b"").await;
    assert_eq!(skipped.status, 200, "{}", skipped.text());
    let running = settled(&host, "count", "running").await;
    assert_eq!(running["checkpoint"], 3, "{running}");
    assert_eq!(view(&host, "acme", "/views/count/orders.created").await.text(), "2");
    let listed = get(admin, "/projections/count/quarantine").await.json();
    assert_eq!(listed["quarantined"][0]["skipped_by_operator"], true, "{listed}");
    let again = crate::post(admin, "/projections/count/quarantine/2/skip", b"").await;
    assert_eq!(again.status, 409, "nothing is halted now: {}", again.text());
}
