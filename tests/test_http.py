"""The API Gateway routes end to end: APIG event -> handler.handler -> real SDK -> emulator, both sides asserted."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import API_TOKEN, PROJECT, acted_ids, add_staging_and_prod, json_lines, status_calls, t

import handler as function_handler
from dcs_emulator import Fault
from dcs_maintenance import __version__
from dcs_maintenance.tools.local import LocalContext, apig_event

TOKEN = API_TOKEN  # what conftest's function_env sets
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def body(response: dict) -> dict:
    return json.loads(response["body"])


def error_code(response: dict) -> str:
    return body(response)["error_code"]


def dcs_requests(emu) -> list[dict]:
    return [r for r in emu.requests if r["path"].startswith("/v2/")]


def send_event(event: dict) -> dict:
    return function_handler.handler(event, LocalContext())


@pytest.fixture
def fleet(emulator):
    add = add_staging_and_prod(emulator).add_instance
    add(PROJECT, instance_id="i-closed", name="dev-closed", status="CLOSED", tags={"env": "dev"})
    add(PROJECT, instance_id="i-busy", name="dev-busy", status="UPGRADING", tags={"env": "dev"})
    add(PROJECT, instance_id="i-redis3", name="cache-legacy", engine_version="3.0", tags={"tier": "cache"})
    return emulator


NIGHTLY = """
schedules:
  - name: nightly
    description: staging restart
    action: restart
    cron: "0 3 * * *"
    timezone: Asia/Shanghai
    instances: {tags: {env: staging}}
"""

BROKEN = """
schedules:
  - name: broken
    action: restart
    cron: "0 3 * *"
    instances: {tags: {env: prod}}
"""

# Every route that needs the token, with a body that would act if it were accepted.
PROTECTED = [
    ("GET", "/schedules", None, None),
    ("POST", "/schedules/validate", NIGHTLY, None),
    ("GET", "/plan", None, {"at": "2026-12-01T19:00:00Z"}),
    ("POST", "/schedules/nightly/run", {"dry_run": False}, None),
    ("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"}, None),
]


# -- the APIG envelope ------------------------------------------------------------------------------
def test_health_answers_in_the_apig_shape_on_any_base_path_without_a_token(http, fleet):
    for path in ("/health", "/dcs-maintenance/health", "/a/b/health/", "//health"):
        response = http("GET", path, headers={})
        assert response["statusCode"] == 200, path
        assert response["headers"] == {"Content-Type": "application/json"}
        assert response["isBase64Encoded"] is False and isinstance(response["body"], str)
        assert body(response) == {"status": "ok", "version": __version__}
    assert dcs_requests(fleet) == []


def test_unknown_route_is_404_and_wrong_method_is_405_with_allow(http, fleet):
    response = http("GET", "/nope")
    assert response["statusCode"] == 404 and error_code(response) == "DCSM.4040"
    assert set(body(response)) == {"error_code", "error_msg", "error_ext_msg"}
    assert body(response)["error_ext_msg"] is None
    for method, path, allow in [("POST", "/health", "GET"), ("GET", "/schedules/validate", "POST"),
                                ("DELETE", "/api/instances/status", "PUT"), ("GET", "/x/schedules/nightly/run", "POST"),
                                ("PUT", "/plan", "GET")]:
        response = http(method, path)
        assert response["statusCode"] == 405, (method, path)
        assert response["headers"]["Allow"] == allow and error_code(response) == "DCSM.4050"
    assert dcs_requests(fleet) == []


def test_unknown_routes_need_the_token_too(http):
    response = http("GET", "/nope", headers={})
    assert response["statusCode"] == 401 and error_code(response) == "DCSM.4010"


@pytest.mark.parametrize("method, path, payload, query", PROTECTED)
@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": "Bearer"},
    {"X-Authorization": f"Bearer {TOKEN}"},
])
def test_every_route_but_health_needs_the_token(http, fleet, write_schedules, method, path, payload, query, headers):
    write_schedules(NIGHTLY)
    response = http(method, path, payload, headers=headers, query=query)
    assert response["statusCode"] == 401 and error_code(response) == "DCSM.4010"
    assert response["headers"]["WWW-Authenticate"].startswith("Bearer")
    assert dcs_requests(fleet) == [] and status_calls(fleet) == []


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"])
def test_header_names_in_any_case(http, fleet, name):
    response = http("GET", "/schedules", headers={name: f"Bearer {TOKEN}"})
    assert response["statusCode"] == 200


def test_bearer_scheme_is_case_insensitive(http):
    assert http("GET", "/schedules", headers={"Authorization": f"bearer {TOKEN}"})["statusCode"] == 200


@pytest.mark.parametrize("method, path, payload, query", PROTECTED)
def test_without_api_token_configured_every_route_but_health_is_refused(http, fleet, monkeypatch, write_schedules,
                                                                         method, path, payload, query):
    write_schedules(NIGHTLY)
    monkeypatch.delenv("API_TOKEN")
    response = http(method, path, payload, headers=AUTH, query=query)
    assert response["statusCode"] == 503 and error_code(response) == "DCSM.5030"
    assert "API_TOKEN is not configured" in body(response)["error_msg"]
    assert http("GET", "/health", headers={})["statusCode"] == 200
    assert dcs_requests(fleet) == []


def test_the_token_never_appears_in_logs_or_responses(http, fleet, write_schedules, capsys, at_time):
    at_time(t("2026-12-01T10:00:00Z"))
    write_schedules(NIGHTLY)
    responses = [
        http("GET", "/schedules"),
        http("GET", "/schedules", headers={"Authorization": f"Bearer {TOKEN}x"}),
        http("GET", f"/{TOKEN}/nope"),
        http("POST", "/schedules/validate", f"schedules:\n  - name: {TOKEN}\n    action: x\n"),
        http("GET", "/plan", query={"at": TOKEN}),
        http("POST", "/schedules/nightly/run", {"dry_run": True}),
        http("PUT", "/instances/status", {"instances": [TOKEN], "action": "restart"}),
    ]
    out = capsys.readouterr()
    assert TOKEN not in out.out and TOKEN not in out.err
    for response in responses:
        assert TOKEN not in json.dumps(response)
    assert "***" in out.out  # it was there, and masked


def test_one_log_line_per_request(http, fleet, capsys):
    context = LocalContext(request_id="fg-request-1")
    event = apig_event("GET", "/api/schedules", headers=AUTH)
    event["requestContext"]["requestId"] = "apig-request-1"
    function_handler.handler(event, context)
    lines = json_lines(capsys.readouterr().out)
    http_lines = [line for line in lines if line["event"] == "http"]
    assert len(http_lines) == 1
    line = http_lines[0]
    assert (line["method"], line["route"], line["status"]) == ("GET", "/schedules", 200)
    assert line["request_id"] == "fg-request-1" and line["apig_request_id"] == "apig-request-1"


@pytest.mark.parametrize("change, message", [
    ({"httpMethod": None}, "httpMethod"),
    ({"httpMethod": "GET /x"}, "httpMethod"),
    ({"path": None}, "path"),
    ({"path": "health"}, "path"),
    ({"headers": ["Authorization: x"]}, "headers"),
    ({"queryStringParameters": "at=1"}, "queryStringParameters"),
    ({"body": {"instances": []}}, "body"),
    ({"isBase64Encoded": "maybe"}, "isBase64Encoded"),
    ({"headers": {"Authorization": f"Bearer {TOKEN}", "authorization": "Bearer other"}}, "twice"),
])
def test_malformed_events_are_400_never_500(http, fleet, change, message):
    event = apig_event("GET", "/schedules", headers=AUTH)
    event.update(change)
    response = send_event(event)
    assert response["statusCode"] == 400 and error_code(response) == "DCSM.4000"
    assert message in body(response)["error_msg"]
    assert dcs_requests(fleet) == []


def test_missing_or_null_fields_are_tolerated(function_env, fleet):
    event = {"httpMethod": "GET", "path": "/health", "headers": None, "queryStringParameters": None, "body": None,
             "requestContext": {"requestId": "r1"}}
    assert send_event(event)["statusCode"] == 200
    event = {"httpMethod": "get", "path": "/health"}  # no requestContext, no headers, no body: still an APIG event
    assert send_event(dict(event, requestContext={}))["statusCode"] == 200
    event = {"httpMethod": "GET", "path": "/schedules", "headers": {"authorization": f"Bearer {TOKEN}"},
             "requestContext": {}}
    assert send_event(event)["statusCode"] == 200


def test_base64_is_the_default_when_isbase64encoded_is_missing(http, function_env):
    event = apig_event("POST", "/schedules/validate", NIGHTLY, AUTH)
    del event["isBase64Encoded"]
    response = send_event(event)
    assert response["statusCode"] == 200 and body(response)["valid"] is True


def test_plain_and_base64_bodies(http):
    for encoded in (True, False):
        response = http("POST", "/schedules/validate", NIGHTLY, base64_body=encoded)
        assert response["statusCode"] == 200 and body(response) == {"valid": True, "schedules": ["nightly"],
                                                                    "problems": [], "warnings": []}


def test_bad_base64_is_400(http, fleet):
    event = apig_event("PUT", "/instances/status", headers=AUTH)
    event["body"] = "this is not base64!"
    response = send_event(event)
    assert response["statusCode"] == 400 and error_code(response) == "DCSM.4003"
    event = apig_event("POST", "/schedules/validate", headers=AUTH)
    event["body"] = "abc"  # bad padding
    assert error_code(send_event(event)) == "DCSM.4003"
    assert dcs_requests(fleet) == []


@pytest.mark.parametrize("encoded", [True, False])
def test_oversized_body_is_413(http, fleet, encoded):
    big = "#" * (300 * 1024)
    response = http("POST", "/schedules/validate", big, base64_body=encoded)
    assert response["statusCode"] == 413 and error_code(response) == "DCSM.4130"
    response = http("PUT", "/instances/status", big, base64_body=encoded)
    assert response["statusCode"] == 413 and error_code(response) == "DCSM.4130"
    assert dcs_requests(fleet) == []


# -- GET /schedules -----------------------------------------------------------------------------------
def test_list_schedules_with_validation_description_and_next_occurrences(http, fleet, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:00Z"))
    write_schedules(NIGHTLY, "good.yaml")
    write_schedules(BROKEN, "bad.yaml")
    response = http("GET", "/prefix/schedules")
    assert response["statusCode"] == 200
    data = body(response)
    assert data["valid"] is False
    entries = {e["name"]: e for e in data["schedules"]}
    nightly = entries["nightly"]
    assert nightly["valid"] is True and nightly["enabled"] is True and nightly["problems"] == []
    assert nightly["explanation"] == "restart at 03:00 every day (Asia/Shanghai)"
    assert nightly["description"] == "staging restart"
    assert nightly["file"].endswith("good.yaml") and nightly["cron"] == "0 3 * * *"
    assert nightly["next"][0] == {"action": "restart", "utc": "2026-12-01T19:00:00Z",
                                  "local": "2026-12-02T03:00:00+08:00"}
    assert len(nightly["next"]) == 5 and nightly["next"][4]["utc"] == "2026-12-05T19:00:00Z"
    broken = entries["broken"]
    assert broken["valid"] is False and broken["file"].endswith("bad.yaml")
    assert broken["problems"][0]["path"] == "$.schedules[0].cron"
    files = {f["file"].rsplit("/", 1)[-1]: f for f in data["files"]}
    assert files["good.yaml"]["valid"] is True and files["bad.yaml"]["valid"] is False
    assert data["problems"] == broken["problems"]
    assert dcs_requests(fleet) == []


def test_list_schedules_shows_both_window_edges(http, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:00Z"))  # a Tuesday
    write_schedules("""
schedules:
  - name: dev-nights
    window: {stop: "0 20 * * mon-fri", start: "0 7 * * mon-fri"}
    timezone: Europe/Berlin
    instances: {tags: {env: dev}}
""")
    entry = body(http("GET", "/schedules"))["schedules"][0]
    assert entry["kind"] == "window" and entry["window"] == {"stop": "0 20 * * mon-fri", "start": "0 7 * * mon-fri"}
    assert [n["action"] for n in entry["next"]] == ["stop", "start", "stop", "start", "stop"]
    assert entry["next"][0]["local"] == "2026-12-01T20:00:00+01:00"
    assert entry["explanation"].startswith("stopped at 20:00 on Monday through Friday")


# -- POST /schedules/validate -------------------------------------------------------------------------
def test_validate_an_invalid_document_reports_paths(http, fleet):
    response = http("POST", "/schedules/validate", BROKEN)
    assert response["statusCode"] == 200
    data = body(response)
    assert data["valid"] is False and data["schedules"] == []
    assert data["problems"][0]["path"] == "$.schedules[0].cron"
    assert data["problems"][0]["schedule"] == "broken" and data["problems"][0]["file"] == "request-body"
    assert dcs_requests(fleet) == []


def test_validate_json_documents_and_formats(http):
    doc = {"schedules": [{"name": "j", "action": "soft_restart", "cron": "*/15 * * * *", "instances": {"ids": ["a"]}}]}
    response = http("POST", "/schedules/validate", doc, headers={**AUTH, "Content-Type": "application/json"})
    assert body(response) == {"valid": True, "schedules": ["j"], "problems": [], "warnings": []}
    response = http("POST", "/schedules/validate", NIGHTLY, query={"format": "json", "file": "nightly.yaml"})
    data = body(response)
    assert data["valid"] is False and "JSON syntax error" in data["problems"][0]["message"]
    assert data["problems"][0]["file"] == "nightly.yaml"
    response = http("POST", "/schedules/validate", NIGHTLY, query={"format": "toml"})
    assert response["statusCode"] == 400 and error_code(response) == "DCSM.4004"
    assert "format" in body(response)["error_msg"]


def test_validate_refuses_flush_without_allow_flush_and_empty_documents(http):
    data = body(http("POST", "/schedules/validate", """
schedules:
  - name: wipe
    action: flush
    cron: "0 5 * * *"
    instances: {tags: {tier: cache}}
"""))
    assert data["valid"] is False and data["problems"][0]["path"].endswith("allow_flush")
    data = body(http("POST", "/schedules/validate", ""))
    assert data["valid"] is False and data["problems"]


# -- GET /plan ----------------------------------------------------------------------------------------
def test_plan_is_read_only_and_a_tick_afterwards_still_fires(http, fleet, write_schedules, tick):
    write_schedules(NIGHTLY)
    response = http("GET", "/plan", query={"at": "2026-12-01T19:00:00Z"})
    assert response["statusCode"] == 200
    summary = body(response)
    assert summary["preview"] is True and summary["tick"] == "2026-12-01T19:00:00Z"
    nightly = summary["schedules"][0]
    assert nightly["decision"] == "due"
    results = {i["instance_id"]: i for i in nightly["instances"]}
    assert results["i-stg-1"]["result"] == "skipped" and "would restart" in results["i-stg-1"]["reason"]
    assert "protected" in results["i-stg-3"]["reason"]
    assert {r["method"] for r in dcs_requests(fleet)} == {"GET"}  # listing only
    http("GET", "/plan", query={"at": "2026-12-01T19:00:00Z"})  # again: still nothing remembered
    fired = tick(t("2026-12-01T19:00:00Z"))
    assert fired["counts"]["success"] == 2
    assert status_calls(fleet) == [{"instances": ["i-stg-1", "i-stg-2"], "action": "restart"}]


@pytest.mark.parametrize("at", ["", "tomorrow", "2026-12-01T19:00:00", "2026-13-01T00:00:00Z", "x" * 100,
                                "1900-01-01T00:00:00Z"])
def test_plan_rejects_a_bad_at_naming_the_parameter(http, fleet, at):
    response = http("GET", "/plan", query={"at": at})
    assert response["statusCode"] == 400 and error_code(response) == "DCSM.4004"
    assert "at" in body(response)["error_msg"]
    assert dcs_requests(fleet) == []


def test_plan_at_with_an_offset_whose_plus_became_a_space(http, fleet, write_schedules):
    write_schedules(NIGHTLY)
    response = http("GET", "/plan", query={"at": "2026-12-02T03:00:00 08:00"})
    assert response["statusCode"] == 200 and body(response)["tick"] == "2026-12-01T19:00:00Z"


def test_plan_without_at_is_now(http, fleet, write_schedules, at_time):
    at_time(t("2026-12-01T19:00:30Z"))
    write_schedules(NIGHTLY)
    summary = body(http("GET", "/plan"))
    assert summary["tick"].startswith("2026-12-01T19:00:3")
    assert status_calls(fleet) == []


# -- POST /schedules/{name}/run ------------------------------------------------------------------------
def test_run_fires_now_and_twice_in_the_same_minute_acts_once(http, fleet, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:05Z"))  # nowhere near its cron time
    write_schedules(NIGHTLY)
    first = http("POST", "/api/schedules/nightly/run")
    assert first["statusCode"] == 200
    summary = body(first)
    assert summary["ok"] is True and summary["counts"]["success"] == 2 and summary["trigger"] == "http"
    assert status_calls(fleet) == [{"instances": ["i-stg-1", "i-stg-2"], "action": "restart"}]
    results = {i["instance_id"]: i for i in summary["schedules"][0]["instances"]}
    assert results["i-stg-3"]["result"] == "skipped" and "protected" in results["i-stg-3"]["reason"]
    second = body(http("POST", "/api/schedules/nightly/run", {}))
    assert len(status_calls(fleet)) == 1
    assert second["counts"]["success"] == 0
    assert all("already handled" in i["reason"] for i in second["schedules"][0]["instances"]
               if i["instance_id"] != "i-stg-3")


def test_run_dry_run_sends_nothing(http, fleet, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:05Z"))
    write_schedules(NIGHTLY)
    summary = body(http("POST", "/schedules/nightly/run", {"dry_run": True}))
    assert summary["dry_run"] is True and status_calls(fleet) == []
    assert {i["result"] for i in summary["schedules"][0]["instances"]} == {"skipped"}
    body(http("POST", "/schedules/nightly/run", {"dry_run": False}))  # the dry run claimed nothing
    assert acted_ids(fleet) == ["i-stg-1", "i-stg-2"]


def test_run_is_not_failed_by_other_invalid_schedules(http, fleet, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:05Z"))
    write_schedules(NIGHTLY, "good.yaml")
    write_schedules(BROKEN, "bad.yaml")
    summary = body(http("POST", "/schedules/nightly/run"))
    assert summary["ok"] is True and summary["problems"] == []


def test_run_unknown_invalid_disabled_and_bad_bodies(http, fleet, write_schedules):
    write_schedules(NIGHTLY + "\n" + """
  - name: paused
    enabled: false
    action: restart
    cron: "0 3 * * *"
    instances: {tags: {env: staging}}
""", "good.yaml")
    write_schedules(BROKEN, "bad.yaml")
    response = http("POST", "/schedules/nope/run")
    assert response["statusCode"] == 404 and error_code(response) == "DCSM.4041"
    response = http("POST", "/schedules/broken/run")
    assert response["statusCode"] == 422 and error_code(response) == "DCSM.4220"
    assert body(response)["problems"][0]["path"] == "$.schedules[0].cron"
    response = http("POST", "/schedules/paused/run")
    assert response["statusCode"] == 409 and error_code(response) == "DCSM.4090"
    for payload, field in [({"dry_run": "yes"}, "dry_run"), ({"dryrun": True}, "dryrun"), ([], "object")]:
        response = http("POST", "/schedules/nightly/run", payload)
        assert response["statusCode"] == 400 and error_code(response) == "DCSM.4002", payload
        assert field in body(response)["error_msg"], payload
    response = http("POST", "/schedules/nightly/run", "{not json")
    assert response["statusCode"] == 400 and error_code(response) == "DCSM.4001"
    assert status_calls(fleet) == []


# -- PUT /instances/status -----------------------------------------------------------------------------
def change(http, payload, **kwargs) -> dict:
    response = http("PUT", "/instances/status", payload, **kwargs)
    assert response["statusCode"] == 200, response
    return body(response)


def test_status_restart_in_the_seed_shape(http, fleet):
    data = change(http, {"instances": ["i-stg-1", "i-prod-1"], "action": "restart"})
    assert data["results"] == [{"instance": "i-stg-1", "result": "success"},
                               {"instance": "i-prod-1", "result": "success"}]
    assert [d["reason"] for d in data["details"]] == ["restart accepted"] * 2
    assert status_calls(fleet) == [{"instances": ["i-stg-1", "i-prod-1"], "action": "restart"}]


def test_status_partial_failure_is_read_entry_by_entry(http, fleet):
    fleet.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-stg-2"]))
    data = change(http, {"instances": ["i-stg-1", "i-stg-2"], "action": "soft_restart"})
    assert data["results"] == [{"instance": "i-stg-1", "result": "success"},
                               {"instance": "i-stg-2", "result": "failed"}]
    assert "refused by DCS" in data["details"][1]["reason"]
    assert len(status_calls(fleet)) == 1


def test_status_flush_needs_confirm(http, fleet):
    for payload in ({"instances": ["i-stg-1"], "action": "flush"},
                    {"instances": ["i-stg-1"], "action": "flush", "confirm": "yes"}):
        response = http("PUT", "/instances/status", payload)
        assert response["statusCode"] == 400 and error_code(response) == "DCSM.4005"
    assert dcs_requests(fleet) == []
    data = change(http, {"instances": ["i-stg-1", "i-redis3"], "action": "flush", "confirm": "flush"})
    assert data["results"] == [{"instance": "i-stg-1", "result": "success"},
                               {"instance": "i-redis3", "result": "failed"}]
    assert "Redis 4.0 or later" in data["details"][1]["reason"]
    assert status_calls(fleet) == [{"instances": ["i-stg-1"], "action": "flush"}]


def test_status_protected_ineligible_and_unknown_are_failed_and_not_sent(http, fleet):
    data = change(http, {"instances": ["i-stg-3", "i-closed", "i-busy", "i-missing", "i-stg-1"], "action": "restart"})
    results = {r["instance"]: r["result"] for r in data["results"]}
    assert results == {"i-stg-3": "failed", "i-closed": "failed", "i-busy": "failed", "i-missing": "failed",
                       "i-stg-1": "success"}
    reasons = {d["instance"]: d["reason"] for d in data["details"]}
    assert "protected by tag maintenance-protect=true" in reasons["i-stg-3"]
    assert "needs status RUNNING or ERROR, is CLOSED" in reasons["i-closed"]
    assert "transitional" in reasons["i-busy"]
    assert "not found" in reasons["i-missing"]
    assert acted_ids(fleet) == ["i-stg-1"]


def test_status_stop_and_start_follow_eligibility(http, fleet):
    data = change(http, {"instances": ["i-closed", "i-prod-1"], "action": "start"})
    assert [r["result"] for r in data["results"]] == ["success", "failed"]
    data = change(http, {"instances": ["i-prod-1", "i-stg-3"], "action": "stop"})
    assert [r["result"] for r in data["results"]] == ["success", "failed"]
    assert status_calls(fleet) == [{"instances": ["i-closed"], "action": "start"},
                                   {"instances": ["i-prod-1"], "action": "stop"}]


def test_status_ids_are_deduplicated(http, fleet):
    data = change(http, {"instances": ["i-stg-1", "i-stg-1", "i-stg-2"], "action": "restart"})
    assert [r["instance"] for r in data["results"]] == ["i-stg-1", "i-stg-2"]
    assert status_calls(fleet) == [{"instances": ["i-stg-1", "i-stg-2"], "action": "restart"}]


def test_status_is_sent_in_chunks_of_batch_size(http, emulator, monkeypatch):
    monkeypatch.setenv("BATCH_SIZE", "2")
    ids = [f"i-{n}" for n in range(5)]
    for iid in ids:
        emulator.add_instance(PROJECT, instance_id=iid, name=iid)
    data = change(http, {"instances": ids, "action": "soft_restart"})
    assert {r["result"] for r in data["results"]} == {"success"}
    assert [c["instances"] for c in status_calls(emulator)] == [ids[0:2], ids[2:4], ids[4:]]


def test_status_a_replayed_apig_request_does_not_send_twice(function_env, fleet):
    event = apig_event("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"}, AUTH)
    first = send_event(event)
    replay = send_event(json.loads(json.dumps(event)))
    assert body(first)["results"] == body(replay)["results"] == [{"instance": "i-stg-1", "result": "success"}]
    assert "already handled" in body(replay)["details"][0]["reason"]
    assert len(status_calls(fleet)) == 1
    fresh = send_event(apig_event("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"}, AUTH))
    assert body(fresh)["results"][0]["result"] == "success"  # a new APIG request id is a new request
    assert len(status_calls(fleet)) == 2


def test_status_idempotency_key_spans_requests(http, fleet):
    headers = {**AUTH, "Idempotency-Key": "maint-2026-12-01"}
    change(http, {"instances": ["i-prod-1"], "action": "restart"}, headers=headers)
    again = change(http, {"instances": ["i-prod-1"], "action": "restart"}, headers=headers)
    assert again["results"] == [{"instance": "i-prod-1", "result": "success"}]
    assert len(status_calls(fleet)) == 1
    response = http("PUT", "/instances/status", {"instances": ["i-prod-1"], "action": "restart"},
                    headers={**AUTH, "Idempotency-Key": "bad key|"})
    assert response["statusCode"] == 400 and error_code(response) == "DCSM.4004"
    assert "Idempotency-Key" in body(response)["error_msg"]


def test_status_dry_run_sends_nothing(http, fleet, monkeypatch):
    data = change(http, {"instances": ["i-stg-1", "i-stg-3"], "action": "restart", "dry_run": True})
    assert data["dry_run"] is True and [r["result"] for r in data["results"]] == ["skipped", "failed"]
    monkeypatch.setenv("DRY_RUN", "true")
    data = change(http, {"instances": ["i-stg-1"], "action": "restart"})
    assert data["dry_run"] is True and data["results"][0]["result"] == "skipped"
    assert status_calls(fleet) == []


@pytest.mark.parametrize("payload, code, field", [
    ("not json", "DCSM.4001", "JSON"),
    ('{"instances": ["i-1"], "instances": ["i-2"], "action": "restart"}', "DCSM.4001", "duplicate"),
    ([], "DCSM.4002", "object"),
    ({"action": "restart"}, "DCSM.4002", "instances"),
    ({"instances": "i-stg-1", "action": "restart"}, "DCSM.4002", "instances"),
    ({"instances": [], "action": "restart"}, "DCSM.4002", "instances"),
    ({"instances": [1], "action": "restart"}, "DCSM.4002", "instances[0]"),
    ({"instances": ["ok", "../x"], "action": "restart"}, "DCSM.4002", "instances[1]"),
    ({"instances": ["i-x"] * 1001, "action": "restart"}, "DCSM.4002", "at most 1000"),
    ({"instances": ["i-stg-1"]}, "DCSM.4002", "action"),
    ({"instances": ["i-stg-1"], "action": 5}, "DCSM.4002", "action"),
    ({"instances": ["i-stg-1"], "action": "reboot"}, "DCSM.4002", "action"),
    ({"instances": ["i-stg-1"], "action": "restart", "force": True}, "DCSM.4002", "force"),
    ({"instances": ["i-stg-1"], "action": "restart", "dry_run": 1}, "DCSM.4002", "dry_run"),
    ({"instances": ["i-stg-1"], "action": "restart", "confirm": "flush"}, "DCSM.4002", "confirm"),
    ("", "DCSM.4001", "required"),
])
def test_status_body_is_validated_strictly(http, fleet, payload, code, field):
    response = http("PUT", "/instances/status", payload)
    assert response["statusCode"] == 400 and error_code(response) == code
    assert field in body(response)["error_msg"]
    assert dcs_requests(fleet) == []


def test_status_listing_failure_is_502_and_nothing_sent(http, fleet):
    fleet.inject(Fault(endpoint="list", kind="dcs_error", status=403, error_code="DCS.4030", error_msg="denied"))
    response = http("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"})
    assert response["statusCode"] == 502 and error_code(response) == "DCSM.5020"
    assert "nothing was sent" in body(response)["error_msg"]
    assert status_calls(fleet) == []


def test_status_without_credentials_is_a_clear_500(http, fleet, monkeypatch):
    monkeypatch.delenv("HUAWEICLOUD_SDK_AK")
    response = http("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"})
    assert response["statusCode"] == 500 and error_code(response) == "DCSM.5001"
    assert "credentials" in body(response)["error_msg"]
    assert dcs_requests(fleet) == []


def test_a_route_bug_is_a_500_with_a_log_line(http, monkeypatch, capsys):
    from dcs_maintenance import routes

    route = next(r for r in routes.resolver.routes if r.pattern == "/schedules")

    def boom(request):
        raise RuntimeError("boom")

    monkeypatch.setattr(routes.resolver, "routes", [
        r if r is not route else type(r)(r.method, r.pattern, boom, r.public) for r in routes.resolver.routes])
    response = http("GET", "/schedules")
    assert response["statusCode"] == 500 and error_code(response) == "DCSM.5000"
    assert "boom" not in response["body"]
    out = capsys.readouterr().out
    assert "RuntimeError: boom" in out and '"status": 500' in out


def test_base64_bodies_may_be_wrapped(http, fleet):
    encoded = base64.encodebytes(json.dumps({"instances": ["i-stg-1"], "action": "restart"}).encode()).decode()
    event = apig_event("PUT", "/instances/status", headers=AUTH)
    event["body"] = encoded
    assert body(send_event(event))["results"] == [{"instance": "i-stg-1", "result": "success"}]


def test_run_is_never_late_even_with_a_short_starting_deadline(http, fleet, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:45Z"))  # 45 s into the minute the run's claim is scoped to
    write_schedules("""
schedules:
  - name: quick
    action: restart
    cron: "0 3 * * *"
    starting_deadline: 30s
    instances: {ids: [i-prod-1]}
""")
    summary = body(http("POST", "/schedules/quick/run"))
    assert summary["counts"]["success"] == 1 and acted_ids(fleet) == ["i-prod-1"]
