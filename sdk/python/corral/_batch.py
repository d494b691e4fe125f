"""The guest's side of `batch-projector.fold` (the `batched-projection`
world), walked the way the host follows it (see wit/handlers.wit): the
events arrive encoded and are decoded one at a time, each after the host
has begun the segment it is in; a view is read from the host once per batch
and then kept here; every view's last value is handed over with
`batch.flush` at the end (or early, past `KEPT_BYTES`). An event that fails
hands over the writes of the events before it only."""

import struct
from typing import Any, Callable, Dict, List, Optional, Tuple

from wit_world.imports import batch, types

from ._codec import from_json, to_bytes
from ._errors import CorralError, Failure, failing
from ._event import Event

KEPT_BYTES = 1 << 20
"""Bytes of kept view values past which a batch hands them over early."""

_NO_TRACEPARENT = 0xFFFFFFFF
_HEAD = struct.Struct("<QQIIII")


class _Decoder:
    """Events in `fold`'s encoding: strings back to back in `text` (lengths in
    UTF-8 bytes), the rest in `events`, little-endian."""

    def __init__(self, text: str, events: bytes) -> None:
        self.events = events
        self.at = 0
        # Sliced as bytes unless it is all ASCII, where bytes are characters.
        self.text: "str | bytes" = text if text.isascii() else text.encode()
        self.text_at = 0

    def done(self) -> bool:
        return self.at >= len(self.events)

    def string(self, length: int) -> str:
        end = self.text_at + length
        if end > len(self.text):
            raise ValueError("text cut short")
        piece = self.text[self.text_at : end]
        self.text_at = end
        return piece if isinstance(piece, str) else piece.decode()

    def next(self) -> types.Event:
        """The next event; ValueError (or struct.error) when malformed."""
        sequence, timestamp_ms, *lengths = _HEAD.unpack_from(self.events, self.at)
        self.at += _HEAD.size
        id, topic, tenant, correlation_id = (self.string(n) for n in lengths)
        (marker,) = struct.unpack_from("<I", self.events, self.at)
        self.at += 4
        traceparent = None if marker == _NO_TRACEPARENT else self.string(marker)
        (length,) = struct.unpack_from("<I", self.events, self.at)
        self.at += 4
        payload = self.events[self.at : self.at + length]
        if len(payload) != length:
            raise ValueError("payload cut short")
        self.at += length
        return types.Event(
            id=id,
            topic=topic,
            sequence=sequence,
            timestamp_ms=timestamp_ms,
            tenant=tenant,
            correlation_id=correlation_id,
            traceparent=traceparent,
            payload=payload,
        )


def fold(
    key: Callable[[Event], Optional[str]], apply: Callable[[Any, Event], Any], text: str, events: bytes
) -> None:
    """Folds one batch with `key` and `apply` (see the module's docs)."""
    decoder = _Decoder(text, events)
    # (tenant, view id) -> (the event that wrote it last, view id, value).
    kept: Dict[Tuple[str, str], Tuple[int, str, Optional[bytes]]] = {}
    kept_bytes = 0

    def hand_over(through: int) -> None:
        nonlocal kept_bytes
        writes: List[Tuple[int, str, Optional[bytes]]] = list(kept.values())
        batch.flush(writes, through)
        kept.clear()
        kept_bytes = 0

    index, next_segment = 0, 0
    while not decoder.done():
        if index == next_segment:
            next_segment = batch.begin(index)
        try:
            raw = decoder.next()
        except (ValueError, struct.error):
            hand_over(index)
            return failing(_malformed)
        try:
            event = Event(raw)
            id = key(event)
            if id is not None:
                slot = (raw.tenant, id)
                before = kept.get(slot)
                value = batch.current(index, id) if before is None else before[2]
                after = apply(None if value is None else from_json(value), event)
                written = None if after is None else to_bytes(after)
                kept[slot] = (index, id, written)
                kept_bytes += len(written or b"") + (len(raw.tenant) + len(id) if before is None else -len(before[2] or b""))
        except (Failure, CorralError) as error:
            # This event's verdict: the events before it stand. Anything
            # else traps, and the host folds the batch again.
            hand_over(index)
            return failing(_raise(error))
        index += 1
        if kept_bytes > KEPT_BYTES:
            hand_over(index)
    hand_over(index)


def _malformed() -> None:
    raise Failure("batch", "the host handed over a malformed event")


def _raise(error: Exception) -> Callable[[], None]:
    def again() -> None:
        raise error

    return again
