"""API Gateway routes (placeholder until the HTTP issue lands): answers every request with 404."""

from __future__ import annotations

import json
from typing import Any


def error_response(status: int, code: str, message: str) -> dict[str, Any]:
    body = {"error_code": code, "error_msg": message, "error_ext_msg": None}
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body),
            "isBase64Encoded": False}


def handle_http(event: dict, context: Any) -> dict[str, Any]:
    return error_response(404, "DCSM.4040", "no such route")
