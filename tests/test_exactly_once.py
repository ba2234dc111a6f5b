"""SPEC 3, end to end: each (schedule, occurrence, instance) is acted on at most once, at the right moment.

Every test goes through handler.handler with TIMER events, the real SDK and the emulator; "one call" is read from
the emulator's request log, never only from the summary. Where the ledger matters, both backends run: an SQLite
file and a real redis-server (tests/redis_server.py), each test on its own key prefix.
"""

from __future__ import annotations

import threading
from datetime import timedelta, timezone

import pytest
from conftest import HOURLY, PROJECT, acted_ids, results_by_instance, status_calls, t, use_ledger
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)

from dcs_emulator import Fault
from dcs_maintenance import invocation
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.ledger.base import claim_key
from dcs_maintenance.tools.local import LocalContext, timer_event

UTC = timezone.utc


@pytest.fixture(params=["sqlite", "redis"])
def ledger_url(request, tmp_path, monkeypatch, function_env) -> str:
    """LEDGER_URL for this test: a fresh SQLite file, or a fresh key prefix on the session's redis-server."""
    return use_ledger(request.param, request, tmp_path, monkeypatch)


@pytest.fixture
def ledger(ledger_url):
    """A second connection to the function's ledger, as an operator (or another function instance) would open."""
    with open_ledger(ledger_url) as led:
        yield led


@pytest.fixture
def fleet(emulator):
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    emulator.add_instance(PROJECT, instance_id="i-b", name="app-b", tags={"env": "staging"})
    return emulator




def sent(summary: dict) -> list[tuple[str, str]]:
    """(instance, result) of the entries whose action this invocation sent to the status call (not the reports of
    another invocation's claim, which carry `handled_by`)."""
    return [(e["instance_id"], e["result"]) for s in summary["schedules"] for e in s["instances"]
            if e["result"] in ("success", "failed", "unknown") and not e.get("handled_by")]


def entries(summary: dict, result: str) -> list[dict]:
    return [e for s in summary["schedules"] for e in s["instances"] if e["result"] == result]


# -- duplicates and overlaps ----------------------------------------------------------------------------------
def test_the_same_timer_event_twice_sends_one_call(fleet, write_schedules, tick, ledger_url, ledger):
    write_schedules(HOURLY)
    first = tick(t("2026-06-01T10:00:00Z"))
    second = tick(t("2026-06-01T10:00:00Z"))
    third = tick(t("2026-06-01T10:00:00Z"), lag=timedelta(minutes=2))
    assert status_calls(fleet) == [{"instances": ["i-a", "i-b"], "action": "restart"}]
    assert sorted(sent(first)) == [("i-a", "success"), ("i-b", "success")]
    assert sent(second) == sent(third) == []
    keys = [claim_key("hourly", t("2026-06-01T10:00:00Z"), iid, "restart") for iid in ("i-a", "i-b")]
    assert {k: c.outcome for k, c in ledger.get_claims(keys).items()} == dict.fromkeys(keys, "success")


def test_a_duplicate_that_gets_past_the_watermark_is_stopped_by_the_claim(fleet, write_schedules, tick, ledger):
    # i-b is transitional: the watermark is held before the occurrence so a later tick looks again; the duplicate
    # and that later tick both re-plan i-a, whose claim stops it.
    write_schedules(HOURLY)
    fleet.set_status(PROJECT, "i-b", "UPGRADING")
    tick(t("2026-06-01T10:00:00Z"))
    again = tick(t("2026-06-01T10:00:00Z"))
    assert acted_ids(fleet) == ["i-a"]
    assert "already handled" in results_by_instance(again)["i-a"]["reason"]
    fleet.set_status(PROJECT, "i-b", "RUNNING")
    later = tick(t("2026-06-01T10:05:00Z"))
    assert acted_ids(fleet) == ["i-a", "i-b"]
    assert results_by_instance(later)["i-a"]["result"] == "skipped"
    assert results_by_instance(later)["i-b"]["result"] == "success"
    tick(t("2026-06-01T10:10:00Z"))
    assert acted_ids(fleet) == ["i-a", "i-b"]


class _Overlap:
    """Two invocations in two threads, each with its own ledger connection (like two function instances), held
    at a barrier right before claiming: both have planned the same action; exactly one may send it."""

    def __init__(self, monkeypatch, url: str, parties: int = 2) -> None:
        self.url = url
        self.barrier = threading.Barrier(parties, timeout=20)
        self.local = threading.local()
        self.opened: list = []
        self.reached = 0
        monkeypatch.setattr(invocation, "ledger_for", self._ledger_for)

    def _ledger_for(self, settings):
        led = getattr(self.local, "ledger", None)
        if led is None:
            led = self.local.ledger = open_ledger(self.url)
            self.opened.append(led)
            original, overlap = led.claim_many, self

            def claim_many(keys, holder, *args, **kwargs):
                overlap.reached += 1
                overlap.barrier.wait()
                return original(keys, holder, *args, **kwargs)

            led.claim_many = claim_many
        return led

    def run(self, events: list[dict]) -> list[dict]:
        import handler

        results: list = [None] * len(events)

        def one(i: int) -> None:
            results[i] = handler.handler(events[i], LocalContext(request_id=f"overlap-{i}"))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(events))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        for led in self.opened:
            led.close()
        return results


@pytest.mark.parametrize("times", [
    ("2026-06-01T10:00:00Z", "2026-06-01T10:00:00Z"),  # the same tick delivered twice, at once
    ("2026-06-01T10:00:00Z", "2026-06-01T10:05:00Z"),  # a late tick and the next one, both covering 10:00
], ids=["same-tick", "different-ticks"])
def test_overlapping_invocations_send_one_call(fleet, write_schedules, tick, ledger_url, monkeypatch, at_time,
                                               times):
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))  # the previous tick: watermark 09:55
    overlap = _Overlap(monkeypatch, ledger_url)
    at_time(t("2026-06-01T10:05:30Z"))
    first, second = overlap.run([timer_event(t(times[0])), timer_event(t(times[1]))])
    assert overlap.reached == 2  # both really got as far as claiming
    assert status_calls(fleet) == [{"instances": ["i-a", "i-b"], "action": "restart"}]
    winner, loser = (first, second) if sent(first) else (second, first)
    assert sorted(sent(winner)) == [("i-a", "success"), ("i-b", "success")]
    assert sent(loser) == []
    holder = winner["request_id"]
    assert holder.startswith("overlap-")
    for entry in entries(loser, "skipped"):
        # Read before or after the winner recorded its outcome: in flight (looked at again next tick), or done.
        assert (f"already handled by request {holder}" in entry["reason"]
                or f"claimed by request {holder}" in entry["reason"] and "in flight" in entry["reason"])
        assert entry["occurrence"].endswith("10:00:00Z") and entry["handled_by"] == holder
    assert first["ok"] and second["ok"]


def test_claims_name_the_invocation_that_took_them(fleet, write_schedules, tick, ledger):
    write_schedules(HOURLY)
    tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-the-first"))
    claim = ledger.get_claims([claim_key("hourly", t("2026-06-01T10:00:00Z"), "i-a", "restart")])
    assert [c.holder for c in claim.values()] == ["req-the-first"]


# -- crashes and unknown outcomes ------------------------------------------------------------------------------
@pytest.mark.parametrize("after, result, words", [
    ("2026-06-01T10:00:00Z", "skipped", "in flight"),  # moments later: its invocation may still be running
    ("2026-06-01T10:05:00Z", "unknown", "no outcome was ever recorded"),  # older than one call budget: it died
], ids=["retried", "next-tick"])
def test_a_crash_between_the_call_and_the_record_never_resends(fleet, write_schedules, tick, ledger, monkeypatch,
                                                               after, result, words):
    """The process dies after the status call was sent, before its outcome was recorded (claim left `claimed`):
    never re-sent, and never silently counted as done: pending while it may be in flight, then unknown."""
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))

    def die(self, outcomes):
        raise SystemExit("killed between the call and the record")

    with monkeypatch.context() as patch, pytest.raises(SystemExit):
        patch.setattr(type(ledger), "record_many", die)
        tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-that-died"))
    assert len(status_calls(fleet)) == 1
    keys = [claim_key("hourly", t("2026-06-01T10:00:00Z"), iid, "restart") for iid in ("i-a", "i-b")]
    assert {c.outcome for c in ledger.get_claims(keys).values()} == {"claimed"}
    # The watermark was never advanced: the platform's retry of the event sees the occurrence again (so would the
    # next tick, had the retry not come), and the claims stop it.
    retry = tick(t(after))
    assert sent(retry) == [] and retry["counts"][result] == 2 and retry["ok"] is (result == "skipped")
    for iid in ("i-a", "i-b"):
        entry = results_by_instance(retry)[iid]
        assert entry["result"] == result and entry["occurrence"] == "2026-06-01T10:00:00Z"
        assert "req-that-died" in entry["reason"] and words in entry["reason"]
    later = [tick(t(when)) for when in ("2026-06-01T10:05:00Z", "2026-06-01T10:10:00Z", "2026-06-01T10:15:00Z")]
    assert [sent(s) for s in later] == [[], [], []]
    assert len(status_calls(fleet)) == 1
    reported = {(e["instance_id"], e["result"]) for s in [retry, *later] for sched in s["schedules"]
                for e in sched["instances"]}
    assert {("i-a", "unknown"), ("i-b", "unknown")} <= reported  # loudly, by the tick that found it dead
    assert {c.outcome for c in ledger.get_claims(keys).values()} == {"unknown"}


def test_a_claim_left_by_a_dead_invocation_blocks_the_occurrence(fleet, write_schedules, tick, ledger):
    write_schedules(HOURLY)
    key = claim_key("hourly", t("2026-06-01T10:00:00Z"), "i-a", "restart")
    assert ledger.claim_many([key], "req-dead", now=t("2026-06-01T09:59:00Z")) == [True]
    summary = tick(t("2026-06-01T10:00:00Z"))
    assert acted_ids(fleet) == ["i-b"]
    entry = results_by_instance(summary)["i-a"]
    assert entry["result"] == "unknown" and summary["ok"] is False
    assert "req-dead" in entry["reason"] and "no outcome was ever recorded" in entry["reason"]


@pytest.mark.parametrize("kind, params, delay, expected", [
    ("reset_after", {}, 0.0, "unknown"),  # read back RUNNING: cannot tell
    ("reset_after", {}, 60.0, "success"),  # read back RESTARTING: it was accepted
    ("slow", {"delay": 2.0}, 0.0, "unknown"),  # a read timeout (DCS_READ_TIMEOUT=0.5)
    ("http_error", {"status": 502}, 0.0, "unknown"),  # a gateway 502: it may have run
], ids=["reset-after", "reset-after-read-back", "read-timeout", "bad-gateway"])
def test_an_unknown_outcome_is_recorded_reported_and_never_resent(fleet, write_schedules, tick, ledger,
                                                                  monkeypatch, kind, params, delay, expected):
    monkeypatch.setenv("DCS_READ_TIMEOUT", "0.5")
    fleet.transition_delay = delay
    write_schedules(HOURLY)
    fleet.inject(Fault(endpoint="status", kind=kind, **params))
    summary = tick(t("2026-06-01T10:00:00Z"))
    assert len(status_calls(fleet)) == 1  # the SDK's transport retry is off: one PUT on the wire
    results = results_by_instance(summary)
    assert {results[i]["result"] for i in ("i-a", "i-b")} == {expected}
    assert "read back" in results["i-a"]["reason"]
    assert summary["ok"] is (expected == "success")
    keys = [claim_key("hourly", t("2026-06-01T10:00:00Z"), iid, "restart") for iid in ("i-a", "i-b")]
    assert {c.outcome for c in ledger.get_claims(keys).values()} == {expected}
    fleet.set_status(PROJECT, "i-a", "RUNNING")
    fleet.set_status(PROJECT, "i-b", "RUNNING")
    for when in ("2026-06-01T10:00:00Z", "2026-06-01T10:00:00Z", "2026-06-01T10:05:00Z", "2026-06-01T10:55:00Z"):
        assert sent(tick(t(when))) == []
    assert len(status_calls(fleet)) == 1
    tick(t("2026-06-01T11:00:00Z"))  # the next occurrence is a new action
    assert len(status_calls(fleet)) == 2


def test_an_unknown_window_stop_counts_as_applied(emulator, write_schedules, tick, ledger):
    """A stop whose answer was lost may have run: the morning start must still start the instance."""
    emulator.add_instance(PROJECT, instance_id="i-dev", name="dev", tags={"env": "dev"})
    write_schedules("""
schedules:
  - name: nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {tags: {env: dev}}
""")
    tick(t("2026-06-01T12:00:00Z"))  # first sight: running, as wanted
    emulator.transition_delay = 600.0  # the read-back shows CLOSING... unless it fails too
    emulator.inject(Fault(endpoint="status", kind="reset_after"))
    emulator.inject(Fault(endpoint="show", kind="dcs_error", status=400, times=None))
    evening = tick(t("2026-06-01T20:00:00Z"))
    emulator.clear_faults()
    assert results_by_instance(evening)["i-dev"]["result"] == "unknown"
    emulator.transition_delay = 0.0
    emulator.set_status(PROJECT, "i-dev", "CLOSED")  # it did stop
    for when in ("2026-06-01T20:05:00Z", "2026-06-01T23:00:00Z"):
        tick(t(when))
    assert [c["action"] for c in status_calls(emulator)] == ["stop"]
    tick(t("2026-06-02T07:00:00Z"))
    assert [c["action"] for c in status_calls(emulator)] == ["stop", "start"]
    assert emulator.get_instance(PROJECT, "i-dev")["status"] == "RUNNING"


def test_an_unknown_window_start_counts_as_applied(emulator, write_schedules, tick):
    """A start whose answer was lost (read back RUNNING: cannot tell): the evening stop must still stop it."""
    emulator.add_instance(PROJECT, instance_id="i-dev", name="dev", tags={"env": "dev"}, status="CLOSED")
    write_schedules("""
schedules:
  - name: nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {tags: {env: dev}}
""")
    tick(t("2026-06-01T06:00:00Z"))  # first sight at night: closed, as wanted
    emulator.inject(Fault(endpoint="status", kind="reset_after"))
    morning = tick(t("2026-06-01T07:00:00Z"))
    assert results_by_instance(morning)["i-dev"]["result"] in ("unknown", "success")
    assert emulator.get_instance(PROJECT, "i-dev")["status"] == "RUNNING"
    tick(t("2026-06-01T07:05:00Z"))
    tick(t("2026-06-01T20:00:00Z"))
    assert [c["action"] for c in status_calls(emulator)] == ["start", "stop"]
    assert emulator.get_instance(PROJECT, "i-dev")["status"] == "CLOSED"


# -- the right moment: deadlines, several occurrences, watermarks ----------------------------------------------
DAILY = """
schedules:
  - name: daily
    action: restart
    cron: "0 2 * * *"
    instances: {ids: [i-a]}
"""


def passed(summary: dict) -> list[tuple[str, str]]:
    return [(o["occurrence"], o["result"]) for s in summary["schedules"] for o in s["occurrences"]]


def test_a_tick_delivered_after_the_deadline_misses(fleet, write_schedules, tick):
    write_schedules(DAILY)
    tick(t("2026-06-01T01:55:00Z"))
    late = tick(t("2026-06-01T02:00:00Z"), lag=timedelta(minutes=10, seconds=30))
    assert status_calls(fleet) == []
    entry = results_by_instance(late)["i-a"]
    assert entry["result"] == "missed" and "wall clock" in entry["reason"]
    assert entry["occurrence"] == "2026-06-01T02:00:00Z"
    assert late["counts"]["missed"] == 1
    for when in ("2026-06-01T02:00:00Z", "2026-06-01T02:05:00Z"):  # neither a duplicate nor the next tick revives it
        assert sent(tick(t(when))) == []
    assert status_calls(fleet) == []


def test_the_wall_clock_decides_even_when_the_tick_time_is_inside_the_deadline(fleet, write_schedules, tick):
    write_schedules(DAILY)
    tick(t("2026-06-01T01:55:00Z"))
    # 02:00 dropped; the 02:05 tick (its time within 10m of 02:00) only runs at 02:10:30.
    late = tick(t("2026-06-01T02:05:00Z"), lag=timedelta(minutes=5, seconds=30))
    assert status_calls(fleet) == []
    assert results_by_instance(late)["i-a"]["result"] == "missed"


def test_a_tick_late_but_within_the_deadline_runs(fleet, write_schedules, tick):
    write_schedules(DAILY)
    tick(t("2026-06-01T01:55:00Z"))
    summary = tick(t("2026-06-01T02:00:00Z"), lag=timedelta(minutes=9))
    assert acted_ids(fleet) == ["i-a"] and summary["counts"]["success"] == 1


def test_a_short_starting_deadline_and_a_late_tick_time(fleet, write_schedules, tick):
    write_schedules(DAILY + "    starting_deadline: 30s\n")
    tick(t("2026-06-01T01:55:00Z"))
    summary = tick(t("2026-06-01T02:00:40Z"))  # the event itself is stamped 40 s late
    assert status_calls(fleet) == []
    assert passed(summary) == [("2026-06-01T02:00:00Z", "missed")]


def test_several_occurrences_in_one_window_only_the_latest_runs(fleet, write_schedules, tick):
    write_schedules("""
schedules:
  - name: often
    action: soft_restart
    cron: "*/5 * * * *"
    starting_deadline: 1h
    instances: {ids: [i-a]}
""")
    tick(t("2026-06-01T10:00:00Z"))
    summary = tick(t("2026-06-01T10:20:00Z"))  # 10:05, 10:10, 10:15 dropped
    assert status_calls(fleet) == [{"instances": ["i-a"], "action": "soft_restart"},
                                   {"instances": ["i-a"], "action": "soft_restart"}]
    assert results_by_instance(summary)["i-a"]["occurrence"] == "2026-06-01T10:20:00Z"
    assert passed(summary) == [(f"2026-06-01T10:{m}:00Z", "missed") for m in ("05", "10", "15")]
    assert all("superseded" in o["reason"] for s in summary["schedules"] for o in s["occurrences"])


def test_watermarks_after_dropped_ticks(fleet, write_schedules, tick):
    write_schedules(DAILY)
    tick(t("2026-06-01T01:55:00Z"))
    healed = tick(t("2026-06-01T02:05:00Z"))  # the 02:00 tick was dropped: the next one picks it up
    assert acted_ids(fleet) == ["i-a"]
    assert results_by_instance(healed)["i-a"]["occurrence"] == "2026-06-01T02:00:00Z"
    # Then a 2-hour outage over the next day's occurrence: reported missed once, by the first tick after it.
    tick(t("2026-06-02T01:00:00Z"))
    after = tick(t("2026-06-02T03:00:00Z"))
    assert passed(after) == [("2026-06-02T02:00:00Z", "missed")]
    assert "starting_deadline" in after["schedules"][0]["occurrences"][0]["reason"]
    assert passed(tick(t("2026-06-02T03:05:00Z"))) == []
    # A stale copy of an old tick, delivered after the watermark moved past it, does nothing.
    stale = tick(t("2026-06-02T02:00:00Z"))
    assert sent(stale) == [] and passed(stale) == []
    assert acted_ids(fleet) == ["i-a"]


def test_a_long_outage_reports_at_most_a_day_of_missed_occurrences(fleet, write_schedules, tick):
    write_schedules(HOURLY.replace("{tags: {env: staging}}", "{ids: [i-a]}"))
    tick(t("2026-06-01T10:00:00Z"))
    back = tick(t("2026-06-04T10:03:00Z"))  # three days later
    assert acted_ids(fleet) == ["i-a", "i-a"]  # 10:00 on the first day, then 10:00 on the fourth
    missed = passed(back)
    assert len(missed) == 23 and {r for _, r in missed} == {"missed"}
    assert missed[0][0] == "2026-06-03T11:00:00Z" and missed[-1][0] == "2026-06-04T09:00:00Z"


def test_a_dry_run_tick_does_not_use_up_the_occurrence(fleet, write_schedules, tick):
    """A second timer with user_event {"dry_run": true} (an observer) must not consume the real timer's work."""
    write_schedules(DAILY)
    tick(t("2026-06-01T01:55:00Z"))
    dry = tick(t("2026-06-01T02:00:00Z"), user_event={"dry_run": True})
    assert "dry run: would restart" in results_by_instance(dry)["i-a"]["reason"]
    real = tick(t("2026-06-01T02:00:00Z"))
    assert acted_ids(fleet) == ["i-a"]
    assert results_by_instance(real)["i-a"]["result"] == "success"


def test_two_schedules_on_one_instance_at_one_moment_send_it_once(fleet, write_schedules, tick, ledger):
    """Both schedules want i-a restarted at 02:00: one entry in one call (DCS fails a repeated id)."""
    write_schedules("""
schedules:
  - name: daily
    action: restart
    cron: "0 2 * * *"
    instances: {ids: [i-a]}
  - name: hourly-staging
    action: restart
    cron: "0 * * * *"
    instances: {tags: {env: staging}}
""")
    summary = tick(t("2026-06-01T02:00:00Z"))
    assert status_calls(fleet) == [{"instances": ["i-a", "i-b"], "action": "restart"}]
    assert results_by_instance(summary, "daily")["i-a"]["result"] == "success"
    assert results_by_instance(summary, "hourly-staging")["i-a"]["result"] == "success"
    assert summary["ok"]
    keys = [claim_key("daily", t("2026-06-01T02:00:00Z"), "i-a", "restart"),
            claim_key("hourly-staging", t("2026-06-01T02:00:00Z"), "i-a", "restart")]
    assert {c.outcome for c in ledger.get_claims(keys).values()} == {"success"}


# -- local dates -------------------------------------------------------------------------------------------------
# 03:00 in Shanghai is 19:00 UTC the day before: the local date is not the UTC date.
SHANGHAI = """
schedules:
  - name: sh
    action: restart
    cron: "0 3 * * *"
    timezone: Asia/Shanghai
    instances: {{ids: [i-a]}}
{extra}
"""


@pytest.mark.parametrize("extra, fires", [
    ("    skip_dates: ['2026-12-02']", ["2026-12-02T19:00:00Z"]),  # 12-01 19:00Z is 12-02 in Shanghai
    ("    skip_dates: ['2026-12-01']", ["2026-12-01T19:00:00Z", "2026-12-02T19:00:00Z"]),  # a UTC date: no effect
    ("    active_from: '2026-12-02'", ["2026-12-01T19:00:00Z", "2026-12-02T19:00:00Z"]),
    ("    active_from: '2026-12-03'", ["2026-12-02T19:00:00Z"]),
    ("    active_until: '2026-12-02'", ["2026-12-01T19:00:00Z"]),
    ("    active_until: '2026-12-01'", []),
], ids=["skip-local", "skip-utc-date", "from-local", "from-next", "until-local", "until-before"])
def test_dates_are_local_dates(fleet, write_schedules, tick, extra, fires):
    write_schedules(SHANGHAI.format(extra=extra))
    fired, skipped = [], []
    when = t("2026-12-01T18:50:00Z")
    while when <= t("2026-12-02T19:10:00Z"):
        summary = tick(when)
        fired += [summary["tick"] for _ in sent(summary)]
        skipped += [(o["occurrence"], o["reason"]) for s in summary["schedules"] for o in s["occurrences"]]
        when += timedelta(minutes=5)
    assert fired == fires
    assert len(acted_ids(fleet)) == len(fires)
    expected_skips = {"2026-12-01T19:00:00Z", "2026-12-02T19:00:00Z"} - set(fires)
    assert {occ for occ, _ in skipped} == expected_skips
    for occ, reason in skipped:
        local_day = (t(occ) + timedelta(hours=8)).date().isoformat()
        assert reason.startswith(local_day)
