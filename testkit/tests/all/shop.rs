//! Example tests written with the kit for the example shop's plugins
//! (`examples/shop/plugins`): how a plugin author tests a cart and a route.

use corral_fixtures::{EXAMPLE_CART, EXAMPLE_SHOP_API};
use corral_testkit::kit::CLOCK_START_MS;
use corral_testkit::{Expect, ExpectedError, Mutation, Request};
use serde_json::json;

use crate::{kit, mismatch};

fn tea(quantity: u32) -> Mutation {
    Mutation::new(
        "add_item",
        json!({"sku": "tea", "name": "Green tea", "quantity": quantity, "unit_price_cents": 650, "customer": "cus-1"}),
    )
}

fn mug() -> Mutation {
    Mutation::new("add_item", json!({"sku": "mug", "name": "Stoneware mug", "unit_price_cents": 1400}))
}

fn standard_delivery() -> Mutation {
    Mutation::new("set_delivery", json!({"method": "standard", "address": "1 Tea Street"}))
}

#[tokio::test]
async fn cart_add_items_then_checkout_emits_cart_checked_out() {
    let mut kit = kit(EXAMPLE_CART).await;
    let run = kit.mutations("c1", [tea(2), mug(), standard_delivery()]).await.unwrap();
    let items = json!([
        {"sku": "mug", "name": "Stoneware mug", "quantity": 1, "unit_price_cents": 1400},
        {"sku": "tea", "name": "Green tea", "quantity": 2, "unit_price_cents": 650},
    ]);
    let delivery = json!({"method": "standard", "address": "1 Tea Street", "price_cents": 490});
    let opened = json!({"cart": "c1", "customer": "cus-1", "opened_at_ms": CLOCK_START_MS + 1000});
    run.expect(&Expect::new().emits("cart.opened", opened).state(json!({
        "id": "c1", "status": "open", "customer": "cus-1", "items": items, "delivery": delivery,
        "subtotal_cents": 2700, "shipping_cents": 490, "total_cents": 3190, "updated_at_ms": CLOCK_START_MS + 3000,
    })))
    .unwrap();

    let placed = CLOCK_START_MS + 4000;
    let run = kit.mutations("c1", [Mutation::new("checkout", "").id("m-checkout")]).await.unwrap();
    run.expect(
        &Expect::new()
            .state(json!({
                "id": "c1", "status": "checked_out", "customer": "cus-1", "items": items, "delivery": delivery,
                "subtotal_cents": 2700, "shipping_cents": 490, "total_cents": 3190,
                "order": {"order_id": "ord-m-checkout", "placed_at_ms": placed}, "updated_at_ms": placed,
            }))
            .emits(
                "cart.checked_out",
                json!({
                    "cart": "c1", "order_id": "ord-m-checkout", "customer": "cus-1", "items": items,
                    "total_cents": 3190, "delivery": delivery, "pickup_point": null, "placed_at_ms": placed,
                }),
            ),
    )
    .unwrap();
}

#[tokio::test]
async fn cart_refuses_what_it_must_and_changes_nothing() {
    let mut kit = kit(EXAMPLE_CART).await;
    let run = kit.mutations("c1", [Mutation::new("checkout", "")]).await.unwrap();
    run.expect(&Expect::new().no_state().emits_nothing().error(ExpectedError::code("empty-cart").at(0))).unwrap();

    let run = kit
        .mutations(
            "c1",
            [
                tea(0),
                tea(100),
                tea(1),
                Mutation::new("checkout", ""),
                Mutation::new("set_delivery", json!({"method": "drone", "address": "x"})),
            ],
        )
        .await
        .unwrap();
    // The first accepted mutation (the third) opens the cart.
    run.expect(
        &Expect::new()
            .emits_topic("cart.opened")
            .error(ExpectedError::code("invalid-item").at(0))
            .error(ExpectedError::code("invalid-quantity").at(1))
            .error(ExpectedError::code("no-delivery").at(3))
            .error(ExpectedError::code("unknown-delivery").at(4)),
    )
    .unwrap();
    assert_eq!(run.state_json().unwrap()["items"][0]["quantity"], 1);

    let run = kit.mutations("c1", [standard_delivery(), Mutation::new("checkout", ""), mug()]).await.unwrap();
    run.expect(&Expect::new().emits_topic("cart.checked_out").error(ExpectedError::code("cart-closed").at(2))).unwrap();
    assert_eq!(run.state_json().unwrap()["status"], "checked_out");
    assert_eq!(run.state_json().unwrap()["items"].as_array().unwrap().len(), 1, "the mug was refused");

    // An expectation that does not hold is reported with a JSON diff.
    let text = mismatch(run.expect(&Expect::new().state(json!({"status": "open"})).emits_topic("cart.checked_out")));
    assert!(text.contains("state differs") && text.contains("+   \"status\": \"checked_out\""), "{text}");
}

#[tokio::test]
async fn shop_api_lists_products_and_counts_views() {
    let mut kit = kit(EXAMPLE_SHOP_API).await;
    let run = kit.request(Request::get("/api/products")).await.unwrap();
    run.expect(&Expect::new().status(200).emits_nothing()).unwrap();
    let products = run.response.unwrap().json().unwrap();
    assert_eq!(products.as_array().unwrap().len(), 3);
    assert_eq!(products[0], json!({"id": "tea", "name": "Green tea, 100 g", "price_cents": 650}));

    kit.request(Request::get("/api/products/tea")).await.unwrap();
    let run = kit.request(Request::get("/api/products/tea")).await.unwrap();
    run.expect(
        &Expect::new()
            .status(200)
            .body(json!({"product": {"id": "tea", "name": "Green tea, 100 g", "price_cents": 650}, "views": 2}))
            .kv("views.tea", "2")
            .emits("product.viewed", json!({"id": "tea", "views": 2})),
    )
    .unwrap();
    kit.request(Request::get("/api/stats"))
        .await
        .unwrap()
        .expect(&Expect::new().body(json!({"views": {"tea": 2}})))
        .unwrap();

    let run = kit.request(Request::get("/api/products/teapot")).await.unwrap();
    run.expect(
        &Expect::new().status(404).body(json!({"error": "no such product", "id": "teapot"})).no_kv("views.teapot"),
    )
    .unwrap();
}

#[tokio::test]
async fn shop_api_still_answers_when_the_event_log_is_down_and_logs_why() {
    let mut kit = kit(EXAMPLE_SHOP_API).await;
    kit.emit_unavailable(Some("log down"));
    let run = kit.request(Request::get("/api/products/mug")).await.unwrap();
    run.expect(
        &Expect::new().status(200).kv("views.mug", "1").emits_nothing().log("warn", "could not publish product.viewed"),
    )
    .unwrap();
    let text = mismatch(run.expect(&Expect::new().log("error", "something else")));
    assert!(text.contains(r#"no log line at error containing "something else"; logged:"#), "{text}");
    assert!(text.contains("warn could not publish product.viewed"), "{text}");
}

#[tokio::test]
async fn shop_api_reads_confirmations_from_the_shared_bucket_it_is_granted() {
    let settings = corral_runtime::PluginSettings { kv_grants: vec!["orders".into()], ..Default::default() };
    let options = corral_testkit::Options { cache_dir: Some(crate::cache_dir()), settings, ..Default::default() };
    let mut kit = corral_testkit::TestKit::load_with(EXAMPLE_SHOP_API, options).await.unwrap();
    kit.given_shared_kv("orders", "confirmation/ord-1", json!({"order_id": "ord-1", "code": "C-1"})).await;
    let run = kit.request(Request::get("/api/orders/ord-1")).await.unwrap();
    run.expect(&Expect::new().status(200).body(json!({"order_id": "ord-1", "code": "C-1"})).shared_kv(
        "orders",
        "confirmation/ord-1",
        json!({"order_id": "ord-1", "code": "C-1"}),
    ))
    .unwrap();
    // The plugin's own bucket is another one: nothing leaked into it.
    assert!(run.kv.is_empty(), "{:?}", run.kv);
    let text = mismatch(run.expect(&Expect::new().shared_kv("orders", "confirmation/ord-1", json!({"code": "C-2"}))));
    assert!(text.contains(r#"kv bucket "orders": "confirmation/ord-1" differs"#), "{text}");

    let run = kit.request(Request::get("/api/orders/ord-2")).await.unwrap();
    run.expect(&Expect::new().status(404)).unwrap();
}

#[tokio::test]
async fn shop_api_runs_its_cart_calls_on_the_cart_plugin_loaded_beside_it() {
    let settings = corral_runtime::PluginSettings { cart_grants: vec!["cart".into()], ..Default::default() };
    let options = corral_testkit::Options { cache_dir: Some(crate::cache_dir()), settings, ..Default::default() };
    let mut kit = corral_testkit::TestKit::load_with(EXAMPLE_SHOP_API, options).await.unwrap();
    // Without the cart plugin, the call fails as on a host that lacks it.
    let run = kit.request(Request::post("/api/carts/c1/items").body(json!({"sku": "tea"}))).await.unwrap();
    run.expect(&Expect::new().status(500).emits_nothing()).unwrap();

    kit.with_cart_plugin("cart", EXAMPLE_CART).await.unwrap();
    let run =
        kit.request(Request::post("/api/carts/c1/items").body(json!({"sku": "tea", "customer": "ada"}))).await.unwrap();
    run.expect(&Expect::new().status(200).emits_topic("cart.opened")).unwrap();
    let delivery = json!({"method": "standard", "address": "1 Tea Street"});
    kit.request(Request::put("/api/carts/c1/delivery").body(delivery.clone()))
        .await
        .unwrap()
        .expect(&Expect::new().status(200))
        .unwrap();
    let checkout = Request::post("/api/carts/c1/checkout").body(json!({})).header("idempotency-key", "k-1");
    let first = kit.request(checkout.clone()).await.unwrap();
    first.expect(&Expect::new().status(200).emits_topic("cart.checked_out")).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&first.response.as_ref().unwrap().body).unwrap();
    assert_eq!((body["version"].as_u64(), body["cart"]["total_cents"].as_u64()), (Some(3), Some(650 + 490)));
    // The same key: the recorded answer, nothing applied or published again.
    let again = kit.request(checkout).await.unwrap();
    again.expect(&Expect::new().status(200).emits_nothing()).unwrap();
    let repeat: serde_json::Value = serde_json::from_slice(&again.response.as_ref().unwrap().body).unwrap();
    assert_eq!(repeat, body);
    let run = kit.request(Request::get("/api/carts/c1")).await.unwrap();
    run.expect(&Expect::new().status(200)).unwrap();
    // A refusal by the cart reaches the client with its code.
    let run = kit.request(Request::post("/api/carts/c1/items").body(json!({"sku": "mug"}))).await.unwrap();
    run.expect(&Expect::new().status(422).emits_nothing()).unwrap();
    kit.reset();
    kit.request(Request::get("/api/carts/c1")).await.unwrap().expect(&Expect::new().status(404)).unwrap();
}
