"""`python -m dcs_maintenance serve` over real HTTP: curl-like requests -> APIG events -> handler -> emulator."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from conftest import PROJECT, status_calls

from dcs_maintenance.tools.serve import make_server, to_event

TOKEN = "test-api-token-0123456789"


@pytest.fixture
def server(function_env, emulator):
    emulator.add_instance(PROJECT, instance_id="i-1", name="staging-api", tags={"env": "staging"})
    srv = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    host, port = srv.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def call(url: str, method: str = "GET", data: bytes | None = None, token: str | None = TOKEN,
         headers: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


def test_health_and_base_paths(server):
    status, headers, body = call(server + "/dcs-maintenance/health", token=None)
    assert status == 200 and body["status"] == "ok"
    assert headers["Content-Type"] == "application/json"


def test_auth_over_http(server, emulator):
    status, headers, body = call(server + "/schedules", token=None)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer") and body["error_code"] == "DCSM.4010"
    status, _, _ = call(server + "/schedules", token="wrong")
    assert status == 401
    status, _, body = call(server + "/schedules")
    assert status == 200 and body["valid"] is True
    assert [r for r in emulator.requests if r["path"].startswith("/v2/")] == []


def test_405_carries_allow(server):
    status, headers, body = call(server + "/health", "POST", b"{}")
    assert status == 405 and headers["Allow"] == "GET" and body["error_code"] == "DCSM.4050"


def test_put_instances_status_over_http(server, emulator):
    payload = json.dumps({"instances": ["i-1"], "action": "restart"}).encode()
    status, _, body = call(server + "/instances/status", "PUT", payload, headers={"Content-Type": "application/json"})
    assert status == 200 and body["results"] == [{"instance": "i-1", "result": "success"}]
    assert status_calls(emulator) == [{"instances": ["i-1"], "action": "restart"}]


def test_validate_yaml_and_plan_with_an_encoded_offset(server, write_schedules):
    doc = b'schedules:\n  - name: n\n    action: restart\n    cron: "0 3 * * *"\n    instances: {ids: [i-1]}\n'
    status, _, body = call(server + "/api/schedules/validate", "POST", doc)
    assert status == 200 and body == {"valid": True, "schedules": ["n"], "problems": [], "warnings": []}
    write_schedules(doc.decode())
    status, _, body = call(server + "/plan?" + urlencode({"at": "2026-12-02T03:00:00+08:00"}))
    assert status == 200 and body["tick"] == "2026-12-01T19:00:00Z" and body["preview"] is True


def test_oversized_body_is_refused_without_reading_it(server):
    status, _, body = call(server + "/schedules/validate", "POST", b"x" * (600 * 1024))
    assert status == 413 and body["error_code"] == "DCSM.4130"


def test_to_event_is_an_apig_event():
    event = to_event("POST", "/a/b?x=1&y=", [("Content-Type", "text/plain")], b"hi")
    assert event["httpMethod"] == "POST" and event["path"] == "/a/b" and event["isBase64Encoded"] is True
    assert event["queryStringParameters"] == {"x": "1", "y": ""} and event["body"] == "aGk="
    assert event["headers"] == {"Content-Type": "text/plain"} and event["requestContext"]["requestId"]
