//! A Corral event handler (world `event-handler` of wit/worlds.wit).
//! Build: `cargo build --release --target wasm32-wasip2`.

use corral_sdk::{Descriptor, Event, EventHandler, Failure, emit, kv, log};

struct Plugin;

impl EventHandler for Plugin {
    fn describe() -> Descriptor {
        // `orders.*` matches one segment, `orders.>` one or more. A schedule
        // (`.schedule("sweep", "0 * * * * *")`) ticks as an event on
        // `schedule.my-handler.sweep`.
        Descriptor::new("my-handler", "0.1.0").topic("my.topic")
    }

    // `Ok` acknowledges the event; `Err` fails it (retried, then
    // dead-lettered); a panic traps.
    fn handle(event: Event) -> Result<(), Failure> {
        if event.payload.is_empty() {
            return Err(Failure::new("empty", format!("event {} has no payload", event.id)));
        }
        let seen = kv::increment("seen", 1).map_err(|e| Failure::new("kv", format!("{e:?}")))?;
        log::write(log::Level::Info, "handled", &[("topic", &event.topic), ("seen", &seen.to_string())]);
        // Published with the event's acknowledgement, only if this returns ok
        // (`emit::publish` appends at once and stays even if a later step fails).
        emit::publish_on_success("my.topic.handled", &event.payload)
            .map_err(|e| Failure::new("emit", format!("{e:?}")))?;
        Ok(())
    }
}

corral_sdk::export_event_handler!(Plugin);
