"""The request log: what each DCS/SMN request asked for and what it got, for assertions and the admin API.

Entries hold the method, path, query, parsed body, status, injected fault and the access key; never the
Authorization header, the signature or a secret.
"""

from __future__ import annotations

import copy
import threading
from typing import Any


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._seq = 0

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """A deep copy, safe to inspect while requests keep arriving."""
        with self._lock:
            return copy.deepcopy(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

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
