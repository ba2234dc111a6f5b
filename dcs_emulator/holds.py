"""Held answers: a request that waits, in the server, until the test releases it.

Overlapping invocations are a matter of timing; a hold makes the timing exact. A test holds the next status
call, lets another invocation run from start to end while the first waits for its answer, then releases it:
"a reply held while another invocation runs", without sleeping and hoping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Hold:
    """One held request: `reached` is set when it arrives; it is answered (or processed) after `release()`.

    `before=True` holds the request before it is processed (nothing happened yet while it waits);
    otherwise it is processed first and only the answer waits (the action took effect, the reply is late).
    """

    def __init__(self, endpoint: str, before: bool = False, instance_ids: Iterable[str] | None = None,
                 timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.before = before
        self.instance_ids = frozenset(instance_ids) if instance_ids is not None else None
        self.timeout = timeout  # a forgotten release never hangs a test run for ever
        self.reached = threading.Event()
        self._released = threading.Event()

    def matches(self, endpoint: str, instance_ids: Iterable[str]) -> bool:
        if self.endpoint not in ("any", endpoint):
            return False
        return self.instance_ids is None or bool(self.instance_ids & set(instance_ids))

    def wait_reached(self, timeout: float = 10.0) -> bool:
        return self.reached.wait(timeout)

    def release(self) -> None:
        self._released.set()

    def block(self) -> None:
        """Called by the server thread that carries the held request."""
        self.reached.set()
        self._released.wait(self.timeout)


class HoldBook:
    """Pending holds; each holds exactly one request (the first that matches)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds: list[Hold] = []

    def add(self, hold: Hold) -> Hold:
        with self._lock:
            self._holds.append(hold)
        return hold

    def take(self, endpoint: str, instance_ids: Iterable[str]) -> Hold | None:
        ids = list(instance_ids)
        with self._lock:
            for hold in self._holds:
                if hold.matches(endpoint, ids):
                    self._holds.remove(hold)
                    return hold
        return None

    def release_all(self) -> None:
        with self._lock:
            holds, self._holds = list(self._holds), []
        for hold in holds:
            hold.release()
