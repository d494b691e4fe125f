"""A Corral event handler (world `event-handler` of wit/worlds.wit), on the
SDK in `corral/`. Build: `./build.sh`. Reference: corral/README.md."""

from corral import Event, EventHandler, Failure, emit_on_success, kv, log

app = EventHandler("my-handler", "0.1.0")


# `orders.*` matches one segment, `orders.>` one or more. A schedule's
# ticks are handled with @app.schedule("nightly", "0 0 3 * * *").
@app.on("my.topic")
def handle(event: Event) -> None:
    if not event.payload:
        # Fails the event: retried, then dead-lettered. Any other exception traps.
        raise Failure("empty", f"event {event.id} has no payload")
    seen = kv.increment("seen")
    log.info("handled", topic=event.topic, seen=seen)
    # Published with the event's acknowledgement, only if this returns
    # (`emit` would append at once and stay even if a later step failed).
    emit_on_success("my.topic.handled", event.payload)


WitWorld, EventConsumer = app.exports()
