"""Issue 5: the invocation's time budget.

The handler reads context.getRemainingTimeInMilliSeconds() (LocalContext runs down in real time). A
call is started only with connect + read timeout + SAFETY_MARGIN left; the rest is reported as
deferred, the watermark is held, and the next tick picks the work up, each instance sent once overall.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import AK, PROJECT, SK, WEB_HOURLY, acted_ids, add_web, results_by_instance

from dcs_emulator import Fault
from dcs_maintenance import gateway
from dcs_maintenance.tools.local import LocalContext

UTC = timezone.utc
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CONNECT, READ, MARGIN = 0.5, 0.5, 1  # a call needs 2 s of budget
NEEDED_MS = int((CONNECT + READ + MARGIN) * 1000)


@pytest.fixture(autouse=True)
def short_timeouts(fast_backoff, monkeypatch, function_env, emulator):
    monkeypatch.setenv("DCS_CONNECT_TIMEOUT", str(CONNECT))
    monkeypatch.setenv("DCS_READ_TIMEOUT", str(READ))
    monkeypatch.setenv("SAFETY_MARGIN", f"{MARGIN}s")
    monkeypatch.setenv("BATCH_SIZE", "1")
    emulator.transition_delay = 60.0


@pytest.fixture
def fleet(emulator):
    return add_web(emulator, 4)


def deferred(summary: dict) -> list[str]:
    return sorted(iid for iid, r in results_by_instance(summary).items()
                  if r["result"] == "skipped" and "deferred" in r["reason"])


def test_remaining_time_is_read_from_the_context(fleet, write_schedules, tick):
    class CountingContext(LocalContext):
        asked = 0

        def getRemainingTimeInMilliSeconds(self) -> int:  # noqa: N802
            CountingContext.asked += 1
            return super().getRemainingTimeInMilliSeconds()

    write_schedules(WEB_HOURLY)
    summary = tick(T0, context=CountingContext())
    assert summary["ok"] and CountingContext.asked >= 5  # before the list and before each of the 4 chunks


def test_no_call_starts_without_the_budget_for_it_and_the_next_tick_does_the_work(fleet, write_schedules, tick):
    write_schedules(WEB_HOURLY)
    started = time.monotonic()
    starved = tick(T0, context=LocalContext(timeout_ms=NEEDED_MS - 300))
    assert time.monotonic() - started < 1.0
    assert fleet.requests == [], "not even a list call"
    web = starved["schedules"][0]
    assert web["decision"] == "error" and "not enough time left" in web["reason"]
    later = tick(T0 + timedelta(minutes=5))  # the watermark was held
    assert later["ok"] and later["counts"]["success"] == 4
    assert acted_ids(fleet) == ["i-1", "i-2", "i-3", "i-4"]


def test_chunks_past_the_budget_are_deferred_and_picked_up_once_by_the_next_tick(fleet, write_schedules, tick):
    """Every status answer is slow: each chunk costs a read timeout (then a read-back), so the budget runs out
    after a few chunks. The rest are deferred; the next tick sends exactly those, and nothing twice."""
    fleet.inject(Fault(endpoint="status", kind="slow", delay=5.0, times=None))
    write_schedules(WEB_HOURLY)
    budget_ms = NEEDED_MS + 1200
    started = time.monotonic()
    first = tick(T0, context=LocalContext(timeout_ms=budget_ms))
    elapsed = time.monotonic() - started
    assert elapsed < budget_ms / 1000 - MARGIN / 2, f"returned after {elapsed:.2f}s of a {budget_ms} ms budget"
    later_ones = deferred(first)
    sent_first = acted_ids(fleet)
    assert later_ones and sent_first, (later_ones, sent_first)
    assert sorted(sent_first + later_ones) == ["i-1", "i-2", "i-3", "i-4"]
    assert not first["ok"]
    for iid in sent_first:  # executed, answer too late: read back as RESTARTING where the budget allowed
        assert results_by_instance(first)[iid]["result"] in ("success", "unknown")

    fleet.clear_faults()
    second = tick(T0 + timedelta(minutes=5))
    assert sorted(acted_ids(fleet)) == ["i-1", "i-2", "i-3", "i-4"], "each instance sent once overall"
    assert acted_ids(fleet)[len(sent_first):] == later_ones
    results = results_by_instance(second)
    for iid in later_ones:
        assert results[iid]["result"] == "success"
    for iid in sent_first:  # claimed by the first tick: never re-sent; an unknown outcome stays unknown (loudly)
        assert results[iid]["result"] == ("skipped" if results_by_instance(first)[iid]["result"] == "success"
                                          else "unknown")
        assert results[iid]["handled_by"] == first["request_id"]
    tick(T0 + timedelta(minutes=10))
    assert len(acted_ids(fleet)) == 4


def test_a_budget_running_out_mid_tick_still_returns_the_summary_in_time(fleet, write_schedules, tick):
    """A slow first chunk eats the budget: the summary comes back before the platform's deadline, with every
    instance accounted for (sent and unknown, or deferred)."""
    fleet.inject(Fault(endpoint="status", kind="slow", delay=10.0, times=1))
    fleet.inject(Fault(endpoint="show", kind="slow", delay=10.0, times=None))
    write_schedules(WEB_HOURLY)
    budget_ms = NEEDED_MS + 400  # enough for the list and one chunk, not for a read-back after it
    context = LocalContext(timeout_ms=budget_ms)
    summary = tick(T0, context=context)
    assert context.getRemainingTimeInMilliSeconds() > MARGIN * 1000 / 2
    results = results_by_instance(summary)
    assert results["i-1"]["result"] == "unknown"
    assert set(results) == {"i-1", "i-2", "i-3", "i-4"}
    assert deferred(summary) == ["i-2", "i-3", "i-4"]
    assert acted_ids(fleet) == ["i-1"]


def test_read_retries_stop_when_the_budget_would_run_out(fleet, write_schedules, tick, monkeypatch):
    monkeypatch.setattr(gateway, "BACKOFF_BASE", 0.2)
    fleet.inject(Fault(endpoint="list", kind="slow", delay=5.0, times=None))
    write_schedules(WEB_HOURLY)
    context = LocalContext(timeout_ms=NEEDED_MS + 700)
    summary = tick(T0, context=context)
    assert context.getRemainingTimeInMilliSeconds() > 0
    lists = [r for r in fleet.requests if r["endpoint"] == "list"]
    assert 1 <= len(lists) < gateway.READ_ATTEMPTS
    assert summary["schedules"][0]["decision"] == "error"
    assert acted_ids(fleet) == []


def test_client_timeouts_are_explicit_and_the_transport_never_retries(function_env, monkeypatch):
    from dcs_maintenance.gateway import DcsGateway
    from dcs_maintenance.settings import Credentials, load_settings

    monkeypatch.setenv("DCS_CONNECT_TIMEOUT", "3")
    monkeypatch.setenv("DCS_READ_TIMEOUT", "17")
    gw = DcsGateway(load_settings(), Credentials(AK, SK), PROJECT)
    client = gw._sdk()
    assert client._config.timeout == (3.0, 17.0)
    assert client._config.retry_times == 0
    assert client._http_client._session.get_adapter("http://x").max_retries.total == 0


@pytest.mark.parametrize("name, value", [("DCS_READ_TIMEOUT", "0"), ("DCS_READ_TIMEOUT", "forever"),
                                         ("DCS_CONNECT_TIMEOUT", "-1"), ("DCS_CONNECT_TIMEOUT", "601"),
                                         ("SAFETY_MARGIN", "soon")])
def test_invalid_timeouts_are_a_clear_error_at_start(fleet, write_schedules, tick, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    write_schedules(WEB_HOURLY)
    summary = tick(T0)
    assert not summary["ok"] and name in summary["errors"][0]
    assert fleet.requests == []
