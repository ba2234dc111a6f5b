"""DCS-style error answers: ``{"error_code", "error_msg", "error_ext_msg": null}`` with an HTTP status.

Codes marked "documented" come from the DCS API reference (see NOTES.md); the others are the emulator's own
choices, picked in the same style so that callers exercise their generic 4xx/5xx paths.
"""

from __future__ import annotations

from typing import Any

# documented
NO_SUCH_INSTANCE = "DCS.3022"
NOT_ALLOWED_IN_STATE = "DCS.4026"
NOT_RUNNING = "DCS.4049"
INTERNAL_ERROR = "DCS.5000"
AUTH_FAILED = "APIGW.0301"  # API Gateway: "Incorrect IAM authentication information"
THROTTLED = "APIGW.0308"  # API Gateway: throttling threshold reached
NO_SUCH_API = "APIGW.0101"  # API Gateway: the API does not exist
# emulator's own
INVALID_REQUEST = "DCS.4000"
FORBIDDEN_PROJECT = "DCS.4030"
SMN_INVALID_REQUEST = "SMN.0001"


class ApiError(Exception):
    """Raised by request handlers; the HTTP layer turns it into a DCS error body."""

    def __init__(self, status: int, error_code: str, error_msg: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {error_code}: {error_msg}")
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.error_code, self.error_msg)


def error_body(error_code: str, error_msg: str) -> dict[str, Any]:
    return {"error_code": error_code, "error_msg": error_msg, "error_ext_msg": None}


def invalid(msg: str) -> ApiError:
    return ApiError(400, INVALID_REQUEST, msg)
