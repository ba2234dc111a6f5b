"""Fault injection: what can go wrong between the function and DCS, one request at a time.

Faults are kept in the order they were added; a request takes the first one that matches its endpoint (and
instance ids, and wins the probability roll) and uses up one of its ``times``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from typing import Any

ENDPOINTS = ("status", "list", "show", "smn", "any")
KINDS = ("http_error", "throttle", "slow", "reset_before", "reset_after", "malformed", "failed_entries", "dcs_error",
         "throttle_after", "corrupt_after", "overcount", "refuse_after")
# Kinds answered instead of the request: the request is not processed and nothing changes.
ANSWER_INSTEAD = frozenset({"http_error", "throttle", "reset_before", "malformed", "dcs_error"})
# The read endpoints added for DCS fidelity: ShowTags, ListBackupRecords, ListConfigurations and
# ListNumberOfInstancesInDifferentStatus (GET .../instances/status).
ENDPOINTS += ("tags", "backups", "configs", "statistics")
ENDPOINTS = (*ENDPOINTS, "ces")  # Cloud Eye's metric-data route (ces.py) takes faults too

_PARAMS: dict[str, dict[str, Any]] = {
    "http_error": {"status": 500, "error_code": "DCS.5000", "error_msg": "Internal service error (injected)."},
    "throttle": {
        "retry_after": None,
        "error_code": "APIGW.0308",
        "error_msg": "The throttling threshold has been reached.",
    },
    "slow": {"delay": 3.0},
    "reset_before": {},
    "reset_after": {},
    "malformed": {"status": 200, "body": "<html><body>502 Bad Gateway</body></html>", "content_type": "text/html"},
    "failed_entries": {},
    "dcs_error": {"status": 400, "error_code": "DCS.4026", "error_msg": "Operation not allowed (injected)."},
    # Processed, then answered 429: a proxy or gateway between the client and DCS throttled the ANSWER. The
    # client cannot tell this 429 from one that stopped the request.
    "throttle_after": {
        "retry_after": None,
        "error_code": "APIGW.0308",
        "error_msg": "The throttling threshold has been reached.",
    },
    # Processed, then the answer is replaced by bytes that are not an answer on this connection: over TLS the
    # client's SSL layer fails while READING (the SDK calls that an SslHandShakeException); over plain HTTP the
    # status line is garbage.
    "corrupt_after": {},
    # A list answer whose `instance_num` says more instances than exist (the page itself is right): a client that
    # trusts the count must still stop at the first empty page.
    "overcount": {"extra": 1000},
    # Processed and answered (with `Connection: close`), then the emulator stops listening until
    # `accept_connections()`: the client's NEXT request finds the connection refused, not a byte of it written.
    # Put on the last read before a status call, it refuses that PUT while every read before it worked.
    "refuse_after": {},
}
# Kinds that only make sense on one endpoint.
ONLY_ON = {"failed_entries": "status", "overcount": "list"}


class Fault:
    """One injected fault.

    ``times=None`` means every matching request; ``instance_ids`` restricts the fault to requests that name one of
    those instances (status body, show path, list ``instance_id`` filter) and, for ``failed_entries``, says which
    entries fail (None: all of them). Kind parameters: http_error ``status`` (500/502/503/504), ``error_code``,
    ``error_msg``; throttle ``retry_after`` (seconds or None: no header); slow ``delay`` (seconds, the request is
    processed first, then the answer waits); malformed ``status``, ``body``, ``content_type``; dcs_error
    ``status``, ``error_code``, ``error_msg``; throttle_after (processed, then 429) ``retry_after``;
    corrupt_after (processed, then the answer is garbage on the wire: an SSL error over TLS); overcount (list only:
    the answer's ``instance_num`` is ``extra`` too high); refuse_after (processed and answered, then every new
    connection is refused until ``Emulator.accept_connections()``).
    """

    def __init__(
        self,
        endpoint: str = "any",
        kind: str = "http_error",
        times: int | None = 1,
        instance_ids: Iterable[str] | None = None,
        probability: float = 1.0,
        **params: Any,
    ):
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, not {endpoint!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if kind in ONLY_ON and endpoint not in (ONLY_ON[kind], "any"):
            raise ValueError(f"{kind} applies to the {ONLY_ON[kind]} endpoint only")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1, or None for always")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        unknown = set(params) - set(_PARAMS[kind])
        if unknown:
            raise ValueError(f"{kind} takes no parameter(s) {sorted(unknown)}; it takes {sorted(_PARAMS[kind])}")
        self.endpoint = endpoint
        self.kind = kind
        self.times = times
        self.instance_ids = frozenset(instance_ids) if instance_ids is not None else None
        self.probability = probability
        self.params: dict[str, Any] = {**_PARAMS[kind], **params}
        if kind == "http_error" and self.params["status"] not in (500, 502, 503, 504):
            raise ValueError("http_error status must be 500, 502, 503 or 504")

    def matches(self, endpoint: str, instance_ids: Iterable[str]) -> bool:
        if self.endpoint not in ("any", endpoint):
            return False
        if self.kind in ONLY_ON and endpoint != ONLY_ON[self.kind]:
            return False
        return self.instance_ids is None or bool(self.instance_ids & set(instance_ids))

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "kind": self.kind,
            "times": self.times,
            "instance_ids": sorted(self.instance_ids) if self.instance_ids is not None else None,
            "probability": self.probability,
            **self.params,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        return cls(**data)

    def __repr__(self) -> str:
        return f"Fault({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"


class FaultBook:
    """Thread-safe ordered list of pending faults."""

    def __init__(self, seed: int | None = None):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._random = random.Random(seed)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, endpoint: str, instance_ids: Iterable[str] = ()) -> Fault | None:
        """The fault this request suffers, if any, using up one of its ``times``."""
        ids = list(instance_ids)
        with self._lock:
            for fault in self._faults:
                if not fault.matches(endpoint, ids):
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
        return None
