//! The shop's public API: the product catalogue, with a view counter per
//! product kept in kv and a `product.viewed` event for every view; carts,
//! mutated and read through the `carts` import (the `cart` plugin is the one
//! writer of each cart; prices come from the catalogue, never the client);
//! the order history and sales totals, read from the `orders` projection;
//! and order confirmations, which the `confirmations` plugin keeps in the
//! shared kv bucket `orders`.

use corral_sdk::{Descriptor, HttpRequest, HttpResponse, Route, carts, emit, kv, log, views};
use serde::{Deserialize, Serialize};

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

/// The cart plugin (granted in shop-api.toml).
const CART_PLUGIN: &str = "cart";

/// The shared kv bucket of order confirmations (granted in shop-api.toml).
const ORDERS_BUCKET: &str = "orders";

struct ShopApi;

impl Route for ShopApi {
    fn describe() -> Descriptor {
        Descriptor::new("shop-api", "0.1.0")
            .route("GET", "/api/products")
            .route("GET", "/api/products/:id")
            .route("GET", "/api/stats")
            .route("GET", "/api/carts/:id")
            .route("POST", "/api/carts/:id/items")
            .route("DELETE", "/api/carts/:id/items/:sku")
            .route("PUT", "/api/carts/:id/delivery")
            .route("POST", "/api/carts/:id/checkout")
            .route("GET", "/api/customers/:id/orders")
            .route("GET", "/api/sales")
            .route("GET", "/api/orders/:id")
    }

    fn handle(request: HttpRequest) -> HttpResponse {
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let id = request.param("id").unwrap_or_default();
        match (request.method.as_str(), segments.as_slice()) {
            (_, ["api", "products"]) => HttpResponse::json(200, &CATALOGUE),
            (_, ["api", "products", _]) => product(id),
            (_, ["api", "stats"]) => stats(),
            ("GET", ["api", "carts", _]) => cart(id),
            ("POST", ["api", "carts", _, "items"]) => add_item(id, &request),
            ("DELETE", ["api", "carts", _, "items", _]) => {
                let sku = request.param("sku").unwrap_or_default();
                reply(carts::Cart::new(CART_PLUGIN, id).mutate_json("remove_item", &serde_json::json!({"sku": sku})))
            }
            ("PUT", ["api", "carts", _, "delivery"]) => delivery(id, &request),
            ("POST", ["api", "carts", _, "checkout"]) => checkout(id, &request),
            (_, ["api", "customers", _, "orders"]) => orders(id),
            (_, ["api", "sales"]) => sales(),
            (_, ["api", "orders", _]) => confirmation(id),
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

/// A cart and its version.
fn cart(id: &str) -> HttpResponse {
    match carts::get(CART_PLUGIN, id) {
        Ok(Some(current)) => HttpResponse::json(200, &serde_json::json!({"cart": json(&current.state), "version": current.version})),
        Ok(None) => HttpResponse::json(404, &serde_json::json!({"error": "no such cart", "cart": id})),
        Err(error) => cart_error(error),
    }
}

#[derive(Deserialize)]
struct AddItem {
    sku: String,
    #[serde(default = "one")]
    quantity: u32,
    #[serde(default)]
    customer: Option<String>,
}

fn one() -> u32 {
    1
}

/// Adds a catalogue product to a cart, at the catalogue's price.
fn add_item(id: &str, request: &HttpRequest) -> HttpResponse {
    let add: AddItem = match request.json() {
        Ok(add) => add,
        Err(error) => return bad_request(&format!("expected {{\"sku\", \"quantity\"?, \"customer\"?}}: {error}")),
    };
    let Some(product) = CATALOGUE.iter().find(|p| p.id == add.sku) else {
        return HttpResponse::json(404, &serde_json::json!({"error": "no such product", "id": add.sku}));
    };
    let line = serde_json::json!({
        "sku": product.id,
        "name": product.name,
        "quantity": add.quantity,
        "unit_price_cents": product.price_cents,
        "customer": add.customer,
    });
    reply(carts::Cart::new(CART_PLUGIN, id).mutate_json("add_item", &line))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Delivery {
    Address { method: String, address: String },
    PickupPoint { pickup_point: String },
}

/// Delivery to an address, or collection at a pickup point.
fn delivery(id: &str, request: &HttpRequest) -> HttpResponse {
    let cart = carts::Cart::new(CART_PLUGIN, id);
    match request.json() {
        Ok(Delivery::Address { method, address }) => {
            reply(cart.mutate_json("set_delivery", &serde_json::json!({"method": method, "address": address})))
        }
        Ok(Delivery::PickupPoint { pickup_point }) => {
            reply(cart.mutate_json("set_pickup_point", &serde_json::json!({"id": pickup_point})))
        }
        Err(_) => bad_request("expected {\"method\", \"address\"} or {\"pickup_point\"}"),
    }
}

/// Checks a cart out. An `idempotency-key` header makes a retry safe: the
/// same key answers with the same order.
fn checkout(id: &str, request: &HttpRequest) -> HttpResponse {
    let body: serde_json::Value = if request.body.is_empty() {
        serde_json::json!({})
    } else {
        match request.json() {
            Ok(body) => body,
            Err(error) => return bad_request(&format!("expected {{\"customer\"?}}: {error}")),
        }
    };
    let mut cart = carts::Cart::new(CART_PLUGIN, id);
    if let Some(key) = request.header("idempotency-key") {
        cart = cart.idempotency_key(key);
    }
    match cart.mutate_json("checkout", &body) {
        Ok(applied) => {
            let state = json(&applied.state);
            HttpResponse::json(
                200,
                &serde_json::json!({"order_id": state["order"]["order_id"], "cart": state, "version": applied.version}),
            )
        }
        Err(error) => cart_error(error),
    }
}

/// A mutation's answer: the new state and version.
fn reply(result: Result<carts::Applied, carts::CartError>) -> HttpResponse {
    match result {
        Ok(applied) => {
            HttpResponse::json(200, &serde_json::json!({"cart": json(&applied.state), "version": applied.version}))
        }
        Err(error) => cart_error(error),
    }
}

/// A cart call's failure as a status and a JSON body: the cart's own
/// refusal is the client's problem (422 with its code), the rest is ours.
fn cart_error(error: carts::CartError) -> HttpResponse {
    use carts::CartError;
    let (status, code, message) = match error {
        CartError::Rejected(reason) => {
            let (code, message) = reason.split_once(": ").unwrap_or(("rejected", reason.as_str()));
            return HttpResponse::json(422, &serde_json::json!({"code": code, "message": message}));
        }
        CartError::Invalid(message) => (400, "invalid", message),
        CartError::Unavailable(message) => (503, "unavailable", message),
        CartError::Failed(message) => (502, "cart-failed", message),
        CartError::NoSuchCartPlugin(message) | CartError::NotGranted(message) | CartError::UnknownKind(message) => {
            log::error(&format!("the shop's cart is misconfigured: {message}"));
            (500, "misconfigured", message)
        }
    };
    HttpResponse::json(status, &serde_json::json!({"code": code, "message": message}))
}

fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::json(400, &serde_json::json!({"code": "invalid-request", "message": message}))
}

/// A cart's state (JSON, as the cart plugin keeps it).
fn json(state: &[u8]) -> serde_json::Value {
    serde_json::from_slice(state).unwrap_or(serde_json::Value::Null)
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
