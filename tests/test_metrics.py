"""Cloud Eye metrics (issue 14): one CreateMetricData call per TIMER tick through the real CES SDK to the
emulator (signed, recorded); nothing without CES_NAMESPACE; a failing call never changes the tick."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from datetime import datetime, timezone

import pytest
from conftest import NIGHTLY, PROJECT, add_staging_pair

from dcs_emulator import Fault
from dcs_maintenance import metrics
from dcs_maintenance.report import BAD_RESULTS, RESULTS
from dcs_maintenance.settings import SettingsError, load_settings
from dcs_maintenance.tools.local import LocalContext

T = datetime(2026, 12, 1, 19, 0, tzinfo=timezone.utc)  # NIGHTLY's occurrence
NAMESPACE = "DCSM.maintenance"


class NamedContext(LocalContext):
    def getFunctionName(self) -> str:  # noqa: N802 - FunctionGraph's method name
        return "maint-prod"


@pytest.fixture
def fleet(emulator):
    return add_staging_pair(emulator)


@pytest.fixture
def ces_on(function_env, monkeypatch):
    monkeypatch.setenv("CES_NAMESPACE", NAMESPACE)
    monkeypatch.delenv("CES_ENDPOINT", raising=False)
    return NAMESPACE


def ces_requests(emu) -> list[dict]:
    return [r for r in emu.requests if r["endpoint"] == "ces"]


def by_name(points: list[dict]) -> dict[str, dict]:
    return {p["metric"]["metric_name"]: p for p in points}


def test_a_tick_with_failures_sends_its_counts_in_one_call(fleet, ces_on, write_schedules, tick):
    write_schedules(NIGHTLY)
    fleet.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-stg-2"]))
    before = time.time() * 1000
    summary = tick(T, context=NamedContext())
    assert summary["counts"]["success"] == 1 and summary["counts"]["failed"] == 1 and not summary["ok"]
    assert summary["metrics"] == {"sent": True, "namespace": NAMESPACE, "metrics": 8}
    [request] = ces_requests(fleet)  # ONE call, signed like every other request
    assert request["authenticated"] and request["status"] == 201 and request["method"] == "POST"
    assert request["path"] == f"/V1.0/{PROJECT}/metric-data"
    points = by_name(fleet.metric_data)
    assert list(points) == ["success", "failed", "skipped", "unknown", "missed", "frozen", "halted",
                            "tick_duration_ms"]
    assert {name: p["value"] for name, p in points.items() if name != "tick_duration_ms"} == {
        "success": 1, "failed": 1, "unknown": 0, "missed": 0, "skipped": 0, "frozen": 0, "halted": 0}
    assert 0 < points["tick_duration_ms"]["value"] < 120_000 and points["tick_duration_ms"]["unit"] == "ms"
    for point in points.values():
        assert point["metric"]["namespace"] == NAMESPACE and point["project_id"] == PROJECT
        assert point["metric"]["dimensions"] == [{"name": "function_name", "value": "maint-prod"}]
        assert before <= point["collect_time"] <= time.time() * 1000  # the real time of sending: Cloud Eye's rule
        assert point["ttl"] == metrics.TTL_SECONDS
    assert points["failed"]["type"] == "int" and points["failed"]["unit"] == "count"


def test_every_result_the_summary_counts_is_sent_frozen_and_halted_too(fleet, ces_on, write_schedules, tick):
    """frozen and halted are counts of the summary like the others (report.RESULTS): a frozen night shows in Cloud
    Eye as such, and a halted rollout can raise the alarm (deploy/terraform/metrics.tf)."""
    write_schedules(NIGHTLY + """
freezes:
  - name: release-week
    from: "2026-11-30T00:00"
    until: "2026-12-04T00:00"
    timezone: Asia/Shanghai
    reason: release week
""")
    summary = tick(T)
    assert summary["counts"]["frozen"] == 1 and summary["counts"]["success"] == 0 and summary["ok"] is True
    values = {p["metric"]["metric_name"]: p["value"] for p in fleet.metric_data}
    assert values["frozen"] == 1 and values["halted"] == 0 and values["success"] == 0
    assert set(metrics.COUNTS) == set(RESULTS) and set(BAD_RESULTS) <= set(metrics.COUNTS)
    counts = {result: n for n, result in enumerate(RESULTS, start=1)}  # a different number for every result
    items = metrics.metric_data({"counts": counts}, 1.0, NAMESPACE, "fn", 0)
    assert {i["metric"]["metric_name"]: i["value"] for i in items if i["type"] == "int"} == counts
    assert counts["halted"] == by_name(items)["halted"]["value"] and by_name(items)["halted"]["unit"] == "count"


def test_nothing_is_sent_without_a_namespace(fleet, function_env, write_schedules, tick, monkeypatch):
    monkeypatch.delenv("CES_NAMESPACE", raising=False)
    write_schedules(NIGHTLY)
    fleet.inject(Fault(endpoint="status", kind="failed_entries"))
    summary = tick(T)
    assert summary["counts"]["failed"] == 2
    assert "metrics" not in summary and ces_requests(fleet) == [] and fleet.metric_data == []


def test_an_idle_tick_sends_zeros_and_a_dry_run_sends_nothing(fleet, ces_on, write_schedules, tick):
    write_schedules(NIGHTLY)
    idle = tick(datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc))
    assert idle["metrics"]["sent"] is True
    assert {p["metric"]["metric_name"]: p["value"] for p in fleet.metric_data if p["type"] == "int"} == dict.fromkeys(
        metrics.COUNTS, 0)
    dry = tick(T, '{"dry_run": true}')
    assert dry["metrics"]["sent"] is False and "dry-run" in dry["metrics"]["reason"]
    assert len(ces_requests(fleet)) == 1


@pytest.mark.parametrize(("fault", "expected"), [
    (Fault(endpoint="ces", kind="http_error", status=503, error_code="ces.0015", error_msg="busy"), "HTTP 503"),
    (Fault(endpoint="ces", kind="throttle"), "HTTP 429"),
    (Fault(endpoint="ces", kind="reset_before"), "Connection"),
    (Fault(endpoint="ces", kind="slow", delay=3), "Timeout"),
], ids=["http-503", "throttled", "reset", "read-timeout"])
def test_a_failing_metric_call_never_changes_the_tick(fleet, ces_on, write_schedules, tick, monkeypatch, fault,
                                                      expected):
    monkeypatch.setenv("DCS_READ_TIMEOUT", "1")  # the metric call waits at most min(read timeout, 10 s)
    write_schedules(NIGHTLY)
    fleet.inject(fault)
    summary = tick(T)
    assert summary["ok"] is True and summary["counts"]["success"] == 2  # the tick's own result is unchanged
    assert summary["metrics"]["sent"] is False
    assert expected.lower() in summary["metrics"]["error"].lower(), summary["metrics"]
    assert summary["history"] == {"recorded": 2}
    assert len(ces_requests(fleet)) == 1  # sent once, never retried
    json.dumps(summary)


def test_an_unreachable_endpoint_is_reported(fleet, ces_on, write_schedules, tick, monkeypatch):
    monkeypatch.setenv("CES_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused
    write_schedules(NIGHTLY)
    summary = tick(T)
    assert summary["ok"] is True and summary["metrics"]["sent"] is False and summary["metrics"]["error"]


def test_the_call_is_skipped_when_the_invocation_is_almost_over(fleet, ces_on, write_schedules, tick):
    write_schedules(NIGHTLY)
    summary = tick(datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc), context=LocalContext(timeout_ms=8_000))
    assert summary["metrics"]["sent"] is False and "not enough time left" in summary["metrics"]["reason"]
    assert ces_requests(fleet) == []


def test_the_emulator_checks_the_body_as_cloud_eye_documents_it(fleet, ces_on):
    settings = dataclasses.replace(load_settings(), ces_namespace="SYS.ECS")  # past our own validation
    result = metrics.send_tick_metrics({"counts": {}}, 5.0, settings)
    assert result["sent"] is False and "HTTP 400" in result["error"] and "namespace" in result["error"]
    stale = metrics.metric_data({"counts": {}}, 1.0, NAMESPACE, "fn", int((time.time() - 4 * 86400) * 1000))
    with pytest.raises(Exception, match="collect_time"):
        metrics.create_metric_data(load_settings(), None, stale)
    assert fleet.metric_data == []


def test_the_admin_route_lists_the_metric_data(fleet, ces_on):
    assert metrics.send_tick_metrics({"counts": {"failed": 3}}, 12.5, load_settings())["sent"] is True
    with urllib.request.urlopen(f"{fleet.url}/_emulator/metrics") as answer:
        data = json.load(answer)["metric_data"]
    assert by_name(data)["failed"]["value"] == 3 and by_name(data)["tick_duration_ms"]["value"] == 12.5
    fleet.reset()
    assert fleet.metric_data == []


@pytest.mark.parametrize("namespace", ["SYS.ECS", "sys.mine", "AGT.x", "SRE.thing", "SERVICE.BMS", "ab", "a.",
                                       ".b", "1a.b", "a.b.c", "a-b.c", "a." + "b" * 31, "a b.c"])
def test_cloud_eye_namespaces_are_checked(function_env, namespace):
    with pytest.raises(SettingsError, match="CES_NAMESPACE"):
        load_settings({**function_env, "CES_NAMESPACE": namespace})


@pytest.mark.parametrize("namespace", ["DCSM.maintenance", "a.b", "My_App.dcs_2", "Ops.sys"])
def test_valid_namespaces_are_kept(function_env, namespace):
    assert load_settings({**function_env, "CES_NAMESPACE": namespace}).ces_namespace == namespace


def test_the_endpoint_defaults_to_dcs_endpoint_then_the_region(function_env, emulator):
    assert load_settings(function_env).ces_endpoint == emulator.url
    assert load_settings({**function_env, "CES_ENDPOINT": "https://ces.example.test/"}).ces_endpoint == \
        "https://ces.example.test"
    no_endpoint = {k: v for k, v in function_env.items() if k != "DCS_ENDPOINT"}
    assert load_settings(no_endpoint).ces_endpoint is None
    with pytest.raises(SettingsError, match="CES_ENDPOINT"):
        load_settings({**function_env, "CES_ENDPOINT": "ces.example.test"})
    settings = load_settings({**no_endpoint, "CES_NAMESPACE": NAMESPACE, "DCS_REGION": "xx-nowhere-9"})
    result = metrics.send_tick_metrics({"counts": {}}, 1.0, settings)
    assert result["sent"] is False and "unknown Cloud Eye region" in result["error"]
