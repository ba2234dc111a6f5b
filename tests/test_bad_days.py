"""Issue 10: exactly once when time, deliveries and replies misbehave.

Each test reproduces an operator's bad day end to end (handler.handler, the real SDK over HTTP to the emulator,
both ledgers where the ledger matters): a tick dated in the future, a delivery that overlaps a throttled call,
a process killed between claim and call, a lost reply to a claim, a 429 or an SSL error after the request took
effect, a ledger that dies after calls were sent, a late window event, a throttled manual run, a ledger that is
down while HTTP routes are called. Each failed on the code before the fix.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta, timezone

import pytest
from conftest import API_TOKEN, HOURLY, PROJECT, acted_ids, results_by_instance, status_calls, t, use_ledger
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)

import handler
from dcs_emulator import Emulator, Fault
from dcs_maintenance import invocation
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.ledger.base import LedgerError, claim_key
from dcs_maintenance.tools.local import LocalContext, apig_event, timer_event

UTC = timezone.utc
TOPIC = f"urn:smn:cn-north-4:{PROJECT}:maintenance-alerts"


NIGHTS = """
schedules:
  - name: nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {ids: [i-a]}
"""


@pytest.fixture(params=["sqlite", "redis"])
def ledger_url(request, tmp_path, monkeypatch, function_env) -> str:
    return use_ledger(request.param, request, tmp_path, monkeypatch)


@pytest.fixture
def ledger(ledger_url):
    """A second connection to the function's ledger, as another function instance would open."""
    with open_ledger(ledger_url) as led:
        yield led


@pytest.fixture
def fleet(emulator):
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    emulator.add_instance(PROJECT, instance_id="i-b", name="app-b", tags={"env": "staging"})
    return emulator


def invoke(when, request_id: str = "", user_event=""):
    return handler.handler(timer_event(when, user_event), LocalContext(request_id=request_id or None))


def sent(summary: dict) -> list[tuple[str, str]]:
    return sorted((e["instance_id"], e["result"]) for s in summary["schedules"] for e in s["instances"]
                  if e["result"] in ("success", "failed", "unknown"))


def claims(ledger, schedule: str, when: str, action: str = "restart", ids=("i-a", "i-b")) -> dict:
    """The claims of an occurrence, read as of that day (claims expire on the ledger's clock: the simulated one)."""
    keys = [claim_key(schedule, t(when), iid, action) for iid in ids]
    return ledger.get_claims(keys, now=t(when) + timedelta(hours=1))


def in_background(fn, *args):
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", fn(*args)))
    thread.start()
    return thread, box


# -- 1. a tick dated in the future ------------------------------------------------------------------------------
@pytest.mark.parametrize("ahead", ["2026-06-02T22:00:00Z", "2326-06-01T10:00:00Z"], ids=["36-hours", "centuries"])
def test_a_tick_dated_in_the_future_is_refused_and_later_ticks_still_act(fleet, write_schedules, at_time, ledger,
                                                                          tick, ahead):
    write_schedules(HOURLY)
    at_time(t("2026-06-01T10:00:00Z"))
    future = invoke(t(ahead))
    assert future["ok"] is False and status_calls(fleet) == []
    assert "ahead of the wall clock" in future["errors"][0] and "nothing sent" in future["errors"][0]
    assert ledger.watermarks() == {}
    assert sent(tick(t("2026-06-01T10:00:00Z"))) == [("i-a", "success"), ("i-b", "success")]
    assert sent(tick(t("2026-06-01T11:00:00Z"))) == [("i-a", "success"), ("i-b", "success")]
    assert len(status_calls(fleet)) == 2


def test_a_future_window_event_stops_nothing_and_moves_no_window_state(emulator, write_schedules, at_time, ledger,
                                                                       tick):
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(NIGHTS)
    at_time(t("2026-06-01T10:00:00Z"))
    assert invoke(t("2026-06-01T20:00:00Z"))["ok"] is False  # 10 hours ahead
    assert status_calls(emulator) == [] and ledger.window_states("nights") == {} and ledger.watermarks() == {}
    tick(t("2026-06-01T20:00:00Z"))
    tick(t("2026-06-02T07:00:00Z"))
    assert [c["action"] for c in status_calls(emulator)] == ["stop", "start"]


def test_a_tick_a_few_seconds_ahead_of_the_wall_clock_still_acts(fleet, write_schedules, at_time, function_env):
    write_schedules(HOURLY)
    at_time(t("2026-06-01T09:59:30Z"))  # the function's clock 30 s behind the timer's
    assert sent(invoke(t("2026-06-01T10:00:00Z"))) == [("i-a", "success"), ("i-b", "success")]


def test_a_future_dry_run_previews_without_refusal(fleet, write_schedules, at_time, function_env):
    write_schedules(HOURLY)
    at_time(t("2026-06-01T10:00:00Z"))
    preview = invoke(t("2026-06-02T22:00:00Z"), user_event='{"dry_run": true}')
    assert preview["ok"] and preview["errors"] == [] and status_calls(fleet) == []
    assert {e["result"] for e in results_by_instance(preview).values()} == {"skipped"}


# -- 2. an occurrence claimed by an invocation still in flight is pending ---------------------------------------
def test_an_overlapping_delivery_of_a_throttled_tick_leaves_the_occurrence_pending(fleet, write_schedules, tick,
                                                                                     at_time, ledger):
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    fleet.inject(Fault(endpoint="status", kind="throttle"))
    held = fleet.hold("status")  # the 429 answer waits while the second delivery runs
    at_time(t("2026-06-01T10:00:05Z"))
    first, box = in_background(invoke, t("2026-06-01T10:00:00Z"), "req-first")
    assert held.wait_reached()
    second = invoke(t("2026-06-01T10:00:00Z"), "req-second")
    held.release()
    first.join(30)
    assert sent(second) == []
    for entry in results_by_instance(second).values():
        assert entry["result"] == "skipped" and "in flight" in entry["reason"] and "req-first" in entry["reason"]
    # the first delivery was throttled before DCS acted: its claims are free again
    assert all(e["result"] == "skipped" for e in results_by_instance(box["result"]).values())
    assert claims(ledger, "hourly", "2026-06-01T10:00:00Z") == {}
    later = tick(t("2026-06-01T10:05:00Z"))
    assert sent(later) == [("i-a", "success"), ("i-b", "success")]
    assert len(status_calls(fleet)) == 2  # the throttled one, then the real one
    assert sent(tick(t("2026-06-01T10:10:00Z"))) == [] and len(status_calls(fleet)) == 2


def test_a_window_never_settles_on_a_claim_that_has_no_outcome(emulator, write_schedules, tick, at_time, ledger):
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(NIGHTS)
    tick(t("2026-06-01T19:55:00Z"))
    emulator.inject(Fault(endpoint="status", kind="throttle"))
    held = emulator.hold("status")
    at_time(t("2026-06-01T20:00:05Z"))
    first, _ = in_background(invoke, t("2026-06-01T20:00:00Z"), "req-first")
    assert held.wait_reached()
    second = invoke(t("2026-06-01T20:00:00Z"), "req-second")
    held.release()
    first.join(30)
    assert "in flight" in results_by_instance(second)["i-a"]["reason"]
    assert ledger.get_meta("settled:nights") != "2026-06-01T20:00:00Z"  # still the morning's start
    tick(t("2026-06-01T20:05:00Z"))
    assert [c["action"] for c in status_calls(emulator)] == ["stop", "stop"]  # the throttled one, then the real one
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "CLOSED"


# -- 3. a claim that never got an outcome is unknown, loudly ---------------------------------------------------
@pytest.mark.parametrize("first_tick", [True, False], ids=["schedules-first-tick", "later-tick"])
def test_a_process_killed_between_claim_and_call_is_reported_unknown(fleet, write_schedules, tick, ledger,
                                                                     monkeypatch, function_env, first_tick):
    monkeypatch.setenv("NOTIFY_SMN_TOPIC_URN", TOPIC)
    write_schedules(HOURLY)
    if not first_tick:
        tick(t("2026-06-01T09:55:00Z"))
    from dcs_maintenance.gateway import DcsGateway

    def killed(self, action, ids):
        raise SystemExit("killed between the claim and the call")

    with monkeypatch.context() as patch, pytest.raises(SystemExit):
        patch.setattr(DcsGateway, "change_status", killed)
        tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-killed"))
    later = tick(t("2026-06-01T10:05:00Z"))
    assert later["ok"] is False and status_calls(fleet) == []
    for iid in ("i-a", "i-b"):
        entry = results_by_instance(later)[iid]
        assert entry["result"] == "unknown" and entry["occurrence"] == "2026-06-01T10:00:00Z"
        assert "req-killed" in entry["reason"] and "no outcome" in entry["reason"]
        assert "status now RUNNING" in entry["reason"]  # the evidence: the instance as listed now
    assert later["notification"]["sent"] is True and "req-killed" in json.dumps(fleet.smn_messages)
    assert {c.outcome for c in claims(ledger, "hourly", "2026-06-01T10:00:00Z").values()} == {"unknown"}
    assert sent(tick(t("2026-06-01T10:10:00Z"))) == [] and status_calls(fleet) == []


def _lose_claim_replies(monkeypatch, release_fails: bool) -> None:
    """The ledger takes the claims but its reply is lost (the caller sees an error), as a Redis connection
    dropped after SET NX would; with release_fails the ledger stays unreachable for the release too."""
    from dcs_maintenance.settings import load_settings

    ledger = invocation.ledger_for(load_settings())
    original = ledger.claim_many

    def claim_many(keys, holder, *args, **kwargs):
        original(keys, holder, *args, **kwargs)
        raise LedgerError("connection lost while reading the reply")

    def release_many(keys, holder):
        raise LedgerError("connection refused")

    monkeypatch.setattr(ledger, "claim_many", claim_many)
    if release_fails:
        monkeypatch.setattr(ledger, "release_many", release_many)


def test_a_lost_reply_to_a_claim_gives_the_claims_back(fleet, write_schedules, tick, ledger, monkeypatch):
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    with monkeypatch.context() as patch:
        _lose_claim_replies(patch, release_fails=False)
        lost = tick(t("2026-06-01T10:00:00Z"))
    assert status_calls(fleet) == [] and claims(ledger, "hourly", "2026-06-01T10:00:00Z") == {}
    assert all("not sent" in e["reason"] for e in results_by_instance(lost).values())
    assert sent(tick(t("2026-06-01T10:05:00Z"))) == [("i-a", "success"), ("i-b", "success")]
    assert len(status_calls(fleet)) == 1


def test_a_lost_reply_to_a_claim_that_cannot_be_given_back_is_unknown_later(fleet, write_schedules, tick, ledger,
                                                                           monkeypatch):
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    with monkeypatch.context() as patch:
        _lose_claim_replies(patch, release_fails=True)
        tick(t("2026-06-01T10:00:00Z"))
    later = tick(t("2026-06-01T10:05:00Z"))
    assert later["ok"] is False and status_calls(fleet) == []
    assert {e["result"] for e in results_by_instance(later).values()} == {"unknown"}


# -- 4. no reply means "not executed" without evidence ---------------------------------------------------------
def test_a_429_after_the_request_took_effect_is_read_back_and_never_resent(fleet, write_schedules, tick, ledger):
    fleet.transition_delay = 60.0  # still RESTARTING when read back
    write_schedules(HOURLY)
    fleet.inject(Fault(endpoint="status", kind="throttle_after"))
    first = tick(t("2026-06-01T10:00:00Z"))
    results = results_by_instance(first)
    assert {results[i]["result"] for i in ("i-a", "i-b")} == {"success"}
    assert "429" in results["i-a"]["reason"] and "RESTARTING" in results["i-a"]["reason"]
    fleet.transition_delay = 0.0
    for iid in ("i-a", "i-b"):
        fleet.set_status(PROJECT, iid, "RUNNING")
    assert sent(tick(t("2026-06-01T10:05:00Z"))) == []
    assert len(status_calls(fleet)) == 1
    assert fleet.get_instance(PROJECT, "i-a")["counters"]["restarts"] == 1


def test_an_ssl_error_after_the_request_was_sent_is_read_back_and_never_resent(write_schedules, tick, monkeypatch,
                                                                             function_env, ledger):
    from conftest import AK, SK

    with Emulator(ak=AK, sk=SK, projects=[PROJECT], transition_delay=60.0, tls=True) as tls:
        tls.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
        monkeypatch.setenv("DCS_ENDPOINT", tls.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_file)
        write_schedules(HOURLY)
        tls.inject(Fault(endpoint="status", kind="corrupt_after"))
        first = tick(t("2026-06-01T10:00:00Z"))
        entry = results_by_instance(first)["i-a"]
        assert entry["result"] == "success" and "SslHandShakeException" in entry["reason"]
        tls.set_status(PROJECT, "i-a", "RUNNING")
        assert sent(tick(t("2026-06-01T10:05:00Z"))) == []
        assert len(tls.calls("restart")) == 1 and tls.get_instance(PROJECT, "i-a")["counters"]["restarts"] == 1


def test_a_refused_connection_releases_without_a_read_and_the_next_tick_sends(fleet, write_schedules, tick,
                                                                             monkeypatch, ledger):
    from dcs_maintenance.settings import load_settings

    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    own = invocation.ledger_for(load_settings())
    original = own.claim_many

    def claim_then_refuse(keys, holder, *args, **kwargs):
        won = original(keys, holder, *args, **kwargs)
        fleet.refuse_connections()  # the status call's connection is refused: not a byte of it was written
        return won

    with monkeypatch.context() as patch:
        patch.setattr(own, "claim_many", claim_then_refuse)
        refused = tick(t("2026-06-01T10:00:00Z"))
    fleet.accept_connections()
    assert status_calls(fleet) == []
    # No read-back was attempted (only the reads before any restart: backups in progress, the AOF setting).
    assert [r["endpoint"] for r in fleet.requests if r["endpoint"] not in ("backups", "configs")] == ["list"]
    assert all("not sent" in e["reason"] for e in results_by_instance(refused).values())
    assert sent(tick(t("2026-06-01T10:05:00Z"))) == [("i-a", "success"), ("i-b", "success")]


# -- 5. a ledger failure after calls were sent never hides them ------------------------------------------------
def test_a_ledger_that_dies_during_a_status_call_hides_no_result(fleet, write_schedules, tick, monkeypatch,
                                                                 request, function_env):
    server = request.getfixturevalue("redis_server_factory")()
    monkeypatch.setenv("LEDGER_URL", server.url)
    monkeypatch.setenv("NOTIFY_SMN_TOPIC_URN", TOPIC)
    write_schedules(HOURLY)
    held = fleet.hold("status")  # processed: both restarts happen; the answer waits
    at = t("2026-06-01T10:00:00Z")
    first, box = in_background(tick, at)
    assert held.wait_reached()
    server.stop()
    held.release()
    first.join(30)
    summary = box["result"]
    assert sent(summary) == [("i-a", "success"), ("i-b", "success")]
    assert summary["ok"] is False and any("ledger" in e for e in summary["errors"])
    assert "i-a" in json.dumps(fleet.smn_messages) and "i-b" in json.dumps(fleet.smn_messages)


def test_a_ledger_that_dies_after_a_lost_claim_keeps_the_calls_already_sent(fleet, write_schedules, tick,
                                                                           monkeypatch, request, function_env):
    """Chunk 1 (i-a) is sent; chunk 2 (i-b) finds its claim held by another invocation, and the ledger dies before
    that claim can be read. Before the fix the read's error escaped the tick, and the summary became "ledger
    unavailable, nothing sent": i-a's restart, which happened, vanished from the report and the notification."""
    server = request.getfixturevalue("redis_server_factory")()
    monkeypatch.setenv("LEDGER_URL", server.url)
    monkeypatch.setenv("NOTIFY_SMN_TOPIC_URN", TOPIC)
    monkeypatch.setenv("BATCH_SIZE", "1")
    write_schedules(HOURLY)
    at = t("2026-06-01T10:00:00Z")
    contested = claim_key("hourly", at, "i-b", "restart")
    from dcs_maintenance.settings import load_settings

    led = invocation.ledger_for(load_settings())
    claim_many = led.claim_many

    def then_die(keys, holder, **kw):
        if contested in keys:  # another invocation claims i-b just before this one does
            with open_ledger(server.url) as other:
                assert other.claim_many([contested], "req-other", now=at) == [True]
        won = claim_many(keys, holder, **kw)
        if contested in keys:
            server.stop()  # the real Redis goes away between the claim and the read of the lost claim
        return won

    monkeypatch.setattr(led, "claim_many", then_die)
    summary = tick(at)
    assert [c["instances"] for c in status_calls(fleet)] == [["i-a"]]
    entries = results_by_instance(summary)
    assert entries["i-a"]["result"] == "success"
    assert entries["i-b"]["result"] == "skipped" and "could not be read" in entries["i-b"]["reason"]
    assert summary["ok"] is False and any("ledger" in e for e in summary["errors"])
    assert "i-a" in json.dumps(fleet.smn_messages)


# -- 6. a late window event acts on the present --------------------------------------------------------------
def test_a_late_window_event_applies_the_state_in_force_now(emulator, write_schedules, tick, at_time, ledger):
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(NIGHTS)
    tick(t("2026-06-01T19:55:00Z"))
    late = tick(t("2026-06-01T20:00:00Z"), lag=timedelta(hours=11, minutes=30))  # delivered at 07:30 next day
    assert status_calls(emulator) == [] and emulator.get_instance(PROJECT, "i-a")["status"] == "RUNNING"
    assert late["ok"]
    tick(t("2026-06-02T20:00:00Z"))
    assert [c["action"] for c in status_calls(emulator)] == ["stop"]


# -- 7. a throttled manual run says the truth ----------------------------------------------------------------
def test_a_throttled_manual_run_answers_429_and_leaves_nothing_claimed(fleet, write_schedules, http, ledger):
    write_schedules(HOURLY)
    fleet.inject(Fault(endpoint="status", kind="throttle", retry_after=7))
    response = http("POST", "/schedules/hourly/run")
    body = json.loads(response["body"])
    assert response["statusCode"] == 429 and body["error_code"] == "DCSM.4290"  # throttled; 503 DCSM.5033 is refused
    assert "not sent" in body["error_msg"]
    assert "retry" in body["error_msg"].lower() and "next tick" not in json.dumps(body)
    if "Retry-After" in response["headers"]:
        assert response["headers"]["Retry-After"].isdigit()
    again = http("POST", "/schedules/hourly/run")
    assert again["statusCode"] == 200 and sent(json.loads(again["body"])) == [("i-a", "success"), ("i-b", "success")]
    assert len(status_calls(fleet)) == 2


# -- 8. HTTP routes answer 503 when the ledger is down -------------------------------------------------------
@pytest.mark.parametrize("method, path, body", [
    ("GET", "/plan", None), ("POST", "/schedules/hourly/run", None), ("GET", "/history", None),
    ("PUT", "/instances/status", {"action": "restart", "instances": ["i-a", "i-b"]}),
    ("PUT", "/instances/status", {"action": "restart", "instances": ["i-a"], "dry_run": True}),
])
def test_routes_answer_503_when_the_ledger_is_down(fleet, write_schedules, monkeypatch, request, function_env,
                                                   method, path, body):
    """PUT /instances/status answered 200 with every instance `failed` ("not sent: the ledger is unavailable")
    before: nothing was sent, and the service was unavailable, as on every other route that reads the ledger."""
    server = request.getfixturevalue("redis_server_factory")()
    monkeypatch.setenv("LEDGER_URL", server.url)
    write_schedules(HOURLY)
    server.stop()
    event = apig_event(method, path, body, {"Authorization": f"Bearer {API_TOKEN}"})
    response = handler.handler(event, LocalContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 503 and body["error_code"] == "DCSM.5031", body
    assert acted_ids(fleet) == []


# -- the lateness boundary, end to end (issue 16) -------------------------------------------------------------------
def test_an_occurrence_exactly_starting_deadline_old_is_still_sent(fleet, write_schedules, function_env):
    """Ticks at 03:00 and 03:05 dropped: the 03:10 tick, with the wall clock exactly at 03:10, sends the 03:00
    restart whose deadline is 10 minutes (only an occurrence older than the deadline is missed)."""
    from dcs_maintenance import clock

    write_schedules(HOURLY.replace('"0 * * * *"', '"0 3 * * *"'))
    clock.set_clock(lambda: t("2026-06-01T02:55:00Z"))
    invoke(t("2026-06-01T02:55:00Z"))
    clock.set_clock(lambda: t("2026-06-01T03:10:00Z"))  # frozen: the boundary itself, not a millisecond after
    summary = invoke(t("2026-06-01T03:10:00Z"))
    assert sent(summary) == [("i-a", "success"), ("i-b", "success")], summary
