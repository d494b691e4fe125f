"""`corral:plugin/kv`, with values as JSON (or text, or bytes when asked) and
counters as ints. `kv` is the plugin's own bucket; `bucket(name)` reaches one
the sidecar grants (`[kv] buckets = ["NAME"]`). Every call raises `KvError`
on failure."""

from dataclasses import dataclass
from typing import Any, Generic, List, Optional, TypeVar

from wit_world.imports import kv as wit

from ._codec import from_json, to_bytes
from ._errors import KvError, calling

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of a listing, in key order."""

    entries: "List[tuple[str, T]]"
    next_cursor: Optional[str]
    """Pass back as `cursor` for the next page; None when done."""


class Bucket:
    """A kv bucket; "" is the plugin's own."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get(self, key: str) -> Any:
        """The value at `key` parsed as JSON, or None."""
        data = self.get_bytes(key)
        return None if data is None else from_json(data)

    def get_text(self, key: str) -> Optional[str]:
        """The value at `key` as text, or None."""
        data = self.get_bytes(key)
        return None if data is None else data.decode()

    def get_bytes(self, key: str) -> Optional[bytes]:
        """The value at `key` as bytes, or None."""
        return calling(lambda: wit.get(self.name, key), KvError)

    def set(self, key: str, value: Any) -> None:
        """Stores `value`: bytes as they are, a str as UTF-8, anything else as JSON."""
        calling(lambda: wit.set(self.name, key, to_bytes(value)), KvError)

    def delete(self, key: str) -> bool:
        """Deletes `key`; True if it existed."""
        return calling(lambda: wit.delete(self.name, key), KvError)

    def increment(self, key: str, by: int = 1) -> int:
        """Adds `by` to the counter at `key` (absent counts as 0) and returns the new value."""
        return calling(lambda: wit.increment(self.name, key, by), KvError)

    def compare_and_swap(self, key: str, expected: Any, new: Any) -> bool:
        """Sets `key` to `new` (None deletes it) only if its value is `expected`
        (None: absent), both encoded as `set` encodes. True if the swap happened."""
        before = None if expected is None else to_bytes(expected)
        after = None if new is None else to_bytes(new)
        return calling(lambda: wit.compare_and_swap(self.name, key, before, after), KvError)

    def list(self, prefix: str = "", cursor: Optional[str] = None, limit: int = 100) -> Page[Any]:
        """Entries whose key starts with `prefix`, values parsed as JSON."""
        page = calling(lambda: wit.list(self.name, prefix, cursor, limit), KvError)
        return Page([(entry.key, from_json(entry.value)) for entry in page.entries], page.next_cursor)


kv = Bucket("")
"""The plugin's own bucket."""


def bucket(name: str) -> Bucket:
    """A bucket the plugin's sidecar grants."""
    return Bucket(name)
