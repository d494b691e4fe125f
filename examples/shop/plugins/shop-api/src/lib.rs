//! The shop's public API: the product catalogue, with a view counter per
//! product kept in kv and a `product.viewed` event for every view; the
//! order history and sales totals, read from the `orders` projection; and
//! order confirmations, which the `confirmations` plugin keeps in the shared
//! kv bucket `orders`.

use corral_sdk::{Descriptor, HttpRequest, HttpResponse, Route, emit, kv, log, views};
use serde::Serialize;

#[derive(Serialize)]
struct Product {
    id: &'static str,
    name: &'static str,
    price_cents: u32,
}

const CATALOGUE: &[Product] = &[
    Product { id: "tea", name: "Green tea, 100 g", price_cents: 650 },
    Product { id: "mug", name: "Stoneware mug", price_cents: 1400 },
    Product { id: "kettle", name: "Gooseneck kettle", price_cents: 4900 },
];

/// The shared kv bucket of order confirmations (granted in shop-api.toml).
const ORDERS_BUCKET: &str = "orders";

struct ShopApi;

impl Route for ShopApi {
    fn describe() -> Descriptor {
        Descriptor::new("shop-api", "0.1.0")
            .route("GET", "/api/products")
            .route("GET", "/api/products/:id")
            .route("GET", "/api/stats")
            .route("GET", "/api/customers/:id/orders")
            .route("GET", "/api/sales")
            .route("GET", "/api/orders/:id")
    }

    fn handle(request: HttpRequest) -> HttpResponse {
        match (request.path.as_str(), request.param("id")) {
            ("/api/products", _) => HttpResponse::json(200, &CATALOGUE),
            ("/api/stats", _) => stats(),
            ("/api/sales", _) => sales(),
            (path, Some(id)) if path.starts_with("/api/customers/") => orders(id),
            (path, Some(id)) if path.starts_with("/api/orders/") => confirmation(id),
            (_, Some(id)) => product(id),
            _ => HttpResponse::text(404, "not found"),
        }
    }
}

fn product(id: &str) -> HttpResponse {
    let Some(product) = CATALOGUE.iter().find(|p| p.id == id) else {
        return HttpResponse::json(404, &serde_json::json!({"error": "no such product", "id": id}));
    };
    let views = match kv::increment(&format!("views.{id}"), 1) {
        Ok(views) => views,
        Err(error) => return HttpResponse::text(503, format!("kv unavailable: {error:?}")),
    };
    if let Err(error) = emit::publish_json("product.viewed", &serde_json::json!({"id": id, "views": views})) {
        log::warn(&format!("could not publish product.viewed: {error:?}"));
    }
    HttpResponse::json(200, &serde_json::json!({"product": product, "views": views}))
}

fn stats() -> HttpResponse {
    let page = match kv::Bucket::own().list("views.", None, 100) {
        Ok(page) => page,
        Err(error) => return HttpResponse::text(503, format!("kv unavailable: {error:?}")),
    };
    let views: serde_json::Map<String, serde_json::Value> = page
        .entries
        .into_iter()
        .map(|entry| {
            let count: i64 = String::from_utf8_lossy(&entry.value).parse().unwrap_or(0);
            (entry.key.trim_start_matches("views.").to_string(), count.into())
        })
        .collect();
    HttpResponse::json(200, &serde_json::json!({"views": views}))
}

/// A customer's order history, as the `orders` projection keeps it.
fn orders(customer: &str) -> HttpResponse {
    match views::get("orders", &format!("customer/{customer}")) {
        Ok(Some(history)) => HttpResponse::new(200, history).with_header("content-type", "application/json"),
        Ok(None) => HttpResponse::json(404, &serde_json::json!({"error": "no orders", "customer": customer})),
        Err(error) => HttpResponse::text(503, format!("views unavailable: {error:?}")),
    }
}

/// An order's confirmation, once the `confirmations` plugin has handled
/// its checkout.
fn confirmation(order: &str) -> HttpResponse {
    match kv::Bucket::shared(ORDERS_BUCKET).get(&format!("confirmation/{order}")) {
        Ok(Some(record)) => HttpResponse::new(200, record).with_header("content-type", "application/json"),
        Ok(None) => HttpResponse::json(404, &serde_json::json!({"error": "not confirmed (yet)", "order_id": order})),
        Err(error) => HttpResponse::text(503, format!("kv unavailable: {error:?}")),
    }
}

/// Orders and revenue over every customer's history.
fn sales() -> HttpResponse {
    let (mut customers, mut orders, mut revenue_cents) = (0u64, 0u64, 0u64);
    let mut cursor: Option<String> = None;
    loop {
        let page = match views::list("orders", "customer/", cursor.as_deref(), 500) {
            Ok(page) => page,
            Err(error) => return HttpResponse::text(503, format!("views unavailable: {error:?}")),
        };
        for view in page.views {
            let history: serde_json::Value = serde_json::from_slice(&view.value).unwrap_or_default();
            customers += 1;
            orders += history["order_count"].as_u64().unwrap_or(0);
            revenue_cents += history["spent_cents"].as_u64().unwrap_or(0);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    HttpResponse::json(
        200,
        &serde_json::json!({"customers": customers, "orders": orders, "revenue_cents": revenue_cents}),
    )
}

corral_sdk::export_route!(ShopApi);
