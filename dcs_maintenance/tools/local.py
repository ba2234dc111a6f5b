"""FunctionGraph events and context as the platform builds them, for local runs and tests.

Shapes follow the platform's documentation (NOTES.md): TIMER events carry `time` with the
region's offset and `user_event` as a string; APIG events carry a base64 body by default.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Optional


def timer_event(at: datetime, user_event: Any = "", trigger_name: str = "dcs-maintenance-tick",
                version: str = "v1.0") -> dict[str, Any]:
    """A TIMER event for instant `at` (aware); dict options are serialised as the platform would."""
    if isinstance(user_event, dict):
        user_event = json.dumps(user_event)
    return {"version": version, "time": at.isoformat(), "trigger_type": "TIMER", "trigger_name": trigger_name,
            "user_event": user_event}


def apig_event(method: str, path: str, body: Any = None, headers: Optional[dict[str, str]] = None,
               query: Optional[dict[str, str]] = None, base64_body: bool = True) -> dict[str, Any]:
    """An API Gateway event; dict bodies become JSON; the body is base64 when base64_body (the default)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    raw = body.encode() if isinstance(body, str) else (body or b"")
    return {
        "body": base64.b64encode(raw).decode() if base64_body else raw.decode("utf-8", "replace"),
        "requestContext": {"apiId": "local", "requestId": uuid.uuid4().hex, "stage": "RELEASE"},
        "queryStringParameters": query or {},
        "httpMethod": method.upper(),
        "pathParameters": {},
        "headers": headers or {},
        "path": path,
        "isBase64Encoded": base64_body,
    }


class LocalContext:
    """The FunctionGraph context's methods, with a time budget that runs down in real time."""

    def __init__(self, request_id: Optional[str] = None, timeout_ms: int = 300_000, ak: str = "", sk: str = "",
                 token: str = "", project_id: str = "", user_data: Optional[dict[str, str]] = None) -> None:
        self._request_id = request_id or uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_ms / 1000.0
        self._timeout_ms = timeout_ms
        self._ak, self._sk, self._token = ak, sk, token
        self._project_id = project_id
        self._user_data = user_data or {}
        self._started = datetime.now(timezone.utc)

    def getRequestID(self) -> str:  # noqa: N802 - FunctionGraph's method names
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> int:  # noqa: N802
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def getSecurityAccessKey(self) -> str:  # noqa: N802
        return self._ak

    def getSecuritySecretKey(self) -> str:  # noqa: N802
        return self._sk

    def getSecurityToken(self) -> str:  # noqa: N802
        return self._token

    def getUserData(self, key: str) -> str:  # noqa: N802
        return self._user_data.get(key, "")

    def getFunctionName(self) -> str:  # noqa: N802
        return "dcs-maintenance"

    def getVersion(self) -> str:  # noqa: N802
        return "latest"

    def getMemorySize(self) -> int:  # noqa: N802
        return 256

    def getRunningTimeInSeconds(self) -> int:  # noqa: N802
        return self._timeout_ms // 1000

    def getProjectID(self) -> str:  # noqa: N802
        return self._project_id
