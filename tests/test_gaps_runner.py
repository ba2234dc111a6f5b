"""Issue 16, runner gaps: ticks, manual runs and failures the existing end-to-end tests left one mutant alive for.

Through handler.handler (TIMER events, POST /schedules/{name}/run), the real SDK over HTTP to the emulator; DCS-side
faults are the emulator's, ledger faults wrap the ledger object's own methods. Each test names the mutant it kills
(seen failing on it, passing on the code).
"""

from __future__ import annotations

import json
from datetime import timedelta

from conftest import DEV_NIGHTS, HOURLY, PROJECT, REGION, results_by_instance, status_calls, t

from dcs_emulator import Fault
from dcs_maintenance import invocation
from dcs_maintenance.ledger.base import LedgerError, claim_key
from dcs_maintenance.settings import load_settings
from dcs_maintenance.tools.local import LocalContext


def actions(emu) -> list[tuple[str, list[str]]]:
    """The status PUTs DCS received, in order: (action, instance ids)."""
    return [(c["action"], c["instances"]) for c in status_calls(emu)]


def function_ledger():
    """The ledger object the function's invocations use (its methods may be wrapped to make it fail)."""
    return invocation.ledger_for(load_settings())


def claim_outcomes(schedule: str, occurrence: str, action: str, ids: list[str]) -> dict[str, str]:
    keys = {claim_key(schedule, t(occurrence), iid, action): iid for iid in ids}
    found = function_ledger().get_claims(list(keys), now=t(occurrence) + timedelta(hours=1))
    return {keys[k]: c.outcome for k, c in found.items()}


# -- windows: redelivery, stale copies, manual runs, dry runs -----------------------------------------------------
def test_redelivering_the_same_tick_after_a_throttled_window_stop_sends_it(emulator, write_schedules, tick):
    """A 429 before DCS acted gives the stop's claim back; the platform's redelivery of that same 20:00 event is
    not a stale copy (its time equals the watermark, it is not older) and must send the stop.

    kills: runner.py _due_work `tick < mark` -> `tick <= mark` (the redelivery is called stale and does nothing);
    also runner.py _finish `if not work.pending and not work.report.error` -> `if not work.report.error` (the
    window settles on the throttled stop, and the redelivery finds it settled).
    """
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS)
    tick(t("2026-06-01T19:55:00Z"))  # first sight: running, as wanted
    emulator.inject(Fault(endpoint="status", kind="throttle"))
    throttled = results_by_instance(tick(t("2026-06-01T20:00:00Z")))["i-a"]
    assert throttled["result"] == "skipped" and throttled.get("not_sent") is True
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "RUNNING"
    again = tick(t("2026-06-01T20:00:00Z"))
    assert results_by_instance(again)["i-a"]["result"] == "success" and again["ok"]
    assert actions(emulator) == [("stop", ["i-a"]), ("stop", ["i-a"])]  # the throttled one, then the real one
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "CLOSED"


def test_a_stale_copy_of_an_earlier_tick_never_starts_an_instance_first_seen_after_a_later_stop(
        emulator, write_schedules, tick):
    """The 20:00 tick ran (the function's clock 30 s behind the timer's, within the allowed skew) and stopped i-a.
    i-new, closed, appears; then a copy of the 19:55 tick arrives with the wall clock still before 20:00, where the
    window's state in force is the morning's start. i-new has no window state yet (first sight), so only the
    watermark can tell this tick is stale: it must act on nothing, and the next real tick keeps i-new stopped.

    kills: runner.py _due_work `tick < mark` -> `tick + settings.tick_period < mark` (a copy one period old counted
    as current: it starts i-new; i-a is spared only by its window state), which every existing test lets live.
    Deleting the check outright is also killed here (and by test_windows_week.py::test_a_week_of_windows).
    """
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS)
    tick(t("2026-06-01T19:55:00Z"))
    tick(t("2026-06-01T20:00:00Z"), lag=timedelta(seconds=-30))  # run at 19:59:30 by the function's clock
    assert actions(emulator) == [("stop", ["i-a"])]
    emulator.add_instance(PROJECT, instance_id="i-new", name="dev-new", tags={"env": "dev"}, status="CLOSED")
    stale = tick(t("2026-06-01T19:55:00Z"), lag=timedelta(minutes=4, seconds=40))  # delivered at 19:59:40
    assert actions(emulator) == [("stop", ["i-a"])]
    assert emulator.get_instance(PROJECT, "i-new")["status"] == "CLOSED"
    assert stale["ok"] and stale["schedules"] == [] and stale["api_calls"] == {}  # quiet: not even a listing
    tick(t("2026-06-01T20:05:00Z"))
    assert actions(emulator) == [("stop", ["i-a"])]
    assert emulator.get_instance(PROJECT, "i-new")["status"] == "CLOSED"


def test_a_manual_window_run_acts_on_an_instance_started_by_hand(emulator, write_schedules, tick, http, at_time):
    """A window leaves a manual change alone on its ticks (not enforced); POST /schedules/{name}/run re-applies the
    state in force to it, once per minute.

    kills: runner.py _plan_window `schedule.enforce or work.manual` -> `schedule.enforce` (the run says
    "manual changes are left alone" and sends nothing).
    """
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS)
    tick(t("2026-06-01T19:55:00Z"))
    tick(t("2026-06-01T20:00:00Z"))
    emulator.set_status(PROJECT, "i-a", "RUNNING")  # started by hand in the evening
    tick(t("2026-06-01T20:05:00Z"))
    assert actions(emulator) == [("stop", ["i-a"])]  # the tick leaves the manual start alone
    at_time(t("2026-06-01T20:07:10Z"))
    response = http("POST", "/schedules/nights/run")
    assert response["statusCode"] == 200
    summary = json.loads(response["body"])
    entry = results_by_instance(summary)["i-a"]
    assert (entry["action"], entry["result"]) == ("stop", "success") and summary["trigger"] == "http"
    assert actions(emulator) == [("stop", ["i-a"]), ("stop", ["i-a"])]
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "CLOSED"
    emulator.set_status(PROJECT, "i-a", "RUNNING")
    again = json.loads(http("POST", "/schedules/nights/run")["body"])  # the same minute: acts once
    assert results_by_instance(again)["i-a"]["result"] == "skipped"
    assert len(status_calls(emulator)) == 2


def test_a_dry_run_window_tick_then_a_real_tick_at_the_next_period_acts(emulator, write_schedules, tick):
    """An observer timer with {"dry_run": true} at 20:00 reports the stop it would send and uses nothing up: the
    real timer's 20:05 tick stops the instance, and the window settles only then.

    kills: runner.py run_tick `dry_run=request.dry_run or settings.dry_run` -> `dry_run=settings.dry_run` (the
    observer stops it); the bookkeeping of a dry run is guarded twice (TickRequest.books in run_tick and _finish,
    and work.dry_run in _finish), so no single deletion of either lets it settle the window.
    """
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS)
    tick(t("2026-06-01T19:55:00Z"))
    dry = tick(t("2026-06-01T20:00:00Z"), user_event={"dry_run": True})
    entry = results_by_instance(dry)["i-a"]
    assert entry["result"] == "skipped" and entry["reason"].startswith("dry run: would stop (RUNNING)")
    assert status_calls(emulator) == []
    assert function_ledger().get_meta("settled:nights") == "2026-06-01T07:00:00Z"  # still the morning's start
    real = tick(t("2026-06-01T20:05:00Z"))
    assert results_by_instance(real)["i-a"]["result"] == "success" and real["ok"]
    assert actions(emulator) == [("stop", ["i-a"])]
    assert function_ledger().get_meta("settled:nights") == "2026-06-01T20:00:00Z"


# -- one-shots: manual runs, the flush re-check, failures around the status call -------------------------------------
def test_a_manual_run_and_the_scheduled_tick_of_the_same_occurrence_are_two_actions(emulator, write_schedules, tick,
                                                                                     http, at_time):
    """By design (README, POST /schedules/{name}/run: "once per minute, via its claim"): a manual run is claimed
    under `manual@<minute>`, apart from the schedule's own occurrence, so an operator's run at 10:00 and the 10:00
    tick each restart once, in either order; a second run in the same minute acts once.

    kills: runner.py _plan_one_shot `f"manual@{iso(work.occurrence)}" if work.manual else iso(work.occurrence)` ->
    `iso(work.occurrence)` (the second of the two finds the first's claim, "already handled").
    """
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    at_time(t("2026-06-01T10:00:10Z"))
    manual = json.loads(http("POST", "/schedules/hourly/run")["body"])
    assert results_by_instance(manual)["i-a"]["result"] == "success"
    scheduled = tick(t("2026-06-01T10:00:00Z"), lag=timedelta(seconds=20))
    entry = results_by_instance(scheduled)["i-a"]
    assert (entry["result"], entry["occurrence"]) == ("success", "2026-06-01T10:00:00Z") and "handled_by" not in entry
    at_time(t("2026-06-01T10:00:40Z"))
    again = json.loads(http("POST", "/schedules/hourly/run")["body"])
    assert results_by_instance(again)["i-a"]["result"] == "skipped"
    assert actions(emulator) == [("restart", ["i-a"]), ("restart", ["i-a"])]
    assert emulator.get_instance(PROJECT, "i-a")["counters"]["restarts"] == 2


def test_the_flush_recheck_refuses_a_flush_without_allow_flush_that_reaches_sending(emulator, function_env, at_time):
    """A flush schedule without allow_flush that skipped validation (built in code, not loaded) and eligibility:
    sending's own check refuses it, says why, claims nothing and sends nothing. Through run_tick, eligibility
    refuses it first (its mutant is killed by test_planner.py::test_eligibility, ("flush", inst(), False, False)).

    kills: sending.py _send_chunk `if action == "flush" and not (...)` -> `if False:` (the FLUSH goes out).
    """
    from dcs_maintenance.ledger.base import claim_key as key_of
    from dcs_maintenance.loader import Catalog
    from dcs_maintenance.model import Instance, Schedule, Selector
    from dcs_maintenance.report import ScheduleReport
    from dcs_maintenance.runner import run_tick
    from dcs_maintenance.sending import execute
    from dcs_maintenance.tick import Intent, LockedLedger, TickRequest, Work

    emulator.add_instance(PROJECT, instance_id="i-a", name="cache-a", tags={"env": "x"})
    occurrence = t("2026-06-01T03:00:00Z")
    at_time(occurrence)
    schedule = Schedule("flusher", "code.yaml", Selector(ids=("i-a",)), action="flush", cron="0 3 * * *",
                        allow_flush=False)
    rt = invocation.runtime(load_settings())
    summary = run_tick(Catalog((schedule,), (), ()), TickRequest(occurrence), rt)
    entry = results_by_instance(summary)["i-a"]
    assert (entry["result"], entry["reason"]) == ("skipped", "flush needs allow_flush: true")
    # Past eligibility, straight into sending (a future caller that forgets it):
    report = ScheduleReport(schedule, False)
    work = Work(schedule, report, PROJECT, REGION, occurrence)
    key = key_of("flusher", occurrence, "i-a", "flush")
    work.intents.append(Intent(work, Instance("i-a", "cache-a", "Redis", "5.0", "RUNNING", (("env", "x"),)), "flush",
                               key, occurrence))
    execute([work], rt, LockedLedger(rt.ledger), TickRequest(occurrence), {})
    [entry] = report.data["instances"]
    assert (entry["result"], entry["reason"]) == ("skipped", "refused: flush without allow_flush: true")
    assert status_calls(emulator) == [] and rt.ledger.get_claims([key], now=occurrence) == {}


def test_a_status_call_that_raises_unexpectedly_is_unknown_recorded_and_never_resent(emulator, write_schedules, tick,
                                                                                     monkeypatch):
    """The PUT went out and DCS restarted both, then the gateway raised something nobody expected (a bug reading
    the reply): nothing can tell what DCS did, so each instance is `unknown` with the error, ok is false, the claims
    record it, and neither a redelivery nor the next tick sends it again.

    kills: sending.py send_split `Outcome(iid, "unknown", f"{exc}")` -> `Outcome(iid, "failed", f"{exc}")`, and
    -> `Outcome(iid, "unknown", f"{exc}", not_executed=True)` (claims given back: restarted twice).
    """
    from dcs_maintenance.gateway import DcsGateway

    for iid in ("i-a", "i-b"):
        emulator.add_instance(PROJECT, instance_id=iid, name=f"app-{iid}", tags={"env": "staging"})
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    original = DcsGateway.change_status

    def sent_then_raises(self, action, ids):
        original(self, action, ids)
        raise KeyError("instance_id")

    with monkeypatch.context() as patch:
        patch.setattr(DcsGateway, "change_status", sent_then_raises)
        first = tick(t("2026-06-01T10:00:00Z"))
    assert first["ok"] is False and first["counts"]["unknown"] == 2
    for iid in ("i-a", "i-b"):
        entry = results_by_instance(first)[iid]
        assert entry["result"] == "unknown" and entry["reason"].startswith("'instance_id'") and "not_sent" not in entry
    assert claim_outcomes("hourly", "2026-06-01T10:00:00Z", "restart", ["i-a", "i-b"]) == {"i-a": "unknown",
                                                                                          "i-b": "unknown"}
    tick(t("2026-06-01T10:00:00Z"))
    tick(t("2026-06-01T10:05:00Z"))
    assert actions(emulator) == [("restart", ["i-a", "i-b"])]


def test_a_ledger_that_fails_to_record_after_the_call_keeps_the_result_and_never_resends(emulator, write_schedules,
                                                                                       tick, monkeypatch):
    """DCS restarted the instance; storing the outcome failed. The summary keeps DCS's answer (`success`) with the
    ledger error beside it (README: a ledger failure after calls were sent never hides them); the claim stays taken
    (outcome-less), so neither a redelivery of the tick nor the next tick sends it again.

    kills: sending.py _send_chunk `f"{o.reason} (outcome not recorded in the ledger: {exc})"` -> `o.reason` (the
    failure vanishes from the summary); the `except LedgerError` branch deleted (the tick raises: DCS's answer
    is lost with it); and the report's error not set there (ok true: no notification until the next tick).
    """
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))

    def record_many(*args, **kwargs):
        raise LedgerError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(function_ledger(), "record_many", record_many)
        first = tick(t("2026-06-01T10:00:00Z"))
    entry = results_by_instance(first)["i-a"]
    assert entry["result"] == "success"
    assert entry["reason"].startswith("restart accepted (outcome not recorded in the ledger: disk I/O error)")
    assert first["ok"] is False  # the tick alerts (the notification goes out) with DCS's answer in it
    assert claim_outcomes("hourly", "2026-06-01T10:00:00Z", "restart", ["i-a"]) == {"i-a": "claimed"}
    tick(t("2026-06-01T10:00:00Z"))
    tick(t("2026-06-01T10:05:00Z"))
    assert actions(emulator) == [("restart", ["i-a"])]


def test_a_claim_that_cannot_be_released_after_a_throttled_call_is_reported_then_unknown(emulator, write_schedules,
                                                                                        tick, monkeypatch):
    """A 429 (read back unchanged: DCS did not act) should give the claim back for the next tick; the release fails.
    The entry says so (not sent, claim not released, not retried) and holds the occurrence; the next tick finds the
    outcome-less claim older than one call budget and reports it `unknown` (ok false), never sending it.

    kills: sending.py _release `released = False` -> `released = True` in the except branch (the entry claims the
    next tick retries it, which never happens).
    """
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    emulator.inject(Fault(endpoint="status", kind="throttle"))

    def release_many(*args, **kwargs):
        raise LedgerError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(function_ledger(), "release_many", release_many)
        first = tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-throttled"))
    entry = results_by_instance(first)["i-a"]
    assert entry["result"] == "skipped" and entry["not_sent"] is True
    assert entry["reason"].startswith("not sent: ") and "429" in entry["reason"]
    assert entry["reason"].endswith("; claim not released (connection refused): not retried")
    assert claim_outcomes("hourly", "2026-06-01T10:00:00Z", "restart", ["i-a"]) == {"i-a": "claimed"}
    later = tick(t("2026-06-01T10:05:00Z"))
    entry = results_by_instance(later)["i-a"]
    assert later["ok"] is False and entry["result"] == "unknown" and entry["occurrence"] == "2026-06-01T10:00:00Z"
    assert "req-throttled" in entry["reason"] and "no outcome was ever recorded" in entry["reason"]
    assert actions(emulator) == [("restart", ["i-a"])]  # the throttled PUT only


# -- claims of occurrences that are missed by the time a tick looks at them ------------------------------------
def _plant_claim(at: str, holder: str) -> None:
    """An outcome-less claim on hourly's 10:00 restart of i-a, as an invocation that claimed and then died (or is
    still sending) leaves it."""
    key = claim_key("hourly", t("2026-06-01T10:00:00Z"), "i-a", "restart")
    assert function_ledger().claim_many([key], holder, now=t(at)) == [True]


def test_a_missed_occurrence_whose_claim_has_no_outcome_is_reported_unknown_and_recorded(emulator, write_schedules,
                                                                                         tick):
    """Ticks 10:00 and 10:05 were lost after one of them claimed; at 10:15 the occurrence is missed, but its claim
    is reported (never hidden behind "missed") as unknown, with who claimed it and the instance's status read
    back as evidence (issue 10, item 3), and recorded so.

    kills: runner.py _report_passed `result == "missed"` -> `!=` and its string twins, the key split
    (`[2:4]` -> `[3:4]`/`[2:5]`), every argument of `rep.instance(...)` and of `judge_claim(...)` dropped or
    nulled, `stale[key] = ("unknown", ...)` changed, `record_stale(stale, ...)` given None, and
    `verdict.hold and held is None` -> `or` (a stale claim would hold the watermark and be reported again)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    _plant_claim("2026-06-01T10:00:00Z", "req-dead")
    summary = tick(t("2026-06-01T10:15:00Z"))
    assert summary["ok"] is False
    [report] = summary["schedules"]
    assert report["instances"] == [{
        "instance_id": "i-a", "name": "app-a", "action": "restart", "result": "unknown",
        "reason": "claimed by request req-dead at 2026-06-01T10:00:00Z but no outcome was ever recorded (that "
                  "invocation died or lost its reply): it may have been sent; status now RUNNING; not re-sent",
        "occurrence": "2026-06-01T10:00:00Z", "handled_by": "req-dead"}]
    assert [o["result"] for o in report["occurrences"]] == ["missed"]
    assert claim_outcomes("hourly", "2026-06-01T10:00:00Z", "restart", ["i-a"]) == {"i-a": "unknown"}
    assert results_by_instance(tick(t("2026-06-01T10:20:00Z"))) == {}  # reported once: the watermark passed it
    assert actions(emulator) == []


def test_a_missed_occurrence_claimed_by_an_invocation_in_flight_holds_the_watermark(emulator, write_schedules,
                                                                                    tick):
    """The claim is two seconds old at the 10:15 tick: in flight, so `skipped` and held; the watermark stays before
    10:00 and the 10:20 tick looks again, by then finding it stale (unknown).

    kills: runner.py _report_passed `held = occ` -> None, `verdict.hold and held is None` -> `or`/`is not None`,
    and `held` initialised to "" (the watermark passes the claim and 10:20 never reports it)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    _plant_claim("2026-06-01T10:14:58Z", "req-busy")
    first = results_by_instance(tick(t("2026-06-01T10:15:00Z")))["i-a"]
    assert (first["result"], first["handled_by"]) == ("skipped", "req-busy")
    assert first["reason"].startswith("claimed by request req-busy 2s ago, outcome not recorded yet (in flight)")
    again = results_by_instance(tick(t("2026-06-01T10:20:00Z")))["i-a"]
    assert again["result"] == "unknown" and again["occurrence"] == "2026-06-01T10:00:00Z"
    assert actions(emulator) == []
