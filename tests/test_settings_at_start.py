"""Issue 12: settings a tick needs are checked when it starts, not only when something is due.

A deployment without a region (or endpoint), a project id or credentials must say so at its first tick, not on the
night its first schedule fires. Through the harness: TIMER events into handler.handler.
"""

from __future__ import annotations

import pytest
from conftest import NIGHTLY, add_staging_pair, status_calls, t

IDLE = t("2026-12-01T10:00:00Z")  # NIGHTLY fires at 19:00Z: nothing is due at this tick


@pytest.fixture
def fleet(emulator):
    return add_staging_pair(emulator)


@pytest.mark.parametrize("unset, named", [
    (("DCS_REGION", "DCS_ENDPOINT"), "DCS_REGION"),
    (("RUNTIME_PROJECT_ID",), "RUNTIME_PROJECT_ID"),
    (("HUAWEICLOUD_SDK_AK",), "credentials"),
    (("HUAWEICLOUD_SDK_SK",), "credentials"),
])
def test_a_tick_with_nothing_due_reports_missing_settings(fleet, write_schedules, tick, monkeypatch, unset, named):
    write_schedules(NIGHTLY)
    assert tick(IDLE)["ok"] is True  # complete settings: an idle tick is fine
    for name in unset:
        monkeypatch.delenv(name)
    summary = tick(t("2026-12-01T10:05:00Z"))
    assert summary["ok"] is False
    assert [m for m in summary["missing"] if named in m] and named in summary["errors"][0]
    assert fleet.requests == [] and status_calls(fleet) == []


def test_every_missing_setting_is_named_at_once(fleet, write_schedules, tick, monkeypatch):
    write_schedules(NIGHTLY)
    for name in ("DCS_REGION", "DCS_ENDPOINT", "RUNTIME_PROJECT_ID", "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"):
        monkeypatch.delenv(name)
    summary = tick(IDLE)
    assert summary["ok"] is False and len(summary["missing"]) == 3
    assert "missing settings" in summary["errors"][0]


def test_an_empty_schedules_folder_still_needs_the_settings(fleet, tick, monkeypatch):
    monkeypatch.delenv("HUAWEICLOUD_SDK_AK")
    summary = tick(IDLE)
    assert summary["ok"] is False and "credentials" in summary["errors"][0]


def test_schedules_that_name_their_own_project_and_region_do_not_need_the_functions(fleet, write_schedules, tick,
                                                                                    monkeypatch):
    write_schedules(NIGHTLY.replace("timezone: Asia/Shanghai", "timezone: Asia/Shanghai\n"
                                    "    project_id: 0123456789abcdef0123456789abcdef\n    region: cn-north-4"))
    monkeypatch.delenv("RUNTIME_PROJECT_ID")
    monkeypatch.delenv("DCS_REGION")
    summary = tick(IDLE)
    assert summary["ok"] is True, summary["errors"]
    assert "missing" not in summary


def test_agency_credentials_from_the_context_count(fleet, write_schedules, tick, monkeypatch):
    from conftest import AK, SK

    from dcs_maintenance.tools.local import LocalContext

    write_schedules(NIGHTLY)
    monkeypatch.delenv("HUAWEICLOUD_SDK_AK")
    monkeypatch.delenv("HUAWEICLOUD_SDK_SK")
    assert tick(IDLE, context=LocalContext(ak=AK, sk=SK))["ok"] is True
