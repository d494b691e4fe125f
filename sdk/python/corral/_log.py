"""`corral:plugin/log`: structured lines, fields as keyword arguments (str
values as they are, anything else as JSON). The host adds the plugin,
request id, tenant and trace."""

import json
from typing import Any

from wit_world.imports import log as wit


def _line(level: wit.Level, message: str, fields: "dict[str, Any]") -> None:
    pairs = [(name, value if isinstance(value, str) else json.dumps(value)) for name, value in fields.items()]
    wit.write(level, message, pairs)


class _Log:
    def trace(self, message: str, **fields: Any) -> None:
        _line(wit.Level.TRACE, message, fields)

    def debug(self, message: str, **fields: Any) -> None:
        _line(wit.Level.DEBUG, message, fields)

    def info(self, message: str, **fields: Any) -> None:
        _line(wit.Level.INFO, message, fields)

    def warn(self, message: str, **fields: Any) -> None:
        _line(wit.Level.WARN, message, fields)

    def error(self, message: str, **fields: Any) -> None:
        _line(wit.Level.ERROR, message, fields)


log = _Log()
"""Writes structured log lines: `log.info("greeted", name=name)`."""
