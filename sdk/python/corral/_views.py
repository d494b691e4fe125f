"""`corral:plugin/views`: a projection's views, read-only, in the caller's
tenant, parsed as JSON. Raises `ViewsError`; `query_views` needs a host
implementing corral:plugin@0.1.1."""

from typing import Any, List, Optional, Tuple

from wit_world.imports import views as wit

from ._codec import from_json
from ._errors import ViewsError, calling


def view(projection: str, id: str) -> Any:
    """The view `id` of `projection`, parsed as JSON, or None."""
    data = calling(lambda: wit.get(projection, id), ViewsError)
    return None if data is None else from_json(data)


def views(
    projection: str, prefix: str = "", cursor: Optional[str] = None, limit: int = 100
) -> Tuple[List[Tuple[str, Any]], Optional[str]]:
    """Views of `projection` whose id starts with `prefix`, as (id, value) pairs,
    and the cursor of the next page (None when done)."""
    page = calling(lambda: wit.list(projection, prefix, cursor, limit), ViewsError)
    return [(v.id, from_json(v.value)) for v in page.views], page.next_cursor


def query_views(
    projection: str,
    where: str = "",
    order_by: str = "",
    cursor: Optional[str] = None,
    limit: int = 100,
) -> Tuple[List[Tuple[str, Any]], Optional[str]]:
    """Views of `projection` matching `where`, a SQL WHERE expression over their
    JSON fields ("customer = 'ada' AND total > 100"), sorted by `order_by`
    ("placed_at DESC"; by id when empty), as (id, value) pairs, and the cursor
    of the next page. Answered through the projection's declared indexes; a
    query that would read too many views without one raises `ViewsError` of
    kind too-broad, naming the index to declare."""
    page = calling(lambda: wit.query(projection, where, order_by, cursor, limit), ViewsError)
    return [(v.id, from_json(v.value)) for v in page.views], page.next_cursor
