"""SMN notifications: one message per tick that is not ok, through the real SMN SDK to the emulator."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import NIGHTLY, PROJECT, SK, add_staging_pair

from dcs_emulator import Fault
from dcs_maintenance import logs, notify
from dcs_maintenance.settings import load_settings

TOPIC = f"urn:smn:cn-north-4:{PROJECT}:dcs-maintenance-alerts"
T = datetime(2026, 12, 1, 19, 0, tzinfo=timezone.utc)  # 03:00 in Shanghai


@pytest.fixture
def fleet(emulator):
    return add_staging_pair(emulator)


@pytest.fixture
def topic(function_env, monkeypatch):
    monkeypatch.setenv("NOTIFY_SMN_TOPIC_URN", TOPIC)
    monkeypatch.delenv("SMN_ENDPOINT", raising=False)
    return TOPIC


def test_a_clean_tick_sends_nothing(fleet, topic, write_schedules, tick):
    write_schedules(NIGHTLY)
    summary = tick(T)
    assert summary["ok"] and summary["counts"]["success"] == 2
    assert "notification" not in summary
    assert fleet.smn_messages == []


def test_a_failed_instance_sends_one_message_with_the_reason(fleet, topic, write_schedules, tick):
    write_schedules(NIGHTLY)
    fleet.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-stg-2"]))
    summary = tick(T)
    assert not summary["ok"] and summary["counts"]["failed"] == 1
    assert summary["notification"]["sent"] is True
    messages = fleet.smn_messages
    assert len(messages) == 1
    msg = messages[0]
    assert msg["topic_urn"] == TOPIC and msg["project_id"] == PROJECT
    assert msg["message_id"] == summary["notification"]["message_id"]
    assert "1 failed" in msg["subject"] and "2026-12-01T19:00:00Z" in msg["subject"]
    assert "\n" not in msg["subject"] and len(msg["subject"]) <= notify.MAX_SUBJECT
    text = msg["message"]
    assert "Failed (1):" in text and "staging-jobs (i-stg-2)" in text and "refused by DCS" in text
    # What was done stands beside what went wrong (a ledger failure after the calls must not hide them).
    assert "Accepted by DCS in this tick (1):" in text and "staging-api (i-stg-1)" in text
    assert "success 1, failed 1" in text


def test_unknown_outcomes_and_invalid_schedules_are_listed(fleet, topic, write_schedules, tick):
    write_schedules(NIGHTLY)
    write_schedules("schedules:\n  - name: Bad_Name\n    action: restart\n    cron: '0 3 * * *'\n"
                    "    instances: {ids: [x]}\n", "broken.yaml")
    fleet.inject(Fault(endpoint="status", kind="reset_after"))
    summary = tick(T)
    assert summary["counts"]["unknown"] == 2
    [msg] = fleet.smn_messages
    assert "2 unknown, 1 invalid schedule(s)" in msg["subject"]
    text = msg["message"]
    assert "Invalid schedule files" in text and "broken.yaml" in text and "Bad_Name" in text
    assert "Outcome unknown" in text and "staging-jobs (i-stg-2)" in text


def test_only_invalid_schedules_notify_and_repeats_are_suppressed(fleet, topic, write_schedules, tick):
    write_schedules("schedules:\n  - name: nope\n    action: flush\n    cron: '0 3 * * *'\n"
                    "    instances: {ids: [i-stg-1]}\n", "flush.yaml")  # flush without allow_flush
    first = tick(T)
    second = tick(T + timedelta(minutes=5))
    assert not first["ok"] and first["notification"]["sent"] is True
    assert second["notification"] == {"sent": False, "topic": TOPIC, "suppressed": True,
                                      "reason": second["notification"]["reason"]}
    assert "2026-12-01T19:00:00Z" in second["notification"]["reason"]
    assert len(fleet.smn_messages) == 1
    a_day_later = tick(T + timedelta(hours=24))
    assert a_day_later["notification"]["sent"] is True and len(fleet.smn_messages) == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(endpoint="smn", kind="http_error", status=503, error_code="SMN.0503", error_msg="busy"), "HTTP 503"),
        (Fault(endpoint="smn", kind="reset_before"), "Connection"),
        (Fault(endpoint="smn", kind="slow", delay=3), "Timeout"),
    ],
    ids=["http-503", "reset", "read-timeout"],
)
def test_a_failed_publish_is_recorded_and_never_raises(fleet, topic, write_schedules, tick, monkeypatch, fault,
                                                       expected):
    monkeypatch.setenv("DCS_READ_TIMEOUT", "1")  # the publish waits at most min(read timeout, 10 s)
    write_schedules(NIGHTLY)
    fleet.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-stg-2"]))
    fleet.inject(fault)
    summary = tick(T)
    note = summary["notification"]
    assert note["sent"] is False and expected.lower() in note["error"].lower(), note
    assert summary["counts"]["failed"] == 1  # the tick's own result is unchanged
    json.dumps(summary)


def test_a_publish_that_cannot_connect_is_recorded(fleet, topic, write_schedules, tick, monkeypatch):
    monkeypatch.setenv("SMN_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused
    write_schedules(NIGHTLY)
    fleet.inject(Fault(endpoint="status", kind="failed_entries"))
    summary = tick(T)
    assert summary["notification"]["sent"] is False and summary["notification"]["error"]
    assert fleet.smn_messages == []


def test_smn_endpoint_defaults_to_dcs_endpoint_then_region(monkeypatch, function_env, emulator):
    settings = load_settings({**function_env, "NOTIFY_SMN_TOPIC_URN": TOPIC})
    assert settings.notify_endpoint == emulator.url
    settings = load_settings({**function_env, "SMN_ENDPOINT": "https://smn.example.test/"})
    assert settings.notify_endpoint == "https://smn.example.test"
    env = dict(function_env)
    del env["DCS_ENDPOINT"]
    assert load_settings(env).notify_endpoint is None


def test_a_malformed_topic_is_a_settings_error(function_env):
    from dcs_maintenance.settings import SettingsError

    with pytest.raises(SettingsError, match="NOTIFY_SMN_TOPIC_URN"):
        load_settings({**function_env, "NOTIFY_SMN_TOPIC_URN": "alerts"})


def test_secrets_never_reach_the_message(fleet, topic, write_schedules, tick, function_env):
    write_schedules(NIGHTLY)
    token = function_env["API_TOKEN"]
    fleet.inject(Fault(endpoint="status", kind="dcs_error", status=400, error_code="DCS.4000", times=None,
                       error_msg=f"bad request from {SK} with {token}"))  # every call: each instance fails
    summary = tick(T)
    assert summary["counts"]["failed"] == 2
    msg = fleet.smn_messages[0]
    assert SK not in json.dumps(msg) and token not in json.dumps(msg)
    assert logs.MASK in msg["message"]


def _summary(n_failed: int, n_problems: int = 0) -> dict:
    return {
        "ok": False, "tick": "2026-12-01T19:00:00Z", "request_id": "r1",
        "counts": {"success": 0, "failed": n_failed, "unknown": 0, "skipped": 0, "missed": 0},
        "schedules": [{"name": "big", "decision": "due", "reason": "", "instances": [
            {"instance_id": f"i-{n:04d}", "name": f"cache-{n}", "action": "restart", "result": "failed",
             "reason": "refused " + "x" * 500} for n in range(n_failed)]}],
        "problems": [{"file": f"f{n}.yaml", "path": "schedules[0]", "message": "bad"} for n in range(n_problems)],
        "errors": [],
    }


def test_the_message_is_bounded():
    subject, message = notify.compose(_summary(500, 300))
    assert len(message) <= notify.MAX_MESSAGE and len(subject) <= notify.MAX_SUBJECT
    assert "and 480 more" in message and "and 280 more" in message
    assert all(len(line) <= notify.MAX_LINE + 2 for line in message.splitlines())


def test_the_fingerprint_ignores_times_and_request_ids():
    a = {"errors": ["list instances of project p: HTTP 500 DCS.5000: boom (request 1234abcd)"], "schedules": []}
    b = {"errors": ["list instances of project p: HTTP 500 DCS.5000: boom (request 9999ffff)"], "schedules": []}
    c = {"errors": ["list instances of project q: HTTP 500 DCS.5000: boom"], "schedules": []}
    assert notify.fingerprint(a) == notify.fingerprint(b) != notify.fingerprint(c)


def test_no_topic_means_no_attempt(fleet, function_env, write_schedules, tick):
    write_schedules(NIGHTLY)
    fleet.inject(Fault(endpoint="status", kind="failed_entries"))
    summary = tick(T)
    assert not summary["ok"] and "notification" not in summary and fleet.smn_messages == []
