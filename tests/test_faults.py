"""Issue 5: the tick under API faults, through handler.handler against the emulator.

Every fault kind on list / show / status. Reads retry with capped backoff and jitter (made fast
here, but the number of attempts is asserted); the status PUT is never re-sent, whatever
happens; an unknown outcome is read back; one failing project, chunk or schedule never stops
the others.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import AK, OTHER_PROJECT, PROJECT, SK, WEB_HOURLY, acted_ids, add_web, results_by_instance, status_calls
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)

from dcs_emulator import Fault
from dcs_maintenance import gateway
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.ledger.base import claim_key

UTC = timezone.utc
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # "0 * * * *" fires here
READ_TIMEOUT = 0.5
SLOW = 1.2  # an answer slower than DCS_READ_TIMEOUT


@pytest.fixture(autouse=True)
def fast_faults(fast_backoff, monkeypatch, function_env, emulator):
    """Backoff sleeps of microseconds, short client timeouts, and instances that stay RESTARTING for a while
    after an accepted action (so a read-back can tell "executed" from "not executed")."""
    monkeypatch.setenv("DCS_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("DCS_READ_TIMEOUT", str(READ_TIMEOUT))
    emulator.transition_delay = 60.0


@pytest.fixture
def fleet(emulator):
    return add_web(emulator, 4)


def requests_to(emu, endpoint: str) -> list[dict]:
    return [r for r in emu.requests if r.get("endpoint") == endpoint]


def puts(emu) -> list[dict]:
    return [r for r in emu.requests if r["method"] == "PUT"]


READ_FAULTS = [
    ("http_error", {"status": 500}),
    ("http_error", {"status": 502}),
    ("http_error", {"status": 503}),
    ("http_error", {"status": 504}),
    ("throttle", {}),
    ("throttle", {"retry_after": 1}),
    ("slow", {"delay": SLOW}),
    ("reset_before", {}),
    ("reset_after", {}),
    ("malformed", {}),
    ("malformed", {"body": '{"instances": [', "content_type": "application/json"}),
    ("malformed", {"status": 502, "body": "Bad Gateway", "content_type": "text/plain"}),
]


def _fault_id(case) -> str:
    kind, params = case
    return kind + "".join(f"-{v}" for k, v in params.items() if k in ("status", "retry_after")) + (
        "-json" if "json" in str(params.get("content_type")) else "")


# -- reads ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("case", READ_FAULTS, ids=_fault_id)
def test_list_retries_a_transient_fault_and_the_tick_succeeds(fleet, write_schedules, tick, case, times):
    kind, params = case
    fleet.inject(Fault(endpoint="list", kind=kind, times=times, **params))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    lists = requests_to(fleet, "list")
    assert len(lists) == times + 1, "one attempt per fault, then the one that succeeds"
    assert [r["fault"] for r in lists] == [kind] * times + [None]
    assert summary["ok"], summary
    assert summary["api_calls"]["retries"] == times
    assert status_calls(fleet) == [{"instances": ["i-1", "i-2", "i-3", "i-4"], "action": "restart"}]
    assert all(r["result"] == "success" for r in results_by_instance(summary).values())


@pytest.mark.parametrize("case", [c for c in READ_FAULTS if c[0] != "slow"], ids=_fault_id)
def test_list_failing_every_attempt_is_an_error_and_the_next_tick_catches_up(fleet, write_schedules, tick, case):
    kind, params = case
    fleet.inject(Fault(endpoint="list", kind=kind, times=None, **params))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    assert len(requests_to(fleet, "list")) == gateway.READ_ATTEMPTS
    assert status_calls(fleet) == []
    web = summary["schedules"][0]
    assert not summary["ok"] and web["decision"] == "error"
    assert "could not list instances" in web["reason"]
    if kind == "malformed":
        assert "malformed" in web["reason"] or "HTTP 502" in web["reason"]
    fleet.clear_faults()
    later = tick(T0 + timedelta(minutes=5))  # the watermark was held: the 10:00 occurrence is still due
    assert later["ok"] and later["counts"]["success"] == 4
    assert acted_ids(fleet) == ["i-1", "i-2", "i-3", "i-4"]


def test_malformed_list_is_never_read_as_an_empty_project(emulator, write_schedules, tick):
    """An HTML page inside a 200 used to deserialise into "no instances": ids reported as not found, and a
    window schedule would have seen nothing to do."""
    emulator.add_instance(PROJECT, instance_id="i-1", name="web-1")
    emulator.inject(Fault(endpoint="list", kind="malformed", times=None))
    write_schedules("""
schedules:
  - name: by-id
    action: restart
    cron: "0 * * * *"
    instances: {ids: [i-1]}
""")
    summary = tick(T0)
    by_id = summary["schedules"][0]
    assert by_id["decision"] == "error" and "malformed" in by_id["reason"]
    assert not any("not found" in i["reason"] for i in by_id["instances"])


@pytest.mark.parametrize("code", [("dcs_error", 400, "DCS.4026"), ("dcs_error", 404, "DCS.3022"),
                                  ("dcs_error", 403, "DCS.4030")])
def test_list_client_errors_are_not_retried_and_name_the_code(fleet, write_schedules, tick, code):
    kind, status, error_code = code
    fleet.inject(Fault(endpoint="list", kind=kind, times=None, status=status, error_code=error_code))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    assert len(requests_to(fleet, "list")) == 1
    assert error_code in summary["schedules"][0]["reason"] and f"HTTP {status}" in summary["schedules"][0]["reason"]
    assert status_calls(fleet) == []


def test_read_backoff_is_capped_exponential_with_jitter(emulator, function_env, monkeypatch):
    """Straight at the gateway, with a recording sleep: delays within [0, min(cap, base * 2**attempt)]."""
    from dcs_maintenance.gateway import DcsGateway
    from dcs_maintenance.settings import Credentials, load_settings

    monkeypatch.setattr(gateway, "BACKOFF_BASE", 4.0)
    emulator.inject(Fault(endpoint="list", kind="http_error", status=503, times=None))
    slept: list[float] = []
    gw = DcsGateway(load_settings(), Credentials(AK, SK), PROJECT, sleep=slept.append)
    with pytest.raises(gateway.GatewayError, match="HTTP 503"):
        gw.list_instances()
    assert len(requests_to(emulator, "list")) == gateway.READ_ATTEMPTS
    assert len(slept) == gateway.READ_ATTEMPTS - 1
    for attempt, delay in enumerate(slept, start=1):
        assert 0 <= delay <= min(gateway.BACKOFF_CAP, 4.0 * 2 ** attempt)
    assert max(slept) <= gateway.BACKOFF_CAP


def test_429_with_retry_after_on_a_read(emulator, function_env):
    """What the gateway does with 429 + Retry-After: the SDK raises the 429 from urllib3's RetryError path
    (`too many 429 error responses`) and keeps neither the body nor the headers, so Retry-After never
    reaches the gateway; the read is retried after the usual jittered backoff. Where a Retry-After does
    reach it (an exception carrying it), it is honoured, but capped at BACKOFF_CAP."""
    from dcs_maintenance.gateway import DcsGateway, _retry_after
    from dcs_maintenance.settings import Credentials, load_settings

    emulator.add_instance(PROJECT, instance_id="i-1", name="web-1")
    emulator.inject(Fault(endpoint="list", kind="throttle", retry_after=3600))
    slept: list[float] = []
    gw = DcsGateway(load_settings(), Credentials(AK, SK), PROJECT, sleep=slept.append)
    assert [i.instance_id for i in gw.list_instances()] == ["i-1"]
    throttled = requests_to(emulator, "list")[0]
    assert throttled["status"] == 429 and throttled["fault"] == "throttle"
    assert len(slept) == 1 and slept[0] <= gateway.BACKOFF_BASE * 2  # not the hour the server asked for
    assert gw.stats.retries == 1

    class Throttled(Exception):
        status_code = 429
        headers = {"Retry-After": "3600"}

    assert _retry_after(Throttled()) == 3600.0
    emulator.clear_log()
    calls = iter([Throttled(), "ok"])

    def flaky():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    slept.clear()
    assert gw._read("probe", flaky) == "ok"
    assert slept == [gateway.BACKOFF_CAP]


@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("case", READ_FAULTS, ids=_fault_id)
def test_read_back_retries_show_faults(fleet, write_schedules, tick, case, times):
    """After an unknown outcome the status is read back with a retried show; the result comes from it."""
    kind, params = case
    fleet.inject(Fault(endpoint="status", kind="reset_after"))  # executed, answer lost
    fleet.inject(Fault(endpoint="show", kind=kind, times=times, instance_ids=["i-2"], **params))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    assert len(puts(fleet)) == 1
    shows = requests_to(fleet, "show")
    assert sorted(r["path"].rsplit("/", 1)[1] for r in shows) == ["i-1"] + ["i-2"] * (times + 1) + ["i-3", "i-4"]
    results = results_by_instance(summary)
    for iid in ("i-1", "i-2", "i-3", "i-4"):
        assert results[iid]["result"] == "success", results[iid]
        assert "status read back RESTARTING" in results[iid]["reason"]


def test_read_back_that_fails_for_good_reports_unknown(fleet, write_schedules, tick):
    fleet.inject(Fault(endpoint="status", kind="reset_after"))
    fleet.inject(Fault(endpoint="show", kind="http_error", times=None))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    results = results_by_instance(summary)
    assert {r["result"] for r in results.values()} == {"unknown"}
    assert all("read-back failed" in r["reason"] for r in results.values())
    assert len(puts(fleet)) == 1 and len(requests_to(fleet, "show")) == 4 * gateway.READ_ATTEMPTS


# -- the status call ------------------------------------------------------------------------------------
STATUS_FAULTS = [
    # kind, params, expected result, read back?, a word of the reason
    ("http_error", {"status": 500}, "unknown", True, "HTTP 500"),
    ("http_error", {"status": 502}, "unknown", True, "HTTP 502"),
    ("http_error", {"status": 503}, "unknown", True, "HTTP 503"),
    ("http_error", {"status": 504}, "unknown", True, "HTTP 504"),
    ("slow", {"delay": SLOW}, "success", True, "status read back RESTARTING"),  # executed, answer too late
    ("reset_after", {}, "success", True, "status read back RESTARTING"),  # executed, answer lost
    ("reset_before", {}, "unknown", True, "status read back RUNNING"),  # not executed, indistinguishable
    ("malformed", {}, "unknown", True, "status read back RUNNING"),
    # A 4xx for the whole request executed nothing: its halves are sent (issue 11), see the tests below.
    ("failed_entries", {}, "failed", False, "result: failed"),
]


@pytest.mark.parametrize("case", STATUS_FAULTS, ids=lambda c: _fault_id(c[:2]))
def test_status_put_is_never_resent(fleet, write_schedules, tick, case):
    kind, params, expected, read_back, words = case
    fleet.inject(Fault(endpoint="status", kind=kind, **params))
    write_schedules(WEB_HOURLY)
    started = time.monotonic()
    summary = tick(T0)
    assert time.monotonic() - started < SLOW + 5
    assert len(puts(fleet)) == 1, "exactly one PUT, whatever the fault"
    assert puts(fleet)[0]["fault"] == kind
    shows = requests_to(fleet, "show")
    assert (len(shows) == 4) is read_back, shows
    results = results_by_instance(summary)
    for iid in ("i-1", "i-2", "i-3", "i-4"):
        assert results[iid]["result"] == expected, results[iid]
        assert words in results[iid]["reason"], results[iid]
    assert summary["ok"] is (expected == "success")
    # The same tick delivered again, then the next ticks: still that one PUT.
    tick(T0)
    tick(T0 + timedelta(minutes=5))
    tick(T0 + timedelta(minutes=10))
    assert len(puts(fleet)) == 1


@pytest.mark.parametrize("params", [{}, {"retry_after": 2}], ids=["no-retry-after", "retry-after"])
def test_a_throttled_status_put_is_released_and_sent_once_by_the_next_tick(fleet, write_schedules, tick, params):
    """A 429 refused before DCS saw it: the status read back shows nothing happened (no answer is trusted without
    evidence: a proxy may throttle the answer of a request that took effect), so the claims are given back and
    the next tick sends them, once."""
    fleet.inject(Fault(endpoint="status", kind="throttle", **params))
    write_schedules(WEB_HOURLY)
    first = tick(T0)
    assert len(puts(fleet)) == 1 and len(requests_to(fleet, "show")) == 4  # one read-back per instance
    for entry in results_by_instance(first).values():
        assert entry["result"] == "skipped" and entry["not_sent"] is True
        assert "throttled" in entry["reason"] and "read back RUNNING: not executed" in entry["reason"]
        assert "claim released" in entry["reason"]
    tick(T0)  # the same tick again sends the released instances (the claim is free, the deadline not passed)
    tick(T0 + timedelta(minutes=5))
    tick(T0 + timedelta(minutes=10))
    assert len(puts(fleet)) == 2
    assert all(fleet.get_instance(PROJECT, f"i-{n}")["counters"]["restarts"] == 1 for n in range(1, 5))


@pytest.mark.parametrize("ledger_url", ["sqlite", "redis"], indirect=True)
def test_a_status_put_refused_before_sending_releases_its_claim_and_the_next_tick_sends_it(
        emulator, write_schedules, tick, ledger_url):
    """The reads before the restart (the list, the instance's backup records) work; the PUT's connection is
    refused (`refuse_after` on the last read before it): not a byte written, so the claim is given back, no
    status is read back, and the next tick sends it, once.
    kills: gateway.py `_not_sent` returning False (read back: unknown, claim kept, never sent); sending.py
    `if retry: _release(...)` dropped (claim kept: the next tick sends nothing)."""
    add_web(emulator, 1)
    write_schedules(WEB_HOURLY)
    emulator.inject(Fault(endpoint="backups", kind="refuse_after"))
    first = tick(T0)
    entry = results_by_instance(first)["i-1"]
    assert entry["result"] == "skipped" and entry["not_sent"] is True, entry
    assert "not sent: the connection was never made" in entry["reason"] and "claim released" in entry["reason"]
    # The PUT was tried (its reason is change_status's) but never reached the emulator; nothing read back.
    assert [r["endpoint"] for r in emulator.requests] == ["list", "backups"]
    with open_ledger(ledger_url) as ledger:
        assert ledger.get_claims([claim_key("web", T0, "i-1", "restart")]) == {}
    emulator.accept_connections()
    second = tick(T0 + timedelta(minutes=5))
    assert results_by_instance(second)["i-1"]["result"] == "success"
    tick(T0 + timedelta(minutes=10))
    assert status_calls(emulator) == [{"instances": ["i-1"], "action": "restart"}]
    assert emulator.get_instance(PROJECT, "i-1")["counters"]["restarts"] == 1


@pytest.mark.parametrize("status, code, busy", [(400, "DCS.4026", True), (400, "DCS.4049", True),
                                                (404, "DCS.3022", False), (400, "DCS.4007", False)])
def test_dcs_error_codes_are_reported_with_the_code(fleet, write_schedules, tick, status, code, busy):
    """Issue 11: DCS refuses every request (nothing executed): it is split until each instance stands alone
    (1 + 2 + 4 calls); a busy code holds the instance like a transitional state (its claim given back for the
    next tick), any other is failed with DCS's code and message. Never a read-back: nothing ran."""
    fleet.inject(Fault(endpoint="status", kind="dcs_error", status=status, error_code=code,
                       error_msg="refused (injected)", times=None))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    for entry in results_by_instance(summary).values():
        assert code in entry["reason"] and f"HTTP {status}" in entry["reason"] and "not executed" in entry["reason"]
        if busy:
            assert entry["result"] == "skipped" and entry["not_sent"] and "claim released" in entry["reason"]
        else:
            assert entry["result"] == "failed"
            assert entry["reason"].startswith(f"DCS refused restart for this instance: {code} refused (injected)")
    assert summary["counts"]["failed"] == (0 if busy else 4) and summary["ok"] is busy
    assert len(puts(fleet)) == 7 and requests_to(fleet, "show") == []


def test_failed_entries_are_reported_one_by_one(fleet, write_schedules, tick):
    fleet.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-2", "i-4"]))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    results = results_by_instance(summary)
    assert {iid: r["result"] for iid, r in results.items()} == {
        "i-1": "success", "i-2": "failed", "i-3": "success", "i-4": "failed"}
    assert "refused by DCS" in results["i-2"]["reason"]
    assert summary["counts"] == {**summary["counts"], "success": 2, "failed": 2}
    assert fleet.get_instance(PROJECT, "i-2")["counters"]["restarts"] == 0
    assert fleet.get_instance(PROJECT, "i-1")["counters"]["restarts"] == 1


def test_malformed_status_answer_is_unknown_and_read_back(fleet, write_schedules, tick):
    fleet.inject(Fault(endpoint="status", kind="malformed", status=200, body="{\"results\": ",
                       content_type="application/json"))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    assert len(puts(fleet)) == 1 and len(requests_to(fleet, "show")) == 4
    assert {r["result"] for r in results_by_instance(summary).values()} == {"unknown"}


def test_slow_status_answer_cannot_hang_the_tick(fleet, write_schedules, tick):
    fleet.inject(Fault(endpoint="status", kind="slow", delay=30.0))
    write_schedules(WEB_HOURLY)
    started = time.monotonic()
    summary = tick(T0)
    assert time.monotonic() - started < 5, "the read timeout, not the server, decides how long a call takes"
    assert {r["result"] for r in results_by_instance(summary).values()} == {"success"}  # read back RESTARTING
    assert len(puts(fleet)) == 1


# -- isolation: one failure never stops the others -----------------------------------------------------------
TWO_PROJECTS = f"""
schedules:
  - name: in-a
    action: restart
    cron: "0 * * * *"
    project_id: {OTHER_PROJECT}
    instances: {{tags: {{role: web}}}}
  - name: in-b
    action: restart
    cron: "0 * * * *"
    instances: {{tags: {{role: web}}}}
"""


@pytest.mark.parametrize("kind", ["http_error", "dcs_error", "reset_before", "slow", "throttle"])
def test_one_failing_project_does_not_stop_the_other(fleet, write_schedules, tick, kind):
    for n in (1, 2):
        fleet.add_instance(OTHER_PROJECT, instance_id=f"a-{n}", name=f"a-{n}", tags={"role": "web"})
    params = {"delay": 30.0} if kind == "slow" else {}
    fleet.inject(Fault(endpoint="status", kind=kind, times=None, instance_ids=["a-1", "a-2"], **params))
    fleet.inject(Fault(endpoint="show", kind="http_error", times=None, instance_ids=["a-1", "a-2"]))
    write_schedules(TWO_PROJECTS)
    summary = tick(T0)
    in_a, in_b = results_by_instance(summary, "in-a"), results_by_instance(summary, "in-b")
    assert {r["result"] for r in in_b.values()} == {"success"} and len(in_b) == 4
    # Every read-back fails here, so nothing proves a throttled call did not run: unknown, never re-sent. A
    # whole-request refusal (dcs_error, DCS.4026: busy) executed nothing: split, and each held for the next tick.
    assert {r["result"] for r in in_a.values()} <= ({"skipped"} if kind == "dcs_error" else {"failed", "unknown"})
    assert len(in_a) == 2
    refused_halves = ["a-1", "a-2"] if kind == "dcs_error" else []
    assert sorted(acted_ids(fleet)) == sorted(["a-1", "a-2", "i-1", "i-2", "i-3", "i-4"] + refused_halves)


def test_a_project_that_cannot_be_listed_does_not_stop_the_other(fleet, write_schedules, tick):
    write_schedules(TWO_PROJECTS.replace(OTHER_PROJECT, "00000000000000000000000000000bad"))
    summary = tick(T0)
    by_name = {s["name"]: s for s in summary["schedules"]}
    assert by_name["in-a"]["decision"] == "error" and "HTTP 403" in by_name["in-a"]["reason"]
    assert {r["result"] for r in by_name["in-b"]["instances"]} == {"success"}
    assert acted_ids(fleet) == ["i-1", "i-2", "i-3", "i-4"]


@pytest.mark.parametrize("kind", ["http_error", "dcs_error", "reset_before", "reset_after", "slow",
                                  "failed_entries", "malformed", "throttle"])
def test_one_failing_chunk_does_not_stop_the_next(emulator, write_schedules, tick, monkeypatch, kind):
    for n in range(1, 7):
        emulator.add_instance(PROJECT, instance_id=f"i-{n}", name=f"web-{n}", tags={"role": "web"})
    monkeypatch.setenv("BATCH_SIZE", "2")
    params = {"delay": SLOW} if kind == "slow" else {}
    emulator.inject(Fault(endpoint="status", kind=kind, times=None, instance_ids=["i-3", "i-4"], **params))
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    split = [["i-3"], ["i-4"]] if kind == "dcs_error" else []  # refused as a whole (busy): each half on its own
    assert [r["body"]["instances"] for r in puts(emulator)] == [["i-1", "i-2"], ["i-3", "i-4"], *split,
                                                                 ["i-5", "i-6"]]
    assert [r["fault"] for r in puts(emulator)] == [None, kind, *[kind] * len(split), None]
    results = results_by_instance(summary)
    for iid in ("i-1", "i-2", "i-5", "i-6"):
        assert results[iid]["result"] == "success"
    executed = kind in ("reset_after", "slow")
    for iid in ("i-3", "i-4"):
        assert results[iid]["result"] == ("success" if executed else results[iid]["result"])
        assert results[iid]["result"] in (("success",) if executed else ("failed", "unknown", "skipped"))
        assert (results[iid]["result"] == "skipped") is (kind in ("throttle", "dcs_error"))
    tick(T0 + timedelta(minutes=5))
    # Only a chunk that executed nothing is sent again (once per tick, within the deadline): a throttled one,
    # or one DCS refused as busy (split again: three calls).
    assert len(puts(emulator)) == {"throttle": 4, "dcs_error": 8}.get(kind, 3)


def test_one_failing_schedule_does_not_stop_the_others(fleet, write_schedules, tick):
    fleet.add_instance(PROJECT, instance_id="i-db", name="db-1", tags={"role": "db"})
    write_schedules(WEB_HOURLY + """
  - name: too-many
    action: soft_restart
    cron: "0 * * * *"
    max_instances: 1
    instances: {tags: {role: web}}
  - name: refused
    action: flush
    allow_flush: true
    cron: "0 * * * *"
    instances: {ids: [i-db, i-missing]}
""", "good.yaml")
    write_schedules("schedules: [{name: broken, action: restart, cron: '61 * * * *', instances: {ids: [i-1]}}]",
                    "bad.yaml")
    fleet.inject(Fault(endpoint="status", kind="dcs_error", times=None, instance_ids=["i-db"],
                       error_code="DCS.4007", error_msg="Instance type is not supported."))
    summary = tick(T0)
    by_name = {s["name"]: s for s in summary["schedules"]}
    assert by_name["too-many"]["decision"] == "error" and "max_instances" in by_name["too-many"]["reason"]
    refused = {i["instance_id"]: i for i in by_name["refused"]["instances"]}
    assert refused["i-db"]["result"] == "failed" and "DCS.4007" in refused["i-db"]["reason"]
    assert "not found" in refused["i-missing"]["reason"]
    assert any(p["schedule"] == "broken" for p in summary["problems"])
    assert {i["result"] for i in by_name["web"]["instances"]} == {"success"}
    assert status_calls(fleet, "restart") == [{"instances": ["i-1", "i-2", "i-3", "i-4"], "action": "restart"}]
    assert status_calls(fleet, "soft_restart") == []


def test_faults_on_every_endpoint_at_once_never_duplicate_nor_lose(fleet, write_schedules, tick, monkeypatch):
    """Random faults of every kind on every endpoint over 3 hours of ticks: each (occurrence, instance) sent at
    most once, and every one either sent or reported (bench/reliability.py does this at scale)."""
    monkeypatch.setenv("BATCH_SIZE", "2")
    for kind, params in [("http_error", {}), ("throttle", {}), ("slow", {"delay": SLOW}), ("reset_before", {}),
                         ("reset_after", {}), ("malformed", {}), ("dcs_error", {})]:
        fleet.inject(Fault(endpoint="any", kind=kind, times=None, probability=0.06, **params))
    fleet.inject(Fault(endpoint="status", kind="failed_entries", times=None, probability=0.06))
    fleet.transition_delay = 0.0
    write_schedules(WEB_HOURLY.replace('"0 * * * *"', '"*/15 * * * *"'))
    sent: list[tuple[datetime, str]] = []
    reported: set[tuple[str, str]] = set()
    when = T0
    while when < T0 + timedelta(hours=3):
        before = len(puts(fleet))
        summary = tick(when)
        occurrence = when.replace(minute=when.minute // 15 * 15)
        # Throttled (429) or refused as a whole (a 4xx: issue 11, its halves are sent): not executed.
        sent += [(occurrence, iid) for r in puts(fleet)[before:] if not 400 <= (r.get("status") or 200) < 500
                 for iid in r["body"]["instances"]]
        for sched in summary["schedules"]:
            reported |= {(i["occurrence"], i["instance_id"]) for i in sched["instances"]
                         if not (i["result"] == "skipped" and "deferred" in i["reason"])}
            reported |= {(o["occurrence"], iid) for o in sched["occurrences"] for iid in ("i-1", "i-2", "i-3", "i-4")}
        when += timedelta(minutes=5)
    assert len(sent) == len(set(sent)), "an (occurrence, instance) was sent twice"
    intended = {(T0 + timedelta(minutes=15 * k), f"i-{n}") for k in range(12) for n in range(1, 5)}
    sent_keys = {(occ.strftime("%Y-%m-%dT%H:%M:%SZ"), iid) for occ, iid in sent}
    lost = {(occ.strftime("%Y-%m-%dT%H:%M:%SZ"), iid) for occ, iid in intended} - sent_keys - reported
    assert not lost


def test_reliability_bench_runs_clean():
    """bench/reliability.py with a few ticks and a high fault rate: no duplicate, nothing lost."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(root / "bench" / "reliability.py"), "--ticks", "48",
                           "--fault-rate", "0.3", "--seed", "5", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads(proc.stdout.split("RESULT reliability | verdict")[0])
    assert figures["faults_injected"] > 10 and figures["actions_sent"] > 50
    assert figures["duplicates_sent"] == figures["actions_lost"] == figures["unexpected_sent"] == 0
    assert "PASS" in proc.stdout
