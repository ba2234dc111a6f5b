"""Issue 12: the HTTP and event edges, each reproduced first, through the harness (APIG and TIMER events into
handler.handler, the real SDK against the emulator).

Huge numbers, duplicate keys, lone surrogates, API_TOKEN rules, redaction that never changes a response's
structure, the API Gateway's backend timeout, and an Idempotency-Key retried while the first request's
instance is still in its transitional state.
"""

from __future__ import annotations

import json

import pytest
from conftest import API_TOKEN, PROJECT, SK, acted_ids, add_staging_pair, json_lines, status_calls, t

from dcs_emulator import Fault
from dcs_maintenance import __version__

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
HUGE = "1" * 5000  # past Python's int-digits limit (4300): json.loads raises a bare ValueError


def body(response: dict) -> dict:
    return json.loads(response["body"])


@pytest.fixture
def fleet(emulator):
    return add_staging_pair(emulator)


# -- numbers with thousands of digits ------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [
    '{"instances": ["i-stg-1"], "action": "restart", "dry_run": ' + HUGE + "}",
    '{"instances": [' + HUGE + '], "action": "restart"}',
], ids=["in-dry_run", "in-instances"])
def test_a_huge_number_in_a_put_body_is_a_400(http, fleet, payload):
    response = http("PUT", "/instances/status", payload)
    assert response["statusCode"] == 400, response["body"]
    assert body(response)["error_code"] == "DCSM.4001" and "number" in body(response)["error_msg"]
    assert status_calls(fleet) == []


def test_a_huge_number_in_a_run_body_is_a_400(http, fleet, write_schedules):
    write_schedules("schedules:\n  - name: nightly\n    action: restart\n    cron: '0 3 * * *'\n"
                    "    instances: {ids: [i-stg-1]}\n")
    response = http("POST", "/schedules/nightly/run", '{"dry_run": ' + HUGE + "}")
    assert response["statusCode"] == 400 and body(response)["error_code"] == "DCSM.4001"
    assert "number" in body(response)["error_msg"]
    assert status_calls(fleet) == []


def test_a_huge_number_in_a_timer_user_event_is_a_clear_error(fleet, write_schedules, tick):
    summary = tick(t("2026-12-01T19:00:00Z"), '{"dry_run": ' + HUGE + "}")
    assert summary["ok"] is False
    [error] = summary["errors"]
    assert error.startswith("user_event:") and "number" in error and "internal error" not in error
    assert status_calls(fleet) == []


# -- duplicate keys in user_event ----------------------------------------------------------------------------
@pytest.mark.parametrize("user_event", [
    '{"dry_run": true, "dry_run": false}',
    '{"schedules": ["a"], "schedules": ["b"]}',
], ids=["dry_run", "schedules"])
def test_user_event_with_duplicate_keys_is_refused(fleet, write_schedules, tick, user_event):
    write_schedules("schedules:\n  - name: b\n    action: restart\n    cron: '0 19 * * *'\n"
                    "    instances: {ids: [i-stg-1]}\n")
    summary = tick(t("2026-12-01T19:00:00Z"), user_event)
    assert summary["ok"] is False and "duplicate" in summary["errors"][0] and "user_event" in summary["errors"][0]
    assert status_calls(fleet) == []


# -- lone surrogates ---------------------------------------------------------------------------------------------
def test_a_lone_surrogate_in_a_validated_document_is_escaped_in_the_response(http):
    document = '{"schedules": [{"name": "\\ud800", "action": "restart", "cron": "0 3 * * *", ' \
               '"instances": {"ids": ["\\udfff-x"]}}]}'
    response = http("POST", "/schedules/validate", document, query={"format": "json"})
    assert response["statusCode"] == 200
    response["body"].encode("utf-8")  # the platform (and serve) must be able to send it
    data = body(response)
    assert data["valid"] is False and any(p["schedule"] == "\ud800" for p in data["problems"])


# -- API_TOKEN ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_an_api_token_blank_after_stripping_counts_as_unset(http, fleet, monkeypatch, value):
    monkeypatch.setenv("API_TOKEN", value)
    response = http("GET", "/schedules", headers={"Authorization": "Bearer x"})
    assert response["statusCode"] == 503 and body(response)["error_code"] == "DCSM.5030"
    response = http("GET", "/schedules", headers={"Authorization": "Bearer"})
    assert response["statusCode"] == 503 and body(response)["error_code"] == "DCSM.5030"


def test_the_configured_token_is_stripped_like_the_offered_one(http, fleet, monkeypatch):
    monkeypatch.setenv("API_TOKEN", f"  {API_TOKEN}\n")
    assert http("GET", "/schedules", headers={"Authorization": f"Bearer {API_TOKEN} "})["statusCode"] == 200
    response = http("GET", "/schedules", headers={"Authorization": "Bearer other-token-0123456789"})
    assert response["statusCode"] == 401 and body(response)["error_code"] == "DCSM.4010"


def test_a_token_that_is_not_utf8_is_a_503_with_a_clear_log_line(http, fleet, monkeypatch, capsys):
    monkeypatch.setenv("API_TOKEN", "token-0123456789-\udcff")  # os.environ's form of the byte 0xff
    response = http("GET", "/schedules", headers={"Authorization": "Bearer token-0123456789-x"})
    assert response["statusCode"] == 503 and body(response)["error_code"] == "DCSM.5030"
    assert "UTF-8" in body(response)["error_msg"]
    lines = json_lines(capsys.readouterr().out)
    assert any(line["event"] == "api_token" and "UTF-8" in line["error"] for line in lines)


@pytest.mark.parametrize("short", ["true", "0.1.0", "ok", "fifteen-chars-x"])
def test_a_short_token_is_a_settings_error_and_never_changes_a_response(http, fleet, monkeypatch, short):
    monkeypatch.setenv("API_TOKEN", short)
    health = http("GET", "/health", headers={})
    assert health["statusCode"] == 200 and body(health) == {"status": "ok", "version": __version__}
    response = http("GET", "/schedules", headers={"Authorization": f"Bearer {short}"})
    assert response["statusCode"] == 500 and body(response)["error_code"] == "DCSM.5001"
    assert "API_TOKEN" in body(response)["error_msg"] and "16" in body(response)["error_msg"]
    assert short not in body(response)["error_msg"]


def test_a_short_token_is_a_settings_error_for_a_tick_too(fleet, write_schedules, tick, monkeypatch):
    monkeypatch.setenv("API_TOKEN", "true")
    summary = tick(t("2026-12-01T19:00:00Z"))
    assert summary["ok"] is False and "API_TOKEN" in summary["errors"][0]
    assert "true" not in summary["errors"][0].replace("API_TOKEN", "")


# -- redaction keeps the structure -------------------------------------------------------------------------------
def test_a_secret_that_matches_json_syntax_never_corrupts_a_response(http, fleet, monkeypatch):
    """Masking used to replace text in the serialized JSON: a secret equal to a piece of JSON syntax broke it."""
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", '], "problems": [')
    response = http("POST", "/schedules/validate", "schedules: []\n")
    data = body(response)  # valid JSON
    assert set(data) == {"valid", "schedules", "problems", "warnings"}


def test_a_secret_inside_a_value_is_masked_and_the_rest_kept(http, fleet, capsys):
    response = http("POST", "/schedules/validate", f"schedules:\n  - name: x\n    description: key {SK} here\n",
                    query={"file": "doc.yaml"})
    text = response["body"]
    assert SK not in text
    assert body(response)["valid"] is False
    lines = json_lines(capsys.readouterr().out)
    assert lines and SK not in json.dumps(lines)


# -- the API Gateway's backend timeout ------------------------------------------------------------------------
SLOW_LIST = 5.0  # seconds the listing takes in the tests below: less than the read timeout


@pytest.fixture
def tight(monkeypatch, function_env, emulator):
    """A call needs 7.5 s (connect 0.5 + read 6 + margin 1); APIG waits 12 s for the whole request. So the listing
    starts (if the request got there within 4.5 s), and after a 5 s listing no status call can start."""
    import huaweicloudsdkdcs.v2  # noqa: F401 - imported already, so the first request starts at once

    monkeypatch.setenv("DCS_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("DCS_READ_TIMEOUT", "6")
    monkeypatch.setenv("SAFETY_MARGIN", "1s")
    monkeypatch.setenv("APIG_TIMEOUT", "12")
    emulator.transition_delay = 60.0


def test_an_apig_timeout_shorter_than_one_call_sends_nothing(http, fleet, monkeypatch, tight):
    monkeypatch.setenv("APIG_TIMEOUT", "7")
    response = http("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"})
    assert response["statusCode"] == 502 and body(response)["error_code"] == "DCSM.5020"
    assert "not enough time" in body(response)["error_msg"]
    assert "nothing was sent" in body(response)["error_msg"]
    assert status_calls(fleet) == []


def test_what_the_apig_timeout_leaves_no_time_for_is_reported_not_sent_and_a_retry_sends_it(http, fleet, tight):
    fleet.inject(Fault(endpoint="list", kind="slow", delay=SLOW_LIST))  # 5 s of the 12: the status call needs 7.5
    headers = {**AUTH, "Idempotency-Key": "late-1"}
    response = http("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"}, headers=headers)
    data = body(response)
    assert response["statusCode"] == 200
    assert data["results"] == [{"instance": "i-stg-1", "result": "failed"}]
    assert data["details"][0]["reason"].startswith("not sent:") and "API Gateway" in data["details"][0]["reason"]
    assert status_calls(fleet) == []
    again = body(http("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"}, headers=headers))
    assert again["results"] == [{"instance": "i-stg-1", "result": "success"}]  # nothing was left claimed
    assert acted_ids(fleet) == ["i-stg-1"]


def test_a_manual_run_out_of_apig_time_says_not_sent(http, fleet, write_schedules, tight, at_time):
    at_time(t("2026-12-01T10:00:00Z"))
    write_schedules("schedules:\n  - name: now\n    action: restart\n    cron: '0 3 * * *'\n"
                    "    instances: {ids: [i-stg-1]}\n")
    fleet.inject(Fault(endpoint="list", kind="slow", delay=SLOW_LIST))
    response = http("POST", "/schedules/now/run")
    assert response["statusCode"] == 503 and body(response)["error_code"] == "DCSM.5033"
    [entry] = body(response)["summary"]["schedules"][0]["instances"]
    assert entry["result"] == "skipped" and entry["reason"].startswith("not sent:") and entry["not_sent"]
    assert "next tick" not in entry["reason"] and "run it again" in entry["reason"] and status_calls(fleet) == []
    again = body(http("POST", "/schedules/now/run"))
    assert again["counts"]["success"] == 1 and acted_ids(fleet) == ["i-stg-1"]


@pytest.mark.parametrize("value", ["0", "-1", "601", "soon"])
def test_a_bad_apig_timeout_is_a_settings_error(http, fleet, monkeypatch, value):
    monkeypatch.setenv("APIG_TIMEOUT", value)
    response = http("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"})
    assert response["statusCode"] == 500 and body(response)["error_code"] == "DCSM.5001"
    assert "APIG_TIMEOUT" in body(response)["error_msg"]
    assert status_calls(fleet) == []


# -- Idempotency-Key retried while the first request's instance is still transitional ---------------------------
@pytest.mark.parametrize("action, extra, transitional", [
    ("flush", {"confirm": "flush"}, "FLUSHING"),
    ("restart", {}, "RESTARTING"),
])
def test_a_retry_while_the_instance_is_transitional_answers_the_first_outcome(http, fleet, action, extra,
                                                                            transitional):
    fleet.transition_delay = 60.0
    headers = {**AUTH, "Idempotency-Key": f"change-{action}"}
    payload = {"instances": ["i-stg-1"], "action": action, **extra}
    first = body(http("PUT", "/instances/status", payload, headers=headers))
    assert first["results"] == [{"instance": "i-stg-1", "result": "success"}]
    assert fleet.get_instance(PROJECT, "i-stg-1")["status"] == transitional
    retry = body(http("PUT", "/instances/status", payload, headers=headers))
    assert retry["results"] == [{"instance": "i-stg-1", "result": "success"}]
    assert "already handled" in retry["details"][0]["reason"]
    assert len(status_calls(fleet)) == 1
    other = body(http("PUT", "/instances/status", payload, headers={**AUTH, "Idempotency-Key": "another"}))
    assert other["results"][0]["result"] == "failed" and "transitional" in other["details"][0]["reason"]
    assert len(status_calls(fleet)) == 1


# -- serve: the same edges over real HTTP on loopback ------------------------------------------------------------
@pytest.fixture
def served(function_env, fleet):
    import threading

    from dcs_maintenance.tools.serve import make_server

    srv = make_server("127.0.0.1", 0, client_timeout=0.5)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv.server_address[:2]
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def request(address, method: str, path: str, body: bytes | None = None, headers: list | None = None):
    import http.client

    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.putrequest(method, path)
        for name, value in headers if headers is not None else [("Authorization", f"Bearer {API_TOKEN}")]:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_serve_answers_a_lone_surrogate_instead_of_dropping_the_connection(served):
    document = b'{"schedules": [{"name": "\\ud800", "action": "restart"}]}'
    status, _, data = request(served, "POST", "/schedules/validate?format=json", document)
    assert status == 200 and json.loads(data)["valid"] is False


def test_serve_answers_head_like_get_without_a_body(served):
    get_status, get_headers, get_body = request(served, "GET", "/health", headers=[])
    status, headers, data = request(served, "HEAD", "/health", headers=[])
    assert status == get_status == 200 and data == b""
    assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    assert headers["Content-Type"] == "application/json"
    status, headers, data = request(served, "HEAD", "/schedules")
    assert status == 200 and data == b"" and int(headers["Content-Length"]) > 0
    status, headers, _ = request(served, "HEAD", "/instances/status")
    assert status == 405 and headers["Allow"] == "PUT"


def test_serve_refuses_two_authorization_headers(served, fleet):
    twice = [("Authorization", f"Bearer {API_TOKEN}"), ("Authorization", "Bearer another-token-0123456789")]
    status, _, data = request(served, "PUT", "/instances/status",
                              json.dumps({"instances": ["i-stg-1"], "action": "restart"}).encode(), headers=twice)
    assert status == 400 and json.loads(data)["error_code"] == "DCSM.4000"  # README: two Authorization headers: 400
    assert "more than once" in json.loads(data)["error_msg"]
    same = [("Authorization", f"Bearer {API_TOKEN}")] * 2  # even twice the right token: one credential only
    status, _, data = request(served, "GET", "/schedules", headers=same)
    assert status == 400 and json.loads(data)["error_code"] == "DCSM.4000"
    assert "more than once" in json.loads(data)["error_msg"]
    assert status_calls(fleet) == []


def test_serve_disconnects_a_client_that_sends_nothing(served):
    import socket

    with socket.create_connection(served, timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        try:
            assert sock.recv(1024) == b""  # closed by the server after its client timeout
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail("the server kept a silent client's connection open")
