"""Issue 16's HTTP gaps and the harness's reset, each test killing a named mutant.

Authorization whitespace. RFC 6750 section 2.1 spells the credentials `"Bearer" 1*SP b64token`: one OR MORE spaces
between the scheme and the token, so `Bearer  <token>` is a valid header and must be accepted. RFC 9110 section 5.5
(formerly RFC 7230 section 3.2.4) makes the whitespace around a field value no part of the value: a parser strips
it, so ` Bearer <token>` (a leading space, as a proxy or a hand-written curl may send it) is the same header and
must be accepted too. A tab is not `SP`: `Bearer<TAB><token>` does not name the Bearer scheme and is refused, as
a strict reading of the grammar says. http_api.authenticate does exactly this (strip the value, split at the first
space, strip the token); these tests pin it.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from datetime import datetime, timezone

import pytest
from conftest import API_TOKEN, PROJECT, reset_process_state

from dcs_maintenance import clock, fastpath, http_api, invocation, loader, logs, rollout_runner, runner
from dcs_maintenance.http_api import HttpError, Request, Resolver
from dcs_maintenance.ledger.base import LedgerError


def body(response: dict) -> dict:
    return json.loads(response["body"])


# -- Authorization: Bearer with extra whitespace -------------------------------------------------------------
def test_bearer_with_two_spaces_before_the_token_is_accepted(http, emulator):
    """RFC 6750: `"Bearer" 1*SP b64token`. kills: http_api.py `given.strip().encode(...)` -> `given.encode(...)`
    (the token would be compared with its extra leading space: 401)."""
    response = http("GET", "/schedules", headers={"Authorization": f"Bearer  {API_TOKEN}"})
    assert response["statusCode"] == 200, response["body"]
    assert body(response)["count"] == 0


def test_bearer_after_a_leading_space_is_accepted(http, emulator):
    """RFC 9110 5.5: whitespace around a field value is not part of it. kills: http_api.py
    `request.header("authorization").strip().partition(" ")` -> `request.header("authorization").partition(" ")`
    (the scheme would be read as "": 401 "missing bearer token")."""
    for value in (f" Bearer {API_TOKEN}", f"\tBearer {API_TOKEN}", f"  Bearer   {API_TOKEN}  "):
        response = http("GET", "/schedules", headers={"Authorization": value})
        assert response["statusCode"] == 200, (value, response["body"])


def test_a_tab_between_scheme_and_token_is_not_the_bearer_scheme(http, emulator):
    """RFC 6750/7235 separate scheme and token by SP only. kills: http_api.py reading a tab as the separator
    (`.strip().partition(" ")` -> `.strip().replace("\\t", " ").partition(" ")`: 200 instead of 401)."""
    response = http("GET", "/schedules", headers={"Authorization": f"Bearer\t{API_TOKEN}"})
    assert response["statusCode"] == 401 and body(response)["error_code"] == "DCSM.4010"
    assert response["headers"]["WWW-Authenticate"].startswith("Bearer")


# -- the harness: every test starts as a cold function instance ------------------------------------------------
SCHEDULES = """
schedules:
  - name: nightly
    action: restart
    cron: "0 3 * * *"
    instances: {tags: {env: staging}}
  - name: dev-nights
    window: {stop: "0 20 * * *", start: "0 8 * * *"}
    instances: {tags: {env: dev}}
"""


def test_reset_process_state_forgets_everything_a_warm_instance_remembers(emulator, write_schedules, tick, http,
                                                                         function_env):
    """Fill every process-wide cache and lever the package has (a tick, GET /schedules, the clock levers, logs),
    then reset_process_state must put each back as a cold start has it.
    kills (each seen failing): dropping any line of conftest.reset_process_state (e.g. `runner.clear_memo()`,
    `invocation.close_ledgers()`, `logs.bind("")`, `logs.configure("INFO")`), and fastpath.clear without
    `_tick[:] = [None] * len(_tick)`."""
    emulator.add_instance(PROJECT, instance_id="i-stg-1", name="staging-api", tags={"env": "staging"})
    write_schedules(SCHEDULES)
    when = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    tick(when)
    assert http("GET", "/schedules")["statusCode"] == 200
    clock.set_as_of(lambda: when)
    clock.set_sleep(lambda _seconds: None)
    logs.configure("DEBUG", io.StringIO())

    from dcs_maintenance.routes import schedules as schedules_route

    handler = next(h for h in logs._logger.handlers if h.stream is not None)
    filled = {
        "fastpath next fires": fastpath._next_fire, "fastpath windows": fastpath._windows,
        "fastpath last tick": fastpath._tick[0], "loader files": loader._FILE_CACHE,
        "loader catalogs": loader._CATALOG_CACHE, "runner windows memo": runner._windows_of[0],
        "rollout keys memo": rollout_runner._keys_of[0], "schedules page order": schedules_route._order[0],
        "ledgers": invocation._ledgers,
    }
    assert all(filled.values()), [name for name, value in filled.items() if not value]
    assert clock.simulated() and clock._as_of is not None and clock._sleep is not clock.time.sleep
    assert logs.request_id() != "-" and logs.redact(API_TOKEN) == logs.MASK
    assert logs._logger.level == logging.DEBUG
    [ledger] = invocation._ledgers.values()

    reset_process_state()

    assert (fastpath._next_fire, fastpath._windows, fastpath._tick) == ({}, {}, [None] * 5)
    assert (loader._FILE_CACHE, loader._CATALOG_CACHE) == ({}, {})
    assert runner._windows_of == [None, ()] and rollout_runner._keys_of == [None, {}]
    assert schedules_route._order == [None, None, ()]
    assert invocation._ledgers == {}
    with pytest.raises(LedgerError, match="is closed"):  # closed, not merely forgotten: none outlives its test
        ledger.get_meta("x")
    assert not clock.simulated() and clock._as_of is None and clock._sleep is clock.time.sleep
    assert logs.request_id() == "-" and logs.redact(API_TOKEN) == API_TOKEN
    assert logs._logger.level == logging.INFO and handler.stream is None


# -- the pure parts of http_api, as table tests (mutation round: exact messages and codes are behaviour) --------


def request_with(body: bytes = b"", query: dict | None = None) -> Request:
    return Request("POST", "/x", {}, query or {}, "rid", body=body)


def refusal(call) -> tuple[int, str, str]:
    with pytest.raises(HttpError) as caught:
        call()
    return caught.value.status, caught.value.code, caught.value.message


@pytest.mark.parametrize("raw, message", [
    (b"  \n", "a JSON body is required"),
    (b"\xff{}", "the body is not UTF-8 text"),
    (b'{"a": }', "the body is not valid JSON: Expecting value at line 1, column 7"),
    (b'{"a": 1,\n "b": ]}', "the body is not valid JSON: Expecting value at line 2, column 7"),
    (b"[" * 100_000, "the body is not valid JSON: nested too deeply"),
    (b"1" * 5000, "the body is not valid JSON: a number too long to read"),
    (b'{"a": 1, "a": 2}', "the body is not valid JSON: duplicate key 'a'"),
])
def test_a_body_that_is_not_json_is_a_400_naming_why(raw, message):
    """kills: http_api.py Request.json's messages and codes (each `HttpError(400, INVALID_JSON, "...")` with its
    code, status or message changed, `"\\n"`-less positions `exc.lineno`/`exc.colno` swapped or dropped)."""
    assert refusal(lambda: request_with(raw).json()) == (400, "DCSM.4001", message)


def test_an_empty_optional_body_is_none_and_a_bom_is_not_part_of_the_json():
    """kills: Request.json `if required:` -> `if not required:` (an optional empty body refused) and
    `.decode("utf-8-sig")` -> another codec (a UTF-8 byte order mark read as JSON: 400)."""
    assert request_with(b"").json(required=False) is None
    assert request_with(b"\xef\xbb\xbf{\"a\": [1, true, null]}").json() == {"a": [1, True, None]}
    assert request_with(b"").json_object({"a": int}, required=False) == {}
    assert refusal(lambda: request_with(b"").json_object({"a": int})) == (400, "DCSM.4001", "a JSON body is required")


FIELDS = {"flag": bool, "name": str, "items": list, "count": int, "options": dict, "ratio": float}


@pytest.mark.parametrize("raw, message", [
    (b"[1]", "the body must be a JSON object, not a list"),
    (b'"x"', "the body must be a JSON object, not a string"),
    (b"3.5", "the body must be a JSON object, not a number"),
    (b"true", "the body must be a JSON object, not a boolean"),
    (b'{"zz": 1, "aa": 2, "flag": true}',
     "unknown field(s) 'aa', 'zz'; known: flag, name, items, count, options, ratio"),
    (b'{"flag": 1}', "flag: expected true or false, got a number"),
    (b'{"name": null}', "name: expected a string, got null"),
    (b'{"items": "a"}', "items: expected a list, got a string"),
    (b'{"count": true}', "count: expected a whole number, got a boolean"),
    (b'{"count": 2.0}', "count: expected a whole number, got a number"),
    (b'{"options": []}', "options: expected an object, got a list"),
    (b'{"ratio": {}}', "ratio: expected float, got an object"),
])
def test_a_json_object_with_a_wrong_shape_is_a_400_naming_the_field(raw, message):
    """kills: http_api.py _json_type's and _type_word's words (each "XX...XX"/upper-cased, `.get(kind, None)`,
    `value is None` -> `is not None`), _is's `and not isinstance(value, bool)` -> `or not ...`/`and isinstance`,
    and json_object's messages (the sorted unknown names, the known list, `_json_type(None)` for the value)."""
    assert refusal(lambda: request_with(raw).json_object(FIELDS)) == (400, "DCSM.4002", message)


def test_a_json_object_of_the_right_shape_is_returned_as_sent():
    sent = {"flag": False, "name": "n", "items": [], "count": 0, "options": {}, "ratio": 0.5}
    assert request_with(json.dumps(sent).encode()).json_object(FIELDS) == sent


def test_a_body_of_another_python_type_is_named_by_its_type():
    """An in-process caller can hand any object: the message names its Python type.
    kills: http_api.py _json_type's fallback `type(value).__name__` -> `None` / `type(None).__name__`."""
    event = {"httpMethod": "POST", "path": "/x", "body": b"{}"}
    assert refusal(lambda: http_api.parse_event(event, None)) == (
        400, "DCSM.4000", "malformed API Gateway event: body must be text (base64 when isBase64Encoded), got bytes")


@pytest.mark.parametrize("configured, given, ok", [
    ("c" * 16, "c" * 16, True),
    ("c" * 16, "c" * 15, False),
    ("c" * 15, "c" * 15, False),  # a configured token shorter than 16 characters is never accepted
    ("c" * 16, "", False),
    ("", "", False),
    (None, "anything-at-all!", False),
    ("\u00e9" * 16, "\u00e9" * 16, True),  # compared as UTF-8
    ("c" * 16, "\udcff" * 16, False),  # a lone surrogate in the query: refused, not a 500
])
def test_the_calendar_token_is_accepted_only_when_configured_long_and_equal(monkeypatch, configured, given, ok):
    """kills: http_api.py calendar_token_ok: `os.environ.get("CALENDAR_TOKEN")` renamed, `or ""` -> `and ""`,
    `query.get("token", "")` renamed or defaulted to None, `len(expected) < 16` -> `<= 16`/`< 17`, `or not given` ->
    `and not given`/`or given`, `return False` -> `return True`, and the digests' encodings."""
    if configured is None:
        monkeypatch.delenv("CALENDAR_TOKEN", raising=False)
    else:
        monkeypatch.setenv("CALENDAR_TOKEN", configured)
    query = {"token": given} if given else {}
    assert http_api.calendar_token_ok(request_with(query=query)) is ok


def test_an_unexpected_error_answers_the_error_triple():
    """kills: http_api.py error_response with any argument dropped or None, and HttpError's
    `super().__init__(message)` -> `super().__init__(None)` (str(error) is what app.handle logs)."""
    assert http_api.error_response(500, "DCSM.5000", "internal error") == {
        "statusCode": 500, "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error_code": "DCSM.5000", "error_msg": "internal error", "error_ext_msg": None}),
        "isBase64Encoded": False}
    assert str(HttpError(404, "DCSM.4040", "no route")) == "no route"


def test_a_resolver_routes_by_method_and_path_end_with_the_token_by_default():
    """kills: http_api.py Resolver.add's defaults `public=False` -> `True`, `calendar_token=False` -> `True`,
    `method.upper()` -> `method.lower()`/`None`, any Route field dropped or None, `self.routes = []` -> `None`."""
    def get_thing(request: Request) -> http_api.Response:
        return http_api.Response(200, {"name": request.params["name"]})

    resolver = Resolver()
    resolver.add("get", "/things/{name}", get_thing)
    resolver.add("GET", "/health", get_thing, public=True)
    match = resolver.resolve("GET", "/base/things/a%20b")
    assert match.route is not None and match.route.func is get_thing
    assert (match.route.method, match.route.pattern, match.params) == ("GET", "/things/{name}", {"name": "a b"})
    assert (match.public, match.route.public, match.route.calendar_token) == (False, False, False)
    assert resolver.resolve("GET", "/health").public is True
    refused = resolver.resolve("DELETE", "/things/a")
    assert (refused.route, refused.allow, refused.public) == (None, ("GET",), False)
    assert resolver.resolve("GET", "/nothing") == http_api.Match(None, {})


TOO_LARGE = (413, "DCSM.4130", "the body is larger than 262144 bytes")


def raw_request(raw: str, encoded: bool) -> Request:
    return Request("POST", "/x", {}, {}, "rid", raw_body=raw, base64_body=encoded)


def test_a_text_body_is_limited_to_max_body_bytes_exactly():
    """kills: http_api.py decode_body `len(raw) > MAX_BODY_BYTES` -> `>=` (a body of exactly the limit refused) and
    the 413's message -> None."""
    limit = http_api.MAX_BODY_BYTES
    assert limit == 256 * 1024
    assert http_api.decode_body(raw_request("x" * limit, False)) == b"x" * limit
    assert refusal(lambda: http_api.decode_body(raw_request("x" * (limit + 1), False))) == TOO_LARGE


def test_a_text_body_that_cannot_be_utf8_is_a_400():
    """A lone surrogate (a JSON-escaped event can carry one) has no UTF-8 form. kills: decode_body's
    `HttpError(400, INVALID_JSON, "the body is not valid text")` with any argument changed or dropped."""
    assert refusal(lambda: http_api.decode_body(raw_request('{"a": "\udc80"}', False))) == (
        400, "DCSM.4001", "the body is not valid text")


def test_a_base64_body_may_carry_line_breaks_up_to_its_bound():
    """The encoded text may exceed the body's 4/3 by 1024 characters of line breaks, not one more.
    kills: decode_body `len(raw) > (MAX_BODY_BYTES + 2) // 3 * 4 + 1024` -> `>=`, `- 1024`, `// 3 / 4`."""
    bound = (256 * 1024 + 2) // 3 * 4 + 1024
    assert bound == 350_552
    encoded = base64.b64encode(b'{"a": 1}').decode()
    padded = encoded + "\n" * (bound - len(encoded))
    assert http_api.decode_body(raw_request(padded, True)) == b'{"a": 1}'
    assert refusal(lambda: http_api.decode_body(raw_request(padded + "\n", True))) == TOO_LARGE


def test_a_route_added_for_the_calendar_token_keeps_that_flag():
    """kills: http_api.py Resolver.add passing `Route(method.upper(), pattern, func, public, )` (the flag dropped:
    calendar clients, which cannot send headers, would get 401)."""
    resolver = Resolver()
    resolver.add("GET", "/calendar.ics", lambda request: http_api.Response(200, {}), calendar_token=True)
    match = resolver.resolve("GET", "/calendar.ics")
    assert match.route is not None and match.route.calendar_token is True and match.public is False


def test_a_body_that_is_not_strict_base64_is_a_400():
    """Characters outside the base64 alphabet are refused, not skipped. kills: decode_body's
    `base64.b64decode(compact, validate=True)` -> `validate=False`/dropped and its 400's message changed or None."""
    for raw in ("e30=!", "e3*0=", "e30"):
        assert refusal(lambda raw=raw: http_api.decode_body(raw_request(raw, True))) == (
            400, "DCSM.4003", "the body is not valid base64, as isBase64Encoded says it is")


def authorized(value: str | None) -> Request:
    return Request("GET", "/schedules", {} if value is None else {"authorization": value}, {}, "rid")


def test_authentication_refusals_name_what_is_missing(monkeypatch):
    """kills: http_api.py authenticate's messages changed or None (503 with no token configured, 401 missing), and
    `given.strip().encode("utf-8", "surrogatepass")` losing or misspelling its error handler (a lone surrogate in
    the offered token must be a 401, not a 500)."""
    monkeypatch.setenv("API_TOKEN", API_TOKEN)
    missing = (401, "DCSM.4010", "missing bearer token: send Authorization: Bearer <API_TOKEN>")
    for value in (None, "", "Bearer", "Bearer   ", f"Basic {API_TOKEN}"):
        assert refusal(lambda value=value: http_api.authenticate(authorized(value))) == missing, value
    assert refusal(lambda: http_api.authenticate(authorized("Bearer \udc80abc"))) == (
        401, "DCSM.4010", "invalid bearer token")
    assert http_api.authenticate(authorized(f"bearer {API_TOKEN}")) is None
    monkeypatch.delenv("API_TOKEN")
    assert refusal(lambda: http_api.authenticate(authorized(f"Bearer {API_TOKEN}"))) == (
        503, "DCSM.5030", "API_TOKEN is not configured: every route but /health is refused")


def test_dispatch_asks_the_token_except_where_the_route_says_otherwise(monkeypatch):
    """kills: http_api.py dispatch `route.calendar_token and calendar_token_ok(request)` -> `... or
    calendar_token_ok(request)` (a calendar token would open every route), `calendar_token_ok(None)`, the 404's and
    405's messages and Allow header, and Resolver.resolve's 405 Match losing `public` (a wrong method on /health
    would ask for the token) or its params."""
    monkeypatch.setenv("API_TOKEN", API_TOKEN)
    calendar = "calendar-token-0123456789"
    monkeypatch.setenv("CALENDAR_TOKEN", calendar)

    def ok(request: Request) -> http_api.Response:
        return http_api.Response(200, {"ok": True})

    resolver = Resolver()
    resolver.add("GET", "/health", ok, public=True)
    resolver.add("GET", "/calendar.ics", ok, calendar_token=True)
    resolver.add("GET", "/things", ok)
    resolver.add("PUT", "/things", ok)

    def send(method: str, path: str, query: dict | None = None, auth: bool = False) -> http_api.Response:
        headers = {"authorization": f"Bearer {API_TOKEN}"} if auth else {}
        request = Request(method, path, headers, query or {}, "rid")
        try:
            return http_api.dispatch(request, resolver.resolve(method, path))
        except HttpError as error:
            return error.response()

    assert send("GET", "/calendar.ics", {"token": calendar}).status == 200
    refused = send("GET", "/things", {"token": calendar})
    assert (refused.status, refused.body["error_code"]) == (401, "DCSM.4010")
    assert send("GET", "/things", auth=True).status == 200
    wrong = send("POST", "/health")  # no token needed to learn that /health is GET only
    assert (wrong.status, wrong.body["error_msg"], dict(wrong.headers)) == (
        405, "POST is not allowed here; allowed: GET", {"Allow": "GET"})
    wrong = send("DELETE", "/things", auth=True)
    assert (wrong.status, wrong.body["error_msg"], dict(wrong.headers)) == (
        405, "DELETE is not allowed here; allowed: GET, PUT", {"Allow": "GET, PUT"})
    assert resolver.resolve("DELETE", "/things").params == {}
    missing = send("GET", "/nothing", auth=True)
    assert (missing.status, missing.body["error_code"], missing.body["error_msg"]) == (
        404, "DCSM.4040", "no route for GET /nothing")


# -- the envelope's headers and query string (mutation round 2026-12-03) ----------------------------------------
def test_headers_skip_empty_values_and_keep_reading_the_rest():
    """A header FunctionGraph sends as null is absent, and the ones after it still count. kills: http_api.py
    _headers `... or value is None` -> `... and value is None` (null read as the text "None", which then differs
    from the real value: 400) and `continue` -> `break` (the token after the null would be lost)."""
    assert http_api._headers({"X-Empty": None, "Authorization": None, "authorization": "Bearer t"}) == {
        "authorization": "Bearer t"}
    assert http_api._headers({3: "x", "Host": "h"}) == {"host": "h"}


def test_multi_value_headers_are_joined_but_credentials_are_one_value():
    """kills: http_api.py _headers `key == "authorization" and len(value) > 1` -> `or` (any list header refused) and
    `>= 1` (a one-element authorization refused), the joined value -> None, and the refusal's message."""
    assert http_api._headers({"X-Forwarded-For": ["10.0.0.1", "10.0.0.2"], "Authorization": ["Bearer t"]}) == {
        "x-forwarded-for": "10.0.0.1, 10.0.0.2", "authorization": "Bearer t"}
    assert refusal(lambda: http_api._headers({"Authorization": ["Bearer a", "Bearer b"]})) == (
        400, "DCSM.4000",
        "malformed API Gateway event: header 'authorization' is given more than once: send one bearer token")
    assert refusal(lambda: http_api._headers(["Authorization: Bearer t"])) == (
        400, "DCSM.4000", "malformed API Gateway event: headers must be an object")


def test_a_query_parameter_given_as_a_list_of_one_is_that_value_and_more_is_refused():
    """API Gateway may deliver a parameter as a one-element list. kills: http_api.py _query `len(value) != 1` ->
    `== 1` or `!= 2`, `value = value[0]` -> `value[1]` or None, and the refusal's status, code and message."""
    assert http_api._query({"limit": ["5"], "cursor": None, "schedule": "nightly"}) == {
        "limit": "5", "schedule": "nightly"}
    for many in (["5", "6"], ["5", "5", "5"]):
        assert refusal(lambda many=many: http_api._query({"limit": many})) == (
            400, "DCSM.4004", "query parameter 'limit' is given more than once")
    assert refusal(lambda: http_api._query("limit=5")) == (
        400, "DCSM.4000", "malformed API Gateway event: queryStringParameters must be an object")


def test_a_404_names_the_path_cut_at_200_characters(monkeypatch):
    """A long unknown path is named, but bounded in the answer. kills: http_api.py dispatch `request.path[:200]` ->
    `[:201]`."""
    monkeypatch.setenv("API_TOKEN", API_TOKEN)
    path = "/" + "p" * 299
    request = Request("GET", path, {"authorization": f"Bearer {API_TOKEN}"}, {}, "rid")
    assert refusal(lambda: http_api.dispatch(request, Resolver().resolve("GET", path))) == (
        404, "DCSM.4040", f"no route for GET {path[:200]}")


def event_of(**fields) -> dict:
    return {"httpMethod": "GET", "path": "/schedules", **fields}


@pytest.mark.parametrize("fields, message", [
    ({"httpMethod": "GET /x" + "y" * 60}, "httpMethod must be an HTTP method, got 'GET /x" + "y" * 34 + "'"),
    ({"httpMethod": None}, "httpMethod must be an HTTP method, got 'None'"),
    ({"path": "schedules/" + "s" * 100}, "path must be text starting with '/', got 'schedules/" + "s" * 70 + "'"),
    ({"path": 7}, "path must be text starting with '/', got '7'"),
    ({"path": "/" + "p" * 2048}, "path is longer than 2048 characters"),
    ({"isBase64Encoded": "yes"}, "isBase64Encoded must be true or false"),
    ({"isBase64Encoded": 1}, "isBase64Encoded must be true or false"),
])
def test_a_malformed_envelope_is_a_400_naming_the_field_and_what_it_got(fields, message):
    """kills: http_api.py parse_event's messages (the offending value shown, cut at 40 or 80 characters, not
    `str(None)`)."""
    assert refusal(lambda: http_api.parse_event(event_of(**fields), None)) == (
        400, "DCSM.4000", f"malformed API Gateway event: {message}")


def test_a_path_of_exactly_max_path_chars_is_read():
    """kills: http_api.py parse_event `len(path) > MAX_PATH_CHARS` -> `>=` (the longest allowed path refused)."""
    path = "/" + "p" * 2047
    assert http_api.parse_event(event_of(path=path), None).path == path


@pytest.mark.parametrize("given, encoded", [
    (None, True), (True, True), (False, False), ("true", True), ("TRUE", True), ("True", True), ("false", False),
    ("FALSE", False), ("False", False)])
def test_is_base64_encoded_reads_booleans_and_their_text_in_any_case(given, encoded):
    """FunctionGraph's APIG events carry isBase64Encoded as a boolean; some test tools send it as text. Absent or
    null means encoded (FunctionGraph's default). kills: http_api.py parse_event `encoded = True` -> None or False,
    `.lower()` -> `.upper()` (twice), the words "true"/"false" changed in the test or the assignment, and `==`
    -> `!=`."""
    assert http_api.parse_event(event_of(isBase64Encoded=given), None).base64_body is encoded
    assert http_api.parse_event(event_of(), None).base64_body is True


def test_the_envelope_keeps_path_context_body_and_request_id_as_sent():
    """kills: http_api.py parse_event `path.split("?", 1)[0]` -> `rsplit`, the context dropped, a null body read as
    "XXXX", and every change to where the request id comes from: APIG's requestContext.requestId (text or a
    number, cut at 128 characters), else the invocation's own id (no requestContext, not an object, or an empty,
    null or other-typed requestId)."""
    context = object()
    logs.bind("invocation-id")
    try:
        parsed = http_api.parse_event(event_of(path="/plan?at=1?b", body=None, requestContext={"requestId": "r-1"}),
                                      context)
        assert (parsed.path, parsed.context, parsed.raw_body, parsed.request_id) == ("/plan", context, "", "r-1")
        for request_context, expected in [
            ({"requestId": "r" * 200}, "r" * 128), ({"requestId": 42}, "42"), ({"requestId": ""}, "invocation-id"),
            ({"requestId": None}, "invocation-id"), ({"requestId": {"id": 1}}, "invocation-id"),
            ({}, "invocation-id"), ("r-2", "invocation-id"), (None, "invocation-id")]:
            parsed = http_api.parse_event(event_of(requestContext=request_context), None)
            assert parsed.request_id == expected, request_context
    finally:
        logs.bind("")
