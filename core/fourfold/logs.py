"""Logging of the long-running commands (``serve``, ``up``): plain text lines, or one
JSON object per line (``--log-format json``) for log collectors.

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, plus
the structured fields a record carries (``extra={"fields": {...}}``), e.g. a request
log's ``method``, ``route``, ``domain``, ``status`` and ``ms``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Literal

__all__ = ["LogFormat", "JsonFormatter", "configure_logging"]

LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update({k: v for k, v in fields.items() if k not in data})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str = "info", fmt: LogFormat = "text") -> None:
    """Send every logger's records at ``level`` and above to stderr in ``fmt``."""
    if fmt not in ("text", "json"):
        raise ValueError(f"--log-format: expected 'text' or 'json', found '{fmt}'")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
