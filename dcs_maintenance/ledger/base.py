"""The ledger interface: what the tick needs remembered between invocations.

Claims are the exactly-once guard: a (schedule, occurrence, instance, action) key is
claimed atomically *before* the status call and its outcome recorded after. A claim that
exists is never claimed again, whatever its outcome. `claimed` with no outcome belongs to an
invocation in flight, or, once older than one call budget, to one that died or lost its reply:
the call may have been sent, so it becomes `unknown` (guards.judge_claim). Watermarks only
narrow the window a tick looks at; they never decide alone whether an action is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Optional, Protocol

# Claims must outlive any occurrence they guard; an occurrence is only ever acted on within
# its starting_deadline, so a week is ample.
CLAIM_TTL = timedelta(days=8)

CLAIMED = "claimed"  # taken, outcome not recorded yet (a crash here reads as unknown)


@dataclass(frozen=True)
class ClaimRecord:
    key: str
    outcome: str  # claimed | success | failed | unknown | skipped
    detail: str
    holder: str  # the request id that took the claim
    at: datetime  # when the claim was taken (UTC)


@dataclass(frozen=True)
class WindowState:
    """The state this schedule last applied to one instance, and for which occurrence."""

    state: str  # "stopped" | "running"
    occurrence: datetime  # UTC


class Ledger(Protocol):
    def watermarks(self) -> dict[str, datetime]:
        """Every schedule's watermark (UTC), in one read."""

    def advance_watermarks(self, marks: dict[str, datetime]) -> None:
        """Set each watermark to max(stored, given): never moves backwards."""

    def claim_many(self, keys: list[str], holder: str, ttl: timedelta = CLAIM_TTL,
                   now: Optional[datetime] = None) -> list[bool]:
        """Atomically claim each key; True where this caller took it, False where it existed. `now` (default
        clock.now(), the wall clock) is the claim's time: an outcome-less claim's age decides whether it is in
        flight. Expiry (CLAIM_TTL) is storage, on the system clock (Redis: its server's, PX)."""

    def record_many(self, outcomes: dict[str, tuple[str, str]], only_claimed: bool = False) -> None:
        """Record (outcome, detail) for claimed keys; with only_claimed, only where no outcome is recorded yet
        (a late real outcome from the claim's own invocation is never overwritten by a guess)."""

    def release_many(self, keys: list[str], holder: str) -> None:
        """Drop claims this holder took and has not recorded: for calls that certainly never executed
        (throttled, connection refused), so a later tick may send them within the deadline."""

    def get_claims(self, keys: list[str], now: Optional[datetime] = None) -> dict[str, ClaimRecord]:
        """The stored claims among keys (missing and expired keys are absent). `now` is accepted for symmetry
        with claim_many and unused: expiry is on the system clock."""

    def claims_by_prefix(self, prefix: str, now: Optional[datetime] = None) -> dict[str, ClaimRecord]:
        """The stored claims whose key starts with `prefix` (e.g. every instance's claim for one occurrence:
        `schedule|2026-03-29T01:00:00Z|`). For the rare reports of occurrences past their deadline."""

    def window_states(self, schedule: str) -> dict[str, WindowState]:
        """instance_id -> the state this schedule last applied."""

    def set_window_states(self, schedule: str, states: dict[str, WindowState]) -> None: ...

    def get_meta(self, key: str) -> Optional[str]:
        """Small named values (e.g. a window schedule's settled occurrence)."""

    def set_meta(self, key: str, value: str) -> None: ...

    def get_metas(self, keys: list[str]) -> dict[str, Optional[str]]:
        """Several meta values in one round trip (a tick reads every window's settled marker at once)."""

    def update_meta(self, key: str, change: Callable[[Optional[str]], Optional[str]],
                    ttl: Optional[timedelta] = None) -> Optional[str]:
        """Atomic read-modify-write of one meta value: `change(stored)` (None: nothing stored) returns the value
        to store, or None to leave it as it is; returns what is stored afterwards. No other writer's update of
        the key is lost in between (a rollout's state: rollout.merge). `ttl`: the key's expiry where the
        backend has one (Redis, refreshed at each write); SQLite keeps the row until it is overwritten."""

    def close(self) -> None: ...


def claim_key(schedule: str, occurrence: datetime | str, instance_id: str, action: str) -> str:
    """The one key format for claims: schedule|occurrence-UTC-iso|instance|action."""
    occ = (
        occurrence
        if isinstance(occurrence, str)
        else occurrence.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return f"{schedule}|{occ}|{instance_id}|{action}"


# --- Shared by the backends (additions; the interface above is unchanged) ---------------------


class LedgerError(RuntimeError):
    """A ledger operation failed (connection, timeout, storage). Messages never hold a password.

    When a write fails its effect is unknown: a claim may have been taken. Callers must then act
    on none of the keys involved (the exactly-once guard errs towards "not sent").
    """


def to_utc(dt: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


@lru_cache(maxsize=4096)  # a tick writes the same instant for most watermarks: format it once
def format_utc(dt: datetime) -> str:
    """Fixed-width UTC ISO text, `2026-03-29T03:00:00.000000Z`: its string order is time order."""
    return to_utc(dt).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@lru_cache(maxsize=4096)  # and reads the same few texts back (datetimes are immutable: sharing is safe)
def parse_utc(text: str) -> datetime:
    """The aware UTC datetime for text written by `format_utc` (or any ISO 8601 form)."""
    if text.endswith(("Z", "z")):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
    return to_utc(datetime.fromisoformat(text))


class LedgerBase:
    """Context-manager support for the backends: `with open_ledger(url) as ledger: ...`."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- History (issue 14): optional, additive --------------------------------------------------------


class HistoryLedger(Protocol):
    """What a ledger offers for history, in its own table or keys, apart from the claims.

    Optional: both backends have it; a ledger without these methods keeps no history, and the function
    reports that instead of failing (dcs_maintenance/history.py checks with getattr).
    """

    def append_history(self, entries: list[HistoryEntry], retention: timedelta,
                       now: Optional[datetime] = None) -> int:
        """Store entries and drop those recorded before `now - retention`; returns how many were stored."""

    def history(self, query: HistoryQuery) -> HistoryPage:
        """One page of entries matching `query`, newest first, with the cursor of the next page."""


from .history_records import HistoryEntry, HistoryPage, HistoryQuery  # noqa: E402  (the types above)
