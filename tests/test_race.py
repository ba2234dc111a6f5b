"""The race harness (tests/race.py): issue 10's bad days with the invocations in SEPARATE PROCESSES.

Each test runs handler.handler in worker processes that share one ledger (an SQLite file, or a real
redis-server) and one emulator, as function instances do, and stages one fault: a process killed between its
claims and its status call, a claim whose reply is lost (with and without the release failing), a delivery
whose status call is held (throttled, or answered 429 after it took effect) while another process runs the same
tick to its end, an event hours ahead of the worker's wall clock. What one process leaves behind, another must
read correctly: never a second call, never a claim silently counted as done.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import race
from conftest import HOURLY, PROJECT, results_by_instance, status_calls, t, use_ledger
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)

from dcs_maintenance.ledger import CLAIMED, open_ledger
from dcs_maintenance.ledger.base import claim_key
from dcs_maintenance.tools.local import timer_event

NIGHTS = """
schedules:
  - name: nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {ids: [i-a]}
"""

KEYS = [claim_key("hourly", t("2026-06-01T10:00:00Z"), iid, "restart") for iid in ("i-a", "i-b")]


@pytest.fixture(params=["sqlite", "redis"])
def ledger_url(request, tmp_path, monkeypatch, function_env) -> str:
    return use_ledger(request.param, request, tmp_path, monkeypatch)


@pytest.fixture
def fleet(emulator):
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    emulator.add_instance(PROJECT, instance_id="i-b", name="app-b", tags={"env": "staging"})
    return emulator


@pytest.fixture
def workers(ledger_url, tmp_path):
    with race.Workers(2, log_dir=tmp_path / "workers") as pool:
        yield pool


def job(when: str, request_id: str, fault=None, wall: str = "", lag: float = 2.0) -> race.Job:
    """A TIMER event for `when`, delivered `lag` seconds later by the wall clock (or at `wall`)."""
    at = t(when)
    return race.Job(timer_event(at), t(wall) if wall else at + timedelta(seconds=lag), request_id, fault)


def sent(summary: dict) -> list[tuple[str, str]]:
    return sorted((e["instance_id"], e["result"]) for s in summary["schedules"] for e in s["instances"]
                  if e["result"] in ("success", "failed", "unknown") and not e.get("handled_by"))


def stored(ledger_url: str, keys: list[str]) -> dict:
    with open_ledger(ledger_url) as ledger:
        return ledger.get_claims(keys)


def test_a_process_killed_between_claim_and_call_is_reported_unknown_by_another(fleet, write_schedules, workers,
                                                                               ledger_url):
    write_schedules(HOURLY)
    workers.run(0, job("2026-06-01T09:55:00Z", "req-before"))
    killed = workers.run(1, job("2026-06-01T10:00:00Z", "req-killed", race.KILLED))
    assert killed.killed and killed.summary == {} and sorted(killed.orphaned) == sorted(KEYS)
    assert workers.restarts == 1 and status_calls(fleet) == []
    assert {c.outcome for c in stored(ledger_url, KEYS).values()} == {CLAIMED}
    later = workers.run(0, job("2026-06-01T10:05:00Z", "req-later")).summary  # the other process
    assert later["ok"] is False and status_calls(fleet) == []
    for iid in ("i-a", "i-b"):
        entry = results_by_instance(later)[iid]
        assert entry["result"] == "unknown" and entry["handled_by"] == "req-killed"
        assert entry["occurrence"] == "2026-06-01T10:00:00Z"
    assert {c.outcome for c in stored(ledger_url, KEYS).values()} == {"unknown"}
    again = workers.run(1, job("2026-06-01T10:10:00Z", "req-again")).summary  # the restarted worker
    assert sent(again) == [] and status_calls(fleet) == []


@pytest.mark.parametrize("fault", [race.LOST_REPLY, race.LOST_REPLY_NO_RELEASE])
def test_a_claim_whose_reply_is_lost_is_sent_later_or_reported_unknown(fleet, write_schedules, workers, ledger_url,
                                                                      fault):
    write_schedules(HOURLY)
    workers.run(0, job("2026-06-01T09:55:00Z", "req-before"))
    lost = workers.run(1, job("2026-06-01T10:00:00Z", "req-lost", fault))
    assert lost.fired and status_calls(fleet) == []
    assert all(e["not_sent"] for e in results_by_instance(lost.summary).values())
    later = workers.run(0, job("2026-06-01T10:05:00Z", "req-later")).summary
    if fault == race.LOST_REPLY:  # the claims were given back: the next tick sends, once
        assert lost.orphaned == [] and sent(later) == [("i-a", "success"), ("i-b", "success")]
        assert len(status_calls(fleet)) == 1
    else:  # the claims stayed without an outcome: unknown, never sent
        assert sorted(lost.orphaned) == sorted(KEYS) and status_calls(fleet) == []
        assert {e["result"] for e in results_by_instance(later).values()} == {"unknown"}
        assert {c.outcome for c in stored(ledger_url, KEYS).values()} == {"unknown"}


@pytest.mark.parametrize("variant", list(race.OVERLAPS))
def test_a_delivery_overlapping_a_held_status_call_in_another_process(fleet, write_schedules, workers, ledger_url,
                                                                      variant):
    write_schedules(HOURLY)
    workers.run(0, job("2026-06-01T09:55:00Z", "req-before"))
    staged = race.overlap(workers, fleet, variant, (0, job("2026-06-01T10:00:00Z", "req-first")),
                          (1, job("2026-06-01T10:00:00Z", "req-second", lag=3.0)),
                          transition=60.0 if variant == race.OVERLAP_THROTTLE_AFTER else None)
    assert staged.held
    for entry in results_by_instance(staged.second.summary).values():  # the first's claims: in flight, pending
        assert entry["result"] == "skipped" and "in flight" in entry["reason"] and entry["handled_by"] == "req-first"
    first = results_by_instance(staged.first.summary)
    later = workers.run(1, job("2026-06-01T10:05:00Z", "req-later")).summary
    if variant == race.OVERLAP_THROTTLE:  # nothing happened: the claims were given back, the next tick sends
        assert all(e["not_sent"] for e in first.values())
        assert sent(later) == [("i-a", "success"), ("i-b", "success")]
    else:  # the restarts happened (429 after the fact: read back RESTARTING): never sent again
        assert {e["result"] for e in first.values()} == {"success"}
        assert sent(later) == []
    for iid in ("i-a", "i-b"):
        assert fleet.get_instance(PROJECT, iid)["counters"]["restarts"] == 1
    assert {c.outcome for c in stored(ledger_url, KEYS).values()} == {"success"}


def test_a_window_never_settles_on_a_claim_held_by_another_process(emulator, write_schedules, workers, ledger_url):
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(NIGHTS)
    workers.run(0, job("2026-06-01T19:55:00Z", "req-before"))
    staged = race.overlap(workers, emulator, race.OVERLAP_THROTTLE, (0, job("2026-06-01T20:00:00Z", "req-first")),
                          (1, job("2026-06-01T20:00:00Z", "req-second", lag=3.0)))
    assert staged.held and "in flight" in results_by_instance(staged.second.summary)["i-a"]["reason"]
    workers.run(1, job("2026-06-01T20:05:00Z", "req-later"))
    assert [c["action"] for c in status_calls(emulator)] == ["stop", "stop"]  # the throttled one, then the real one
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "CLOSED"


def test_an_event_hours_ahead_of_a_workers_clock_is_refused_and_the_next_tick_acts(fleet, write_schedules, workers,
                                                                                 ledger_url):
    write_schedules(HOURLY)
    ahead = workers.run(0, job("2026-06-02T22:00:00Z", "req-ahead", wall="2026-06-01T09:58:00Z")).summary
    assert ahead["ok"] is False and "ahead of the wall clock" in ahead["errors"][0] and status_calls(fleet) == []
    with open_ledger(ledger_url) as ledger:
        assert ledger.watermarks() == {}
    assert sent(workers.run(1, job("2026-06-01T10:00:00Z", "req-tick")).summary) == [("i-a", "success"),
                                                                                      ("i-b", "success")]
    # the worker that saw the future event acts at the next hour: nothing it remembers holds it back
    assert sent(workers.run(0, job("2026-06-01T11:00:00Z", "req-next")).summary) == [("i-a", "success"),
                                                                                      ("i-b", "success")]
