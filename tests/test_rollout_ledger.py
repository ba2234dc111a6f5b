"""The rollout state in the ledger (issue 13): `update_meta`, an atomic read-merge-write, on SQLite and on a real
redis-server, and the state read back beside the settled markers in one `get_metas` call."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from conftest import backend_ledger_url
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)

from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.model import Instance, RolloutSpec, Schedule, Selector
from dcs_maintenance.rollout import RolloutState, merge, record_outcomes, start_rollout, state_key, wave_sent
from dcs_maintenance.rollout_runner import STATE_TTL, store_state

UTC = timezone.utc
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "redis"])
def ledger_url(request: pytest.FixtureRequest, tmp_path) -> str:
    return backend_ledger_url(request.param, request, tmp_path)


def append(item: str):
    def change(stored):
        items = json.loads(stored) if stored else []
        return json.dumps(items + [item])

    return change


def test_update_meta_reads_changes_and_writes(ledger_url):
    with open_ledger(ledger_url) as ledger:
        assert ledger.update_meta("k", append("a")) == '["a"]'
        assert ledger.update_meta("k", append("b")) == '["a", "b"]'
        assert ledger.update_meta("k", lambda stored: None) == '["a", "b"]'  # None: leave it as it is
        assert ledger.get_metas(["k", "settled:w", "nothing"]) == {"k": '["a", "b"]', "settled:w": None,
                                                                     "nothing": None}


def test_no_update_is_lost_between_concurrent_writers(ledger_url):
    """Eight threads with their own connections, 25 appends each: every append is kept, none twice."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with open_ledger(ledger_url) as ledger:
                for k in range(25):
                    ledger.update_meta("shared", append(f"{n}-{k}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    with open_ledger(ledger_url) as ledger:
        items = json.loads(ledger.get_meta("shared"))
    assert sorted(items) == sorted(f"{n}-{k}" for n in range(8) for k in range(25))


def test_the_redis_state_expires_eight_days_after_its_last_write(redis_server):  # noqa: F811
    import redis

    prefix = f"t-{uuid.uuid4().hex[:12]}:"
    with open_ledger(f"{redis_server.url}?prefix={prefix}") as ledger:
        ledger.update_meta("rollout:web", lambda stored: "{}", ttl=STATE_TTL)
    client = redis.Redis.from_url(redis_server.url)
    ttl_ms = client.pttl(f"{prefix}meta:rollout:web")
    client.close()
    assert timedelta(days=8) <= STATE_TTL
    assert STATE_TTL - timedelta(minutes=1) < timedelta(milliseconds=ttl_ms) <= STATE_TTL


def schedule() -> Schedule:
    return Schedule("web", "t.yaml", Selector(names=("web-*",)), action="restart", cron="0 3 * * *",
                    rollout=RolloutSpec(batch=None))


def test_store_state_merges_so_a_stale_writer_never_undoes_progress(ledger_url):
    fleet = [Instance(f"i-{k}", f"web-{k}") for k in range(1, 4)]
    first = start_rollout(schedule(), T0, fleet, T0)
    with open_ledger(ledger_url) as ledger:
        stored = store_state(ledger, first)
        assert stored == first
        sent = record_outcomes(wave_sent(first, 1, T0 + timedelta(seconds=5)), 1,
                               {"i-1": "success", "i-2": "failed", "i-3": "unknown"})
        assert store_state(ledger, sent) == sent
        # a stale invocation writes what it knew before the wave: the wave stays sent, with its outcomes
        later_plan = start_rollout(schedule(), T0, fleet[:1], T0 + timedelta(minutes=1))
        assert store_state(ledger, later_plan) == sent
        again = RolloutState.from_dict(json.loads(ledger.get_meta(state_key("web"))))
        assert again == merge(sent, later_plan) == sent
