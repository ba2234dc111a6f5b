"""FunctionGraph events as typed values: which trigger, and what it asks for.

Parsing is strict where a mistake could act for real: a `user_event` that looks like JSON
options but is malformed, or has an unknown key or a wrongly typed `dry_run`, refuses the
tick rather than running it without the options the operator meant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from dcs_maintenance import clock

TIMER_OPTIONS = {"dry_run": bool, "schedules": list}
# Tick times outside these years are mistakes; near datetime's own limits (years 1 and 9999) the tick's
# window arithmetic overflowed into an "internal error".
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(3000, 1, 1, tzinfo=timezone.utc)


class EventError(ValueError):
    """A malformed event; the message names the field and what is wrong."""


@dataclass(frozen=True)
class TimerEvent:
    time: datetime  # the tick's scheduled instant, UTC
    trigger_name: str
    dry_run: bool = False
    schedules: Optional[frozenset[str]] = None
    label: Optional[str] = None  # a user_event that is plain text, not options


def event_kind(event: Any) -> str:
    """'timer', 'http' or 'unknown'."""
    if not isinstance(event, dict):
        return "unknown"
    if event.get("trigger_type") == "TIMER" or ("time" in event and "trigger_name" in event):
        return "timer"
    if "httpMethod" in event or "requestContext" in event:
        return "http"
    return "unknown"


def parse_time(raw: Any, field: str = "time") -> datetime:
    """An ISO 8601 instant with an offset (a naive time is ambiguous: refused)."""
    if not isinstance(raw, str) or not raw.strip():
        raise EventError(f"{field}: expected an ISO 8601 time with an offset, got {raw!r}")
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise EventError(f"{field}: {raw!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise EventError(f"{field}: {raw!r} has no UTC offset")
    try:
        value = value.astimezone(timezone.utc)
    except OverflowError:
        value = EARLIEST - timedelta(days=1)
    if not EARLIEST <= value < LATEST:
        raise EventError(f"{field}: {raw!r} is outside the years {EARLIEST.year}-{LATEST.year - 1}")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: `{"dry_run": true, "dry_run": false}` means nothing sure."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EventError(f"user_event: not valid JSON options (duplicate key {key[:40]!r})")
        result[key] = value
    return result


def _json_options(text: str) -> Any:
    """`user_event` as JSON, strictly: a syntax error, a duplicate key or a number too long to read (Python
    refuses integers of more than 4300 digits with a bare ValueError) is a malformed event."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise EventError(f"user_event: not valid JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise EventError("user_event: not valid JSON options (nested too deeply)") from None
    except EventError:
        raise
    except ValueError:
        raise EventError("user_event: not valid JSON options (a number too long to read)") from None


def parse_timer(event: dict) -> TimerEvent:
    """The TIMER event: `time` (now where absent) and JSON options in `user_event`."""
    raw_time = event.get("time")
    tick = clock.now() if raw_time in (None, "") else parse_time(raw_time)
    user_event = event.get("user_event")
    name = str(event.get("trigger_name") or "")
    if user_event in (None, ""):
        return TimerEvent(tick, name)
    if not isinstance(user_event, str):
        raise EventError(f"user_event: expected a string, got {type(user_event).__name__}")
    if not user_event.lstrip().startswith("{"):
        return TimerEvent(tick, name, label=user_event[:200])
    options = _json_options(user_event)
    if not isinstance(options, dict):
        raise EventError("user_event: JSON options must be an object")
    unknown = sorted(set(options) - set(TIMER_OPTIONS))
    if unknown:
        raise EventError(f"user_event: unknown option(s) {', '.join(unknown)}; known: {', '.join(TIMER_OPTIONS)}")
    dry_run = options.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise EventError(f"user_event.dry_run: expected true or false, got {dry_run!r}")
    names = options.get("schedules")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise EventError("user_event.schedules: expected a list of schedule names")
    return TimerEvent(tick, name, dry_run, frozenset(names) if names is not None else None)
