//! The shop's order history: a projection of the carts' outbox events into
//! one view per customer (`customer/ID`): their orders, newest last, with
//! status, and their order count and spend. `shop-api` serves them and sums
//! them into sales totals.

use corral_sdk::{Descriptor, Event, Failure, Projection};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct History {
    customer: String,
    orders: Vec<Order>,
    order_count: u64,
    spent_cents: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    order_id: String,
    cart: String,
    total_cents: u64,
    items: u64,
    placed_at_ms: u64,
    status: String,
}

/// What this projection reads of `cart.checked_out` and `cart.order_completed`.
#[derive(Deserialize)]
struct CartEvent {
    cart: String,
    order_id: String,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    total_cents: u64,
    #[serde(default)]
    items: Vec<Line>,
    #[serde(default)]
    placed_at_ms: u64,
}

#[derive(Deserialize)]
struct Line {
    quantity: u64,
}

struct Orders;

fn parse(event: &Event) -> Result<CartEvent, Failure> {
    serde_json::from_slice(&event.payload)
        .map_err(|e| Failure::new("invalid-event", format!("{} {}: {e}", event.topic, event.id)))
}

impl Projection for Orders {
    fn describe() -> Descriptor {
        Descriptor::new("orders", "1.0.0").topic("cart.checked_out").topic("cart.order_completed")
    }

    fn key(event: &Event) -> Option<String> {
        let parsed: CartEvent = serde_json::from_slice(&event.payload).ok()?;
        Some(format!("customer/{}", parsed.customer.unwrap_or_else(|| "guest".into())))
    }

    fn apply(current: Option<Vec<u8>>, event: &Event) -> Result<Option<Vec<u8>>, Failure> {
        let cart_event = parse(&event)?;
        let mut history: History = match current {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Failure::new("corrupt-view", e.to_string()))?,
            None => History {
                customer: cart_event.customer.clone().unwrap_or_else(|| "guest".into()),
                ..History::default()
            },
        };
        match event.topic.as_str() {
            "cart.checked_out" => {
                // Redelivery of the same order (a retried publish) changes nothing.
                if history.orders.iter().all(|o| o.order_id != cart_event.order_id) {
                    history.order_count += 1;
                    history.spent_cents += cart_event.total_cents;
                    history.orders.push(Order {
                        order_id: cart_event.order_id,
                        cart: cart_event.cart,
                        total_cents: cart_event.total_cents,
                        items: cart_event.items.iter().map(|l| l.quantity).sum(),
                        placed_at_ms: cart_event.placed_at_ms,
                        status: "placed".into(),
                    });
                }
            }
            "cart.order_completed" => {
                let Some(order) = history.orders.iter_mut().find(|o| o.order_id == cart_event.order_id) else {
                    return Err(Failure::new(
                        "unknown-order",
                        format!("order {} completed before it was placed", cart_event.order_id),
                    ));
                };
                order.status = "completed".into();
            }
            other => return Err(Failure::new("unexpected-topic", format!("orders does not fold {other}"))),
        }
        let bytes = serde_json::to_vec(&history).map_err(|e| Failure::new("internal", e.to_string()))?;
        Ok(Some(bytes))
    }
}

// Batched: the fold depends on nothing but the event and the current view
// (histories are vectors in event order; no statics, no hash maps).
corral_sdk::export_projection!(Orders, batched);
