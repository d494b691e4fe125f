//! The shop's cart: a [`Cart`] plugin over the pure logic in [`cart`]
//! (kept free of the SDK so the host's benchmark runs the very same code
//! natively).

mod cart;

use corral_sdk::{Cart, Descriptor, Failure, Mutation, Outcome};

struct ShopCart;

impl Cart for ShopCart {
    fn describe() -> Descriptor {
        cart::KINDS.iter().fold(Descriptor::new("cart", "1.0.0"), |descriptor, kind| descriptor.mutation(kind))
    }

    fn apply(state: Option<Vec<u8>>, mutation: Mutation) -> Result<Outcome, Failure> {
        let applied = cart::apply(
            state.as_deref(),
            &mutation.entity,
            &mutation.id,
            &mutation.kind,
            &mutation.payload,
            mutation.timestamp_ms,
        )
        .map_err(|rejection| Failure::new(&rejection.code, rejection.message))?;
        Ok(applied
            .events
            .into_iter()
            .fold(Outcome::state(applied.state), |outcome, (topic, payload)| outcome.emit(&topic, payload)))
    }
}

corral_sdk::export_cart!(ShopCart);
