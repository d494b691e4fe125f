//! The shop's public API: the product catalogue, with a view counter per
//! product kept in kv and a `product.viewed` event for every view.

use corral_sdk::{Descriptor, HttpRequest, HttpResponse, Route, emit, kv, log};
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

struct ShopApi;

impl Route for ShopApi {
    fn describe() -> Descriptor {
        Descriptor::new("shop-api", "0.1.0")
            .route("GET", "/api/products")
            .route("GET", "/api/products/:id")
            .route("GET", "/api/stats")
    }

    fn handle(request: HttpRequest) -> HttpResponse {
        match (request.path.as_str(), request.param("id")) {
            ("/api/products", _) => HttpResponse::json(200, &CATALOGUE),
            ("/api/stats", _) => stats(),
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

corral_sdk::export_route!(ShopApi);
