"""The interface through which the state machine acts on whatever backs an instance.

The default backend does nothing (the instance is only a record); ``redis_backend.RedisBackend`` runs a real
``redis-server`` per instance so that flush, restart, stop and start have observable effects on data.
"""

from __future__ import annotations

from typing import Any, Protocol


class BackendError(Exception):
    """The backing process could not do what the accepted action needs; the instance goes to ERROR."""


class Backend(Protocol):
    def provision(self, instance_id: str, persistence: str, running: bool) -> dict[str, Any]:
        """Create the backing resource; return fields that override the instance's (e.g. ``ip``, ``port``)."""
        ...

    def apply(self, instance_id: str, action: str) -> None:
        """Carry out ``restart``/``soft_restart``/``flush``/``stop``/``start``; raise ``BackendError`` on failure."""
        ...

    def remove(self, instance_id: str) -> None: ...

    def close(self) -> None:
        """Release everything (processes, files); called on ``Emulator.stop()`` and reset."""
        ...


class NullBackend:
    """Instances exist only as records: actions change the status and counters, nothing else."""

    def provision(self, instance_id: str, persistence: str, running: bool) -> dict[str, Any]:
        return {}

    def apply(self, instance_id: str, action: str) -> None:
        return None

    def remove(self, instance_id: str) -> None:
        return None

    def close(self) -> None:
        return None
