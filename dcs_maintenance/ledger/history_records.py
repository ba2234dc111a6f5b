"""History records: what the function did, or decided not to do, kept in the ledger for HISTORY_RETENTION.

History is a report, never a guard: it lives in its own table (SQLite) or sorted set (Redis), apart from the
claims that make actions exactly-once, and a history write that fails changes nothing else.

Pages are newest first, in a total order (time recorded, then the backend's own key), so a cursor (the
position of the last entry returned) is stable while other invocations append: appends land before the first
page, never between pages, and nothing is returned twice. The cursor is opaque to callers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Optional, Union

# frozen and halted: an occurrence held back by a freeze, instances a halted rollout did not reach (issue 13)
RESULTS = ("success", "failed", "unknown", "missed", "skipped", "frozen", "halted")
TRIGGERS = ("timer", "manual", "http")  # a TIMER tick, POST /schedules/{name}/run, PUT /instances/status
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
_UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")  # format_utc's fixed width


def format_utc(dt: datetime) -> str:
    """base.format_utc's text (`2026-03-29T03:00:00.000000Z`), restated so that base.py can import this module."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class HistoryEntry:
    """One decision: an instance acted on or left alone, an occurrence missed or skipped, a schedule in error."""

    at: datetime  # when it was recorded (UTC)
    trigger: str  # timer | manual | http
    request_id: str  # the invocation's request id, as in the log lines and claim holders
    result: str  # success | failed | unknown | missed | skipped
    reason: str = ""
    schedule: Optional[str] = None  # None for PUT /instances/status
    occurrence: Optional[str] = None  # UTC ISO text of the occurrence acted for
    instance_id: Optional[str] = None  # None for an occurrence or a schedule-level error
    instance_name: Optional[str] = None
    action: Optional[str] = None
    error_code: Optional[str] = None  # DCS's (or API Gateway's) code where the reason carries one
    tick: Optional[str] = None  # the tick time (UTC ISO) for timer and manual entries
    id: str = field(default="", compare=False)  # the ledger's key, set when read back

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = format_utc(self.at)
        return data

    def payload(self) -> dict[str, Any]:
        """Every field but `at` and `id`, which the backends store in their own columns or keys."""
        data = asdict(self)
        del data["at"], data["id"]
        return data

    @classmethod
    def from_payload(cls, at: datetime, entry_id: str, data: dict[str, Any]) -> HistoryEntry:
        known = {k: v for k, v in data.items() if k in _PAYLOAD_FIELDS}
        return cls(at=at, id=entry_id, **known)

    def with_id(self, entry_id: str) -> HistoryEntry:
        return replace(self, id=entry_id)


_PAYLOAD_FIELDS = frozenset(HistoryEntry.__dataclass_fields__) - {"at", "id"}


@dataclass(frozen=True)
class HistoryQuery:
    """Filters of `GET /history` and `python -m dcs_maintenance history`; all optional."""

    since: Optional[datetime] = None  # inclusive
    until: Optional[datetime] = None  # exclusive
    schedule: Optional[str] = None
    instance: Optional[str] = None  # an instance id or name (exact)
    results: tuple[str, ...] = ()  # any of these
    limit: int = DEFAULT_LIMIT
    cursor: Optional[str] = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be within 1..{MAX_LIMIT}, got {self.limit}")
        unknown = [r for r in self.results if r not in RESULTS]
        if unknown:
            raise ValueError(f"result: unknown value(s) {', '.join(unknown)}; known: {', '.join(RESULTS)}")

    def matches(self, entry: HistoryEntry) -> bool:
        """The filters other than time and cursor (the backends bound those by their own keys)."""
        if self.schedule is not None and entry.schedule != self.schedule:
            return False
        if self.instance is not None and self.instance not in (entry.instance_id, entry.instance_name):
            return False
        return not self.results or entry.result in self.results


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    next_cursor: Optional[str]  # None: no more entries


def encode_cursor(at: Union[datetime, str], key: Union[int, str]) -> str:
    """An opaque cursor for the position (time recorded, backend key)."""
    at_text = at if isinstance(at, str) else format_utc(at)
    raw = json.dumps([at_text, key], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, Union[int, str]]:
    """(time text, key) of a cursor from `encode_cursor`; ValueError for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise ValueError("cursor: not a cursor from a previous page") from None
    if not isinstance(at_text, str) or not _UTC_TEXT.fullmatch(at_text) or not isinstance(key, (int, str)) \
            or isinstance(key, bool):
        raise ValueError("cursor: not a cursor from a previous page")
    return at_text, key


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "RESULTS", "TRIGGERS", "HistoryEntry", "HistoryPage", "HistoryQuery",
           "decode_cursor", "encode_cursor"]
