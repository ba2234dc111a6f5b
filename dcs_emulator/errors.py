"""DCS-style error answers: ``{"error_code", "error_msg", "error_ext_msg": null}`` with an HTTP status.

Documented codes and their messages come from the DCS API reference's "Error Codes" appendix (dcs-api-0312044; the
text used is the copy in opentelekomcloud-docs/distributed-cache-service, api-ref/source/appendix/error_codes.rst),
API Gateway's error code table (https://support.huaweicloud.com/devg-apisign/api-sign-errorcode.html) and, for
DCS.4975 only, the Terraform provider's ``operateErrorCode`` list (huaweicloud/services/dcs/common.go). The
emulator's own codes are marked below with why no documented code fits.
"""

from __future__ import annotations

from typing import Any

# -- documented DCS codes (HTTP status, then the documented message) -------------------------------------------
NO_SUCH_INSTANCE = "DCS.3022"  # 404
PROJECT_ID_INVALID = "DCS.4002"  # 400
BODY_EMPTY = "DCS.4004"  # 400
BODY_NOT_JSON = "DCS.4005"  # 400
INSTANCE_TYPE_NOT_SUPPORTED = "DCS.4007"  # 400; used for stop/start refusals (see STOP_START_UNSUPPORTED)
NOT_ALLOWED_IN_STATE = "DCS.4026"  # 400
NOT_RUNNING = "DCS.4049"  # 400
INVALID_ACTION = "DCS.4064"  # 400
INSTANCES_MISSING = "DCS.4065"  # 400
BACKING_UP = "DCS.4096"  # 400
RESTORING = "DCS.4097"  # 400
TOO_MANY_INSTANCES = "DCS.4100"  # 400
RESTARTING = "DCS.4111"  # 400
EXTENDING = "DCS.4113"  # 400
UPGRADING = "DCS.4116"  # 400
ROLLING_BACK = "DCS.4117"  # 400
CREATING = "DCS.4118"  # 400
FREEZING = "DCS.4120"  # 400
INVALID_PARAMETER = "DCS.4800"  # 400, "Invalid {0} in the request."
INTERNAL_ERROR = "DCS.5000"  # 500
# In the Terraform provider's operateErrorCode ("creating/restarting") but not in the published table: the message
# below is the emulator's wording.
CREATING_OR_RESTARTING = "DCS.4975"  # 400

# -- documented API Gateway codes ------------------------------------------------------------------------------
NO_SUCH_API = "APIGW.0101"  # 404 "The API does not exist or has not been published in the environment."
REQUEST_INVALID = "APIGW.0201"  # 400 "API request error." / 413 "Request entity too large."
AUTH_FAILED = "APIGW.0301"  # 401 "Incorrect IAM authentication information."
NOT_AUTHORIZED = "APIGW.0302"  # 403 "The IAM user is not authorized to access the API."
THROTTLED = "APIGW.0308"  # 429 "The throttling threshold has been reached."

# -- the emulator's own ----------------------------------------------------------------------------------------
# SMN publish without a message: SMN's own error codes are out of this emulator's scope (no SMN document was
# checked); the code only has to be a 400 that the function reports.
SMN_INVALID_REQUEST = "SMN.0001"

MESSAGES: dict[str, str] = {
    NO_SUCH_INSTANCE: "This DCS instance does not exist.",
    PROJECT_ID_INVALID: "Invalid project ID format.",
    BODY_EMPTY: "Empty request body.",
    BODY_NOT_JSON: "The message body contains invalid characters or is not in JSON format.",
    INSTANCE_TYPE_NOT_SUPPORTED: "Instance type is not supported.",
    NOT_ALLOWED_IN_STATE: "This operation is not allowed when the DCS instance is in the current state.",
    NOT_RUNNING: "The instance status is not running.",
    INVALID_ACTION: "The action parameter in the request must be start, stop, or restart.",
    INSTANCES_MISSING: "The instances parameter in the request cannot be a null value or left unspecified.",
    BACKING_UP: "the instance is backuping.",
    RESTORING: "the instance is restoring.",
    TOO_MANY_INSTANCES: "The number of instance IDs in an instances array cannot exceed 50.",
    RESTARTING: "the instance is restarting.",
    EXTENDING: "the instance is extending.",
    UPGRADING: "the instance is upgrading.",
    ROLLING_BACK: "the instance is rollbacking the version.",
    CREATING: "the instance is creating.",
    FREEZING: "the instance is Freezing.",
    INVALID_PARAMETER: "Invalid {0} in the request.",
    INTERNAL_ERROR: "Internal service error.",
    CREATING_OR_RESTARTING: "the instance is creating or restarting.",
}

# DCS documents no code for "this instance cannot be stopped or started" (the user guide only says new instances
# cannot be). DCS.4007 "Instance type is not supported." is the documented code whose meaning is closest; using it
# for this case is the emulator's reading (README: "Stop/start").
STOP_START_UNSUPPORTED = INSTANCE_TYPE_NOT_SUPPORTED


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


def dcs_error(code: str, status: int = 400, detail: str | None = None) -> ApiError:
    """A documented DCS error with its documented message (and, where the emulator adds one, a detail after it)."""
    message = MESSAGES[code]
    return ApiError(status, code, f"{message} {detail}" if detail else message)


def invalid(name: str, detail: str | None = None) -> ApiError:
    """DCS.4800 "Invalid {0} in the request." for a bad query parameter or body field named ``name``."""
    message = MESSAGES[INVALID_PARAMETER].replace("{0}", name)
    return ApiError(400, INVALID_PARAMETER, f"{message} {detail}" if detail else message)
