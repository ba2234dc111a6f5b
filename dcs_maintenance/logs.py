"""Structured JSON log lines: one per decision, each with the request id, never a secret.

The request id and the invocation's secrets are set once per invocation (`bind`); every
line goes through `redact`, so a credential that slips into an error message is masked
before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_secrets: ContextVar[tuple[str, ...]] = ContextVar("secrets", default=())
MASK = "***"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_logger = logging.getLogger("dcs_maintenance")


class _JsonLines(logging.Handler):
    """Writes the already-formatted JSON line to stdout (FunctionGraph collects stdout)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        stream = self.stream or sys.stdout
        try:
            stream.write(record.getMessage() + "\n")
            stream.flush()
        except Exception:  # a closed stream must never break a tick
            self.handleError(record)


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Install the JSON handler once; later calls only change the level or stream."""
    handler = next((h for h in _logger.handlers if isinstance(h, _JsonLines)), None)
    if handler is None:
        handler = _JsonLines(stream)
        _logger.addHandler(handler)
        _logger.propagate = False
    handler.stream = stream
    _logger.setLevel(level)


def bind(request_id: str, secrets: Iterable[str] = ()) -> None:
    """Set the request id and the values that must never be written, for this invocation."""
    _request_id.set(request_id or "-")
    _secrets.set(tuple(s for s in secrets if s and len(s) >= 4))


def add_secrets(secrets: Iterable[str]) -> None:
    _secrets.set(_secrets.get() + tuple(s for s in secrets if s and len(s) >= 4))


def request_id() -> str:
    return _request_id.get()


def redact(text: str) -> str:
    for secret in _secrets.get():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return str(value)


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Write one decision as a JSON line: time, level, request id, event, then the fields."""
    if not _logger.isEnabledFor(level):
        return
    line = {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": logging.getLevelName(level),
        "request_id": _request_id.get(),
        "event": event,
    }
    line.update({k: v for k, v in fields.items() if v is not None})
    _logger.log(level, redact(json.dumps(line, default=_default, ensure_ascii=False)))


def warning(event: str, **fields: Any) -> None:
    log(event, logging.WARNING, **fields)


def error(event: str, **fields: Any) -> None:
    log(event, logging.ERROR, **fields)
