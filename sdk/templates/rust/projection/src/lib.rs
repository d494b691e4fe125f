//! A Corral projection (world `projection` of wit/worlds.wit): a
//! deterministic fold of events into views.
//! Build: `cargo build --release --target wasm32-wasip2`.

use corral_sdk::{Descriptor, Event, Failure, Projection};

struct Plugin;

impl Projection for Plugin {
    fn describe() -> Descriptor {
        Descriptor::new("my-projection", "0.1.0").topic("my.>")
    }

    // The id of the view this event updates; `None` skips the event.
    fn key(event: &Event) -> Option<String> {
        Some(event.topic.clone())
    }

    // The new view, or `None` to delete it. Must be deterministic; an `Err`
    // quarantines the event.
    fn apply(current: Option<Vec<u8>>, _event: &Event) -> Result<Option<Vec<u8>>, Failure> {
        let count: u64 = match current {
            None => 0,
            Some(view) => String::from_utf8_lossy(&view)
                .parse()
                .map_err(|_| Failure::new("corrupt-view", "the view is not a number"))?,
        };
        Ok(Some((count + 1).to_string().into_bytes()))
    }
}

// `export_projection!(Plugin, batched)` folds a whole batch in one instance
// (the `batched-projection` world), many times faster, for a fold that
// depends on nothing but its arguments — see the SDK's `Projection` docs.
corral_sdk::export_projection!(Plugin);
