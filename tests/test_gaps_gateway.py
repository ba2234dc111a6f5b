"""Issue 16, gateway gaps: each test kills a named mutant of gateway.py or sending.py (see its docstring).

Real SDK over real HTTP to the emulator, as everywhere: the read retries are counted in the emulator's request
log against literal numbers (never the module's own constants, which a mutant would change too), the backoff
sleeps are recorded, and the list's pagination uses the emulator's `overcount` fault. (The status PUT refused
before sending, with the `refuse_after` fault, is in test_faults.py, next to the other status PUT faults.)
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from conftest import AK, PROJECT, SK, add_web, results_by_instance

from dcs_emulator import Fault
from dcs_maintenance import gateway

UTC = timezone.utc
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # "0 * * * *" fires here


def make_gateway(remaining=lambda: float("inf"), slept: list[float] | None = None) -> gateway.DcsGateway:
    """A gateway on the function's settings (function_env), with a recording sleep."""
    from dcs_maintenance.settings import Credentials, load_settings

    record = slept.append if slept is not None else (lambda seconds: None)
    return gateway.DcsGateway(load_settings(), Credentials(AK, SK), PROJECT, remaining=remaining, sleep=record)


def lists(emu) -> list[dict]:
    return [r for r in emu.requests if r.get("endpoint") == "list"]


# -- read retries, against literal numbers ----------------------------------------------------------------------
def test_a_read_failing_for_good_is_tried_exactly_four_times(emulator, function_env, fast_backoff):
    """Four attempts in all (three retries, three sleeps), counted by the emulator.
    kills: gateway.py `READ_ATTEMPTS = 4` -> 5 (or 3); `attempt >= READ_ATTEMPTS` -> `attempt > READ_ATTEMPTS`."""
    emulator.inject(Fault(endpoint="list", kind="http_error", status=503, times=None))
    slept: list[float] = []
    gw = make_gateway(slept=slept)
    with pytest.raises(gateway.GatewayError, match="HTTP 503"):
        gw.list_instances()
    assert len(lists(emulator)) == 4
    assert len(slept) == 3 and gw.stats.retries == 3


def test_a_read_that_fails_three_times_succeeds_on_the_fourth_attempt(emulator, function_env, fast_backoff):
    """kills: gateway.py `READ_ATTEMPTS = 4` -> 3 (the fourth attempt never made)."""
    emulator.add_instance(PROJECT, instance_id="i-1", name="web-1")
    emulator.inject(Fault(endpoint="list", kind="http_error", status=502, times=3))
    gw = make_gateway()
    assert [i.instance_id for i in gw.list_instances()] == ["i-1"]
    assert [r["status"] for r in lists(emulator)] == [502, 502, 502, 200]


# -- a retry never sleeps past the time budget ------------------------------------------------------------------
def test_a_retry_never_sleeps_into_the_last_call_budget(emulator, function_env):
    """With exactly one call budget left, the first attempt is made (it fits), but a retry would need its backoff
    delay on top: it is not slept, and the read fails at once naming why.
    kills: gateway.py `self._remaining() < delay + self.settings.call_budget` -> `< self.settings.call_budget`
    (it sleeps the delay and retries into the time it does not have)."""
    from dcs_maintenance.settings import load_settings

    budget = load_settings().call_budget
    emulator.inject(Fault(endpoint="list", kind="http_error", status=503, times=None))
    slept: list[float] = []
    with pytest.raises(gateway.GatewayError, match="no time left to retry"):
        make_gateway(remaining=lambda: budget, slept=slept).list_instances()
    assert slept == [] and len(lists(emulator)) == 1


def test_backoff_sleeps_stay_within_the_time_left(emulator, function_env, monkeypatch):
    """The time left shrinks by what is slept; every sleep leaves at least one call budget, and the read gives up
    rather than sleep further. Backoff delays are made certain (random.uniform's upper end) so the mutant fails
    every time. kills: the same mutant as above (`delay +` dropped): it sleeps 8 s with 1.5 s left."""
    from dcs_maintenance.settings import load_settings

    monkeypatch.setattr(gateway.random, "uniform", lambda low, high: high)  # 1 s, then 2 s, ... (capped at 8)
    budget = load_settings().call_budget
    emulator.inject(Fault(endpoint="list", kind="http_error", status=500, times=None))
    slept: list[float] = []
    start = budget + 1.5
    with pytest.raises(gateway.GatewayError, match="no time left to retry"):
        make_gateway(remaining=lambda: start - sum(slept), slept=slept).list_instances()
    assert slept == [1.0]  # 2 s more would eat into the last call budget: not slept
    assert len(lists(emulator)) == 2


# -- pagination --------------------------------------------------------------------------------------------------
def test_pagination_ends_on_an_empty_page_even_when_instance_num_says_more(emulator, function_env):
    """DCS's total is a hint: an empty page ends the listing, whatever `instance_num` says (here 1,000 too many,
    on every page). The time budget bounds the mutant's endless loop so the test fails instead of hanging.
    kills: gateway.py `if not batch or offset >= ...` -> `if offset >= ...`."""
    add_web(emulator, 3)
    emulator.inject(Fault(endpoint="list", kind="overcount", times=None))
    asked = []

    def remaining() -> float:
        asked.append(1)
        return float("inf") if len(asked) < 20 else 0.0

    found = make_gateway(remaining=remaining).list_instances()
    assert sorted(i.instance_id for i in found) == ["i-1", "i-2", "i-3"]
    assert [r["query"]["offset"] for r in lists(emulator)] == ["0", "3"]
    assert all(r["fault"] == "overcount" for r in lists(emulator))


def test_a_second_page_of_instances_is_read(emulator, function_env):
    """1,003 instances: two pages of the API's maximum size (1,000), the second holding the last three.
    kills: gateway.py `offset >= (page.instance_num or 0)` -> `offset >= LIST_PAGE` (stops after the first
    page), `LIST_PAGE = 1000` -> 500 (three calls) or -> 1001 (the API refuses it), `>=` -> `>` (a third call)."""
    for n in range(1, 1004):
        emulator.add_instance(PROJECT, instance_id=f"i-{n:04d}", name=f"web-{n}")
    found = make_gateway().list_instances()
    assert len(found) == 1003 and len({i.instance_id for i in found}) == 1003
    assert {"i-1001", "i-1002", "i-1003"} <= {i.instance_id for i in found}
    assert [(r["query"]["offset"], r["query"]["limit"]) for r in lists(emulator)] == [("0", "1000"), ("1000", "1000")]


# -- a window stop whose reply is lost ----------------------------------------------------------------------------
NIGHTS = """
schedules:
  - name: nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {ids: [i-a]}
"""


def test_a_window_stop_whose_reply_is_lost_and_reads_back_closed_is_a_success(emulator, write_schedules, tick):
    """The stop took effect and the instance is already CLOSED when its status is read back (no CLOSING seen).
    kills: gateway.py `ACTION_STATUSES["stop"] = ("CLOSING", "CLOSED")` -> `("CLOSING",)` (reported unknown)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(NIGHTS)
    emulator.inject(Fault(endpoint="status", kind="reset_after"))  # processed; the answer is lost
    summary = tick(datetime(2026, 6, 1, 20, 0, tzinfo=UTC))
    entry = results_by_instance(summary)["i-a"]
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "CLOSED"
    assert entry["result"] == "success", entry
    assert "status read back CLOSED" in entry["reason"]
    assert [r["endpoint"] for r in emulator.requests] == ["list", "status", "show"]


# -- the pure helpers, as tables over the SDK's own exception and model classes ------------------------------------
def _client_error(status: int, code: str = "DCS.4026", msg: str = "Operation not allowed.",
                  request_id: str | None = "r-1"):
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, SdkError, ServerResponseException

    cls = ClientRequestException if status < 500 else ServerResponseException
    return cls(status, SdkError(request_id=request_id, error_code=code, error_msg=msg))


def _sdk(name: str, msg: str):
    from huaweicloudsdkcore.exceptions import exceptions

    return getattr(exceptions, name)(msg)


class _StatusOnly(Exception):
    """An exception with an HTTP status and none of the SDK's error fields (code, message, request id)."""

    def __init__(self, status: int) -> None:
        super().__init__("bare")
        self.status_code = status


@pytest.mark.parametrize("make, expected", [
    (lambda: _client_error(400), "HTTP 400 DCS.4026: Operation not allowed. (request r-1)"),
    (lambda: _client_error(503, "DCS.5000", "busy", None), "HTTP 503 DCS.5000: busy"),
    (lambda: _client_error(404, "", "", None), "HTTP 404 :"),
    (lambda: _sdk("ConnectionException", "Connection refused"), "ConnectionException: Connection refused"),
    (lambda: _sdk("RequestTimeoutException", ""), "RequestTimeoutException: RequestTimeoutException - "),
    (lambda: ValueError("bad"), "ValueError: bad"),
    (lambda: ValueError(), "ValueError: ValueError"),
    (lambda: _sdk("ConnectionException", "x" * 600), "ConnectionException: " + "x" * 479),
    (lambda: _StatusOnly(502), "HTTP 502 :"),
], ids=["client", "server-no-request-id", "no-code", "connection", "empty-sdk-message", "other", "empty-other",
        "long", "status-only"])
def test_describe_error_says_status_code_message_and_request(make, expected):
    """The text every failed read or call carries into the summary: exact, so each part is pinned.
    kills: gateway.py describe_error's parts mutated (status, code, message, request id, the fallbacks for an
    exception without them, the 500-character cut); `getattr(exc, "error_code" / "error_msg" / "request_id", )`
    without its None default (describe_error_16, _26, _35: an exception with a status but none of the SDK's fields
    raises AttributeError instead of being described)."""
    assert gateway.describe_error(make()) == expected


@pytest.mark.parametrize("make, retriable", [
    (lambda: _client_error(429, "APIGW.0308"), True), (lambda: _client_error(500), True),
    (lambda: _client_error(499), False), (lambda: _client_error(400), False), (lambda: _client_error(404), False),
    (lambda: _sdk("ConnectionException", "reset"), True), (lambda: gateway.MalformedResponse("html"), True),
])
def test_which_read_failures_are_retried(make, retriable):
    """kills: gateway.py `_retriable`'s `status == 429 or status >= 500` mutated (`!=`, `> 500`, `and`, 501),
    its `return True` for an exception without a status."""
    assert gateway._retriable(make()) is retriable


class _WithRetryAfter(Exception):
    def __init__(self, retry_after=None, headers=None):
        super().__init__("429")
        self.retry_after, self.headers = retry_after, headers


@pytest.mark.parametrize("exc, seconds", [
    (_WithRetryAfter(retry_after=3), 3.0), (_WithRetryAfter(retry_after=1.5), 1.5),
    (_WithRetryAfter(headers={"Retry-After": "7"}), 7.0), (_WithRetryAfter(headers={"Retry-After": "soon"}), None),
    (_WithRetryAfter(headers={}), None), (_WithRetryAfter(retry_after="4"), None), (ValueError("x"), None),
    (_WithRetryAfter(retry_after=2, headers={"Retry-After": "9"}), 2.0),
])
def test_retry_after_is_read_where_it_was_kept(exc, seconds):
    """kills: gateway.py `_retry_after`'s attribute names, `isinstance` checks, header name and `float` mutated."""
    assert gateway._retry_after(exc) == seconds


@pytest.mark.parametrize("make, not_sent", [
    (lambda: _sdk("HostUnreachableException", "no route"), True),
    (lambda: _sdk("ConnectionException", "NewConnectionError: [Errno 111] Connection refused"), True),
    (lambda: _sdk("ConnectionException", "Failed to establish a new connection"), True),
    (lambda: _sdk("RequestTimeoutException", "ConnectTimeout(...)"), True),
    (lambda: _sdk("SslHandShakeException", "CERTIFICATE_VERIFY_FAILED"), True),
    (lambda: ConnectionRefusedError("Connection refused"), True),  # no error_msg attribute at all
    (lambda: _sdk("RequestTimeoutException", "Read timed out"), False),
    (lambda: _sdk("ConnectionException", "Max retries exceeded with url: Connection reset by peer"), False),
    (lambda: _sdk("SslHandShakeException", "EOF occurred in violation of protocol"), False),
    (lambda: _client_error(500), False),
])
def test_only_a_connection_never_made_counts_as_not_sent(make, not_sent):
    """kills: gateway.py `_not_sent`'s class-name test mutated or dropped (the SDK's HostUnreachableException),
    `getattr(exc, 'error_msg', '')` without its default (an exception without error_msg raises), the markers."""
    assert gateway._not_sent(make()) is not_sent


def test_a_malformed_answer_names_the_fields_it_lacks():
    """kills: gateway.py `_checked`'s message mutated (fields, the raw body's first 80 bytes)."""
    from huaweicloudsdkdcs.v2.model.list_instances_response import ListInstancesResponse

    response = ListInstancesResponse()
    response.raw_content = b"<html>" + b"x" * 100
    with pytest.raises(gateway.MalformedResponse) as err:
        gateway._checked(response, "instances", "instance_num")
    assert str(err.value) == ("malformed response body (none of instances, instance_num): "
                              + repr(b"<html>" + b"x" * 74))
    response.instance_num = 0
    assert gateway._checked(response, "instances", "instance_num") is response


def test_to_instance_reads_every_field_and_unknown_tags():
    """kills: gateway.py `to_instance`'s fields mutated: tags sorted and `None` values as "", tags without a key
    dropped, `tags_known` False only where the entry has no tags field, service_upgrade only when True, the
    maintenance window and spec code passed on."""
    from huaweicloudsdkdcs.v2.model.instance_list_info import InstanceListInfo
    from huaweicloudsdkdcs.v2.model.resource_tag import ResourceTag

    info = InstanceListInfo(instance_id="i-1", name="web-1", engine="Redis", engine_version="5.0", status="RUNNING",
                            tags=[ResourceTag("team", "web"), ResourceTag("env", None), ResourceTag("", "x")],
                            maintain_begin="18:00:00", maintain_end="19:00:00", spec_code="redis.single.xu1.tiny.1",
                            service_upgrade=True)
    inst = gateway.to_instance(info)
    assert (inst.instance_id, inst.name, inst.engine, inst.engine_version, inst.status) == (
        "i-1", "web-1", "Redis", "5.0", "RUNNING")
    assert inst.tags == (("env", ""), ("team", "web")) and inst.tags_known is True
    assert (inst.maintain_begin, inst.maintain_end, inst.spec_code, inst.service_upgrade) == (
        "18:00:00", "19:00:00", "redis.single.xu1.tiny.1", True)
    bare = gateway.to_instance(InstanceListInfo(instance_id="i-2", engine_version=None, service_upgrade=False))
    assert (bare.name, bare.engine, bare.engine_version, bare.status, bare.tags, bare.tags_known) == (
        "", "", "", "", (), False)
    assert (bare.maintain_begin, bare.maintain_end, bare.spec_code, bare.service_upgrade) == (None, None, "", False)
    untagged = gateway.to_instance(InstanceListInfo(instance_id="i-3", tags=[], engine_version=4))
    assert untagged.tags_known is True and untagged.service_upgrade is False  # None: not an upgrade
    assert gateway.to_instance(InstanceListInfo(instance_id="i-3", engine_version=4)).engine_version == "4"


# -- change_status: every kind of answer, as the outcomes it gives ----------------------------------------------
def _outcomes(gw, action="restart", ids=("i-1", "i-2")) -> list[tuple]:
    """(instance, result, reason without request ids, not_executed, retry_after, refusal, refused) per outcome."""
    import re

    def plain(reason: str) -> str:
        return re.sub(r"port=\d+", "port=N", re.sub(r" \(request [^)]*\)", "", reason))

    return [(o.instance_id, o.result, plain(o.reason), o.not_executed, o.retry_after,
             o.refusal and (o.refusal.status, o.refusal.code, o.refusal.message), o.refused)
            for o in gw.change_status(action, list(ids))]


READ_BACK_503 = "status read-back failed: show instance i-1: HTTP 503 DCS.5000: Internal service error (injected)."
STATUS_ANSWERS = [
    ("accepted", [], [("i-1", "success", "restart accepted", False, None, None, False),
                      ("i-2", "success", "restart accepted", False, None, None, False)]),
    ("one-entry-failed", [Fault(endpoint="status", kind="failed_entries", instance_ids=["i-2"])],
     [("i-1", "success", "restart accepted", False, None, None, False),
      ("i-2", "failed", "restart refused by DCS (result: failed)", False, None, None, True)]),
    ("throttled", [Fault(endpoint="status", kind="throttle")],
     [(iid, "failed", "HTTP 429 429: HTTPConnectionPool(host='127.0.0.1', port=N): Max retries exceeded with url: "
       "/v2/0123456789abcdef0123456789abcdef/instances/status (Caused by ResponseError('too many 429 error "
       "responses')) (throttled); status read back RUNNING: not executed", True, None, None, False)
      for iid in ("i-1", "i-2")]),
    ("throttled-answer", [Fault(endpoint="status", kind="throttle_after")],
     [(iid, "success", "HTTP 429 429: HTTPConnectionPool(host='127.0.0.1', port=N): Max retries exceeded with url: "
       "/v2/0123456789abcdef0123456789abcdef/instances/status (Caused by ResponseError('too many 429 error "
       "responses')) (throttled); status read back RESTARTING: the restart was accepted", False, None, None, False)
      for iid in ("i-1", "i-2")]),
    ("unauthorized", [Fault(endpoint="status", kind="dcs_error", status=401, error_code="APIGW.0301",
                            error_msg="Incorrect IAM authentication information.")],
     [(iid, "failed", "HTTP 401 APIGW.0301: Incorrect IAM authentication information. (rejected, not executed)",
       False, None, None, False) for iid in ("i-1", "i-2")]),
    ("forbidden", [Fault(endpoint="status", kind="dcs_error", status=403, error_code="DCS.0403", error_msg="no")],
     [(iid, "failed", "HTTP 403 DCS.0403: no (rejected, not executed)", False, None, None, False)
      for iid in ("i-1", "i-2")]),
    ("refused-request", [Fault(endpoint="status", kind="dcs_error", status=400)],
     [(iid, "failed", "HTTP 400 DCS.4026: Operation not allowed (injected). (the whole request was refused, not "
       "executed)", False, None, (400, "DCS.4026", "Operation not allowed (injected)."), False)
      for iid in ("i-1", "i-2")]),
    ("server-error-not-run", [Fault(endpoint="status", kind="http_error", status=500)],
     [(iid, "unknown", "HTTP 500 DCS.5000: Internal service error (injected).; status read back RUNNING: outcome "
       "unknown, not re-sent", False, None, None, False) for iid in ("i-1", "i-2")]),
    ("answer-lost-read-back-fails", [Fault(endpoint="status", kind="reset_after"),
                                     Fault(endpoint="show", kind="http_error", status=503, times=None)],
     [("i-1", "unknown", None, False, None, None, False)]),
    ("answer-lost-gone", [Fault(endpoint="status", kind="reset_after"),
                          Fault(endpoint="show", kind="dcs_error", status=404, error_code="DCS.4010",
                                error_msg="instance not found", times=None)],
     [("i-1", "unknown", None, False, None, None, False)]),
]


@pytest.mark.parametrize("faults, expected", [c[1:] for c in STATUS_ANSWERS], ids=[c[0] for c in STATUS_ANSWERS])
def test_change_status_outcomes_for_each_kind_of_answer(emulator, function_env, fast_backoff, faults, expected):
    """Exact outcomes (result, reason, evidence flags, refusal) for each answer a status PUT can get.
    kills: gateway.py `_after_error`'s branches mutated (429, the auth statuses, `status < 500`, the refusal's
    fields, the not-sent test), `change_status`'s result-entry parsing, `_read_back`'s reasons and flags."""
    add_web(emulator, 2)
    emulator.transition_delay = 60.0  # an accepted restart is still RESTARTING when read back
    for fault in faults:
        emulator.inject(fault)
    ids = [e[0] for e in expected]
    got = _outcomes(make_gateway(), ids=ids)
    for have, want in zip(got, expected, strict=True):
        if want[2] is None:  # reasons checked below
            have = (*have[:2], None, *have[3:])
        assert have == want
    if [f.kind for f in faults] == ["reset_after", "http_error"]:
        assert got[0][2].endswith("; " + READ_BACK_503) and got[0][2].startswith("ConnectionException: ")
    if [f.kind for f in faults] == ["reset_after", "dcs_error"]:
        assert got[0][2].endswith("; status not read back")
        assert len([r for r in emulator.requests if r["endpoint"] == "show"]) == 1  # a 404 is not retried


def test_no_read_back_without_the_time_for_one(emulator, function_env):
    """An answer lost with less than one call budget left: nothing is read (a read there would overrun the
    invocation); the outcome says the status was not read back.
    kills: gateway.py `_read_back`'s `if self._remaining() >= self.settings.call_budget` -> `... or True` (it
    tries the read, which refuses to start: "read-back failed")."""
    from dcs_maintenance.settings import load_settings

    budget = load_settings().call_budget
    add_web(emulator, 1)
    emulator.inject(Fault(endpoint="status", kind="reset_after"))
    [outcome] = make_gateway(remaining=lambda: budget - 0.1).change_status("restart", ["i-1"])
    assert outcome.result == "unknown" and outcome.reason.endswith("; status not read back"), outcome
    assert [r["endpoint"] for r in emulator.requests] == ["status"]


def test_a_gateway_error_carries_the_status_and_code(emulator, function_env):
    """kills: gateway.py `GatewayError.__init__`'s `self.status = status` / `self.code = code` -> None."""
    emulator.inject(Fault(endpoint="list", kind="dcs_error", status=400, error_code="DCS.4026"))
    with pytest.raises(gateway.GatewayError) as err:
        make_gateway().list_instances()
    assert (err.value.status, err.value.code) == (400, "DCS.4026")
    assert str(err.value).startswith(f"list instances of project {PROJECT}: HTTP 400 DCS.4026: ")


# -- the gateway's own checks and counts ----------------------------------------------------------------------
def test_a_gateway_refuses_a_missing_project_or_region_naming_the_setting(function_env, monkeypatch):
    """kills: gateway.py `__init__`'s checks (`not project_id or "{" in project_id`, endpoint-or-region) and their
    messages mutated; `_sdk`'s unknown-region message."""
    from dcs_maintenance.settings import Credentials, load_settings

    creds = Credentials(AK, SK)
    for bad in ("", "{project_id}"):
        with pytest.raises(gateway.GatewayError) as err:
            gateway.DcsGateway(load_settings(), creds, bad)
        assert str(err.value) == f"no valid project id ({bad!r}): set DCS_PROJECT_ID or RUNTIME_PROJECT_ID"
    monkeypatch.delenv("DCS_ENDPOINT")
    monkeypatch.delenv("DCS_REGION")
    with pytest.raises(gateway.GatewayError) as err:
        gateway.DcsGateway(load_settings(), creds, PROJECT)
    assert str(err.value) == "no region: set DCS_REGION or the schedule's region, or DCS_ENDPOINT"
    gw = gateway.DcsGateway(load_settings(), creds, PROJECT, region="xx-nowhere-1")  # a region given: accepted
    assert gw.region == "xx-nowhere-1"
    with pytest.raises(gateway.GatewayError) as err:
        gw.list_instances()
    assert str(err.value) == "unknown DCS region 'xx-nowhere-1'"


def test_a_read_without_the_time_for_one_call_is_not_started(emulator, function_env):
    """kills: gateway.py `_read`'s `self._remaining() < self.settings.call_budget` -> `<=` or dropped, and its
    message mutated."""
    from dcs_maintenance.settings import load_settings

    budget = load_settings().call_budget
    with pytest.raises(gateway.GatewayError) as err:
        make_gateway(remaining=lambda: budget - 0.01).list_instances()
    assert str(err.value) == (f"list instances of project {PROJECT}: not started, not enough time left in this "
                              "invocation (connect + read timeout + SAFETY_MARGIN); the next tick picks it up")
    assert lists(emulator) == []
    add_web(emulator, 1)
    assert len(make_gateway(remaining=lambda: budget).list_instances()) == 1  # exactly one call's time: it starts


def test_call_stats_count_each_kind_of_call(emulator, function_env, fast_backoff):
    """The summary's api_calls: one count per request sent, retries apart.
    kills: gateway.py `CallStats.count`'s `getattr(...) + 1` mutated, each call counting the wrong name."""
    add_web(emulator, 2)
    emulator.inject(Fault(endpoint="list", kind="http_error", status=503))
    gw = make_gateway()
    gw.list_instances()
    gw.backup_records("i-1")
    gw.redis_config("i-1")
    gw.redis_config("i-2")
    gw.show_instance("i-1")
    gw.change_status("restart", ["i-1", "i-2"])
    assert gw.stats == gateway.CallStats(list_calls=1, show_calls=1, status_calls=1, retries=1, backup_calls=1,
                                         config_calls=2)


# -- the reads before a restart: a reply without its fields, one page of backup records ---------------------------
MALFORMED_JSON = {"kind": "malformed", "body": "{}", "content_type": "application/json", "times": None}


def test_a_configuration_or_backup_reply_without_its_fields_is_refused_naming_them(emulator, function_env,
                                                                                  fast_backoff):
    """A 2xx `{}` (the SDK's empty response object) is not "no parameters" or "no backups": the read fails, retried
    like a 5xx, with the exact text naming the read and the fields it lacks. A reply with either field is read.
    kills: gateway.py redis_config's `_checked(..., "redis_config", "instance_id")` fields mutated, dropped or None
    (redis_config_15, _17, _18, _20, _21, _22, _23) and its `_read(None, ...)` (redis_config_8); backup_records'
    `_checked(..., "backup_record_response", None)` (backup_records_21) and `_read(None, ...)` (backup_records_14)."""
    add_web(emulator, 1)
    emulator.inject(Fault(endpoint="configs", **MALFORMED_JSON))
    emulator.inject(Fault(endpoint="backups", **MALFORMED_JSON))
    gw = make_gateway()
    with pytest.raises(gateway.GatewayError) as err:
        gw.redis_config("i-1")
    assert str(err.value) == ("read the configuration of instance i-1: MalformedResponse: malformed response body "
                              "(none of redis_config, instance_id): b'{}'")
    with pytest.raises(gateway.GatewayError) as err:
        gw.backup_records("i-1")
    assert str(err.value) == ("list backup records of instance i-1: MalformedResponse: malformed response body "
                              "(none of backup_record_response, total_num): b'{}'")
    assert [r["endpoint"] for r in emulator.requests] == ["configs"] * 4 + ["backups"] * 4
    emulator.clear_faults()
    for body in ('{"redis_config": []}', '{"instance_id": "i-1"}'):
        emulator.inject(Fault(endpoint="configs", kind="malformed", body=body, content_type="application/json"))
        assert gw.redis_config("i-1") == {}


def test_backup_records_read_one_page_of_a_hundred_from_the_first(emulator, function_env):
    """Twelve backup records: all are read in one call asking for offset 0 and 100 records (the API's default
    page, like the emulator's, is 10: a record in progress beyond it would go unseen).
    kills: gateway.py backup_records' `limit=dcs_rules.BACKUP_PAGE` -> None or dropped (backup_records_5, _8: ten
    records), `offset=0` -> None or dropped (backup_records_4, _7: the request no longer names its offset)."""
    add_web(emulator, 1)
    for _ in range(12):
        emulator.start_backup(PROJECT, "i-1")
    assert len(make_gateway().backup_records("i-1")) == 12
    assert [r["query"] for r in emulator.requests if r["endpoint"] == "backups"] == [{"offset": "0", "limit": "100"}]


# -- change_status: the answers the table above does not reach ----------------------------------------------------
def test_a_refusal_with_an_empty_body_has_an_empty_message(emulator, function_env):
    """A 400 with no body at all: the SDK gives the status as the code and "" as the message; the refusal keeps
    that empty message rather than inventing one.
    kills: gateway.py `_after_error`'s `getattr(exc, "error_msg", None) or ""` -> `or "XXXX"` (_after_error_62)."""
    add_web(emulator, 2)
    emulator.inject(Fault(endpoint="status", kind="malformed", status=400, body="", content_type="text/plain"))
    assert _outcomes(make_gateway()) == [
        (iid, "failed", "HTTP 400 400: (the whole request was refused, not executed)", False, None, (400, "400", ""),
         False) for iid in ("i-1", "i-2")]


def test_a_status_put_whose_connection_is_never_made_is_failed_and_not_executed(emulator, function_env):
    """The list is answered, then every new connection is refused (`refuse_after`): the PUT never reaches DCS.
    Each instance's outcome is exactly `failed`, not executed, with nothing read back.
    kills: gateway.py `_after_error`'s not-sent outcome `"failed"` -> None, "XXfailedXX", "FAILED" (_after_error_77,
    _84, _85)."""
    add_web(emulator, 2)
    emulator.inject(Fault(endpoint="list", kind="refuse_after"))
    gw = make_gateway()
    gw.list_instances()
    try:
        got = _outcomes(gw)
    finally:
        emulator.accept_connections()
    refused = ("ConnectionException: HTTPConnection(host='127.0.0.1', port=N): Failed to establish a new connection: "
               "[Errno 111] Connection refused (not sent: the connection was never made)")
    assert got == [(iid, "failed", refused, True, None, None, False) for iid in ("i-1", "i-2")]
    assert [r["endpoint"] for r in emulator.requests] == ["list"]


def test_a_read_back_is_made_with_exactly_one_call_budget_left(emulator, function_env):
    """An answer lost with exactly one call budget left: the read-back fits (as a read does, see
    test_a_read_without_the_time_for_one_call_is_not_started) and is made.
    kills: gateway.py `_read_back`'s `self._remaining() >= self.settings.call_budget` -> `>` (_read_back_6: "status
    not read back")."""
    from dcs_maintenance.settings import load_settings

    budget = load_settings().call_budget
    add_web(emulator, 1)
    emulator.transition_delay = 60.0
    emulator.inject(Fault(endpoint="status", kind="reset_after"))
    [outcome] = make_gateway(remaining=lambda: budget).change_status("restart", ["i-1"])
    assert outcome.result == "success", outcome
    assert outcome.reason.endswith("; status read back RESTARTING: the restart was accepted"), outcome
    assert [r["endpoint"] for r in emulator.requests] == ["status", "show"]


# -- replies with only one of their fields (mutation round 2026-12-03) -------------------------------------------
def test_a_list_reply_with_only_one_of_its_fields_is_read(emulator, function_env):
    """_checked refuses a reply with NONE of its fields; a reply with one of them is a real answer. kills:
    gateway.py _list's `_checked(..., "instances", "instance_num")` with either name changed or dropped (_list_29,
    _32, _33, _34, _35)."""
    gw = make_gateway()
    reply = '{"instances": [{"instance_id": "i-9", "name": "cache-9", "status": "RUNNING"}]}'
    emulator.inject(Fault(endpoint="list", kind="malformed", body=reply, content_type="application/json"))
    assert [(i.instance_id, i.name, i.status) for i in gw.list_instances()] == [("i-9", "cache-9", "RUNNING")]
    emulator.inject(Fault(endpoint="list", kind="malformed", body='{"instance_num": 0}',
                          content_type="application/json"))
    assert gw.list_instances() == []
    assert len(lists(emulator)) == 2


def test_backup_records_read_each_field_and_an_absent_one_as_empty(emulator, function_env):
    """kills: gateway.py backup_records' `BackupRecord(r.backup_id or "", r.status or "", r.created_at or "")`
    with any field None, dropped, `and` for `or`, or "XXXX" for "" (backup_records_30 to _41)."""
    from dcs_maintenance.dcs_rules import BackupRecord

    reply = ('{"total_num": 2, "backup_record_response": [{"backup_id": "b-1", "status": "backuping", '
             '"created_at": "2026-12-01T09:00:00Z"}, {}]}')
    emulator.inject(Fault(endpoint="backups", kind="malformed", body=reply, content_type="application/json"))
    assert make_gateway().backup_records("i-1") == [
        BackupRecord("b-1", "backuping", "2026-12-01T09:00:00Z"), BackupRecord("", "", "")]


def test_backoff_doubles_from_one_second_and_a_retry_fits_exactly_into_the_time_left(emulator, function_env,
                                                                                    monkeypatch):
    """Full jitter over 0.5 s x 2^attempt: the draws' upper ends are 1, 2 and 4 s (literal numbers). A retry whose
    delay plus one call budget is exactly the time left is made; one that needs more is not, and the error says
    what failed and why it was not retried. kills: gateway.py _read `BACKOFF_BASE * 2 ** attempt` -> `2 * attempt`
    (_read_50: 3 s, not 4), `self._remaining() < delay + ...` -> `<=` (_read_52: the exact fit refused), and
    `describe_error(exc)` -> `describe_error(None)` in the "no time left" error (_read_55)."""
    from dcs_maintenance.settings import load_settings

    upper: list[float] = []
    monkeypatch.setattr(gateway.random, "uniform", lambda low, high: upper.append(high) or 0.0)
    emulator.inject(Fault(endpoint="list", kind="http_error", status=503, times=None))
    with pytest.raises(gateway.GatewayError):
        make_gateway().list_instances()
    assert upper == [1.0, 2.0, 4.0]

    monkeypatch.setattr(gateway.random, "uniform", lambda low, high: high)
    budget = load_settings().call_budget
    slept: list[float] = []
    with pytest.raises(gateway.GatewayError) as err:
        make_gateway(remaining=lambda: budget + 1.0, slept=slept).list_instances()
    assert slept == [1.0]  # 1 s + one call budget fits exactly; 2 s more does not
    message = str(err.value)
    assert message.startswith(f"list instances of project {PROJECT}: HTTP 503 DCS.5000: Internal service error "
                              "(injected). (request ") and message.endswith(") (no time left to retry)")


def test_a_failed_tag_listing_leaves_the_tags_unknown_naming_the_listing(emulator, function_env, fast_backoff):
    """List entries without tags are read through one listing per tag filter; when that listing fails, the
    instances keep unknown tags with a note naming the listing (so they are never touched). kills: gateway.py
    _list's `what` losing " with tags ..." (_list_5)."""
    untagged = '{"instances": [{"instance_id": "i-9", "name": "cache-9", "status": "RUNNING"}], "instance_num": 1}'
    emulator.inject(Fault(endpoint="list", kind="malformed", body=untagged, content_type="application/json"))
    emulator.inject(Fault(endpoint="list", kind="http_error", status=503, times=None))
    [inst] = make_gateway().list_instances([(("env", "dev"),)])
    assert inst.tags_known is False
    assert inst.tags_note.startswith(f"listing by tag env=dev failed: list instances of project {PROJECT} with tags "
                                     "env=dev: HTTP 503 DCS.5000: Internal service error (injected).")


def test_the_client_is_built_for_the_region_when_no_endpoint_is_set(function_env, monkeypatch):
    """The deployed function names only DCS_REGION: the SDK's own endpoint for it is used (no call is made
    here). kills: gateway.py _sdk `DcsRegion.value_of(self.region)` -> `value_of(None)` (_sdk_23)."""
    monkeypatch.delenv("DCS_ENDPOINT")
    client = make_gateway()._sdk()
    assert client._endpoints == ["https://dcs.cn-north-4.myhuaweicloud.com"]


def test_the_sdk_logger_gets_one_null_handler_and_the_root_logger_none():
    """kills: gateway.py quiet_sdk_logger `logging.getLogger(f"HuaweiCloud-SDK-...")` -> `getLogger(None)` (the
    root logger silenced instead, _2) and `if not any(...)` -> `if any(...)` (never added, _3)."""
    import logging

    probe = type("MutationProbeClient", (), {})
    root = list(logging.getLogger().handlers)
    gateway.quiet_sdk_logger(probe)
    gateway.quiet_sdk_logger(probe)
    handlers = logging.getLogger("HuaweiCloud-SDK-MutationProbeClient").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]
    assert logging.getLogger().handlers == root


def test_a_status_reply_without_a_result_says_what_it_got(emulator, function_env, fast_backoff):
    """An entry whose `result` is null, and an empty 2xx body, are neither success nor refusal: the outcome is read
    back and its reason shows what DCS sent. kills: gateway.py change_status `(entry.result or "")` -> `or "XXXX"`
    (_41), the "no result entry" reason -> None (_76), the unknown action's message (_2), and _checked's
    `raw_content or b""` -> `or b"XXXX"` (_checked_17)."""
    add_web(emulator, 1)
    null_result = '{"results": [{"instance": "i-1", "result": null}]}'
    emulator.inject(Fault(endpoint="status", kind="malformed", body=null_result, content_type="application/json"))
    assert _outcomes(make_gateway(), ids=["i-1"]) == [
        ("i-1", "unknown", "no result entry for the instance (''); status read back RUNNING: outcome unknown, "
         "not re-sent", False, None, None, False)]
    for endpoint in ("status", "show"):
        emulator.inject(Fault(endpoint=endpoint, kind="malformed", body="", content_type="application/json",
                              times=None))
    assert _outcomes(make_gateway(), ids=["i-1"]) == [
        ("i-1", "unknown", "no result entry for the instance (None); status read-back failed: show instance i-1: "
         "MalformedResponse: malformed response body (none of status): b''", False, None, None, False)]
    with pytest.raises(ValueError) as err:
        make_gateway().change_status("reboot", ["i-1"])
    assert str(err.value) == "unknown action 'reboot'"
