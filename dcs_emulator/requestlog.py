"""The request log: what each DCS/SMN request asked for and what it got, for assertions and the admin API.

Entries hold the method, path, query, parsed body, status, injected fault and the access key; never the
Authorization header, the signature or a secret.
"""

from __future__ import annotations

import copy
import threading
from typing import Any


class Journal:
    """Records appended from the server's threads, in arrival order, read back as deep copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._stamp(record)
            self._records.append(record)

    def _stamp(self, record: dict[str, Any]) -> None:
        """Called under the lock before a record is stored."""

    def _snapshot(self) -> list[dict[str, Any]]:
        """A deep copy, safe to inspect while requests keep arriving."""
        with self._lock:
            return copy.deepcopy(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class RequestLog(Journal):
    def __init__(self) -> None:
        super().__init__()
        self._seq = 0

    def _stamp(self, record: dict[str, Any]) -> None:
        self._seq += 1
        record["seq"] = self._seq

    def entries(self) -> list[dict[str, Any]]:
        """A deep copy, safe to inspect while requests keep arriving."""
        return self._snapshot()

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """Bodies of authenticated status PUTs (whatever their fate), optionally of one action."""
        return [
            e["body"]
            for e in self.entries()
            if e.get("endpoint") == "status"
            and e.get("authenticated")
            and isinstance(e.get("body"), dict)
            and (action is None or e["body"].get("action") == action)
        ]
