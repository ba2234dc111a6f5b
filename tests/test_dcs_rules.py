"""dcs_rules.py as tables: what DCS allows, refuses and warns about (issue 11), each row a documented fact."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dcs_maintenance import dcs_rules
from dcs_maintenance.dcs_rules import BackupRecord
from dcs_maintenance.model import Instance, Schedule, Selector, Window
from dcs_maintenance.planner import eligibility, select, window_desired, window_step

UTC = timezone.utc
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
PROTECT = ("maintenance-protect", "true")


def inst(status: str = "RUNNING", **fields) -> Instance:
    return Instance("i-1", "web-1", status=status, **fields)


# -- 5. statuses ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status, ok, retry, words", [
    ("RUNNING", True, False, "eligible"),
    ("ERROR", True, False, "eligible"),  # "Running or Faulty" (user guide)
    ("RESTARTING", False, True, "transitional"),
    ("FREEZING", False, True, "transitional"),  # on its way to FROZEN: DCS.4120, retried by the provider
    ("IPEXCHANGING", False, True, "transitional"),
    ("CREATING", False, True, "transitional"),
    ("FROZEN", False, False, "needs status RUNNING or ERROR"),
    ("CLOSED", False, False, "needs status RUNNING or ERROR"),
    ("PAYING", False, False, "has not been paid"),  # not held: an order may stay unpaid for days
    ("MIGRATING", False, False, "not in its status table"),
    ("BACKING_UP", False, False, "'BACKING_UP' is not a documented DCS instance status"),  # invented
    ("running", False, False, "not a documented"),  # statuses are upper case
    ("", False, False, "(empty)"),
])
def test_restart_eligibility_by_status(status, ok, retry, words):
    verdict = eligibility("restart", inst(status))
    assert (verdict.ok, verdict.retry) == (ok, retry) and words in verdict.reason, verdict


def test_the_transitional_statuses_are_documented_ones():
    assert set(dcs_rules.DOCUMENTED_STATUSES) | set(dcs_rules.COUNTED_ONLY) >= dcs_rules.TRANSITIONAL
    assert not {"BACKING_UP", "MIGRATING"} & dcs_rules.TRANSITIONAL
    assert len(dcs_rules.DOCUMENTED_STATUSES) == 16


@pytest.mark.parametrize("action", ["restart", "soft_restart", "flush", "stop"])
def test_an_instance_with_dcs_own_upgrade_task_is_left_alone(action):
    verdict = eligibility(action, inst(service_upgrade=True), allow_flush=True)
    assert not verdict.ok and not verdict.retry and "service_upgrade" in verdict.reason


def test_window_steps_use_the_same_statuses():
    schedule = Schedule("w", "f", Selector(names=("*",)), window=Window("0 20 * * *", "0 7 * * *"))
    desired = window_desired(schedule, NOW)
    assert window_step(desired, inst("FREEZING"), None, False).settled is False
    unknown = window_step(desired, inst("BACKING_UP"), None, False)
    assert unknown.action is None and unknown.settled and "BACKING_UP" in unknown.reason
    upgrade = window_step(desired, inst(service_upgrade=True), None, False)
    assert upgrade.action is None and "service_upgrade" in upgrade.reason


# -- 3. whole-request refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize("count, status, code, kind", [
    (50, 400, "DCS.4111", "split"),  # restarting: the cause is somewhere in the batch
    (2, 404, "DCS.3022", "split"),  # a missing instance
    (2, 400, "DCS.4007", "split"),
    (2, 400, "DCS.4100", "split"),  # too many ids: halves are smaller
    (7, 400, "DCS.4064", "fail"),  # the action itself: splitting cannot help
    (3, 400, "DCS.4800", "fail"),
    (1, 400, "DCS.4111", "hold"),  # busy codes the Terraform provider retries
    (1, 400, "DCS.4096", "hold"),
    (1, 400, "DCS.4026", "hold"),
    (1, 400, "DCS.4049", "hold"),
    (1, 400, "DCS.4975", "hold"),
    (1, 400, "DCS.4007", "fail"),  # permanent: instance type not supported
    (1, 404, "DCS.3022", "fail"),
    (1, 400, "APIGW.0201", "fail"),
])
def test_refusal_steps(count, status, code, kind):
    step = dcs_rules.refusal_step("stop", count, status, code, "msg.")
    assert step.kind == kind and code in step.reason and "not executed" in step.reason
    if kind == "fail" and count == 1:
        assert step.reason == f"DCS refused stop for this instance: {code} msg. (HTTP {status}, not executed)"


@pytest.mark.parametrize("action, words", [
    ("stop", ["DCS refused stop for this instance", "DCS gave no reason", "only old DCS Redis instances",
              dcs_rules.STOP_START_DOC]),
    ("start", ["DCS refused start for this instance", "DCS gave no reason"]),
    ("restart", ["restart refused by DCS (result: failed)"]),
])
def test_a_failed_entry_reason(action, words):
    reason = dcs_rules.entry_refusal_reason(action)
    assert all(w in reason for w in words), reason


# -- 1. remembered refusals ----------------------------------------------------------------------------------------
SCHEDULE = Schedule("dev", "schedules/dev.yaml", Selector(tags=(("env", "dev"),)), skip_dates=frozenset(
    {date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 31)}), window=Window("0 20 * * *", "0 7 * * *"))
PRINT = dcs_rules.schedule_fingerprint(SCHEDULE)


@pytest.mark.parametrize("stored_at, now, fingerprint, holds", [
    (NOW, NOW, PRINT, True),
    (NOW, NOW + timedelta(days=6, hours=23), PRINT, True),
    (NOW, NOW + timedelta(days=7), PRINT, False),  # 7 days: one new try
    (NOW, NOW + timedelta(days=30), PRINT, False),
    (NOW, NOW + timedelta(hours=1), "another", False),  # the schedule changed
    (NOW + timedelta(hours=1), NOW, PRINT, False),  # stored in the future (a clock jump): try
])
def test_a_remembered_refusal_holds_for_seven_days_and_one_schedule(stored_at, now, fingerprint, holds):
    raw = dcs_rules.remember("DCS refused stop for this instance: DCS.4007 x", stored_at, PRINT)
    memory = dcs_rules.remembered(raw, now, fingerprint)
    assert (memory is not None) is holds
    if holds:
        assert memory.until == stored_at + timedelta(days=7)
        skip = dcs_rules.remembered_skip("stop", memory)
        assert "remembered" in skip and "DCS.4007" in skip and "2026-12-08T20:00:00Z" in skip


@pytest.mark.parametrize("raw", [None, "", "not json", "{}", '{"at": "yesterday", "reason": "x", "fingerprint": "y"}',
                                 "[1, 2]"])
def test_an_unreadable_memory_means_try_again(raw):
    assert dcs_rules.remembered(raw, NOW, PRINT) is None


def test_the_fingerprint_is_the_same_in_every_process_and_changes_with_the_schedule():
    code = ("from datetime import date; from dcs_maintenance import dcs_rules; from dcs_maintenance.model import *;"
            "s = Schedule('dev', 'schedules/dev.yaml', Selector(tags=(('env', 'dev'),)), skip_dates=frozenset("
            "{date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 31)}), window=Window('0 20 * * *', "
            "'0 7 * * *')); print(dcs_rules.schedule_fingerprint(s))")
    root = Path(__file__).resolve().parent.parent
    prints = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                             env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout.strip() for seed in (1, 2, 3)}
    assert prints == {PRINT}
    assert dcs_rules.schedule_fingerprint(replace(SCHEDULE, description="changed")) != PRINT
    assert dcs_rules.schedule_fingerprint(replace(SCHEDULE, enforce=True)) != PRINT


def test_the_memory_key():
    assert dcs_rules.refusal_key("dev", "i-1", "stop") == "refused:dev:i-1:stop"


# -- 4. backups -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("records, hold, words", [
    ([], False, "no backup in progress"),
    ([BackupRecord("b1", "succeed"), BackupRecord("b0", "failed"), BackupRecord("b9", "expired")], False, "no"),
    ([BackupRecord("b1", "backuping", "2026-12-01T19:58:00.000Z")], True, "b1 backuping since 2026-12-01T19:58"),
    ([BackupRecord("b2", "waiting")], True, "b2 waiting"),
    ([BackupRecord("b1", "BACKUPING")], True, "in progress"),
    ([BackupRecord("b1", "succeed"), BackupRecord("b2", "waiting"), BackupRecord("b3", "backuping")], True,
     "(and 1 more)"),
    ([BackupRecord("b1", "deleted")], False, "no backup"),
])
def test_backup_verdicts(records, hold, words):
    verdict = dcs_rules.backup_verdict(records)
    assert verdict.hold is hold and words in verdict.reason


# -- 6. data loss ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, mark, read", [
    ({"spec_code": "redis.single.xu1.large.2"}, dcs_rules.SINGLE_NODE, False),
    ({"spec_code": "dcs.single_node"}, dcs_rules.SINGLE_NODE, False),  # v1 spec code (Redis 3.0)
    ({"spec_code": "redis.ha.xu1.large.r2.2"}, None, True),
    ({"spec_code": "redis.cluster.xu1.large.r2.4"}, None, True),
    ({"spec_code": ""}, None, True),  # unknown: ask the parameters
    ({"engine": "Memcached", "spec_code": "dcs.memcached.master_standby"}, dcs_rules.NO_PERSISTENCE, False),
])
def test_what_the_list_entry_says_about_a_restart(fields, mark, read):
    verdict = dcs_rules.data_loss(inst(**fields))
    assert (verdict.mark, verdict.read_configs) == (mark, read)


@pytest.mark.parametrize("config, mark", [
    ({"appendonly": "no", "timeout": "0"}, dcs_rules.AOF_OFF),
    ({"appendonly": "NO "}, dcs_rules.AOF_OFF),
    ({"appendonly": "yes"}, None),
    ({"timeout": "0"}, None),  # not reported for this instance type
])
def test_appendonly(config, mark):
    assert dcs_rules.aof_mark(config) == mark


# -- 2. tags ----------------------------------------------------------------------------------------------------------
def test_the_tag_filters_a_tick_needs():
    a = Schedule("a", "f", Selector(tags=(("tier", "cache"), ("env", "prod"))), action="restart", cron="0 3 * * *")
    b = Schedule("b", "f", Selector(names=("web-*",)), action="restart", cron="0 3 * * *",
                 exclude=Selector(tags=(("keep", "yes"),)))
    c = Schedule("c", "f", Selector(tags=(("env", "prod"), ("tier", "cache"))), action="flush", cron="0 3 * * *")
    assert dcs_rules.tag_filters([a, b, c], PROTECT) == {(PROTECT,), (("env", "prod"), ("tier", "cache")),
                                                         (("keep", "yes"),)}
    assert dcs_rules.filter_text((("env", "prod"), ("tier", "cache"))) == "env=prod,tier=cache"


def test_resolved_tags_are_exactly_the_pairs_the_filters_confirmed():
    listed = [Instance("i-1", "a", tags_known=False), Instance("i-2", "b", tags_known=False),
              Instance("i-3", "c", tags=(("x", "y"),))]
    found = {(("env", "prod"), ("tier", "cache")): frozenset({"i-1"}), (PROTECT,): frozenset({"i-2"}),
             (("env", "prod"),): frozenset({"i-1", "i-2"})}
    one, two, three = dcs_rules.resolve_tags(listed, found)
    assert one.tags_known and one.tag_map == {"env": "prod", "tier": "cache"}
    assert two.tags_known and two.tag_map == {"env": "prod", "maintenance-protect": "true"}
    assert three == listed[2]
    failed = dcs_rules.resolve_tags(listed, found, "listing by tag x failed: HTTP 500")
    assert not failed[0].tags_known and "HTTP 500" in failed[0].tags_note and failed[2].tags_known


@pytest.mark.parametrize("selector, error, skipped", [
    (Selector(names=("web-*",)), True, ["i-1"]),  # may match: nothing done, each named
    (Selector(ids=("i-1",)), True, ["i-1"]),
    (Selector(tags=(("env", "prod"),)), True, []),  # tags only: every unknown instance may match; counted
    (Selector(names=("db-*",)), False, []),  # cannot match whatever its tags: not concerned
    (Selector(ids=("i-9",)), False, ["i-9"]),  # (i-9 is simply not found)
])
def test_selection_fails_closed_on_unknown_tags(selector, error, skipped):
    schedule = Schedule("s", "f", selector, action="restart", cron="0 3 * * *")
    unknown = Instance("i-1", "web-1", tags_known=False, tags_note="listing by tag failed: HTTP 503")
    selection = select(schedule, [unknown], PROTECT)
    assert (selection.error is not None) is error and selection.retry is error
    assert [iid for iid, _, _ in selection.skipped] == skipped
    if error:
        assert "could not be read" in selection.error and "HTTP 503" in selection.error
        assert selection.targets == ()
