"""A scratch ledger for previews of many ticks (`run --until ... --dry-run`): reads go through to the real ledger,
writes stay in memory and are read back before it.

A dry-run tick writes nothing, so a preview of a night re-planned a window's stop at every tick. A rehearsal
(TickRequest.rehearse) writes its bookkeeping as if what it would send had been sent, here, where it carries from
one previewed tick to the next and is forgotten at the end; the real ledger is never written. It also
remembers the status each previewed window action would leave an instance in (`assumed`: CLOSED after a
stop), which the runner lays over the listing in a rehearsal, so the morning's start is previewed too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from dcs_maintenance.ledger.base import ClaimRecord, WindowState
from dcs_maintenance.ledger.sqlite import MEMORY, SqliteLedger


class RehearsalLedger:
    """The Ledger interface over (real, read-only) and (scratch, in memory): what the scratch holds wins."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._scratch = SqliteLedger(MEMORY)
        self.assumed: dict[str, str] = {}  # instance id -> the status a previewed window action leaves it in

    def watermarks(self) -> dict[str, datetime]:
        return {**self._real.watermarks(), **self._scratch.watermarks()}

    def advance_watermarks(self, marks: dict[str, datetime]) -> None:
        self._scratch.advance_watermarks(marks)

    def get_claims(self, keys: list[str], now: Optional[datetime] = None) -> dict[str, ClaimRecord]:
        return {**self._real.get_claims(keys, now), **self._scratch.get_claims(keys, now)}

    def claims_by_prefix(self, prefix: str, now: Optional[datetime] = None) -> dict[str, ClaimRecord]:
        return {**self._real.claims_by_prefix(prefix, now), **self._scratch.claims_by_prefix(prefix, now)}

    def claim_many(self, keys: list[str], holder: str, *args: Any, **kwargs: Any) -> list[bool]:
        raise RuntimeError("a rehearsal never claims: it is a dry run")  # the runner never asks it to

    def record_many(self, outcomes: dict[str, tuple[str, str]], only_claimed: bool = False) -> None:
        self._scratch.record_many(outcomes, only_claimed)

    def release_many(self, keys: list[str], holder: str) -> None:
        self._scratch.release_many(keys, holder)

    def window_states(self, schedule: str) -> dict[str, WindowState]:
        return {**self._real.window_states(schedule), **self._scratch.window_states(schedule)}

    def set_window_states(self, schedule: str, states: dict[str, WindowState]) -> None:
        self._scratch.set_window_states(schedule, states)

    def get_meta(self, key: str) -> Optional[str]:
        value = self._scratch.get_meta(key)
        return value if value is not None else self._real.get_meta(key)

    def get_metas(self, keys: list[str]) -> dict[str, Optional[str]]:
        real, scratch = self._real.get_metas(keys), self._scratch.get_metas(keys)
        return {key: scratch.get(key) if scratch.get(key) is not None else real.get(key) for key in keys}

    def set_meta(self, key: str, value: str) -> None:
        self._scratch.set_meta(key, value)

    def close(self) -> None:
        self._scratch.close()  # the real ledger belongs to the invocation's cache
