"""Logging of `arbiter serve`: text (the default) or one JSON object a line.

A JSON line has `time` (UTC, ISO 8601), `level`, `logger` and `message`; the line each RPC logs
(logger `arbiter.rpc`, INFO) adds `method`, `code`, `duration_ms`, `request_id` and `name` (the
caller's key name, never the key). Nothing in the RPC line comes from the request's body, so no
member's personal data reaches the log.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

__all__ = ["TEXT_FORMAT", "JsonFormatter", "configure_logging"]

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What json.dumps(entry, ensure_ascii=False, default=str) builds for each call, built once (every
# RPC logs a line at INFO).
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rpc = getattr(record, "rpc", None)
        if isinstance(rpc, dict):
            entry.update(rpc)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


def configure_logging(
    log_format: str, level: str | int = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one writing `log_format` to `stream` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
