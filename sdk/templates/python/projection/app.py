"""A Corral projection (world `projection` of wit/worlds.wit): a
deterministic fold of events into JSON views, on the SDK in `corral/`.
Build: `./build.sh`. Reference: corral/README.md and wit/.

The projection world may import `log` alone: use `Projection` and `log`
from `corral`, not kv, emit, views or carts."""

from typing import Any, Optional

from corral import Event, Projection

app = Projection("my-projection", "0.1.0", topics=["my.>"])


# The id of the view this event updates; None skips the event.
@app.key
def key(event: Event) -> Optional[str]:
    return event.topic


# The new view, or None to delete it. Must be deterministic; a raised
# `Failure` quarantines the event.
@app.apply
def apply(current: Any, event: Event) -> Any:
    return {"events": (current or {}).get("events", 0) + 1}


WitWorld, Projector = app.exports()
