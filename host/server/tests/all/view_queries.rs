//! Indexed view queries over the real binary: a projection's declared
//! indexes answer filtered, sorted, paged queries within the caller's
//! tenant; a query that would examine too many views is refused naming the
//! index to add; a changed declaration and a rebuild re-index the views.

use std::time::{Duration, Instant};

use corral_fixtures::*;
use serde_json::{Value, json};

use crate::projections::{settled, view};
use crate::{Host, plugins_dir, send};

const SIDECAR: &str = "[projection]\nindexes = [[\"customer\", \"placed_at\"], \"total\"]\nscan_limit = 40\n";

fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn publish(host: &Host, tenant: &str, document: &Value) {
    let body = document.to_string();
    let mut request = crate::request("POST", host.admin, "/events/docs.orders", body.as_bytes());
    request.headers_mut().insert("x-corral-tenant", tenant.parse().unwrap());
    assert_eq!(send(host.admin, request).await.status, 200);
}

/// Every page of a query; the index each page said it walked.
async fn pages(host: &Host, tenant: &str, filter: &str, order: &str, limit: usize) -> (Vec<Value>, Vec<Value>) {
    let (mut views, mut indexes) = (Vec::new(), Vec::new());
    let mut cursor = String::new();
    loop {
        let path = format!(
            "/views/documents?where={}&order_by={}&limit={limit}&cursor={cursor}",
            encoded(filter),
            encoded(order)
        );
        let reply = view(host, tenant, &path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let page = reply.json();
        assert!(page["views"].as_array().unwrap().len() <= limit);
        views.extend(page["views"].as_array().unwrap().iter().map(|v| v["value"].clone()));
        indexes.push(page["index"].clone());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return (views, indexes),
        }
    }
}

fn order(n: u64) -> Value {
    let customer = ["ada", "bob", "cy"][(n % 3) as usize];
    json!({"id": format!("o{n:03}"), "customer": customer, "total": (n * 37) % 200, "placed_at": 1000 + (n * 7) % 50 * 10 + n, "status": if n.is_multiple_of(4) { "paid" } else { "open" }})
}

#[tokio::test(flavor = "multi_thread")]
async fn indexed_queries_filter_sort_and_page_within_the_tenant_and_refuse_broad_scans() {
    let plugins = plugins_dir(
        &[("documents", PROJECTION_DOCUMENTS), ("reader", ROUTE_VIEWS_READER), ("legacy", ROUTE_CONTRACT_V0_1_0)],
        &[("documents", SIDECAR)],
    );
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let orders: Vec<Value> = (0..90).map(order).collect();
    for document in &orders {
        publish(&host, "acme", document).await;
    }
    // Another tenant's orders of the same customer never show up.
    publish(&host, "globex", &json!({"id": "g1", "customer": "ada", "total": 999, "placed_at": 5000})).await;
    publish(&host, "acme", &json!({"id": "o003", "deleted": true})).await;
    let status = settled(&host, "documents", "running").await;
    assert_eq!(
        (status["indexes"].clone(), status["scan_limit"].clone()),
        (json!(["customer,placed_at", "total"]), json!(40))
    );
    let live: Vec<&Value> = orders.iter().filter(|o| o["id"] != "o003").collect();

    // "Orders of customer ada over 100, newest first", paged by 4.
    let (got, indexes) = pages(&host, "acme", "customer = 'ada' AND total > 100", "placed_at DESC", 4).await;
    let mut expected: Vec<Value> = live
        .iter()
        .filter(|o| o["customer"] == "ada" && o["total"].as_u64().unwrap() > 100)
        .map(|o| (*o).clone())
        .collect();
    expected
        .sort_by_key(|o| std::cmp::Reverse((o["placed_at"].as_u64().unwrap(), o["id"].as_str().unwrap().to_string())));
    assert!(expected.len() > 8, "the data spans several pages");
    assert_eq!(got, expected);
    assert!(indexes.iter().all(|i| i == "customer,placed_at"), "{indexes:?}");
    let expected_newest = expected;

    // A range on an indexed field, sorted on another field in memory.
    let (got, indexes) = pages(&host, "acme", "total BETWEEN 50 AND 80 AND status <> 'paid'", "customer", 100).await;
    let mut expected: Vec<Value> = live
        .iter()
        .filter(|o| (50..=80).contains(&o["total"].as_u64().unwrap()) && o["status"] != "paid")
        .map(|o| (*o).clone())
        .collect();
    expected.sort_by_key(|o| (o["customer"].as_str().unwrap().to_string(), o["id"].as_str().unwrap().to_string()));
    assert_eq!(got, expected);
    assert_eq!(indexes, [json!("total")]);
    let (got, _) = pages(&host, "globex", "customer = 'ada'", "", 10).await;
    assert_eq!(got.len(), 1, "globex sees only its own order");

    // Plugins ask the same through the `views` import (0.1.1)...
    let asked = json!({"filter": "customer = 'ada' AND total > 100", "order_by": "placed_at DESC", "limit": 100});
    let mut request = crate::request("POST", host.public, "/query/documents", asked.to_string().as_bytes());
    request.headers_mut().insert("x-corral-tenant", "acme".parse().unwrap());
    let reply = send(host.public, request).await;
    let ids: Vec<Value> = expected_newest.iter().map(|o| o["id"].clone()).collect();
    assert_eq!(reply.json()["ids"], json!(ids), "the import answers what the HTTP API does");
    let broad = json!({"filter": "status = 'paid'"});
    let mut request = crate::request("POST", host.public, "/query/documents", broad.to_string().as_bytes());
    request.headers_mut().insert("x-corral-tenant", "acme".parse().unwrap());
    let refused = send(host.public, request).await.json();
    assert_eq!(refused["error"], "too-broad", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("[\"status\"]"), "{refused}");
    // ...and a plugin built against 0.1.0 reads views as it always did.
    let legacy = view(&host, "acme", "/legacy/documents/o007").await;
    assert_eq!(legacy.json(), orders[7], "{}", legacy.text());

    // Over the scan limit without an index: refused, naming the index.
    let refused = view(&host, "acme", &format!("/views/documents?where={}", encoded("status = 'paid'"))).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let body = refused.json();
    assert_eq!(body["error"], "query_too_broad");
    assert_eq!(body["suggested_index"], json!(["status"]));
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("more than 40 views") && message.contains("documents.toml"), "{message}");
    let invalid = view(&host, "acme", &format!("/views/documents?where={}", encoded("total + 1 > 2"))).await;
    assert_eq!((invalid.status, invalid.json()["error"].clone()), (400, json!("invalid_query")));

    // Declaring the index re-indexes the existing views; the query answers.
    let sidecar = format!(
        "{}indexes = [[\"customer\", \"placed_at\"], \"total\", \"status\"]\nscan_limit = 40\n",
        "[projection]\n"
    );
    std::fs::write(plugins.path().join("documents.toml"), sidecar).unwrap();
    let started = Instant::now();
    let paid = loop {
        let reply =
            view(&host, "acme", &format!("/views/documents?where={}&limit=100", encoded("status = 'paid'"))).await;
        if reply.status == 200 {
            break reply.json();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never re-indexed: {}", reply.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(paid["index"], "status");
    assert_eq!(paid["views"].as_array().unwrap().len(), live.iter().filter(|o| o["status"] == "paid").count());

    // A rebuild folds the views again, and their index entries with them.
    let rebuilt = send(host.admin, crate::request("POST", host.admin, "/projections/documents/rebuild", b"")).await;
    assert_eq!(rebuilt.status, 202);
    let started = Instant::now();
    loop {
        settled(&host, "documents", "running").await;
        let (again, indexes) = pages(&host, "acme", "customer = 'ada' AND total > 100", "placed_at DESC", 100).await;
        if again == expected_newest {
            assert_eq!(indexes, [json!("customer,placed_at")]);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the rebuild never answered the same: {again:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
