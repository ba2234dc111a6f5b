"""Structured JSON log lines: one per decision, each with the request id, never a secret.

The request id and the invocation's secrets are set once per invocation (`bind`); every
line goes through `redact`, so a credential that slips into an error message is masked
before it is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
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
            if record.levelno >= logging.WARNING:  # the rest is flushed at the end of the invocation (flush())
                stream.flush()
        except Exception:  # a closed stream must never break a tick
            self.handleError(record)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            (self.stream or sys.stdout).flush()


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Install the JSON handler once; later calls only change the level or stream."""
    handler = next((h for h in _logger.handlers if isinstance(h, _JsonLines)), None)
    if handler is None:
        handler = _JsonLines(stream)
        _logger.addHandler(handler)
        _logger.propagate = False
    handler.stream = stream
    _logger.setLevel(level)


def flush() -> None:
    """Write out what is buffered: at the end of every invocation (app.handle), so no line waits for the next."""
    for handler in _logger.handlers:
        handler.flush()


def bind(request_id: str, secrets: Iterable[str] = ()) -> None:
    """Set the request id and the values that must never be written, for this invocation."""
    _request_id.set(request_id or "-")
    _secrets.set(tuple(s for s in secrets if s and len(s) >= 4))


_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def add_secrets(secrets: Iterable[str]) -> None:
    _secrets.set(_secrets.get() + tuple(s for s in secrets if s and len(s) >= 4))


def request_id() -> str:
    return _request_id.get()


def redact(text: str) -> str:
    """`text` with every bound secret masked. For one string only: never apply it to serialized JSON, where a
    secret that matches a piece of syntax (`true`, `", "`) would change the structure; use `masked`."""
    for secret in _secrets.get():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def masked(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers) with the bound secrets masked inside each string,
    keys included; the structure never changes. An SDK or DCS error message quoted in a result may hold one.

    A tick's summary has thousands of strings and almost never a secret: one look at its JSON text (C speed)
    says whether any string can hold one; only then is it walked. A secret with a character JSON escapes (a quote,
    a backslash, a control character) would not be found that way, so such secrets always walk."""
    if not _secrets.get():
        return value
    if not isinstance(value, str):
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            text = ""
        if text and not _may_hold_secret(text):
            return value
    return _masked(value)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_masked(key) if isinstance(key, str) else key: _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    return value


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
    plain = _plain(line)
    text = dumps(plain)  # serialised once; walked and serialised again only when a secret may be in it
    if _may_hold_secret(text):
        text = dumps(_masked(plain))
    _logger.log(level, text)


def _may_hold_secret(text: str) -> bool:
    """Whether JSON `text` may carry a bound secret: found as it is, or the secret has a character JSON escapes
    (then it cannot be looked for in the text, and the value is walked instead)."""
    return any(secret in text or _JSON_ESCAPED.search(secret) for secret in _secrets.get())


def dumps(value: Any) -> str:
    """JSON text that any UTF-8 channel can carry: non-ASCII characters as they are, but a lone surrogate (a
    `"\\ud800"` escape in a posted document, say) escaped as `\\ud800` rather than left unencodable."""
    text = json.dumps(value, default=_default, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, default=_default, ensure_ascii=True)
    return text


def _plain(value: Any) -> Any:
    """Values JSON cannot hold as they are (datetimes, exceptions, paths) as text, before masking: a secret
    inside an exception's message is masked too."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _default(value)


def warning(event: str, **fields: Any) -> None:
    log(event, logging.WARNING, **fields)


def error(event: str, **fields: Any) -> None:
    log(event, logging.ERROR, **fields)
