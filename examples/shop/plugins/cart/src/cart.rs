//! A shopping cart as a pure function: `(state, mutation) → (state, events)`.
//! No I/O, no clock but the mutation's timestamp, no randomness but the
//! mutation's id: replaying the journal gives the same bytes.
//!
//! State and payloads are JSON. Lines are kept sorted by SKU, so the
//! serialised state never depends on the order of a hash map.

use serde::{Deserialize, Serialize};

/// The mutation kinds, as declared in `describe()`.
pub const KINDS: [&str; 8] = [
    "add_item",
    "remove_item",
    "change_quantity",
    "set_delivery",
    "set_pickup_point",
    "checkout",
    "complete_order",
    "abandon",
];

/// Largest quantity of one line.
const MAX_QUANTITY: u32 = 99;
/// Most distinct lines in a cart.
const MAX_LINES: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    id: String,
    status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
    items: Vec<Line>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery: Option<Delivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pickup_point: Option<String>,
    subtotal_cents: u64,
    shipping_cents: u64,
    total_cents: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<Order>,
    updated_at_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    #[default]
    Open,
    CheckedOut,
    Completed,
    Abandoned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    sku: String,
    name: String,
    quantity: u32,
    unit_price_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Delivery {
    method: String,
    address: String,
    price_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Order {
    order_id: String,
    placed_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completed_at_ms: Option<u64>,
}

#[derive(Deserialize)]
struct AddItem {
    sku: String,
    name: String,
    #[serde(default = "one")]
    quantity: u32,
    unit_price_cents: u64,
    #[serde(default)]
    customer: Option<String>,
}

#[derive(Deserialize)]
struct Sku {
    sku: String,
}

#[derive(Deserialize)]
struct ChangeQuantity {
    sku: String,
    quantity: u32,
}

#[derive(Deserialize)]
struct SetDelivery {
    method: String,
    address: String,
}

#[derive(Deserialize)]
struct SetPickupPoint {
    id: String,
}

#[derive(Deserialize)]
struct Abandon {
    /// The cart is abandoned only if nothing changed it for this long.
    idle_ms: u64,
}

#[derive(Deserialize, Default)]
struct Checkout {
    #[serde(default)]
    customer: Option<String>,
}

fn one() -> u32 {
    1
}

/// Why a mutation was refused: returned to the caller, nothing changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Machine-readable code.
    pub code: String,
    /// For people.
    pub message: String,
}

/// A successful mutation: the new state and the events to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The new state (JSON).
    pub state: Vec<u8>,
    /// Events as (topic, JSON payload).
    pub events: Vec<(String, Vec<u8>)>,
}

fn reject(code: &str, message: impl Into<String>) -> Rejection {
    Rejection { code: code.into(), message: message.into() }
}

fn parse<'a, T: Deserialize<'a>>(kind: &str, payload: &'a [u8]) -> Result<T, Rejection> {
    serde_json::from_slice(payload).map_err(|e| reject("invalid-payload", format!("{kind}: {e}")))
}

/// Applies one mutation of `kind` to the cart `cart_id`.
pub fn apply(
    state: Option<&[u8]>,
    cart_id: &str,
    mutation_id: &str,
    kind: &str,
    payload: &[u8],
    now_ms: u64,
) -> Result<Applied, Rejection> {
    let mut cart: State = match state {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| reject("corrupt-state", e.to_string()))?,
        None => State { id: cart_id.to_string(), ..State::default() },
    };
    let closed = cart.status != Status::Open;
    let mut events = Vec::new();
    let opened = state.is_none();
    match kind {
        "complete_order" => {
            let Some(order) = cart.order.as_mut().filter(|_| cart.status == Status::CheckedOut) else {
                return Err(reject("not-checked-out", "only a checked-out cart can complete its order"));
            };
            order.completed_at_ms = Some(now_ms);
            cart.status = Status::Completed;
            let event = serde_json::json!({"cart": cart.id, "order_id": order.order_id, "customer": cart.customer});
            events.push(("cart.order_completed".to_string(), event.to_string().into_bytes()));
        }
        "abandon" => {
            // The sweeper asks; the cart decides, by its own last change.
            let Abandon { idle_ms } = parse(kind, payload)?;
            if opened {
                return Err(reject("no-cart", "there is no cart to abandon"));
            }
            if closed {
                return Err(reject(
                    "cart-closed",
                    format!("the cart is {:?}; only an open cart is abandoned", cart.status),
                ));
            }
            let idle = now_ms.saturating_sub(cart.updated_at_ms);
            if idle < idle_ms {
                return Err(reject("cart-active", format!("the cart changed {idle} ms ago (< {idle_ms} ms)")));
            }
            cart.status = Status::Abandoned;
            let event = serde_json::json!({
                "cart": cart.id,
                "customer": cart.customer,
                "items": cart.items,
                "subtotal_cents": cart.subtotal_cents,
                "idle_ms": idle,
            });
            events.push(("cart.abandoned".to_string(), event.to_string().into_bytes()));
            // Abandoning is not a change by the customer: `updated_at_ms`
            // keeps the time of their last one.
            let state = serde_json::to_vec(&cart).map_err(|e| reject("internal", e.to_string()))?;
            return Ok(Applied { state, events });
        }
        _ if closed => {
            return Err(reject("cart-closed", format!("the cart is {:?}; it takes no more changes", cart.status)));
        }
        "add_item" => {
            let add: AddItem = parse(kind, payload)?;
            if add.sku.is_empty() || add.quantity == 0 {
                return Err(reject("invalid-item", "an item needs a sku and a quantity of at least 1"));
            }
            if let Some(customer) = add.customer {
                cart.customer = Some(customer);
            }
            match cart.items.binary_search_by(|line| line.sku.as_str().cmp(&add.sku)) {
                Ok(index) => {
                    let line = &mut cart.items[index];
                    line.quantity = quantity(line.quantity.saturating_add(add.quantity))?;
                    line.unit_price_cents = add.unit_price_cents;
                }
                Err(index) => {
                    if cart.items.len() >= MAX_LINES {
                        return Err(reject("cart-full", format!("a cart holds at most {MAX_LINES} lines")));
                    }
                    let line = Line {
                        sku: add.sku,
                        name: add.name,
                        quantity: quantity(add.quantity)?,
                        unit_price_cents: add.unit_price_cents,
                    };
                    cart.items.insert(index, line);
                }
            }
        }
        "remove_item" => {
            let Sku { sku } = parse(kind, payload)?;
            let index = find(&cart, &sku)?;
            cart.items.remove(index);
        }
        "change_quantity" => {
            let change: ChangeQuantity = parse(kind, payload)?;
            let index = find(&cart, &change.sku)?;
            match change.quantity {
                0 => {
                    cart.items.remove(index);
                }
                n => cart.items[index].quantity = quantity(n)?,
            }
        }
        "set_delivery" => {
            let delivery: SetDelivery = parse(kind, payload)?;
            let price_cents = match delivery.method.as_str() {
                "standard" => 490,
                "express" => 990,
                other => {
                    return Err(reject(
                        "unknown-delivery",
                        format!("no delivery method {other:?}; use standard or express"),
                    ));
                }
            };
            if delivery.address.trim().is_empty() {
                return Err(reject("invalid-address", "a delivery needs an address"));
            }
            cart.delivery = Some(Delivery { method: delivery.method, address: delivery.address, price_cents });
            cart.pickup_point = None;
        }
        "set_pickup_point" => {
            let pickup: SetPickupPoint = parse(kind, payload)?;
            if pickup.id.is_empty() {
                return Err(reject("invalid-pickup-point", "a pickup point needs an id"));
            }
            cart.pickup_point = Some(pickup.id);
            cart.delivery = None;
        }
        "checkout" => {
            let checkout: Checkout = if payload.is_empty() { Checkout::default() } else { parse(kind, payload)? };
            if let Some(customer) = checkout.customer {
                cart.customer = Some(customer);
            }
            if cart.items.is_empty() {
                return Err(reject("empty-cart", "an empty cart cannot be checked out"));
            }
            if cart.delivery.is_none() && cart.pickup_point.is_none() {
                return Err(reject("no-delivery", "choose a delivery or a pickup point before checking out"));
            }
            totals(&mut cart);
            let order_id = format!("ord-{}", &mutation_id[..mutation_id.len().min(24)]);
            cart.order = Some(Order { order_id: order_id.clone(), placed_at_ms: now_ms, completed_at_ms: None });
            cart.status = Status::CheckedOut;
            let event = serde_json::json!({
                "cart": cart.id,
                "order_id": order_id,
                "customer": cart.customer,
                "items": cart.items,
                "total_cents": cart.total_cents,
                "delivery": cart.delivery,
                "pickup_point": cart.pickup_point,
                "placed_at_ms": now_ms,
            });
            events.push(("cart.checked_out".to_string(), event.to_string().into_bytes()));
        }
        other => return Err(reject("unknown-kind", format!("no mutation kind {other:?}"))),
    }
    totals(&mut cart);
    cart.updated_at_ms = now_ms;
    if opened {
        // The first accepted mutation opens the cart (the sweeper watches
        // open carts for abandonment).
        let event = serde_json::json!({"cart": cart.id, "customer": cart.customer, "opened_at_ms": now_ms});
        events.insert(0, ("cart.opened".to_string(), event.to_string().into_bytes()));
    }
    let state = serde_json::to_vec(&cart).map_err(|e| reject("internal", e.to_string()))?;
    Ok(Applied { state, events })
}

fn quantity(n: u32) -> Result<u32, Rejection> {
    match n {
        1..=MAX_QUANTITY => Ok(n),
        _ => Err(reject("invalid-quantity", format!("quantity must be 1 to {MAX_QUANTITY}, got {n}"))),
    }
}

fn find(cart: &State, sku: &str) -> Result<usize, Rejection> {
    cart.items
        .binary_search_by(|line| line.sku.as_str().cmp(sku))
        .map_err(|_| reject("unknown-item", format!("the cart has no item {sku:?}")))
}

fn totals(cart: &mut State) {
    cart.subtotal_cents = cart.items.iter().map(|l| l.unit_price_cents * u64::from(l.quantity)).sum();
    cart.shipping_cents = cart.delivery.as_ref().map_or(0, |d| d.price_cents);
    cart.total_cents = cart.subtotal_cents + cart.shipping_cents;
}
