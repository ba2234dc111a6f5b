"""A timer tick end to end: handler.handler -> real SDK -> HTTP -> emulator, asserted on both sides."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from conftest import (
    AK,
    NIGHTLY,
    OTHER_PROJECT,
    PROJECT,
    SK,
    acted_ids,
    add_staging_and_prod,
    json_lines,
    results_by_instance,
    status_calls,
    t,
)

UTC = timezone.utc


@pytest.fixture
def fleet(emulator):
    """A small fleet: staging and prod, a cache tier, odd states and engines."""
    add = add_staging_and_prod(emulator).add_instance
    add(PROJECT, instance_id="i-cache-5", name="cache-sessions", engine_version="5.0", tags={"tier": "cache"})
    add(PROJECT, instance_id="i-cache-3", name="cache-legacy", engine_version="3.0", tags={"tier": "cache"})
    add(PROJECT, instance_id="i-memc", name="cache-memcached", engine="Memcached", engine_version="1.5",
        tags={"tier": "cache"})
    return emulator


def test_nightly_restart_fires_at_its_time_and_not_at_other_ticks(fleet, write_schedules, tick):
    write_schedules(NIGHTLY)
    before = tick(t("2026-12-01T18:55:00Z"))
    assert before["ok"] and status_calls(fleet) == []
    due = tick(t("2026-12-01T19:00:00Z"))  # 03:00 in Shanghai
    after = tick(t("2026-12-01T19:05:00Z"))
    assert status_calls(fleet) == [{"instances": ["i-stg-1", "i-stg-2"], "action": "restart"}]
    results = results_by_instance(due, "nightly")
    assert results["i-stg-1"]["result"] == results["i-stg-2"]["result"] == "success"
    assert results["i-stg-3"]["result"] == "skipped" and "protected" in results["i-stg-3"]["reason"]
    assert due["ok"] and due["counts"]["success"] == 2
    assert after["ok"] and after["counts"]["success"] == 0


def test_the_same_tick_delivered_twice_acts_once(fleet, write_schedules, tick):
    write_schedules(NIGHTLY)
    tick(t("2026-12-01T19:00:00Z"))
    again = tick(t("2026-12-01T19:00:00Z"))
    assert len(status_calls(fleet)) == 1
    assert again["counts"]["success"] == 0


def test_timezones_fire_at_the_right_utc_instants(fleet, write_schedules, tick):
    write_schedules("""
schedules:
  - name: shanghai-3am
    action: soft_restart
    cron: "0 3 * * *"
    timezone: Asia/Shanghai
    instances: {ids: [i-stg-1]}
  - name: berlin-3am
    action: soft_restart
    cron: "0 3 * * *"
    timezone: Europe/Berlin
    instances: {ids: [i-prod-1]}
""")
    fired: dict[str, str] = {}
    when = t("2026-12-01T17:00:00Z")
    while when <= t("2026-12-02T04:00:00Z"):
        summary = tick(when)
        for sched in summary["schedules"]:
            if any(i["result"] == "success" for i in sched["instances"]):
                fired[sched["name"]] = summary["tick"]
        when += timedelta(minutes=5)
    assert fired == {"shanghai-3am": "2026-12-01T19:00:00Z", "berlin-3am": "2026-12-02T02:00:00Z"}
    assert sorted(acted_ids(fleet, "soft_restart")) == ["i-prod-1", "i-stg-1"]


@pytest.mark.parametrize("selector, expected", [
    ("{ids: [i-prod-1, i-stg-1]}", ["i-prod-1", "i-stg-1"]),
    ("{names: ['staging-*']}", ["i-stg-1", "i-stg-2"]),
    ("{names: ['prod-*', 'staging-j*']}", ["i-prod-1", "i-stg-2"]),
    ("{tags: {env: prod}}", ["i-prod-1"]),
    ("{names: ['staging-*'], tags: {env: staging}, ids: [i-stg-2]}", ["i-stg-2"]),
])
def test_selectors(fleet, write_schedules, tick, selector, expected):
    write_schedules(f"""
schedules:
  - name: sel
    action: restart
    cron: "0 * * * *"
    instances: {selector}
""")
    tick(t("2026-12-01T10:00:00Z"))
    assert sorted(acted_ids(fleet, "restart")) == expected


def test_exclude_and_protection_are_reported_and_never_touched(fleet, write_schedules, tick):
    write_schedules("""
schedules:
  - name: staging-but-jobs
    action: restart
    cron: "0 * * * *"
    instances: {tags: {env: staging}}
    exclude: {names: ['*-jobs']}
""")
    summary = tick(t("2026-12-01T10:00:00Z"))
    assert acted_ids(fleet) == ["i-stg-1"]
    results = results_by_instance(summary)
    assert "exclude" in results["i-stg-2"]["reason"] and results["i-stg-2"]["result"] == "skipped"
    assert "maintenance-protect=true" in results["i-stg-3"]["reason"]


def test_unknown_ids_are_reported_not_ignored(fleet, write_schedules, tick):
    write_schedules("""
schedules:
  - name: by-id
    action: restart
    cron: "0 * * * *"
    instances: {ids: [i-prod-1, i-does-not-exist]}
""")
    summary = tick(t("2026-12-01T10:00:00Z"))
    assert acted_ids(fleet) == ["i-prod-1"]
    assert "not found" in results_by_instance(summary)["i-does-not-exist"]["reason"]


@pytest.mark.parametrize("status, acted, reason", [
    ("RUNNING", True, None),
    ("ERROR", True, None),
    ("CLOSED", False, "needs status RUNNING or ERROR"),
    ("RESTARTING", False, "transitional"),
    ("FROZEN", False, "needs status RUNNING or ERROR"),
])
def test_restart_eligibility_by_status(fleet, write_schedules, tick, status, acted, reason):
    fleet.set_status(PROJECT, "i-prod-1", status)
    write_schedules("""
schedules:
  - name: prod
    action: restart
    cron: "0 * * * *"
    instances: {ids: [i-prod-1]}
""")
    summary = tick(t("2026-12-01T10:00:00Z"))
    assert (acted_ids(fleet) == ["i-prod-1"]) is acted
    if reason:
        assert reason in results_by_instance(summary)["i-prod-1"]["reason"]


def test_transitional_instance_is_retried_on_a_later_tick(fleet, write_schedules, tick):
    fleet.set_status(PROJECT, "i-prod-1", "UPGRADING")
    write_schedules("""
schedules:
  - name: prod
    action: restart
    cron: "0 10 * * *"
    instances: {ids: [i-prod-1]}
""")
    tick(t("2026-12-01T10:00:00Z"))
    assert acted_ids(fleet) == []
    fleet.set_status(PROJECT, "i-prod-1", "RUNNING")
    tick(t("2026-12-01T10:05:00Z"))
    assert acted_ids(fleet) == ["i-prod-1"]
    tick(t("2026-12-01T10:10:00Z"))
    assert acted_ids(fleet) == ["i-prod-1"]


def test_flush_only_redis_4_or_later(fleet, write_schedules, tick):
    write_schedules("""
schedules:
  - name: cache-flush
    action: flush
    allow_flush: true
    cron: "0 * * * *"
    instances: {tags: {tier: cache}}
""")
    summary = tick(t("2026-12-01T10:00:00Z"))
    assert status_calls(fleet) == [{"instances": ["i-cache-5"], "action": "flush"}]
    results = results_by_instance(summary)
    assert "Redis 4.0 or later" in results["i-cache-3"]["reason"]
    assert "engine Redis" in results["i-memc"]["reason"]


def test_flush_without_allow_flush_is_invalid_and_flushes_nothing(fleet, write_schedules, tick):
    write_schedules("""
schedules:
  - name: cache-flush
    action: flush
    cron: "0 * * * *"
    instances: {tags: {tier: cache}}
""")
    summary = tick(t("2026-12-01T10:00:00Z"))
    assert status_calls(fleet) == []
    assert not summary["ok"]
    assert any(p["path"].endswith("allow_flush") for p in summary["problems"])


def test_batch_with_one_failed_entry_is_reported(fleet, write_schedules, tick):
    from dcs_emulator import Fault

    fleet.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-stg-2"]))
    write_schedules(NIGHTLY)
    summary = tick(t("2026-12-01T19:00:00Z"))
    results = results_by_instance(summary)
    assert results["i-stg-1"]["result"] == "success"
    assert results["i-stg-2"]["result"] == "failed"
    assert not summary["ok"] and summary["counts"]["failed"] == 1
    assert len(status_calls(fleet)) == 1


def test_invalid_schedule_beside_a_valid_one(fleet, write_schedules, tick):
    write_schedules(NIGHTLY, "good.yaml")
    write_schedules("""
schedules:
  - name: broken
    action: restart
    cron: "0 3 * *"
    instances: {tags: {env: prod}}
""", "bad.yaml")
    summary = tick(t("2026-12-01T19:00:00Z"))
    assert sorted(acted_ids(fleet)) == ["i-stg-1", "i-stg-2"]
    assert not summary["ok"]
    problem = next(p for p in summary["problems"] if p["schedule"] == "broken")
    assert problem["file"].endswith("bad.yaml") and problem["path"] == "$.schedules[0].cron"


def test_wrong_credentials_are_refused_by_the_emulator_and_reported(fleet, write_schedules, tick, monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "not-the-right-secret-key")
    write_schedules(NIGHTLY)
    summary = tick(t("2026-12-01T19:00:00Z"))
    assert not summary["ok"]
    nightly = summary["schedules"][0]
    assert nightly["decision"] == "error" and "401" in nightly["reason"]
    assert status_calls(fleet) == []
    assert all(r["status"] == 401 for r in fleet.requests if r["path"].startswith("/v2/"))


def test_agency_credentials_from_the_context_win(fleet, write_schedules, tick, monkeypatch):
    from dcs_maintenance.tools.local import LocalContext

    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "not-the-right-secret-key")
    write_schedules(NIGHTLY)
    summary = tick(t("2026-12-01T19:00:00Z"), context=LocalContext(ak=AK, sk=SK))
    assert summary["ok"] and summary["counts"]["success"] == 2


@pytest.mark.parametrize("how", ["user_event", "setting", "schedule"])
def test_dry_run_calls_nothing_that_changes_state(fleet, write_schedules, tick, monkeypatch, how):
    text = NIGHTLY + ("    dry_run: true\n" if how == "schedule" else "")
    write_schedules(text)
    if how == "setting":
        monkeypatch.setenv("DRY_RUN", "true")
    summary = tick(t("2026-12-01T19:00:00Z"), user_event={"dry_run": True} if how == "user_event" else "")
    assert status_calls(fleet) == []
    results = results_by_instance(summary)
    assert results["i-stg-1"]["result"] == "skipped" and "dry run: would restart" in results["i-stg-1"]["reason"]
    assert all(r["method"] == "GET" for r in fleet.requests if r["path"].startswith("/v2/"))


def test_max_instances_exceeded_does_nothing(fleet, write_schedules, tick):
    write_schedules("""
schedules:
  - name: too-many
    action: restart
    cron: "0 * * * *"
    max_instances: 1
    instances: {tags: {env: staging}}
""")
    summary = tick(t("2026-12-01T10:00:00Z"))
    assert status_calls(fleet) == []
    assert summary["schedules"][0]["decision"] == "error" and "max_instances" in summary["schedules"][0]["reason"]


def test_batches_are_chunked_by_batch_size_per_project_and_action(emulator, write_schedules, tick, monkeypatch):
    for n in range(5):
        emulator.add_instance(PROJECT, instance_id=f"i-a{n}", name=f"web-{n}", tags={"role": "web"})
        emulator.add_instance(OTHER_PROJECT, instance_id=f"i-b{n}", name=f"web-{n}", tags={"role": "web"})
    monkeypatch.setenv("BATCH_SIZE", "2")
    write_schedules(f"""
schedules:
  - name: web-a
    action: restart
    cron: "0 * * * *"
    instances: {{tags: {{role: web}}}}
  - name: web-b
    action: restart
    cron: "0 * * * *"
    project_id: {OTHER_PROJECT}
    instances: {{tags: {{role: web}}}}
""")
    summary = tick(t("2026-12-01T10:00:00Z"))
    assert summary["ok"] and summary["counts"]["success"] == 10
    puts = [r for r in emulator.requests if r["method"] == "PUT"]
    assert len(puts) == 6 and all(len(r["body"]["instances"]) <= 2 for r in puts)
    lists = [r for r in emulator.requests if r["method"] == "GET" and r["path"].endswith("/instances")]
    assert len(lists) == 2  # once per project


def test_window_desired_state_and_no_call_when_already_there(emulator, write_schedules, tick):
    emulator.add_instance(PROJECT, instance_id="i-dev-1", name="dev-1", tags={"env": "dev"})
    emulator.add_instance(PROJECT, instance_id="i-dev-2", name="dev-2", tags={"env": "dev"}, status="CLOSED")
    write_schedules("""
schedules:
  - name: dev-nights
    window: {stop: "0 20 * * mon-fri", start: "0 7 * * mon-fri"}
    timezone: Europe/Berlin
    instances: {tags: {env: dev}}
""")
    evening = tick(t("2026-12-01T19:00:00Z"))  # Tuesday 20:00 in Berlin
    assert status_calls(emulator) == [{"instances": ["i-dev-1"], "action": "stop"}]
    assert "already CLOSED" in results_by_instance(evening)["i-dev-2"]["reason"]
    tick(t("2026-12-01T19:05:00Z"))
    assert len(status_calls(emulator)) == 1
    tick(t("2026-12-02T06:00:00Z"))  # Wednesday 07:00 in Berlin
    assert status_calls(emulator)[1:] == [{"instances": ["i-dev-1", "i-dev-2"], "action": "start"}]


def test_no_credential_in_logs_or_summary(fleet, write_schedules, tick, capsys, monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "TOKEN-abcdefghijklmnop")
    write_schedules(NIGHTLY)
    summary = tick(t("2026-12-01T19:00:00Z"))
    out = capsys.readouterr().out
    lines = json_lines(out)
    assert lines and all(line["request_id"] for line in lines)
    blob = out + json.dumps(summary)
    for secret in (SK, AK, "TOKEN-abcdefghijklmnop"):
        assert secret not in blob
    assert summary["tick"] == "2026-12-01T19:00:00Z"


def test_unrecognised_and_malformed_events_are_reported_not_raised(function_env):
    import handler
    from dcs_maintenance.tools.local import LocalContext

    assert handler.handler({"hello": 1}, LocalContext())["ok"] is False
    bad_time = handler.handler({"trigger_type": "TIMER", "time": "yesterday", "trigger_name": "x"}, LocalContext())
    assert not bad_time["ok"] and "time" in bad_time["errors"][0]
    bad_opts = handler.handler({"trigger_type": "TIMER", "time": "2026-12-01T10:00:00Z", "trigger_name": "x",
                                "user_event": '{"dry_run": "yes"}'}, LocalContext())
    assert not bad_opts["ok"] and "dry_run" in bad_opts["errors"][0]


def test_an_instance_still_restarting_from_this_occurrence_counts_as_done(fleet, write_schedules, tick):
    """A held watermark re-reads the occurrence: the instance restarted by it is done, not 'transitional'."""
    fleet.set_status(PROJECT, "i-stg-2", "UPGRADING")
    write_schedules(NIGHTLY)
    tick(t("2026-12-01T19:00:00Z"))
    assert acted_ids(fleet) == ["i-stg-1"]
    fleet.set_status(PROJECT, "i-stg-1", "RESTARTING")  # its own restart is slow
    fleet.set_status(PROJECT, "i-stg-2", "RUNNING")
    later = tick(t("2026-12-01T19:05:00Z"))
    results = results_by_instance(later)
    assert "already handled" in results["i-stg-1"]["reason"]
    assert results["i-stg-2"]["result"] == "success"
    assert acted_ids(fleet) == ["i-stg-1", "i-stg-2"]
    quiet = tick(t("2026-12-01T19:10:00Z"))
    assert quiet["counts"]["missed"] == 0 and acted_ids(fleet) == ["i-stg-1", "i-stg-2"]


def test_an_unreachable_ledger_is_reported_and_nothing_is_sent(fleet, write_schedules, tick, monkeypatch):
    monkeypatch.setenv("LEDGER_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    write_schedules(NIGHTLY)
    summary = tick(t("2026-12-01T19:00:00Z"))
    assert not summary["ok"] and "ledger unavailable" in summary["errors"][0]
    assert status_calls(fleet) == []


def test_a_claim_the_ledger_cannot_take_is_not_sent_and_retried_next_tick(fleet, write_schedules, tick, monkeypatch):
    from dcs_maintenance.ledger.base import LedgerError
    from dcs_maintenance.ledger.sqlite import SqliteLedger

    real = SqliteLedger.claim_many
    failures = iter([True])

    def flaky(self, keys, holder, *args, **kwargs):
        if next(failures, False):
            raise LedgerError("database is locked")
        return real(self, keys, holder, *args, **kwargs)

    monkeypatch.setattr(SqliteLedger, "claim_many", flaky)
    write_schedules(NIGHTLY)
    first = tick(t("2026-12-01T19:00:00Z"))
    assert status_calls(fleet) == [] and "could not take the claim" in results_by_instance(first)["i-stg-1"]["reason"]
    tick(t("2026-12-01T19:05:00Z"))
    assert sorted(acted_ids(fleet)) == ["i-stg-1", "i-stg-2"]


def test_every_line_written_is_a_json_log_line_even_when_the_sdk_fails(fleet, write_schedules, tick, capsys):
    """The SDK's own logger would print unstructured lines (URLs, exception text) to stderr: it is silenced."""
    from dcs_emulator import Fault

    fleet.inject(Fault(endpoint="status", kind="reset_after"))
    write_schedules(NIGHTLY)
    summary = tick(t("2026-12-01T19:00:00Z"))
    assert summary["counts"]["unknown"] + summary["counts"]["success"] == 2
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert lines and all(json.loads(line)["request_id"] for line in lines)


def test_a_flush_delivered_twice_and_retried_flushes_once(fleet, write_schedules, tick):
    """The most dangerous action: the same tick twice, a late copy and the next ticks flush the instance once."""
    write_schedules("""
schedules:
  - name: cache-flush
    action: flush
    allow_flush: true
    cron: "0 10 * * *"
    instances: {tags: {tier: cache}}
""")
    for when in ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z", "2026-12-01T10:05:00Z", "2026-12-01T10:00:00Z"):
        tick(t(when))
    assert acted_ids(fleet, "flush") == ["i-cache-5"]
    assert fleet.get_instance(PROJECT, "i-cache-5")["counters"]["flushes"] == 1
    assert all(fleet.get_instance(PROJECT, iid)["counters"]["flushes"] == 0 for iid in ("i-cache-3", "i-memc"))
