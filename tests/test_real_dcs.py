"""Issue 11, function side: the function behaves as the real DCS does, in each of the emulator's modes.

Each test runs a real tick (or route) through the SDK against the emulator and asserts what DCS would have done
to each instance, parametrized over the modes where DCS's documents leave the answer open:
`stop_start_refusal` (entry/request), `batch_refusal` (entry/request), `restarting_code` (DCS.4111/DCS.4975),
`restart_during_backup` (refuse/cancel_backup), `list_tags` (true/false), `max_batch` (DCS's documented limit).
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from conftest import AK, PROJECT, SK, results_by_instance, t

from dcs_emulator import Fault
from dcs_maintenance.tools.local import LocalContext

T0 = t("2026-12-01T03:00:00Z")
RESTART = """
schedules:
  - name: nightly
    action: restart
    cron: "0 3 * * *"
    starting_deadline: 30m
    instances: {tags: {env: staging}}
"""
WINDOW = """
schedules:
  - name: dev-nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {tags: {env: dev}}
"""
STOP_1 = t("2026-12-01T20:00:00Z")


class Clock:
    """The emulator's clock, moved by the test: backups finish when the test says, not after real seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def emu_clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(emu_clock):
    """The conftest emulator, with a clock this module moves (backup records settle on it)."""
    from dcs_emulator import Emulator

    emu = Emulator(ak=AK, sk=SK, projects=[PROJECT], transition_delay=0.0, clock=emu_clock)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def puts(emu) -> list[dict]:
    return [r for r in emu.requests if r.get("endpoint") == "status" and r["method"] == "PUT"]


def counters(emu, iid: str) -> dict[str, int]:
    return emu.get_instance(PROJECT, iid)["counters"]


def requests_to(emu, endpoint: str) -> list[dict]:
    return [r for r in emu.requests if r.get("endpoint") == endpoint]


# -- 5. real statuses only ------------------------------------------------------------------------------------
def test_statuses_are_dcs_documented_ones(emulator, write_schedules, tick):
    add = emulator.add_instance
    add(PROJECT, instance_id="i-run", name="stg-run", tags={"env": "staging"})
    add(PROJECT, instance_id="i-backing", name="stg-backing", tags={"env": "staging"}, status="BACKING_UP",
        allow_unknown_status=True)  # DCS has no such status: backups are records
    add(PROJECT, instance_id="i-freezing", name="stg-freezing", tags={"env": "staging"}, status="FREEZING")
    add(PROJECT, instance_id="i-paying", name="stg-paying", tags={"env": "staging"}, status="PAYING")
    add(PROJECT, instance_id="i-upgrade", name="stg-upgrade", tags={"env": "staging"}, service_upgrade=True)
    write_schedules(RESTART)
    first = tick(T0)
    results = results_by_instance(first)
    assert results["i-run"]["result"] == "success"
    unknown = results["i-backing"]
    assert unknown["result"] == "skipped" and "BACKING_UP" in unknown["reason"]
    assert "not a documented DCS instance status" in unknown["reason"] and "not eligible" in unknown["reason"]
    assert results["i-freezing"]["result"] == "skipped" and "transitional" in results["i-freezing"]["reason"]
    assert results["i-paying"]["result"] == "skipped" and "PAYING" in results["i-paying"]["reason"]
    assert "transitional" not in results["i-paying"]["reason"]
    assert results["i-upgrade"]["result"] == "skipped" and "service_upgrade" in results["i-upgrade"]["reason"]
    assert [c["instances"] for c in emulator.calls()] == [["i-run"]]
    # FREEZING is transitional: the occurrence is held, and the instance restarted once it is RUNNING again.
    emulator.set_status(PROJECT, "i-freezing", "RUNNING")
    second = tick(T0 + timedelta(minutes=5))
    assert results_by_instance(second)["i-freezing"]["result"] == "success"
    assert counters(emulator, "i-backing")["restarts"] == counters(emulator, "i-upgrade")["restarts"] == 0


# -- 2. tags fail closed --------------------------------------------------------------------------------------
@pytest.mark.parametrize("list_tags", [True, False], ids=["list-tags", "no-list-tags"])
def test_tag_selectors_and_exclude_read_tags_either_way(emulator, write_schedules, tick, list_tags):
    emulator.set_modes(list_tags=list_tags)
    emulator.add_instance(PROJECT, instance_id="i-a", name="stg-a", tags={"env": "staging"})
    emulator.add_instance(PROJECT, instance_id="i-b", name="stg-b", tags={"env": "staging", "keep": "yes"})
    emulator.add_instance(PROJECT, instance_id="i-c", name="prod-c", tags={"env": "prod"})
    emulator.add_instance(PROJECT, instance_id="i-d", name="bare-d")
    write_schedules(RESTART.replace("instances: {tags: {env: staging}}",
                                    "instances: {tags: {env: staging}}\n    exclude: {tags: {keep: 'yes'}}"))
    summary = tick(T0)
    results = results_by_instance(summary)
    assert results["i-a"]["result"] == "success"
    assert results["i-b"]["result"] == "skipped" and "exclude" in results["i-b"]["reason"]
    assert "i-c" not in results and "i-d" not in results
    assert [c["instances"] for c in emulator.calls()] == [["i-a"]]
    lists = requests_to(emulator, "list")
    # Entries without tags: one list per distinct tag filter (selector, exclude, protect tag) besides the listing.
    assert len(lists) == (1 if list_tags else 4)


@pytest.mark.parametrize("list_tags", [True, False], ids=["list-tags", "no-list-tags"])
@pytest.mark.parametrize("selector", ["{names: ['stg-*']}", "{ids: [i-a, i-guarded]}"])
def test_the_protect_tag_holds_for_instances_selected_by_name_or_id(emulator, write_schedules, tick, list_tags,
                                                                    selector):
    emulator.set_modes(list_tags=list_tags)
    emulator.add_instance(PROJECT, instance_id="i-a", name="stg-a", tags={"env": "staging"})
    emulator.add_instance(PROJECT, instance_id="i-guarded", name="stg-guarded",
                          tags={"env": "staging", "maintenance-protect": "true"})
    write_schedules(RESTART.replace("{tags: {env: staging}}", selector))
    summary = tick(T0)
    results = results_by_instance(summary)
    assert results["i-a"]["result"] == "success"
    assert results["i-guarded"]["result"] == "skipped" and "protected" in results["i-guarded"]["reason"]
    assert counters(emulator, "i-guarded")["restarts"] == 0


@pytest.mark.parametrize("list_tags", [True, False], ids=["list-tags", "no-list-tags"])
def test_put_instances_status_honours_the_protect_tag_either_way(emulator, http, list_tags):
    emulator.set_modes(list_tags=list_tags)
    emulator.add_instance(PROJECT, instance_id="i-a", name="stg-a")
    emulator.add_instance(PROJECT, instance_id="i-guarded", name="stg-guarded", tags={"maintenance-protect": "true"})
    answer = http("PUT", "/instances/status", {"instances": ["i-a", "i-guarded"], "action": "restart"})
    details = {d["instance"]: d for d in json.loads(answer["body"])["details"]}
    assert details["i-a"]["result"] == "success"
    assert details["i-guarded"]["result"] == "failed" and "protected" in details["i-guarded"]["reason"]
    assert counters(emulator, "i-guarded")["restarts"] == 0


def test_where_tags_cannot_be_read_nothing_is_touched_and_the_next_tick_retries(emulator, write_schedules, tick):
    emulator.set_modes(list_tags=False)
    emulator.add_instance(PROJECT, instance_id="i-a", name="stg-a", tags={"env": "staging"})
    emulator.add_instance(PROJECT, instance_id="i-guarded", name="stg-guarded",
                          tags={"env": "staging", "maintenance-protect": "true"})
    write_schedules(RESTART.replace("{tags: {env: staging}}", "{names: ['stg-*']}"))
    emulator.inject(Fault(endpoint="list", kind="slow", delay=0.0, times=1))  # the plain listing goes through
    emulator.inject(Fault(endpoint="list", kind="dcs_error", status=403, error_code="APIGW.0302",
                          error_msg="denied (injected)", times=None))  # every list with a tag filter fails
    summary = tick(T0)
    assert puts(emulator) == [] and not summary["ok"]
    [sched] = summary["schedules"]
    assert sched["decision"] == "error" and "tags" in sched["reason"] and "could not be read" in sched["reason"]
    results = results_by_instance(summary)
    for iid in ("i-a", "i-guarded"):
        assert results[iid]["result"] == "skipped" and "tags could not be read" in results[iid]["reason"]
    emulator.clear_faults()
    later = tick(T0 + timedelta(minutes=5))
    assert results_by_instance(later)["i-a"]["result"] == "success"
    assert results_by_instance(later)["i-guarded"]["result"] == "skipped"
    assert counters(emulator, "i-guarded")["restarts"] == 0 and counters(emulator, "i-a")["restarts"] == 1


# -- 3. a whole-batch refusal costs no other instance its occurrence --------------------------------------------
def _tick_while_one_turns_busy(emulator, tick, when, busy: str) -> dict:
    """Run a tick; its first status call is held until `busy` has started restarting on its own (someone else
    restarted it between the listing and the call), then DCS answers the call."""
    hold = emulator.hold("status", before=True)
    out: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: out.update(summary=tick(when)))
    runner.start()
    assert hold.wait_reached()
    emulator.set_status(PROJECT, busy, "RESTARTING")
    hold.release()
    runner.join(30)
    return out["summary"]


@pytest.mark.parametrize(("mode", "code"), [("entry", "DCS.4111"), ("request", "DCS.4111"), ("request", "DCS.4975")],
                         ids=["entry", "request", "request-4975"])
def test_one_busy_instance_in_a_batch_of_fifty(emulator, write_schedules, tick, mode: str, code: str):
    """Issue 11 item 3. `request`: the whole PUT is refused with the restarting code, DCS.4111 as the API
    reference's Error Codes table has it, or DCS.4975 ("creating/restarting", only in the Terraform provider's
    operateErrorCode list, which retries it): both are busy codes, so the other 49 are done in the same tick and
    i-17 at the next one. `entry`: a `failed` entry carries no code, so the function cannot tell "busy" from any
    other refusal: i-17 ends `failed` for this occurrence and is not retried (README, "A 400 for the whole
    request"); the next occurrence tries it again."""
    emulator.set_modes(batch_refusal=mode, restarting_code=code)
    for n in range(50):
        emulator.add_instance(PROJECT, instance_id=f"i-{n:02d}", name=f"stg-{n:02d}", tags={"env": "staging"})
    write_schedules(RESTART)
    first = _tick_while_one_turns_busy(emulator, tick, T0, busy="i-17")
    results = results_by_instance(first)
    done = [iid for iid, r in results.items() if r["result"] == "success"]
    assert len(done) == 49 and "i-17" not in done
    assert all(counters(emulator, iid)["restarts"] == 1 for iid in done)
    busy = results["i-17"]
    if mode == "request":
        # 400 with the restarting code for the whole request: nothing executed; split until i-17 stood alone;
        # held like a transitional state, its claim given back.
        assert busy["result"] == "skipped" and busy["not_sent"] and code in busy["reason"]
        refused = [r.get("error_code") for r in puts(emulator) if r.get("error_code")]
        assert refused and set(refused) == {code}  # every refusal carried the mode's code
        assert 1 < len(puts(emulator)) <= 1 + 2 * 6  # a bisection, not one call per instance
    else:
        # A failed entry without a reason: DCS refused it for this occurrence, and the summary says so.
        assert busy["result"] == "failed" and busy["reason"] == "restart refused by DCS (result: failed)"
        assert not first["ok"] and len(puts(emulator)) == 1
    emulator.set_status(PROJECT, "i-17", "RUNNING")
    second = tick(T0 + timedelta(minutes=5))
    again = results_by_instance(second)
    if mode == "request":
        assert again["i-17"]["result"] == "success" and counters(emulator, "i-17")["restarts"] == 1
    else:
        # Its claim holds DCS's answer (failed) for this occurrence: the next tick has nothing due for it.
        assert "i-17" not in again and counters(emulator, "i-17")["restarts"] == 0
    assert all(counters(emulator, iid)["restarts"] == 1 for iid in done)  # never sent twice
    tick(T0 + timedelta(minutes=10))
    assert sum(counters(emulator, f"i-{n:02d}")["restarts"] for n in range(50)) == (50 if mode == "request" else 49)


def test_a_permanent_refusal_is_isolated_and_failed_with_dcs_code(emulator, write_schedules, tick):
    for n in range(1, 9):
        emulator.add_instance(PROJECT, instance_id=f"i-{n}", name=f"stg-{n}", tags={"env": "staging"})
    emulator.inject(Fault(endpoint="status", kind="dcs_error", times=None, instance_ids=["i-6"], status=400,
                          error_code="DCS.4007", error_msg="Instance type is not supported."))
    write_schedules(RESTART)
    summary = tick(T0)
    results = results_by_instance(summary)
    assert {iid for iid, r in results.items() if r["result"] == "success"} == {f"i-{n}" for n in range(1, 9)} - {"i-6"}
    assert results["i-6"]["result"] == "failed"
    assert "DCS refused restart for this instance: DCS.4007 Instance type is not supported." in results["i-6"]["reason"]
    # Depth first: [1..8] refused, [1..4] ok, [5..8] refused, [5,6] refused, [5] ok, [6] refused, [7,8] ok.
    assert [c["instances"] for c in emulator.calls()] == [
        [f"i-{n}" for n in range(1, 9)], ["i-1", "i-2", "i-3", "i-4"], ["i-5", "i-6", "i-7", "i-8"], ["i-5", "i-6"],
        ["i-5"], ["i-6"], ["i-7", "i-8"]]
    tick(T0 + timedelta(minutes=5))
    assert len(emulator.calls()) == 7  # recorded as failed: never sent again for this occurrence


def test_splitting_stops_at_the_call_budget_and_the_next_tick_sends_the_rest(emulator, write_schedules, tick):
    for n in range(1, 5):
        emulator.add_instance(PROJECT, instance_id=f"i-{n}", name=f"stg-{n}", tags={"env": "staging"})
    emulator.inject(Fault(endpoint="status", kind="dcs_error", times=1, status=400, error_code="DCS.4111",
                          error_msg="the instance is restarting."))

    class OneCallContext(LocalContext):
        """Plenty of time until the first status call was answered, then none."""

        def getRemainingTimeInMilliSeconds(self) -> int:  # noqa: N802
            return 300_000 if not puts(emulator) else 100

    write_schedules(RESTART)
    first = tick(T0, context=OneCallContext())
    results = results_by_instance(first)
    assert len(puts(emulator)) == 1
    for n in range(1, 5):
        assert results[f"i-{n}"]["result"] == "skipped" and results[f"i-{n}"]["not_sent"]
    second = tick(T0 + timedelta(minutes=5))
    assert {r["result"] for r in results_by_instance(second).values()} == {"success"}
    assert all(counters(emulator, f"i-{n}")["restarts"] == 1 for n in range(1, 5))


@pytest.mark.parametrize("mode", ["entry", "request"])
def test_put_instances_status_splits_the_same_way(emulator, http, mode):
    emulator.set_modes(batch_refusal=mode)
    for n in range(1, 5):
        emulator.add_instance(PROJECT, instance_id=f"i-{n}", name=f"stg-{n}")
    hold = emulator.hold("status", before=True)
    out: dict[str, Any] = {}
    body = {"instances": [f"i-{n}" for n in range(1, 5)], "action": "restart"}
    runner = threading.Thread(target=lambda: out.update(answer=http("PUT", "/instances/status", body)))
    runner.start()
    assert hold.wait_reached()
    emulator.set_status(PROJECT, "i-3", "RESTARTING")  # restarted by someone else meanwhile
    hold.release()
    runner.join(30)
    details = {d["instance"]: d for d in json.loads(out["answer"]["body"])["details"]}
    assert [details[f"i-{n}"]["result"] for n in (1, 2, 4)] == ["success"] * 3
    assert details["i-3"]["result"] == "failed" and counters(emulator, "i-3")["restarts"] == 0
    if mode == "request":
        assert "DCS.4111" in details["i-3"]["reason"] and "send it again" in details["i-3"]["reason"]


# -- 3. DCS's limit on instances per call (API reference, Error Codes: DCS.4100) -----------------------------
def test_more_instances_than_dcs_takes_in_one_call_are_split_until_accepted(emulator, write_schedules, tick,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """API reference, Error Codes: DCS.4100 "The number of instance IDs in an instances array cannot exceed 50.",
    a 400 for the whole request. Where DCS's limit is below BATCH_SIZE (here max_batch 10 under BATCH_SIZE 25),
    DCS.4100 is neither a busy code nor one about the request itself (dcs_rules.refusal_step), so send_split
    halves the call until each half is within the limit: all 25 restarted once, in the same tick."""
    monkeypatch.setenv("BATCH_SIZE", "25")
    emulator.set_modes(max_batch=10)
    for n in range(25):
        emulator.add_instance(PROJECT, instance_id=f"i-{n:02d}", name=f"stg-{n:02d}", tags={"env": "staging"})
    write_schedules(RESTART)
    summary = tick(T0)
    assert summary["ok"] and summary["counts"]["success"] == 25 and summary["counts"]["failed"] == 0
    results = results_by_instance(summary)
    assert len(results) == 25 and {r["result"] for r in results.values()} == {"success"}
    # Depth first: 25 refused, 13 refused, 7 and 6 accepted, 12 refused, 6 and 6 accepted.
    assert [len(c["instances"]) for c in emulator.calls()] == [25, 13, 7, 6, 12, 6, 6]
    assert [r.get("error_code") for r in puts(emulator) if r.get("error_code")] == ["DCS.4100"] * 3
    assert all(counters(emulator, f"i-{n:02d}")["restarts"] == 1 for n in range(25))
    tick(T0 + timedelta(minutes=5))
    assert len(puts(emulator)) == 7  # never sent again


# -- 1. stop/start on instances that cannot be stopped ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["entry", "request"])
def test_a_stop_refusal_is_reported_once_and_remembered(emulator, write_schedules, tick, mode):
    emulator.set_modes(stop_start_refusal=mode)
    emulator.add_instance(PROJECT, instance_id="i-old", name="dev-old", tags={"env": "dev"},
                          stop_start_supported=True)
    emulator.add_instance(PROJECT, instance_id="i-new", name="dev-new", tags={"env": "dev"},
                          stop_start_supported=False)
    path = write_schedules(WINDOW)
    first = tick(STOP_1)
    results = results_by_instance(first)
    assert results["i-old"]["result"] == "success"
    refused = results["i-new"]
    assert refused["result"] == "failed" and not first["ok"]
    assert refused["reason"].startswith("DCS refused stop for this instance: ")
    if mode == "request":
        assert "DCS.4007" in refused["reason"]
    else:
        assert "DCS gave no reason" in refused["reason"] and "only old DCS Redis instances" in refused["reason"]
        assert "dcs-ug-0713007" in refused["reason"]
    assert counters(emulator, "i-old")["stops"] == 1 and counters(emulator, "i-new")["stops"] == 0
    calls = len(puts(emulator))
    assert tick(STOP_1 + timedelta(minutes=5))["ok"] and len(puts(emulator)) == calls  # settled: no call
    tick(t("2026-12-02T07:00:00Z"))  # start: i-old only (i-new never stopped: already RUNNING)
    assert emulator.calls()[-1] == {"instances": ["i-old"], "action": "start"}
    calls = len(puts(emulator))
    second = tick(t("2026-12-02T20:00:00Z"))  # the next transition: i-new skipped with the remembered reason
    assert second["ok"], second
    skipped = results_by_instance(second)["i-new"]
    assert skipped["result"] == "skipped" and "remembered" in skipped["reason"]
    assert "DCS refused stop" in skipped["reason"]
    assert [c["instances"] for c in emulator.calls()[calls:]] == [["i-old"]]
    # The schedule's file changes: one new try.
    tick(t("2026-12-03T07:00:00Z"))
    path.write_text(WINDOW.replace("window:", "description: changed\n    window:"))
    calls = len(puts(emulator))
    third = tick(t("2026-12-03T20:00:00Z"))
    assert results_by_instance(third)["i-new"]["result"] == "failed"
    assert any("i-new" in c["instances"] for c in emulator.calls()[calls:])


def test_a_remembered_refusal_expires_after_seven_days(emulator, write_schedules, tick):
    emulator.add_instance(PROJECT, instance_id="i-new", name="dev-new", tags={"env": "dev"},
                          stop_start_supported=False)
    write_schedules(WINDOW)
    assert results_by_instance(tick(STOP_1))["i-new"]["result"] == "failed"
    for day in range(2, 8):  # days 2..7: within 7 days of the refusal
        tick(t(f"2026-12-{day:02d}T07:00:00Z"))
        entry = results_by_instance(tick(t(f"2026-12-{day:02d}T20:00:00Z")))["i-new"]
        assert entry["result"] == "skipped" and "remembered" in entry["reason"], (day, entry)
        assert "2026-12-08T20:00:00Z" in entry["reason"]  # until when
    tick(t("2026-12-08T07:00:00Z"))
    assert results_by_instance(tick(t("2026-12-08T20:00:00Z")))["i-new"]["result"] == "failed"  # one new try
    assert len([c for c in emulator.calls() if "i-new" in c["instances"]]) == 2


def test_plan_says_stop_start_depends_on_the_instance_type(emulator, write_schedules, tick, http):
    emulator.add_instance(PROJECT, instance_id="i-new", name="dev-new", tags={"env": "dev"},
                          stop_start_supported=False)
    emulator.add_instance(PROJECT, instance_id="i-other", name="dev-other", tags={"env": "dev"})
    write_schedules(WINDOW)
    dry = tick(STOP_1, user_event={"dry_run": True})
    entry = results_by_instance(dry)["i-new"]
    assert entry["reason"] == "dry run: would stop (RUNNING)" and "instance type" in entry["note"]
    tick(STOP_1)  # refused, remembered
    tick(t("2026-12-02T07:00:00Z"))
    plan = json.loads(http("GET", "/plan", query={"at": "2026-12-02T20:00:00Z"})["body"])
    planned = results_by_instance(plan)
    assert "remembered" in planned["i-new"]["reason"] and "DCS refused stop" in planned["i-new"]["reason"]
    assert "instance type" in planned["i-other"]["note"]


# -- 4. backups in progress -------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["restart", "soft_restart", "flush"])
def test_an_instance_being_backed_up_is_held_until_the_backup_ends(emulator, emu_clock, write_schedules, tick,
                                                                   action):
    for n in range(1, 4):
        emulator.add_instance(PROJECT, instance_id=f"i-{n}", name=f"stg-{n}", tags={"env": "staging"})
    emulator.add_instance(PROJECT, instance_id="i-prod", name="prod", tags={"env": "prod"})
    emulator.start_backup(PROJECT, "i-2", seconds=600)
    schedule = RESTART.replace("action: restart", f"action: {action}")
    if action == "flush":
        schedule = schedule.replace("action: flush", "action: flush\n    allow_flush: true")
    write_schedules(schedule)
    first = tick(T0)
    results = results_by_instance(first)
    assert results["i-2"]["result"] == "skipped" and "backup" in results["i-2"]["reason"]
    assert "held" in results["i-2"]["reason"]
    assert {results["i-1"]["result"], results["i-3"]["result"]} == {"success"}
    assert [c["instances"] for c in emulator.calls()] == [["i-1", "i-3"]]
    backups = requests_to(emulator, "backups")
    assert sorted(r["path"].split("/")[-2] for r in backups) == ["i-1", "i-2", "i-3"]  # only those acted on
    emu_clock.now += 601  # the backup ends
    second = tick(T0 + timedelta(minutes=5))
    assert results_by_instance(second)["i-2"]["result"] == "success"
    assert emulator.calls()[-1]["instances"] == ["i-2"]


def test_a_stop_does_not_read_backups(emulator, write_schedules, tick):
    emulator.add_instance(PROJECT, instance_id="i-dev", name="dev", tags={"env": "dev"})
    write_schedules(WINDOW)
    tick(STOP_1)
    assert requests_to(emulator, "backups") == [] and emulator.calls() == [{"instances": ["i-dev"],
                                                                            "action": "stop"}]


@pytest.mark.parametrize("during_backup", ["refuse", "cancel_backup"])
def test_no_backup_is_cancelled_in_either_restart_during_backup_mode(emulator, emu_clock, write_schedules, tick,
                                                                      during_backup: str):
    """User guide "Restarting a DCS Instance" (dcs-ug-0713008): a restart during a backup cancels the backup or
    fails; "Configuration Notice" (dcs-ug-0312023): it is accepted and the backup interrupted (`cancel_backup`).
    The function reads ListBackupRecords first and holds the instance either way, so DCS's choice never comes
    into play: the backup is never cancelled, and the restart goes out at the first tick after it ends."""
    emulator.set_modes(restart_during_backup=during_backup)
    for n in range(1, 4):
        emulator.add_instance(PROJECT, instance_id=f"i-{n}", name=f"stg-{n}", tags={"env": "staging"})
    backup = emulator.start_backup(PROJECT, "i-2", seconds=600)
    write_schedules(RESTART)
    first = results_by_instance(tick(T0))
    assert first["i-2"]["result"] == "skipped" and "backup is in progress" in first["i-2"]["reason"]
    assert [c["instances"] for c in emulator.calls()] == [["i-1", "i-3"]]
    [record] = emulator.backups(PROJECT, "i-2")
    assert record["backup_id"] == backup["backup_id"] and record["status"] == "backuping"  # not cancelled
    assert counters(emulator, "i-2")["restarts"] == 0
    emu_clock.now += 601  # the backup ends
    second = results_by_instance(tick(T0 + timedelta(minutes=5)))
    assert second["i-2"]["result"] == "success" and emulator.calls()[-1]["instances"] == ["i-2"]
    [record] = emulator.backups(PROJECT, "i-2")
    assert record["status"] == "succeed"


@pytest.mark.parametrize(("during_backup", "refusal"),
                         [("refuse", "entry"), ("refuse", "request"), ("cancel_backup", "entry")],
                         ids=["refuse-entry", "refuse-request", "cancel_backup"])
def test_a_failed_backup_read_sends_the_restart_and_leaves_the_backup_to_dcs(emulator, emu_clock, write_schedules,
                                                                            tick, during_backup: str, refusal: str):
    """sending.backup_checks: a ListBackupRecords read that fails does not stop the restart; it goes out "without
    that check" (README, "On a real account": without dcs:instance:getDataBackupLog). What then happens to an
    instance being backed up is DCS's choice (dcs-ug-0713008: the backup is cancelled or the restart fails):
    `refuse` with a failed entry: `failed` for this occurrence; `refuse` with DCS.4096 for the whole request
    (a busy code): held until the backup ends; `cancel_backup`: restarted, and the backup is lost."""
    emulator.set_modes(restart_during_backup=during_backup, batch_refusal=refusal)
    for n in range(1, 4):
        emulator.add_instance(PROJECT, instance_id=f"i-{n}", name=f"stg-{n}", tags={"env": "staging"})
    emulator.start_backup(PROJECT, "i-2", seconds=600)
    emulator.inject(Fault(endpoint="backups", kind="dcs_error", times=None, instance_ids=["i-2"], status=403,
                          error_code="APIGW.0302", error_msg="The IAM user is not authorized to access the API."))
    write_schedules(RESTART)
    first = tick(T0)
    results = results_by_instance(first)
    assert {results["i-1"]["result"], results["i-3"]["result"]} == {"success"}
    busy = results["i-2"]
    if refusal == "entry":  # the outcome's reason carries the check's note (a held one carries DCS's code instead)
        assert "backup records not read" in busy["reason"] and "sent without that check" in busy["reason"]
    assert any("i-2" in c["instances"] for c in emulator.calls())  # the restart went out
    [record] = emulator.backups(PROJECT, "i-2")
    if during_backup == "cancel_backup":
        assert busy["result"] == "success" and counters(emulator, "i-2")["restarts"] == 1
        assert record["status"] == "failed"  # DCS interrupted the backup
        return
    assert record["status"] == "backuping" and counters(emulator, "i-2")["restarts"] == 0
    if refusal == "entry":
        assert busy["result"] == "failed" and busy["reason"].startswith("restart refused by DCS (result: failed)")
    else:
        assert busy["result"] == "skipped" and busy["not_sent"] and "DCS.4096" in busy["reason"]
    emu_clock.now += 601  # the backup ends; the read still fails
    again = results_by_instance(tick(T0 + timedelta(minutes=5)))
    if refusal == "entry":  # its claim holds DCS's answer (failed): nothing due for it until the next occurrence
        assert "i-2" not in again and counters(emulator, "i-2")["restarts"] == 0
    else:
        assert again["i-2"]["result"] == "success" and counters(emulator, "i-2")["restarts"] == 1
    [record] = emulator.backups(PROJECT, "i-2")
    assert record["status"] == "succeed"


# -- 6. a restart that loses data says so ---------------------------------------------------------------------------
def _data_loss_fleet(emulator):
    emulator.add_instance(PROJECT, instance_id="i-single", name="stg-single", tags={"env": "staging"},
                          spec_code="redis.single.xu1.large.2")
    emulator.add_instance(PROJECT, instance_id="i-noaof", name="stg-noaof", tags={"env": "staging"},
                          persistence="none")
    emulator.add_instance(PROJECT, instance_id="i-aof", name="stg-aof", tags={"env": "staging"}, persistence="aof")


def test_restart_targets_that_lose_data_are_marked_in_dry_runs_plans_and_summaries(emulator, write_schedules, tick,
                                                                                  http):
    _data_loss_fleet(emulator)
    write_schedules(RESTART)
    dry = results_by_instance(tick(T0, user_event={"dry_run": True}))
    plan = results_by_instance(json.loads(http("GET", "/plan", query={"at": "2026-12-01T03:00:00Z"})["body"]))
    real = results_by_instance(tick(T0))
    for results in (dry, plan, real):
        assert results["i-single"]["data_loss"] == "restart empties this instance: single-node"
        assert results["i-noaof"]["data_loss"] == "restart empties this instance: AOF off"
        assert "data_loss" not in results["i-aof"]
    assert real["i-noaof"]["result"] == "success" and "AOF off" in real["i-noaof"]["reason"]
    configs = sorted(r["path"].split("/")[-2] for r in requests_to(emulator, "configs"))
    assert configs == sorted(["i-aof", "i-noaof"] * 3)  # never for the single-node one: its spec says it


def test_get_schedules_resolves_targets_with_their_marks(emulator, write_schedules, http):
    _data_loss_fleet(emulator)
    emulator.add_instance(PROJECT, instance_id="i-kept", name="stg-kept",
                          tags={"env": "staging", "maintenance-protect": "true"})
    write_schedules(RESTART + WINDOW.replace("schedules:\n", ""))
    plain = json.loads(http("GET", "/schedules")["body"])
    assert all("targets" not in s for s in plain["schedules"]) and requests_to(emulator, "list") == []
    body = json.loads(http("GET", "/schedules", query={"resolve": "true"})["body"])
    by_name = {s["name"]: s for s in body["schedules"]}
    targets = {x["instance_id"]: x for x in by_name["nightly"]["targets"]}
    assert set(targets) == {"i-single", "i-noaof", "i-aof"}
    assert targets["i-single"]["data_loss"] == "restart empties this instance: single-node"
    assert targets["i-noaof"]["data_loss"] == "restart empties this instance: AOF off"
    assert "data_loss" not in targets["i-aof"]
    assert [x["instance_id"] for x in by_name["nightly"]["left_alone"]] == ["i-kept"]
    assert by_name["dev-nights"]["targets"] == [] and "instance type" in by_name["dev-nights"]["note"]
    assert len(requests_to(emulator, "list")) == 1  # once per project


def test_restart_marks_never_delay_the_restart_when_configs_cannot_be_read(emulator, write_schedules, tick):
    _data_loss_fleet(emulator)
    emulator.inject(Fault(endpoint="configs", kind="dcs_error", status=403, error_code="APIGW.0302",
                          error_msg="denied", times=None))
    write_schedules(RESTART)
    results = results_by_instance(tick(T0))
    assert {r["result"] for r in results.values()} == {"success"}
    assert "could not be read" in results["i-noaof"]["data_loss"]
    assert results["i-single"]["data_loss"] == "restart empties this instance: single-node"


def test_the_calendar_names_targets_and_protected_instances_without_list_tags(emulator, write_schedules, http):
    emulator.set_modes(list_tags=False)
    emulator.add_instance(PROJECT, instance_id="i-a", name="stg-a", tags={"env": "staging"})
    emulator.add_instance(PROJECT, instance_id="i-guarded", name="stg-guarded",
                          tags={"env": "staging", "maintenance-protect": "true"})
    write_schedules(RESTART)
    answer = http("GET", "/calendar.ics", query={"resolve": "true", "days": "2"})
    text = answer["body"].replace("\r\n ", "").replace("\\n", "\n")
    assert "stg-a (i-a)" in text and "stg-guarded (i-guarded): protected by tag" in text
    assert "could not be read" not in text


def test_batch_size_is_at_most_what_dcs_takes_in_one_call():
    """DCS refuses a status call naming more than 50 instances (DCS.4100, the API reference's error codes); a
    BATCH_SIZE above it would only cost a refused call and a split at every tick, so settings refuse it."""
    from dcs_maintenance.settings import SettingsError, load_settings

    assert load_settings({}).batch_size == 50 and load_settings({"BATCH_SIZE": "1"}).batch_size == 1
    for bad in ("51", "1000", "0"):
        with pytest.raises(SettingsError, match=rf"BATCH_SIZE={bad} is outside 1..50 \(DCS takes at most 50"):
            load_settings({"BATCH_SIZE": bad})
