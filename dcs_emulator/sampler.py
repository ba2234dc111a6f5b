"""The status sampler: every instance's status after each DCS request, so a test can assert on concurrency.

"Never more than N instances not RUNNING at once" is a claim about every moment the function could observe; the
emulator's state changes only on requests (transitions settle lazily, on the next read), so a snapshot after every
request sees every state a caller could. Memory is bounded: the newest ``limit`` samples are kept, a sample
shares the tuple of instance ids with the previous one while the set of instances is unchanged, and statuses are
stored as 2-byte codes (about 20 KB per sample for 10,000 instances).
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

Snapshot = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]  # project -> (instance ids, statuses)
Stored = dict[str, tuple[tuple[str, ...], "array[int]"]]  # project -> (instance ids, status codes)


class StatusSampler:
    def __init__(self, limit: int = 1000):
        self._lock = threading.Lock()
        self._limit = 0
        self._samples: deque[tuple[float, float, int | None, str | None, str, Stored]] = deque()
        self._names: list[str] = []  # status code -> status
        self._codes: dict[str, int] = {}
        self.limit = limit

    @property
    def limit(self) -> int:
        """How many samples are kept (the newest); 0 turns sampling off."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"status_sample_limit must be a whole number >= 0, not {value!r}")
        with self._lock:
            self._limit = value
            self._samples = deque(self._samples, maxlen=value or 1)
            if value == 0:
                self._samples.clear()

    def record(self, clock: float, seq: int | None, endpoint: str | None, method: str, snapshot: Snapshot) -> None:
        with self._lock:
            if self._limit:
                stored = {p: (ids, array("H", map(self._code, values))) for p, (ids, values) in snapshot.items()}
                self._samples.append((time.time(), clock, seq, endpoint, method, stored))

    def _code(self, status: str) -> int:
        code = self._codes.get(status)
        if code is None:
            code = self._codes[status] = len(self._names)
            self._names.append(status)
        return code

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()

    def samples(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """Oldest first: ``{time, clock, seq, endpoint, method, statuses: {instance_id: status}}``; ``seq`` is the
        request log's sequence number; ``statuses`` covers one project, or all (ids are unique across projects)."""
        with self._lock:
            raw = list(self._samples)
            names = list(self._names)
        out = []
        for wall, clock, seq, endpoint, method, snapshot in raw:
            projects = [project_id] if project_id is not None else list(snapshot)
            statuses: dict[str, str] = {}
            for project in projects:
                ids, codes = snapshot.get(project, ((), array("H")))
                statuses.update(zip(ids, (names[c] for c in codes), strict=True))
            out.append({"time": wall, "clock": clock, "seq": seq, "endpoint": endpoint, "method": method,
                        "statuses": statuses})  # fmt: skip
        return out

    def peak_not_running(self, project_id: str | None = None, instance_ids: Iterable[str] | None = None) -> int:
        """The most instances (of ``instance_ids``, default all) seen not RUNNING in one sample."""
        wanted = set(instance_ids) if instance_ids is not None else None
        peak = 0
        for sample in self.samples(project_id):
            down = sum(
                1
                for iid, status in sample["statuses"].items()
                if status != "RUNNING" and (wanted is None or iid in wanted)
            )
            peak = max(peak, down)
        return peak
