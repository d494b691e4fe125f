"""Payloads, bodies, kv values, views and cart state are bytes on the wire;
plugins mostly mean JSON. Bytes pass as they are, a str as UTF-8, anything
else as compact JSON with keys in the order given (the same value always
gives the same bytes, as projections and carts need)."""

import json
from typing import Any


def to_bytes(value: Any) -> bytes:
    """`value` as bytes: bytes as they are, a str as UTF-8, else JSON."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def from_json(data: bytes) -> Any:
    """`data` parsed as JSON."""
    return json.loads(data)
