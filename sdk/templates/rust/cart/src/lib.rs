//! A Corral cart (world `cart` of wit/worlds.wit): a deterministic state
//! machine per entity.
//! Build: `cargo build --release --target wasm32-wasip2`.

use corral_sdk::{Cart, Descriptor, Failure, Mutation, Outcome, json};
use serde::{Deserialize, Serialize};

struct Plugin;

#[derive(Default, Serialize, Deserialize)]
struct State {
    items: u64,
}

#[derive(Deserialize)]
struct Add {
    quantity: u64,
}

impl Cart for Plugin {
    fn describe() -> Descriptor {
        Descriptor::new("my-cart", "0.1.0").mutation("add").mutation("clear")
    }

    // `state` is `None` for a new entity. Returns the new state and the
    // events to publish once it is committed. Must be deterministic; an `Err`
    // is returned to the caller and changes nothing.
    fn apply(state: Option<Vec<u8>>, mutation: Mutation) -> Result<Outcome, Failure> {
        let mut cart: State = state.map(|s| json::from_bytes(&s)).transpose()?.unwrap_or_default();
        match mutation.kind.as_str() {
            "add" => {
                let add: Add = json::from_bytes(&mutation.payload)?;
                if add.quantity == 0 {
                    return Err(Failure::new("invalid-quantity", "quantity must be a positive integer"));
                }
                cart.items += add.quantity;
                Ok(Outcome::state(json::to_bytes(&cart)?).emit("my-cart.added", mutation.payload))
            }
            "clear" => Ok(Outcome::state(json::to_bytes(&State::default())?)),
            other => Err(Failure::new("unknown-kind", format!("no mutation {other:?}"))),
        }
    }
}

corral_sdk::export_cart!(Plugin);
