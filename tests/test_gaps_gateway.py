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


@pytest.mark.parametrize("make, expected", [
    (lambda: _client_error(400), "HTTP 400 DCS.4026: Operation not allowed. (request r-1)"),
    (lambda: _client_error(503, "DCS.5000", "busy", None), "HTTP 503 DCS.5000: busy"),
    (lambda: _client_error(404, "", "", None), "HTTP 404 :"),
    (lambda: _sdk("ConnectionException", "Connection refused"), "ConnectionException: Connection refused"),
    (lambda: _sdk("RequestTimeoutException", ""), "RequestTimeoutException: RequestTimeoutException - "),
    (lambda: ValueError("bad"), "ValueError: bad"),
    (lambda: ValueError(), "ValueError: ValueError"),
    (lambda: _sdk("ConnectionException", "x" * 600), "ConnectionException: " + "x" * 479),
], ids=["client", "server-no-request-id", "no-code", "connection", "empty-sdk-message", "other", "empty-other",
        "long"])
def test_describe_error_says_status_code_message_and_request(make, expected):
    """The text every failed read or call carries into the summary: exact, so each part is pinned.
    kills: gateway.py describe_error's parts mutated (status, code, message, request id, the fallbacks for an
    exception without them, the 500-character cut)."""
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
