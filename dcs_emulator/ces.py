"""Cloud Eye (CES) `POST /V1.0/{project_id}/metric-data` ("Adding Monitoring Data"), recorded for tests.

Signed and logged like every other route (api.py). The body is checked as the Cloud Eye API reference states it:
a non-empty JSON array of `{metric: {namespace, metric_name, dimensions[1..4]}, ttl 1..604800, collect_time (ms,
within 3 days back and 10 minutes ahead of now), value, unit?, type? int|float}`; namespace `service.item`
(3-32 characters, each part a letter then letters, digits or `_`, service not starting with SYS, AGT or SRE).
Success is 201 with an empty body, as Cloud Eye answers. Errors use the emulator's common error body
(`error_code`, `error_msg`) with Cloud Eye-style codes of the emulator's own choosing.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .errors import ApiError
from .requestlog import Journal
from .server import Reply

INVALID = "ces.0014"  # the emulator's code for a malformed request
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*")
_METRIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,95}")
_DIMENSION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
MAX_AGE_MS = 3 * 86400 * 1000
MAX_AHEAD_MS = 10 * 60 * 1000


class CesInbox(Journal):
    """Metric data points received, in arrival order: each item plus project_id and received (epoch seconds)."""

    def metric_data(self) -> list[dict[str, Any]]:
        return self._snapshot()

    def record(self, project_id: str, body: Any) -> Reply:
        items = _checked(body)
        received = time.time()
        for item in items:
            self.append({**item, "project_id": project_id, "received": received})
        return Reply(201, b"", {"Content-Type": "application/json;charset=UTF-8"})


def _bad(message: str) -> ApiError:
    return ApiError(400, INVALID, message)


def _checked(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not body:
        raise _bad("The request body must be a non-empty JSON array of metric data.")
    now_ms = time.time() * 1000
    for n, item in enumerate(body):
        where = f"[{n}]"
        if not isinstance(item, dict):
            raise _bad(f"{where}: expected an object.")
        metric = item.get("metric")
        if not isinstance(metric, dict):
            raise _bad(f"{where}.metric: required object.")
        namespace = metric.get("namespace")
        if not (isinstance(namespace, str) and _NAMESPACE.fullmatch(namespace) and 3 <= len(namespace) <= 32) \
                or namespace.split(".")[0].upper().startswith(("SYS", "AGT", "SRE")):
            raise _bad(f"{where}.metric.namespace: invalid namespace {namespace!r}.")
        if not (isinstance(metric.get("metric_name"), str) and _METRIC_NAME.fullmatch(metric["metric_name"])):
            raise _bad(f"{where}.metric.metric_name: invalid metric name {metric.get('metric_name')!r}.")
        dimensions = metric.get("dimensions")
        if not isinstance(dimensions, list) or not 1 <= len(dimensions) <= 4:
            raise _bad(f"{where}.metric.dimensions: 1 to 4 dimensions required.")
        for d in dimensions:
            if not (isinstance(d, dict) and isinstance(d.get("name"), str) and _DIMENSION_NAME.fullmatch(d["name"])
                    and isinstance(d.get("value"), str) and 1 <= len(d["value"]) <= 256):
                raise _bad(f"{where}.metric.dimensions: invalid dimension {d!r}.")
        ttl = item.get("ttl")
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= 604800:
            raise _bad(f"{where}.ttl: an integer within 1..604800 required.")
        collect = item.get("collect_time")
        if not isinstance(collect, int) or isinstance(collect, bool) \
                or not now_ms - MAX_AGE_MS <= collect <= now_ms + MAX_AHEAD_MS:
            raise _bad(f"{where}.collect_time: milliseconds within 3 days back and 10 minutes ahead required.")
        value = item.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _bad(f"{where}.value: a number required.")
        if item.get("type") not in (None, "int", "float"):
            raise _bad(f"{where}.type: int or float.")
        if item.get("unit") is not None and (not isinstance(item["unit"], str) or len(item["unit"]) > 32):
            raise _bad(f"{where}.unit: at most 32 characters.")
    return body
