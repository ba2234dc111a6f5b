"""Issue 16, runner gaps: what a tick's summary says about each schedule, field by field.

The summary is what an operator reads the morning after (and what the notification and the history carry): a
decision with its reason, the occurrence it is about, a window's desired state. The tests elsewhere look at
results and calls; these pin each schedule entry whole, through handler.handler (TIMER events), the real SDK over
HTTP to the emulator. Each test names the mutants it kills.
"""

from __future__ import annotations

import json
from datetime import timedelta

from conftest import (
    DEV_NIGHTS,
    HOURLY,
    OTHER_PROJECT,
    PROJECT,
    add_staging_and_prod,
    add_staging_pair,
    json_lines,
    status_calls,
    t,
)

from dcs_emulator import Fault
from dcs_maintenance import invocation
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.ledger.base import LedgerError, claim_key
from dcs_maintenance.settings import load_settings
from dcs_maintenance.tools.local import LocalContext


def entry(summary: dict, name: str) -> dict:
    """The schedule's entry, without its file (a temporary path)."""
    [found] = [{k: v for k, v in s.items() if k != "file"} for s in summary["schedules"] if s["name"] == name]
    return found


def test_a_due_one_shot_says_how_many_instances_for_which_occurrence(emulator, write_schedules, tick):
    """kills: runner.py _plan `what = None`, either branch of `... if work.intents else ...` forced or its text
    changed, the reason or the occurrence dropped from rep.decide, `desired=` dropped (a one-shot says None)."""
    add_staging_pair(emulator)
    write_schedules(HOURLY)
    summary = tick(t("2026-06-01T10:00:00Z"))
    due = entry(summary, "hourly")
    assert {k: v for k, v in due.items() if k != "instances"} == {
        "name": "hourly", "kind": "one_shot", "action": "restart", "timezone": "UTC", "decision": "due",
        "reason": "2 instance(s) to restart for occurrence 2026-06-01T10:00:00Z",
        "occurrence": "2026-06-01T10:00:00Z", "desired": None, "dry_run": False, "occurrences": []}
    assert [e["result"] for e in due["instances"]] == ["success", "success"]
    emulator.set_status(PROJECT, "i-stg-1", "RESTARTING")
    emulator.set_status(PROJECT, "i-stg-2", "RESTARTING")
    nothing = entry(tick(t("2026-06-01T11:00:00Z")), "hourly")
    assert (nothing["decision"], nothing["reason"], nothing["occurrence"]) == (
        "due", "no instance to act on for occurrence 2026-06-01T11:00:00Z", "2026-06-01T11:00:00Z")


def test_a_due_window_says_the_transition_and_the_state_it_wants(emulator, write_schedules, tick):
    """kills: runner.py _plan `action_word = None` and `... if (work.desired) and False else schedule.action`
    (a window has no action: "to None"), `desired=None` and `desired=... if (work.desired) and False ...`;
    _plan_window the name or the occurrence dropped from a first sight's entry."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS)
    first_sight = entry(tick(t("2026-06-01T19:55:00Z")), "nights")
    assert first_sight["instances"] == [{"instance_id": "i-a", "name": "dev-api", "action": None, "result": "skipped",
                                         "reason": "already RUNNING", "occurrence": "2026-06-01T07:00:00Z"}]
    stop = entry(tick(t("2026-06-01T20:00:00Z")), "nights")
    assert {k: v for k, v in stop.items() if k != "instances"} == {
        "name": "nights", "kind": "window", "action": None, "timezone": "UTC", "decision": "due",
        "reason": "1 instance(s) to stop for occurrence 2026-06-01T20:00:00Z",
        "occurrence": "2026-06-01T20:00:00Z", "desired": "stopped", "dry_run": False, "occurrences": []}
    start = entry(tick(t("2026-06-02T07:00:00Z")), "nights")
    assert (start["reason"], start["desired"]) == ("1 instance(s) to start for occurrence 2026-06-02T07:00:00Z",
                                                   "running")


FROZEN_NIGHTS = DEV_NIGHTS + """freezes:
  - name: release
    from: "2026-06-01T20:01"
    until: "2026-06-01T23:00"
    timezone: UTC
    reason: release night
"""


def test_a_late_delivery_judges_a_freeze_at_the_wall_clock(emulator, write_schedules, tick):
    """The 20:00 tick is delivered at 20:02, inside a freeze that began at 20:01: the stop (due before the freeze)
    is held, as the wall clock says, not sent as the event's time would say; the entry names the freeze, the
    occurrence and the state the window wants. After the freeze the stop goes through.

    kills: runner.py _window_frozen `request.window_at or request.at` -> `and` (judged at the event's 20:00:
    the stop is sent inside the freeze), and each field of its rep.decide dropped or emptied."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(FROZEN_NIGHTS)
    tick(t("2026-06-01T19:55:00Z"))
    held = entry(tick(t("2026-06-01T20:00:00Z"), lag=timedelta(minutes=2)), "nights")
    assert held == {
        "name": "nights", "kind": "window", "action": None, "timezone": "UTC", "decision": "frozen",
        "reason": "stops are held during freeze 'release' (2026-06-01T20:01 to 2026-06-01T23:00 UTC): release night "
                  "until 2026-06-01T23:00:00Z",
        "occurrence": "2026-06-01T20:00:00Z", "desired": "stopped", "dry_run": False, "occurrences": [],
        "instances": []}
    assert status_calls(emulator) == []
    after = entry(tick(t("2026-06-01T23:00:00Z")), "nights")
    assert [e["result"] for e in after["instances"]] == ["success"] and status_calls(emulator)[0]["action"] == "stop"


def test_a_stop_inside_a_freeze_is_reported_once_and_settled_but_not_by_a_dry_run_schedule(
        emulator, write_schedules, tick, function_env):
    """A stop whose occurrence falls in a freeze is never applied: reported `frozen` once with the freeze's reason
    and the window settles on it. A schedule with `dry_run: true` settles nothing (its ticks change nothing), so
    it says the same again at the next tick.

    kills: runner.py _window_frozen `rep.passed(..., None)` (the occurrence's reason dropped) and
    `request.writes and not dry_run` -> `or` (a dry-run schedule writes the settled marker)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    emulator.add_instance(PROJECT, instance_id="i-b", name="dev-web", tags={"env": "rehearse"})
    write_schedules(DEV_NIGHTS + """  - name: nights-preview
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {tags: {env: rehearse}}
    dry_run: true
freezes:
  - name: release
    from: "2026-06-01T19:30"
    until: "2026-06-01T23:00"
    timezone: UTC
    reason: release night
""")
    tick(t("2026-06-01T19:55:00Z"))
    first = tick(t("2026-06-01T20:00:00Z"))
    why = ("stop at 2026-06-01T20:00:00Z falls in freeze 'release' (2026-06-01T19:30 to 2026-06-01T23:00 UTC): "
           "release night: not applied; starts still go through")
    for name in ("nights", "nights-preview"):
        assert entry(first, name)["occurrences"] == [
            {"occurrence": "2026-06-01T20:00:00Z", "result": "frozen", "reason": why}]
    with open_ledger(function_env["LEDGER_URL"]) as ledger:
        assert ledger.get_meta("settled:nights") == "2026-06-01T20:00:00Z"
        assert ledger.get_meta("settled:nights-preview") is None
    second = tick(t("2026-06-01T20:05:00Z"))
    assert [s["name"] for s in second["schedules"]] == ["nights-preview"]
    assert entry(second, "nights-preview")["decision"] == "frozen" and status_calls(emulator) == []


def test_a_preview_of_a_handled_occurrence_names_every_request_and_outcome(emulator, write_schedules, tick,
                                                                           monkeypatch):
    """10:00 is handled by two deliveries, one instance per call: req-first restarts i-stg-1 and is throttled on
    i-stg-2 (its claim given back), req-again's re-delivery has i-stg-2 refused by DCS. A dry run at 10:00 then
    names both requests and both outcomes, each list joined by ", ".

    kills: runner.py _handled `"XX, XX".join(...)` for the holders and for the outcomes."""
    monkeypatch.setenv("BATCH_SIZE", "1")
    add_staging_pair(emulator)
    write_schedules(HOURLY)
    emulator.inject(Fault(endpoint="status", kind="throttle", instance_ids=["i-stg-2"]))
    tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-first"))
    emulator.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-stg-2"]))
    tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-again"))
    preview = entry(tick(t("2026-06-01T10:00:00Z"), user_event='{"dry_run": true}'), "hourly")
    assert (preview["decision"], preview["reason"]) == (
        "handled", "already handled up to 2026-06-01T10:00:00Z: occurrence 2026-06-01T10:00:00Z by request "
                   "req-again, req-first (1 failed, 1 success)")


def test_a_preview_of_an_occurrence_that_claimed_nothing_says_so(emulator, write_schedules, tick):
    """kills: runner.py _handled `iso(None)` in "occurrence ... was looked at then, nothing was claimed"."""
    write_schedules(HOURLY)  # no staging instance: nothing to claim
    tick(t("2026-06-01T10:00:00Z"))
    preview = entry(tick(t("2026-06-01T10:00:00Z"), user_event='{"dry_run": true}'), "hourly")
    assert (preview["decision"], preview["reason"]) == (
        "handled", "already handled up to 2026-06-01T10:00:00Z; occurrence 2026-06-01T10:00:00Z was looked at "
                   "then, nothing was claimed for it")


# -- one-shot entries for instances a tick does not send to ---------------------------------------------------
def _ledger(function_env: dict):
    return open_ledger(function_env["LEDGER_URL"])


def test_instances_already_claimed_or_not_eligible_are_reported_whole(emulator, write_schedules, tick,
                                                                      function_env):
    """At 10:00, i-stg-1 (staging-api) is claimed by an invocation still in flight, i-stg-2 (staging-jobs) was
    restarted by an earlier delivery, i-stg-3 (staging-web) is stopped. Each entry names the instance, the action
    and the occurrence; the claim in flight holds the watermark although the instance after it is done (pending
    is kept, not overwritten), so the 10:05 tick looks at 10:00 again.

    kills: runner.py _plan_one_shot the name or the action dropped from a claimed instance's entry, the name,
    the action or the occurrence dropped from an ineligible one's, and `work.pending |= verdict.hold` ->
    `= verdict.hold` (i-stg-2's done claim, judged after i-stg-1's, lets the watermark pass 10:00)."""
    add_staging_pair(emulator)
    emulator.add_instance(PROJECT, instance_id="i-stg-3", name="staging-web", tags={"env": "staging"},
                          status="CLOSED")
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    keys = {iid: claim_key("hourly", t("2026-06-01T10:00:00Z"), iid, "restart") for iid in ("i-stg-1", "i-stg-2")}
    with _ledger(function_env) as ledger:
        assert ledger.claim_many([keys["i-stg-1"]], "req-busy", now=t("2026-06-01T09:59:59Z")) == [True]
        assert ledger.claim_many([keys["i-stg-2"]], "req-done", now=t("2026-06-01T09:59:59Z")) == [True]
        ledger.record_many({keys["i-stg-2"]: ("success", "restart accepted")})
    summary = tick(t("2026-06-01T10:00:00Z"))
    by_id = {e["instance_id"]: e for e in entry(summary, "hourly")["instances"]}
    assert {iid: (e["name"], e["action"], e["result"], e.get("handled_by"), e["occurrence"])
            for iid, e in by_id.items()} == {
        "i-stg-1": ("staging-api", "restart", "skipped", "req-busy", "2026-06-01T10:00:00Z"),
        "i-stg-2": ("staging-jobs", "restart", "skipped", "req-done", "2026-06-01T10:00:00Z"),
        "i-stg-3": ("staging-web", "restart", "skipped", None, "2026-06-01T10:00:00Z")}
    assert by_id["i-stg-3"]["reason"] == "restart needs status RUNNING or ERROR, is CLOSED"
    assert status_calls(emulator) == []
    with _ledger(function_env) as ledger:
        assert ledger.watermarks()["hourly"] < t("2026-06-01T10:00:00Z")  # held before the claim in flight


def test_a_dry_run_schedule_reports_a_stale_claim_but_never_records_it(emulator, write_schedules, tick,
                                                                        function_env):
    """A schedule with `dry_run: true` changes nothing, the ledger included: a dead invocation's outcome-less claim
    is reported unknown, and left as it was.

    kills: runner.py _plan_one_shot `if request.writes and not work.dry_run` -> `or` (the claim recorded unknown)."""
    add_staging_pair(emulator)
    write_schedules(HOURLY + "    dry_run: true\n")
    key = claim_key("hourly", t("2026-06-01T10:00:00Z"), "i-stg-1", "restart")
    with _ledger(function_env) as ledger:
        assert ledger.claim_many([key], "req-dead", now=t("2026-06-01T09:50:00Z")) == [True]
    summary = tick(t("2026-06-01T10:00:00Z"))
    by_id = {e["instance_id"]: e for e in entry(summary, "hourly")["instances"]}
    assert (by_id["i-stg-1"]["result"], by_id["i-stg-1"]["handled_by"]) == ("unknown", "req-dead")
    assert by_id["i-stg-2"]["reason"].startswith("dry run: would restart")
    with _ledger(function_env) as ledger:
        assert ledger.get_claims([key])[key].outcome == "claimed"
    assert status_calls(emulator) == []


def test_an_enforced_window_reports_a_frozen_stop_once_and_never_applies_it(emulator, write_schedules, tick):
    """An enforced window is looked at every tick (never idle), so its settled marker is what keeps a stop that
    fell in a freeze from being reported again at each tick, and from being applied after the freeze.

    kills: runner.py _due_work `settled = None`, the marker read under the key None, and _window_frozen given
    None for `settled` (the frozen stop reported at every tick)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS + """    enforce: true
freezes:
  - name: release
    from: "2026-06-01T19:58"
    until: "2026-06-01T20:30"
    timezone: UTC
    reason: release night
""")
    tick(t("2026-06-01T19:55:00Z"))
    frozen = [tick(t(f"2026-06-01T{hhmm}:00Z"))["counts"]["frozen"] for hhmm in ("20:00", "20:05", "20:35")]
    assert frozen == [1, 0, 0]
    assert status_calls(emulator) == []


def test_a_missed_occurrence_says_why_nothing_ran(emulator, write_schedules, tick):
    """Ticks dropped for half an hour: the 10:00 restart is older than its 10-minute deadline at 10:30. The entry
    says nothing ran in this tick's window, beside the missed occurrence and its reason.

    kills: runner.py _due_work the `not_due` decision of a schedule whose occurrences all passed: its decision or
    reason renamed, None or dropped."""
    add_staging_pair(emulator)
    write_schedules(HOURLY.replace('cron: "0 * * * *"', 'cron: "0 * * * *"\n    starting_deadline: 10m'))
    tick(t("2026-06-01T09:55:00Z"))
    late = entry(tick(t("2026-06-01T10:30:00Z")), "hourly")
    assert (late["decision"], late["reason"], late["instances"]) == (
        "not_due", "no occurrence to run in this tick's window", [])
    assert late["occurrences"] == [{"occurrence": "2026-06-01T10:00:00Z", "result": "missed",
                                    "reason": "older than starting_deadline 0:10:00 at tick"}]
    assert status_calls(emulator) == []


def test_each_skipped_occurrence_is_reported_by_one_tick_only(emulator, write_schedules, tick):
    """A 5-minute schedule on a skip date: every tick reports its own occurrence skipped, and the watermark moves
    on, so the next tick does not report it again.

    kills: runner.py _due_work `due.fire or due.passed or old` -> `due.fire or (due.passed and old)` (the
    watermark stays: each skip is reported twice)."""
    add_staging_pair(emulator)
    write_schedules("""
schedules:
  - name: often
    action: restart
    cron: "*/5 * * * *"
    skip_dates: ["2026-06-01"]
    instances: {tags: {env: staging}}
""")
    tick(t("2026-06-01T09:55:00Z"))
    reported = [[o["occurrence"] for o in entry(tick(t(f"2026-06-01T10:{mm}:00Z")), "often")["occurrences"]]
                for mm in ("00", "05", "10")]
    assert reported == [["2026-06-01T10:00:00Z"], ["2026-06-01T10:05:00Z"], ["2026-06-01T10:10:00Z"]]
    assert status_calls(emulator) == []


HOURLY_AND_ROLLING = HOURLY + """  - name: rolling
    action: restart
    cron: "0 * * * *"
    instances: {tags: {env: staging}}
    rollout: {batch: 1}
"""


def test_a_frozen_one_shot_says_so_and_a_frozen_rollout_never_starts(emulator, write_schedules, tick):
    """A restart and a rolling restart due inside a freeze: each is reported `frozen` once, with the freeze's
    reason and the occurrence, nothing is sent and no rollout starts (so none runs on after the freeze).

    kills: runner.py _due_work the `frozen` decision's name, reason or occurrence changed, None or dropped, and
    `fire = ""` instead of None (the rollout started with an occurrence of "")."""
    add_staging_pair(emulator)
    write_schedules(HOURLY_AND_ROLLING + """freezes:
  - name: release
    from: "2026-06-01T09:58"
    until: "2026-06-01T10:30"
    timezone: UTC
    reason: release
""")
    tick(t("2026-06-01T09:55:00Z"))
    summary = tick(t("2026-06-01T10:00:00Z"))
    frozen = entry(summary, "hourly")
    assert (frozen["decision"], frozen["occurrence"], frozen["instances"]) == ("frozen", "2026-06-01T10:00:00Z", [])
    assert frozen["reason"].startswith("occurrence 2026-06-01T10:00:00Z falls in freeze 'release'")
    assert frozen["occurrences"] == [{"occurrence": "2026-06-01T10:00:00Z", "result": "frozen",
                                      "reason": frozen["reason"]}]
    assert entry(summary, "rolling")["decision"] == "frozen"
    later = [tick(t(f"2026-06-01T10:{mm}:00Z")) for mm in ("05", "35")]
    assert [s["counts"]["frozen"] for s in later] == [0, 0]
    assert status_calls(emulator) == []


def test_a_stale_window_copy_is_logged_and_the_schedules_after_it_still_run(emulator, write_schedules, tick,
                                                                            capsys):
    """A copy of a 20:03 tick delivered after 20:05 was processed: the window says in its log line that the
    tick is stale (naming the later one) and does nothing; the one-shot after it in the file is still looked at
    (idle: 20:05 covered it). At 20:00 the window and the one-shot shared the tick's one listing of the project.

    kills: runner.py _due_work the stale decision's reason None, `continue` -> `break` after it (the one-shot
    never looked at: one idle schedule, not two), and the window's Work given None for its region (a second
    listing)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    add_staging_pair(emulator)
    write_schedules(DEV_NIGHTS + """    enforce: true
  - name: every5
    action: restart
    cron: "*/5 * * * *"
    instances: {tags: {env: staging}}
""")
    tick(t("2026-06-01T19:55:00Z"))
    stop = tick(t("2026-06-01T20:00:00Z"))
    assert stop["api_calls"]["list_calls"] == 1 and entry(stop, "nights")["decision"] == "due"
    tick(t("2026-06-01T20:05:00Z"))
    sent = len(status_calls(emulator))
    capsys.readouterr()
    stale = tick(t("2026-06-01T20:03:00Z"), lag=timedelta(minutes=3))
    [line] = [line for line in log_lines(capsys, "schedule") if line["schedule"] == "nights"]
    assert (line["decision"], line["reason"]) == (
        "not_due", "stale tick: a later one (2026-06-01T20:05:00Z) was already processed")
    assert stale["idle"] == 2 and stale["schedules"] == [] and len(status_calls(emulator)) == sent


# -- manual runs (POST /schedules/{name}/run) -----------------------------------------------------------------
def test_a_manual_run_of_a_dry_run_schedule_sends_nothing(emulator, write_schedules, http, at_time):
    """kills: runner.py _manual_work the Work's dry_run given None or left out (the run restarts for real)."""
    add_staging_pair(emulator)
    write_schedules(HOURLY + "    dry_run: true\n")
    at_time(t("2026-06-01T10:00:30Z"))
    summary = json.loads(http("POST", "/schedules/hourly/run")["body"])
    assert [e["reason"][:22] for e in entry(summary, "hourly")["instances"]] == ["dry run: would restart"] * 2
    assert status_calls(emulator) == []


def test_a_manual_run_of_a_window_not_active_yet_starts_its_instances_for_the_minute(emulator, write_schedules,
                                                                                      http, at_time):
    """Before active_from a window wants nothing; run by hand it brings its instances up (availability first),
    as an action of the run's minute.

    kills: runner.py _manual_work `Desired(RUNNING, minute)` -> None, Desired(None, ...), Desired(RUNNING, None)
    and the arguments dropped; `tick.replace(second=0, ...)` -> `second=1` (the occurrence is not the minute)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"}, status="CLOSED")
    write_schedules(DEV_NIGHTS + '    active_from: "2026-07-01"\n')
    at_time(t("2026-06-01T10:00:30Z"))
    summary = json.loads(http("POST", "/schedules/nights/run")["body"])
    nights = entry(summary, "nights")
    assert (nights["decision"], nights["occurrence"], nights["desired"]) == ("due", "2026-06-01T10:00:00Z", "running")
    assert [(e["action"], e["result"], e["occurrence"]) for e in nights["instances"]] == [
        ("start", "success", "2026-06-01T10:00:00Z")]
    assert [c["action"] for c in status_calls(emulator)] == ["start"]


# -- windows: copies of ticks from workers whose clocks disagree --------------------------------------------------
def test_a_copy_judged_before_a_transition_another_worker_applied_never_undoes_it(emulator, write_schedules, tick):
    """Worker A gets the 19:55 event late, at 20:00:10 on its clock: windows are judged at the wall clock, so it
    stops i-a for 20:00 (the watermark says 19:55). Worker B, whose clock is 10 s behind, gets a copy of the same
    event at 19:59:50: for it the morning's start is still in force, and only the window states (stopped for the
    later 20:00) say not to start i-a and i-b. It reports each, whole, and sends nothing.

    kills: runner.py _plan_window `not work.manual` -> `work.manual` (B starts i-a again), `continue` -> `break`,
    and every field of the stale entry dropped, emptied or nulled."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    emulator.add_instance(PROJECT, instance_id="i-b", name="dev-web", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS)
    tick(t("2026-06-01T19:50:00Z"))  # first sight: the start (07:00) is in force
    late = tick(t("2026-06-01T19:55:00Z"), lag=timedelta(seconds=310))
    assert [(e["instance_id"], e["result"]) for e in entry(late, "nights")["instances"]] == [
        ("i-a", "success"), ("i-b", "success")]
    copy = tick(t("2026-06-01T19:55:00Z"), lag=timedelta(seconds=290))
    assert entry(copy, "nights")["instances"] == [{
        "instance_id": iid, "name": name, "action": None, "result": "skipped",
        "reason": "stale tick: stopped was applied for the later occurrence 2026-06-01T20:00:00Z",
        "occurrence": "2026-06-01T07:00:00Z"} for iid, name in (("i-a", "dev-api"), ("i-b", "dev-web"))]
    assert [(c["action"], c["instances"]) for c in status_calls(emulator)] == [("stop", ["i-a", "i-b"])]
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "CLOSED"


def test_an_enforced_window_corrects_on_a_redelivery_of_the_tick_that_applied_it(emulator, write_schedules, tick):
    """An enforced window stopped i-a at 20:00; someone starts it by hand; the platform re-delivers the 20:00 event.
    The redelivery is not stale (its time is the transition's own, not before it): it stops i-a again, as a
    correction of its own (claimed apart from the 20:00 stop).

    kills: runner.py _plan_window `request.at < prior.occurrence` -> `<=` (the redelivery is called stale)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS + "    enforce: true\n")
    tick(t("2026-06-01T19:55:00Z"))
    tick(t("2026-06-01T20:00:00Z"))
    emulator.set_status(PROJECT, "i-a", "RUNNING")
    again = tick(t("2026-06-01T20:00:00Z"), lag=timedelta(seconds=30))
    assert [(e["action"], e["result"]) for e in entry(again, "nights")["instances"]] == [("stop", "success")]
    assert [c["action"] for c in status_calls(emulator)] == ["stop", "stop"]


# -- bookkeeping ----------------------------------------------------------------------------------------------
def test_a_quiet_schedules_watermark_is_rewritten_every_other_tick(emulator, write_schedules, tick, function_env):
    """A watermark one period old still starts the next tick's window where nothing can be missed, so a quiet
    schedule's is rewritten only when it is older than that (10,000 quiet schedules' writes were a third of a
    tick's cost); nothing due is ever skipped by it.

    kills: runner.py _mark_is_old `tick - mark > settings.tick_period` -> `>=` (rewritten at every tick)."""
    add_staging_pair(emulator)
    write_schedules(HOURLY)
    marks = []
    for at in ("10:00", "10:05", "10:10", "10:15", "10:20"):
        tick(t(f"2026-06-01T{at}:00Z"))
        with _ledger(function_env) as ledger:
            marks.append(ledger.watermarks()["hourly"].strftime("%H:%M"))
    assert marks == ["10:00", "10:00", "10:10", "10:10", "10:20"]
    assert len(status_calls(emulator)) == 1


# -- a window's transition that never happened, superseded by the next one ----------------------------------------
SHORT = """
schedules:
  - name: short
    window: {stop: "0 20 * * *", start: "10 20 * * *"}
    instances: {ids: [i-a]}
"""


def _missed(summary: dict) -> list[dict]:
    return [e for s in summary["schedules"] for e in s["instances"] if e["result"] == "missed"]


def _throttled_stop(emulator, write_schedules, tick) -> None:
    """SHORT's 20:00 stop of i-a throttled at 20:00 and 20:05: never sent, its claims given back."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(SHORT)
    tick(t("2026-06-01T19:55:00Z"))
    emulator.inject(Fault(endpoint="status", kind="throttle", times=2))
    tick(t("2026-06-01T20:00:00Z"))
    tick(t("2026-06-01T20:05:00Z"))


def test_a_stop_throttled_until_the_start_took_over_is_reported_missed_whole(emulator, write_schedules, tick):
    """DCS throttles the 20:00 stop at 20:00 and 20:05 (nothing done, claims given back); the 20:10 tick applies
    the start and reports the stop missed, whole, with what was last applied and what took over; once.

    kills: every field of runner.py _report_superseded's missed entry dropped, emptied or nulled."""
    _throttled_stop(emulator, write_schedules, tick)
    assert _missed(tick(t("2026-06-01T20:10:00Z"))) == [{
        "instance_id": "i-a", "name": "dev-api", "action": "stop", "result": "missed",
        "reason": "the stop for 2026-06-01T20:00:00Z never happened on this instance (last applied: running for "
                  "2026-05-31T20:10:00Z, nothing sent since); superseded by the start at 2026-06-01T20:10:00Z",
        "occurrence": "2026-06-01T20:00:00Z"}]
    assert _missed(tick(t("2026-06-01T20:15:00Z"))) == []  # said once: the window settles on the start


def test_a_manual_run_that_applies_the_next_transition_reports_the_one_that_never_happened(
        emulator, write_schedules, tick, http, at_time):
    """As above, but an operator runs the window by hand at 20:10:30, before the 20:10 tick: the run applies the
    start and records it, so no tick will ever see the stop as superseded. The run itself must say the stop
    never happened (found by issue 16's mutation run: manual runs were left out, and the loss went unreported).

    kills: runner.py _report_superseded `if work.manual or desired is None` (the fix removed `work.manual`)."""
    _throttled_stop(emulator, write_schedules, tick)
    at_time(t("2026-06-01T20:10:30Z"))
    manual = json.loads(http("POST", "/schedules/short/run")["body"])
    assert [(e["action"], e["occurrence"]) for e in _missed(manual)] == [("stop", "2026-06-01T20:00:00Z")]
    assert _missed(tick(t("2026-06-01T20:15:00Z"))) == []  # the run said it; the tick does not repeat it


def test_a_stop_dcs_answered_is_not_reported_missed_when_the_start_takes_over(emulator, write_schedules, tick):
    """The 20:00 stop reached DCS and failed there (its claim holds the outcome, reported then): the 20:10 start
    does not call it missed.

    kills: runner.py _report_superseded the claim keys built with None for the instance, and
    `not in claimed and not refused` -> `or`."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(SHORT)
    tick(t("2026-06-01T19:55:00Z"))
    emulator.inject(Fault(endpoint="status", kind="failed_entries"))
    failed = tick(t("2026-06-01T20:00:00Z"))
    assert [e["result"] for e in failed["schedules"][0]["instances"]] == ["failed"]
    start = tick(t("2026-06-01T20:10:00Z"))
    assert _missed(start) == [] and [c["action"] for c in status_calls(emulator)] == ["stop"]


def test_a_stop_sent_whose_window_state_was_not_recorded_is_started_and_not_reported_missed(
        emulator, write_schedules, tick, monkeypatch):
    """The 20:00 stop went out and DCS accepted it, but recording the window's state failed (the error was
    reported then), and the next tick is already the 20:10 start. The window's memory still says `running`,
    yet the stop's claim holds DCS's answer: the start must not call the stop missed, and must start i-a (found
    by issue 16's mutation run: the start read i-a as stopped by hand and left it stopped, without a word).

    kills: runner.py _report_superseded `get_claims(None)` and the claim keys built with None for the schedule,
    the instance or the action (the claim not found: a false `missed` alert); the states it returns dropped."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(SHORT)
    tick(t("2026-06-01T19:55:00Z"))
    ledger = invocation.ledger_for(load_settings())

    def set_window_states(*args, **kwargs):
        raise LedgerError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(ledger, "set_window_states", set_window_states)
        stop = tick(t("2026-06-01T20:00:00Z"))
    assert [e["result"] for e in entry(stop, "short")["instances"]] == ["success"] and not stop["ok"]
    emulator.set_status(PROJECT, "i-a", "CLOSED")  # the stop done
    start = tick(t("2026-06-01T20:10:00Z"))
    assert _missed(start) == [] and start["ok"]
    assert [e["result"] for e in entry(start, "short")["instances"]] == ["success"]
    assert [c["action"] for c in status_calls(emulator)] == ["stop", "start"]


def test_a_stop_dcs_refused_before_is_not_reported_missed_when_the_start_takes_over(emulator, write_schedules,
                                                                                     tick):
    """i-a cannot be stopped (an instance type DCS does not stop): the first night's stop is refused and
    remembered, the second night's is skipped with that reason, no call and no claim. The start that follows
    does not call the second stop missed: the remembered refusal says why it never happened.

    kills: runner.py _report_superseded the refusal looked up with None for the schedule, the instance or the
    action, and `refused.get(None)` (the keys it was read with: the test after this one)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", stop_start_supported=False)
    write_schedules(SHORT)
    tick(t("2026-06-01T19:55:00Z"))
    first = tick(t("2026-06-01T20:00:00Z"))
    assert first["schedules"][0]["instances"][0]["result"] == "failed"
    tick(t("2026-06-01T20:10:00Z"))
    second = tick(t("2026-06-02T20:00:00Z"))
    assert [e["result"] for e in second["schedules"][0]["instances"]] == ["skipped"]
    start = tick(t("2026-06-02T20:10:00Z"))
    assert _missed(start) == [] and start["ok"]
    assert [c["action"] for c in status_calls(emulator)] == ["stop"]


def test_a_remembered_refusal_explains_a_stop_even_while_the_window_is_not_settled(emulator, write_schedules,
                                                                                     tick):
    """As above, with i-b beside i-a: on the second night i-b is busy (RESTARTING) at the stop, so the window does
    not settle. The start that follows reports i-b's stop missed (it never happened) but not i-a's: DCS's
    remembered refusal says why i-a was never stopped.

    kills: runner.py _report_superseded the refusal keys read with None for the schedule (or the instance, or
    the action): i-a reported missed too."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", stop_start_supported=False)
    emulator.add_instance(PROJECT, instance_id="i-b", name="dev-jobs")
    write_schedules(SHORT.replace("ids: [i-a]", "ids: [i-a, i-b]"))
    for when in ("2026-06-01T19:55:00Z", "2026-06-01T20:00:00Z", "2026-06-01T20:10:00Z"):
        tick(t(when))
    emulator.set_status(PROJECT, "i-b", "RUNNING")
    emulator.set_status(PROJECT, "i-b", "RESTARTING")
    second = tick(t("2026-06-02T20:00:00Z"))
    assert {e["instance_id"]: e["result"] for e in entry(second, "short")["instances"]} == {
        "i-a": "skipped", "i-b": "skipped"}
    emulator.set_status(PROJECT, "i-b", "RUNNING")
    start = tick(t("2026-06-02T20:10:00Z"))
    assert [(e["instance_id"], e["action"], e["occurrence"]) for e in _missed(start)] == [
        ("i-b", "stop", "2026-06-02T20:00:00Z")]


def test_a_stop_the_window_settled_on_in_a_freeze_is_not_reported_missed_by_the_start(emulator, write_schedules,
                                                                                       tick):
    """The 20:00 stop falls in a freeze: reported `frozen` once, and the window settles on it. The 20:10 start
    does not report it again as missed.

    kills: runner.py _report_superseded `not candidates or settled == ...` -> `and`, and the settled marker read
    under the key None."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(SHORT + """freezes:
  - name: release
    from: "2026-06-01T19:58"
    until: "2026-06-01T20:05"
    timezone: UTC
    reason: release
""")
    tick(t("2026-06-01T19:55:00Z"))
    frozen = tick(t("2026-06-01T20:00:00Z"))
    assert frozen["counts"]["frozen"] == 1
    start = tick(t("2026-06-01T20:10:00Z"))
    assert _missed(start) == [] and status_calls(emulator) == []


def test_a_window_paused_by_moving_active_from_forward_resumes_without_error(emulator, write_schedules, tick):
    """The window ran (i-a started for 07:00), then its file moved active_from two days on: it does nothing
    until then. Its first transition after the pause has no transition before it (the day before is not
    active), and the instance's window state is from before the pause: the stop goes through.

    kills: runner.py _report_superseded `previous is None or ...` -> `and` (AttributeError on None)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    schedule = """
schedules:
  - name: paused
    window: {stop: "0 0 * * *", start: "0 7 * * *"}
    instances: {ids: [i-a]}
"""
    write_schedules(schedule)
    tick(t("2026-06-01T07:00:00Z"))
    write_schedules(schedule + '    active_from: "2026-06-03"\n')
    assert tick(t("2026-06-02T00:00:00Z"))["schedules"] == []
    resumed = tick(t("2026-06-03T00:00:00Z"))
    assert resumed["ok"], resumed["errors"]
    assert [(e["action"], e["result"]) for e in resumed["schedules"][0]["instances"]] == [("stop", "success")]


def test_a_window_not_settled_yet_still_leaves_a_manual_change_alone(emulator, write_schedules, tick):
    """At 20:00 i-a is stopped and i-b is still restarting (so the window does not settle and plans again at 20:05).
    Someone starts i-a by hand in between: the 20:05 tick stops i-b only; i-a's manual start is left alone (the
    window applied its stop already; only `enforce: true` corrects).

    kills: runner.py _plan_window `window_step(desired, inst, prior.state if prior else None, ...)` with the
    state last applied replaced by None (every tick a first sight: i-a stopped again)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    emulator.add_instance(PROJECT, instance_id="i-b", name="dev-web", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS)
    tick(t("2026-06-01T19:55:00Z"))
    emulator.set_status(PROJECT, "i-b", "RESTARTING")
    tick(t("2026-06-01T20:00:00Z"))
    emulator.set_status(PROJECT, "i-a", "RUNNING")
    emulator.set_status(PROJECT, "i-b", "RUNNING")
    later = entry(tick(t("2026-06-01T20:05:00Z")), "nights")
    assert [(e["instance_id"], e["action"], e["result"]) for e in later["instances"]] == [("i-b", "stop", "success")]
    assert [(c["action"], c["instances"]) for c in status_calls(emulator)] == [("stop", ["i-a"]), ("stop", ["i-b"])]


def test_window_claims_keep_their_ledger_keys(emulator, write_schedules, tick, http, at_time, function_env):
    """A window's claims are keyed `schedule|occurrence|instance|action`, a correction's and a manual run's with
    `~enforce@<tick>` / `~manual@<minute>` after the occurrence: the ledger outlives a deployment, and a version
    that keyed them otherwise would not find the claims of the one before (and act again).

    kills: runner.py _plan_window `occurrence_key = ...~manual@...` and `= ...~enforce@...` (the occurrence
    lost), and claim_key given None for the schedule or the action."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api", tags={"env": "dev"})
    write_schedules(DEV_NIGHTS + "    enforce: true\n")
    tick(t("2026-06-01T19:55:00Z"))
    tick(t("2026-06-01T20:00:00Z"))
    emulator.set_status(PROJECT, "i-a", "RUNNING")
    tick(t("2026-06-01T20:05:00Z"))  # enforced: corrected
    emulator.set_status(PROJECT, "i-a", "RUNNING")
    at_time(t("2026-06-01T20:07:10Z"))
    assert http("POST", "/schedules/nights/run")["statusCode"] == 200
    keys = ["nights|2026-06-01T20:00:00Z|i-a|stop", "nights|2026-06-01T20:00:00Z~enforce@2026-06-01T20:05:00Z|i-a|stop",
            "nights|2026-06-01T20:00:00Z~manual@2026-06-01T20:07:00Z|i-a|stop"]
    with _ledger(function_env) as ledger:
        assert {k: c.outcome for k, c in ledger.get_claims(keys).items()} == dict.fromkeys(keys, "success")
    assert len(status_calls(emulator, "stop")) == 3


# -- skipped targets: whole entries ------------------------------------------------------------------------------
def test_targets_left_out_by_protection_or_their_maintenance_window_are_reported_whole(emulator, write_schedules,
                                                                                      tick):
    """A protected instance, and one outside its own DCS maintenance window, are each reported skipped with the
    action they were spared (a window's `stop`, a one-shot's `restart`), their name and the occurrence.

    kills: runner.py _targets `action_word = None` and `... if (work.desired) and False else ...` (a window says
    None), and the name, the action or the occurrence dropped from either skipped entry."""
    add_staging_and_prod(emulator)
    emulator.add_instance(PROJECT, instance_id="i-dev-1", name="dev-keep",
                          tags={"env": "dev", "maintenance-protect": "true"})
    emulator.add_instance(PROJECT, instance_id="i-mw", name="staging-mw", tags={"env": "staging"},
                          maintain_begin="22:00:00", maintain_end="02:00:00")
    write_schedules(DEV_NIGHTS + """  - name: in-window
    action: restart
    cron: "0 * * * *"
    within_maintenance_window: true
    instances: {names: [staging-mw]}
""")
    summary = tick(t("2026-06-01T20:00:00Z"))
    [kept] = entry(summary, "nights")["instances"]
    assert kept == {"instance_id": "i-dev-1", "name": "dev-keep", "action": "stop", "result": "skipped",
                    "reason": kept["reason"], "occurrence": "2026-06-01T20:00:00Z"}
    assert "maintenance-protect" in kept["reason"]
    [outside] = entry(summary, "in-window")["instances"]
    assert outside == {"instance_id": "i-mw", "name": "staging-mw", "action": "restart", "result": "skipped",
                       "reason": outside["reason"], "occurrence": "2026-06-01T20:00:00Z"}
    assert "22:00" in outside["reason"]
    assert status_calls(emulator) == []


# -- log lines: one JSON line per decision, with the request id -------------------------------------------------
def log_lines(capsys, event: str) -> list[dict]:
    """The function's JSON log lines of one event, without their time."""
    lines = json_lines(capsys.readouterr().out)
    return [{k: v for k, v in line.items() if k != "time"} for line in lines if line["event"] == event]


def test_a_tick_logs_its_problems_and_its_outcome_but_not_its_idle_schedules(emulator, write_schedules, tick,
                                                                          capsys):
    """A tick's log: one `invalid_schedule` error line per problem (file, schedule, path, message), one
    `schedule` line per schedule with something to say, none for the idle ones (disabled, not due: the fast
    path's promise), and one `tick` line with the tick's figures; the summary counts the idle ones.

    kills: runner.py run_tick the invalid_schedule line's event or any field renamed/None/dropped; _summary the
    tick line's event or any field; `report.api_calls.get(None, 0)` (two projects' gateways: the calls of the
    last one only); _due_work `report.idle = 1`, `-= 1`, `+= 2`; _idle `return True` -> `return False` for a
    disabled schedule and for a quiet one-shot (a `schedule` line for an idle schedule)."""
    add_staging_pair(emulator)
    emulator.add_instance(OTHER_PROJECT, instance_id="i-o", name="other-api", tags={"env": "staging"})
    write_schedules(HOURLY + f"""  - name: other
    action: restart
    cron: "0 * * * *"
    project_id: "{OTHER_PROJECT}"
    instances: {{tags: {{env: staging}}}}
  - name: paused
    action: restart
    cron: "0 * * * *"
    enabled: false
    instances: {{tags: {{env: staging}}}}
  - name: daily
    action: restart
    cron: "0 3 * * *"
    instances: {{tags: {{env: staging}}}}
""")
    write_schedules('schedules:\n  - {name: broken, action: restart, cron: "0 25 * * *", instances: {names: [x]}}\n',
                    name="broken.yaml")
    capsys.readouterr()
    summary = tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-logs"))
    assert summary["idle"] == 2 and (summary["api_calls"]["list_calls"], summary["api_calls"]["status_calls"]) == (2, 2)
    [problem] = summary["problems"]
    lines = json_lines(capsys.readouterr().out)
    by_event = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append({k: v for k, v in line.items() if k != "time"})
    assert by_event["invalid_schedule"] == [{
        "level": "ERROR", "request_id": "req-logs", "event": "invalid_schedule",
        **{k: problem[k] for k in ("file", "schedule", "path", "message") if problem.get(k) is not None}}]
    assert {"file", "schedule", "message"} <= by_event["invalid_schedule"][0].keys()
    assert sorted(line["schedule"] for line in by_event["schedule"]) == ["hourly", "other"]
    assert by_event["tick"] == [{
        "level": "INFO", "request_id": "req-logs", "event": "tick", "tick": "2026-06-01T10:00:00Z",
        "trigger": summary["trigger"], "ok": False, "counts": summary["counts"], "idle": 2, "problems": 1,
        "api_calls": summary["api_calls"]}]


def test_a_timer_naming_a_schedule_that_does_not_exist_says_so_and_runs_the_others(emulator, write_schedules,
                                                                                      tick):
    """A timer's user_event can name the schedules it runs; a name that is not a valid schedule is an error of
    the tick (ok false, an alert), and the named ones that exist still run.

    kills: runner.py run_tick the error text replaced by None."""
    add_staging_pair(emulator)
    write_schedules(HOURLY)
    summary = tick(t("2026-06-01T10:00:00Z"), user_event=json.dumps({"schedules": ["hourly", "nightly-typo"]}))
    assert summary["errors"] == ["schedule 'nightly-typo' not found or not valid"] and summary["ok"] is False
    assert [e["result"] for e in entry(summary, "hourly")["instances"]] == ["success", "success"]


def test_a_rollout_and_a_plain_schedule_due_together_share_one_listing(emulator, write_schedules, tick):
    """kills: runner.py _due_work the rollout's Work given None for its region (a second listing of the
    project, under the default region)."""
    add_staging_pair(emulator)
    write_schedules(HOURLY_AND_ROLLING)
    tick(t("2026-06-01T09:55:00Z"))
    summary = tick(t("2026-06-01T10:00:00Z"))
    assert summary["api_calls"]["list_calls"] == 1
    assert entry(summary, "rolling")["decision"] == "rollout"


def test_a_refused_tick_logs_why_with_both_clocks(emulator, write_schedules, tick, capsys):
    """A TIMER event dated ahead of the wall clock is refused (issue 10): the error line names the event's time,
    the wall clock's and the reason, as the summary's error does.

    kills: runner.py run_tick the tick_refused line's event renamed or None, any of tick/wall/error None or
    dropped."""
    add_staging_pair(emulator)
    write_schedules(HOURLY)
    capsys.readouterr()
    summary = tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-future"),
                   lag=-timedelta(hours=1))
    [error] = summary["errors"]
    [line] = log_lines(capsys, "tick_refused")
    assert line == {"level": "ERROR", "request_id": "req-future", "event": "tick_refused",
                    "tick": "2026-06-01T10:00:00Z", "wall": line["wall"], "error": error}
    assert line["wall"].startswith("2026-06-01T09:00")
    assert status_calls(emulator) == []


def test_bookkeeping_that_fails_after_the_calls_is_logged_and_reported_beside_the_results(
        emulator, write_schedules, tick, function_env, monkeypatch, capsys):
    """The restart went out; writing the watermarks then failed. The summary keeps DCS's answer and says what was
    not recorded and why it is safe (the claims stop a second action); one error line carries the ledger's error.

    kills: runner.py _write_bookkeeping the error line's event renamed or None, its error None, dropped or
    str(None); the summary's error text changed."""
    add_staging_pair(emulator)
    write_schedules(HOURLY)
    tick(t("2026-06-01T09:55:00Z"))
    ledger = invocation.ledger_for(load_settings())

    def advance_watermarks(*args, **kwargs):
        raise LedgerError("database is locked")

    monkeypatch.setattr(ledger, "advance_watermarks", advance_watermarks)
    capsys.readouterr()
    summary = tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-book"))
    assert [e["result"] for e in entry(summary, "hourly")["instances"]] == ["success", "success"]
    assert summary["ok"] is False
    assert summary["errors"] == [
        "the ledger failed after this tick's calls (database is locked): the results above are what DCS answered; "
        "watermarks or window states were not recorded, so the next tick looks again (the claims taken stop any "
        "second action)"]
    assert log_lines(capsys, "ledger_bookkeeping_failed") == [
        {"level": "ERROR", "request_id": "req-book", "event": "ledger_bookkeeping_failed",
         "error": "database is locked"}]
