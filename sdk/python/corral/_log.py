"""`corral:plugin/log`: structured lines, fields as keyword arguments (str
values as they are, anything else as JSON). The host adds the plugin,
request id, tenant and trace."""

import json
from typing import Any

from wit_world.imports import log as wit


# Module globals, not attribute lookups, on every line written.
_json = json.dumps
_TRACE, _DEBUG, _INFO, _WARN, _ERROR = wit.Level.TRACE, wit.Level.DEBUG, wit.Level.INFO, wit.Level.WARN, wit.Level.ERROR
_write = wit.write


class _Log:
    __slots__ = ()

    def trace(self, message: str, **fields: Any) -> None:
        _write(_TRACE, message, [(k, v if isinstance(v, str) else _json(v)) for k, v in fields.items()])

    def debug(self, message: str, **fields: Any) -> None:
        _write(_DEBUG, message, [(k, v if isinstance(v, str) else _json(v)) for k, v in fields.items()])

    def info(self, message: str, **fields: Any) -> None:
        _write(_INFO, message, [(k, v if isinstance(v, str) else _json(v)) for k, v in fields.items()])

    def warn(self, message: str, **fields: Any) -> None:
        _write(_WARN, message, [(k, v if isinstance(v, str) else _json(v)) for k, v in fields.items()])

    def error(self, message: str, **fields: Any) -> None:
        _write(_ERROR, message, [(k, v if isinstance(v, str) else _json(v)) for k, v in fields.items()])


log = _Log()
"""Writes structured log lines: `log.info("greeted", name=name)`."""
