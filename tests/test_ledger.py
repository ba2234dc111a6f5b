"""The ledger backends: every behaviour test runs on SQLite and on a real redis-server."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from conftest import backend_ledger_url
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)

from dcs_maintenance.ledger import (
    CLAIM_TTL,
    CLAIMED,
    ClaimRecord,
    LedgerError,
    WindowState,
    claim_key,
    default_ledger_url,
    open_ledger,
    redact_url,
)
from dcs_maintenance.ledger.base import format_utc, parse_utc
from dcs_maintenance.ledger.redis import RedisLedger
from dcs_maintenance.ledger.sqlite import SqliteLedger

UTC = timezone.utc
T0 = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
BACKENDS = ["sqlite", "redis"]


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path) -> str:
    return backend_ledger_url(request.param, request, tmp_path)


@pytest.fixture
def ledger(ledger_url: str):
    with open_ledger(ledger_url) as led:
        yield led


# -- claims ------------------------------------------------------------------------------------


def test_claim_exactly_once(ledger):
    key = claim_key("nightly", T0, "inst-1", "restart")
    assert key == "nightly|2026-03-29T01:00:00Z|inst-1|restart"
    before = datetime.now(UTC)
    assert ledger.claim_many([key], "req-1") == [True]
    assert ledger.claim_many([key], "req-1") == [False]
    assert ledger.claim_many([key], "req-2") == [False]
    rec = ledger.get_claims([key])[key]
    assert (rec.key, rec.outcome, rec.detail, rec.holder) == (key, CLAIMED, "", "req-1")
    assert rec.at.tzinfo == UTC and before - timedelta(seconds=1) <= rec.at <= datetime.now(UTC)


def test_claim_many_mixed(ledger):
    assert ledger.claim_many(["a", "b"], "h1") == [True, True]
    # existing, new, existing, new, and a key repeated within one call: only its first is won
    assert ledger.claim_many(["a", "c", "b", "d", "c"], "h2") == [False, True, False, True, False]
    claims = ledger.get_claims(["a", "b", "c", "d", "missing"])
    assert {k: c.holder for k, c in claims.items()} == {"a": "h1", "b": "h1", "c": "h2", "d": "h2"}
    assert ledger.claim_many([], "h3") == []
    assert ledger.get_claims([]) == {}


def test_record_many_then_get_claims(ledger):
    ledger.claim_many(["x", "y", "z"], "req-1")
    ledger.record_many({"x": ("success", "ok"), "y": ("failed", 'DCS.4049: "busy" / é')})
    claims = ledger.get_claims(["x", "y", "z"])
    assert claims["x"].outcome == "success" and claims["x"].detail == "ok"
    assert claims["y"].outcome == "failed" and claims["y"].detail == 'DCS.4049: "busy" / é'
    assert claims["z"].outcome == CLAIMED
    assert {c.holder for c in claims.values()} == {"req-1"}
    assert isinstance(claims["x"], ClaimRecord)
    # a recorded claim is still a claim: never taken again, whatever its outcome
    assert ledger.claim_many(["x", "y", "z"], "req-2") == [False, False, False]
    # recording a key nobody claimed creates nothing
    ledger.record_many({"never-claimed": ("success", "")})
    assert ledger.get_claims(["never-claimed"]) == {}
    ledger.record_many({})
    # the last recorded outcome wins
    ledger.record_many({"z": ("unknown", "read timeout")})
    assert ledger.get_claims(["z"])["z"].outcome == "unknown"


def test_release_drops_only_this_holders_unrecorded_claims(ledger):
    ledger.claim_many(["mine", "recorded", "theirs"], "req-1")
    ledger.claim_many(["other"], "req-2")
    ledger.record_many({"recorded": ("success", "")})
    ledger.release_many(["mine", "recorded", "other", "missing"], "req-1")
    assert set(ledger.get_claims(["mine", "recorded", "theirs", "other"])) == {"recorded", "theirs", "other"}
    assert ledger.claim_many(["mine", "recorded", "other"], "req-3") == [True, False, False]
    ledger.release_many([], "req-1")


def test_claims_expire_and_record_keeps_the_ttl(ledger):
    ttl = timedelta(milliseconds=300)
    assert ledger.claim_many(["short", "recorded"], "h1", ttl=ttl) == [True, True]
    ledger.record_many({"recorded": ("success", "")})
    assert set(ledger.get_claims(["short", "recorded"])) == {"short", "recorded"}
    time.sleep(0.45)
    assert ledger.get_claims(["short", "recorded"]) == {}
    assert ledger.claim_many(["short", "recorded"], "h2") == [True, True]
    assert ledger.get_claims(["short"])["short"].holder == "h2"


def test_claim_ttl_must_be_positive(ledger):
    with pytest.raises(ValueError, match="ttl"):
        ledger.claim_many(["k"], "h", ttl=timedelta(0))
    assert timedelta(days=7) <= CLAIM_TTL


# -- watermarks, window states, meta -----------------------------------------------------------


def test_watermarks_never_go_backwards(ledger):
    assert ledger.watermarks() == {}
    t1, t2 = T0 + timedelta(minutes=5), T0 + timedelta(minutes=10, microseconds=123456)
    ledger.advance_watermarks({"a": t1, "b": t1})
    ledger.advance_watermarks({"a": T0, "b": t2})  # a would move back: kept
    assert ledger.watermarks() == {"a": t1, "b": t2}
    ledger.advance_watermarks({})
    # other zones and naive (taken as UTC) values compare by instant
    berlin = timezone(timedelta(hours=2))
    ledger.advance_watermarks({"a": (t1 - timedelta(seconds=1)).astimezone(berlin), "c": datetime(2026, 1, 1)})
    ledger.advance_watermarks({"b": (t2 + timedelta(microseconds=1)).astimezone(berlin)})
    marks = ledger.watermarks()
    assert marks == {"a": t1, "b": t2 + timedelta(microseconds=1), "c": datetime(2026, 1, 1, tzinfo=UTC)}
    assert all(m.tzinfo == UTC for m in marks.values())


def test_watermarks_across_years_and_digits(ledger):
    # fixed-width text keeps string order == time order, including across a year/month rollover
    ledger.advance_watermarks({"s": datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)})
    ledger.advance_watermarks({"s": datetime(2027, 1, 1, tzinfo=UTC)})
    ledger.advance_watermarks({"s": datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)})
    assert ledger.watermarks()["s"] == datetime(2027, 1, 1, tzinfo=UTC)


def test_window_states_roundtrip(ledger):
    assert ledger.window_states("night") == {}
    occ = datetime(2026, 3, 28, 19, 0, tzinfo=UTC)
    ledger.set_window_states("night", {"i1": WindowState("stopped", occ), "i2": WindowState("running", occ)})
    ledger.set_window_states("weekend", {"i1": WindowState("running", T0)})
    assert ledger.window_states("night") == {"i1": WindowState("stopped", occ), "i2": WindowState("running", occ)}
    # an update replaces the instances given and keeps the others
    later = occ + timedelta(hours=12)
    ledger.set_window_states("night", {"i1": WindowState("running", later.astimezone(timezone(timedelta(hours=8))))})
    states = ledger.window_states("night")
    assert states == {"i1": WindowState("running", later), "i2": WindowState("running", occ)}
    assert states["i1"].occurrence.tzinfo == UTC
    assert ledger.window_states("weekend") == {"i1": WindowState("running", T0)}
    ledger.set_window_states("night", {})


def test_meta(ledger):
    assert ledger.get_meta("settled:night") is None
    ledger.set_meta("settled:night", "2026-03-28T19:00:00Z")
    ledger.set_meta("other", "")
    assert ledger.get_meta("settled:night") == "2026-03-28T19:00:00Z"
    assert ledger.get_meta("other") == ""
    ledger.set_meta("settled:night", "v2")
    assert ledger.get_meta("settled:night") == "v2"


# -- persistence and lifecycle -----------------------------------------------------------------


def _fill(led) -> None:
    led.claim_many(["k1", "k2"], "req-1")
    led.record_many({"k1": ("success", "done")})
    led.advance_watermarks({"s": T0})
    led.set_window_states("w", {"i": WindowState("stopped", T0)})
    led.set_meta("m", "v")


def _check(led) -> None:
    claims = led.get_claims(["k1", "k2"])
    assert (claims["k1"].outcome, claims["k1"].detail, claims["k2"].outcome) == ("success", "done", CLAIMED)
    assert led.claim_many(["k1", "k2", "k3"], "req-2") == [False, False, True]
    assert led.watermarks() == {"s": T0}
    assert led.window_states("w") == {"i": WindowState("stopped", T0)}
    assert led.get_meta("m") == "v"


def test_persists_across_reopen(ledger_url):
    with open_ledger(ledger_url) as led:
        _fill(led)
    with open_ledger(ledger_url) as led:
        _check(led)


def test_redis_persists_across_server_restart(redis_server_factory):  # noqa: F811
    server = redis_server_factory(persistent=True)
    with open_ledger(server.url) as led:
        _fill(led)
    server.restart()
    with open_ledger(server.url) as led:
        _check(led)


def test_closed_ledger_refuses_work(ledger_url):
    with open_ledger(ledger_url) as led:
        led.set_meta("m", "v")
    led.close()  # closing twice is harmless
    with pytest.raises(LedgerError, match="closed"):
        led.get_meta("m")


def test_sqlite_storage_format(tmp_path):
    path = tmp_path / "sub" / "dir" / "ledger.sqlite3"  # parent directories are created
    with open_ledger(f"sqlite:///{path}") as led:
        led.claim_many(["k"], "h", ttl=timedelta(hours=1))
        led.advance_watermarks({"s": T0.astimezone(timezone(timedelta(hours=-5)))})
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT mark FROM watermarks").fetchone()[0] == "2026-03-29T01:00:00.000000Z"
        at, expires = conn.execute("SELECT at, expires FROM claims").fetchone()
        assert parse_utc(expires) - parse_utc(at) == timedelta(hours=1)
        assert at.endswith("Z") and len(at) == len("2026-03-29T01:00:00.000000Z")
    finally:
        conn.close()


def test_sqlite_unusable_file_is_a_ledger_error(tmp_path):
    bogus = tmp_path / "not-a-db.sqlite3"
    bogus.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    with pytest.raises(LedgerError, match="not-a-db.sqlite3"):
        open_ledger(f"sqlite:///{bogus}")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerError, match="cannot open"):
        open_ledger(f"sqlite:///{blocker}/ledger.sqlite3")  # its parent is a file


@pytest.mark.parametrize("upsert", [True, False], ids=["3.24-3.37", "before-3.24"])
def test_sqlite_without_json_each_or_upsert(tmp_path, monkeypatch, upsert):
    """SQLite older than 3.38 may lack json_each (one upsert per row instead), older than 3.24 has no ON CONFLICT
    DO UPDATE (insert, then update): each path keeps max semantics, read back by another connection. (Before issue
    16 this test disabled the upsert only: json_each's path ran instead, and the fallbacks never did.)
    kills: sqlite.py the executemany paths' `rows` -> None, `format_utc(mark)` -> `format_utc(None)`, the upsert
    statement -> None, `self._remember_marks(marks)` -> `(None)`."""
    monkeypatch.setattr(SqliteLedger, "_has_json", False)
    monkeypatch.setattr(SqliteLedger, "_has_upsert", upsert)
    with open_ledger(f"sqlite:///{tmp_path}/old.sqlite3") as led:
        assert led.watermarks() == {}  # read (and cached) first: each advance then updates the cached copy
        led.advance_watermarks({"a": T0 + timedelta(hours=1), "b": T0})
        assert led.watermarks() == {"a": T0 + timedelta(hours=1), "b": T0}
        led.advance_watermarks({"a": T0, "b": T0 + timedelta(hours=1), "c": T0})
        assert led.watermarks() == {"a": T0 + timedelta(hours=1), "b": T0 + timedelta(hours=1), "c": T0}
    with open_ledger(f"sqlite:///{tmp_path}/old.sqlite3") as again:
        assert again.watermarks() == {"a": T0 + timedelta(hours=1), "b": T0 + timedelta(hours=1), "c": T0}


def test_sqlite_memory():
    with open_ledger("sqlite:///:memory:") as led:
        assert isinstance(led, SqliteLedger) and led.path == ":memory:"
        assert led.claim_many(["k"], "h") == [True]
        assert led.claim_many(["k"], "h") == [False]


def test_redis_key_layout(redis_server):  # noqa: F811
    import redis

    prefix = f"layout-{uuid.uuid4().hex[:8]}:"
    with open_ledger(f"{redis_server.url}?prefix={prefix}") as led:
        assert isinstance(led, RedisLedger) and led.prefix == prefix
        led.claim_many(["s|2026-03-29T01:00:00Z|i|restart"], "req-9", ttl=timedelta(hours=2))
        led.record_many({"s|2026-03-29T01:00:00Z|i|restart": ("success", "ok")})
        led.advance_watermarks({"s": T0})
        led.set_window_states("w", {"i": WindowState("stopped", T0)})
        led.set_meta("m", "v")
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert sorted(r.scan_iter(match=f"{prefix}*")) == sorted(
            [
                f"{prefix}claim:s|2026-03-29T01:00:00Z|i|restart",
                f"{prefix}watermarks",
                f"{prefix}window:w",
                f"{prefix}meta:m",
            ]
        )
        key = f"{prefix}claim:s|2026-03-29T01:00:00Z|i|restart"
        value = json.loads(r.get(key))
        assert value["outcome"] == "success" and value["detail"] == "ok" and value["holder"] == "req-9"
        assert parse_utc(value["at"]).tzinfo == UTC
        assert timedelta(hours=1, minutes=59) < timedelta(milliseconds=r.pttl(key)) <= timedelta(hours=2)
        assert r.hgetall(f"{prefix}watermarks") == {"s": format_utc(T0)}
        # a corrupt claim value still blocks re-claiming and reads as an unknown claim
        r.set(f"{prefix}claim:bad", "not json")
        with open_ledger(f"{redis_server.url}?prefix={prefix}") as led:
            assert led.claim_many(["bad"], "h") == [False]
            assert led.get_claims(["bad"])["bad"].outcome == CLAIMED
    finally:
        r.close()


def test_redis_password(redis_server_factory):  # noqa: F811
    server = redis_server_factory(password="s3cr/t@pw")
    good = server.url_for(2, password="s3cr%2Ft%40pw")  # %-encoded in the URL
    with open_ledger(good) as led:
        assert led.claim_many(["k"], "h") == [True]
        assert "s3cr" not in repr(led)
    bad = server.url_for(2, password="wrong-pa55")
    with open_ledger(bad) as led, pytest.raises(LedgerError) as err:
        led.claim_many(["k"], "h")
    assert "wrong-pa55" not in str(err.value) and "AuthenticationError" in str(err.value)


def test_redis_unreachable_is_a_ledger_error_without_password():
    port = _closed_port()
    with open_ledger(f"redis://:hunter2@127.0.0.1:{port}/0") as led:
        started = time.monotonic()
        with pytest.raises(LedgerError) as err:
            led.watermarks()
        assert time.monotonic() - started < 5  # no automatic retries with backoff
    assert "hunter2" not in str(err.value) and "127.0.0.1" in str(err.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- concurrency ---------------------------------------------------------------------------------

N_WORKERS = 8
N_KEYS = 200


def _claim_all(led, keys: list[str], holder: str) -> list[str]:
    rng = random.Random(holder)
    order = list(keys)
    rng.shuffle(order)  # each worker takes the keys in its own order, in small chunks, so calls interleave
    won: list[str] = []
    i = 0
    while i < len(order):
        size = rng.randint(1, 8)
        chunk = order[i : i + size] + rng.sample(order, 2)  # plus a couple of keys others may hold
        won += [k for k, ok in zip(chunk, led.claim_many(chunk, holder), strict=True) if ok]
        i += size
    return won


def _process_worker(url: str, keys: list[str], holder: str, barrier, out) -> None:
    try:
        with open_ledger(url) as led:
            barrier.wait(timeout=60)
            out.put((holder, _claim_all(led, keys, holder), None))
    except BaseException as exc:  # reported to the parent, which fails the test
        out.put((holder, [], repr(exc)))


def _check_each_won_once(led, keys: list[str], wins: dict[str, list[str]]) -> None:
    all_wins = [k for won in wins.values() for k in won]
    assert sorted(all_wins) == sorted(keys), "every key must be won exactly once in total"
    claims = led.get_claims(keys)
    for holder, won in wins.items():
        for k in won:
            assert claims[k].holder == holder


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_processes_claim_each_key_once(backend, request, tmp_path):
    # The SQLite file does not exist yet: workers race to create it.
    url = backend_ledger_url(backend, request, tmp_path)
    keys = [claim_key("race", T0, f"inst-{i:03d}", "restart") for i in range(N_KEYS)]
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(N_WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(url, keys, f"proc-{i}", barrier, out)) for i in range(N_WORKERS)]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = [err for _, _, err in results if err]
    assert not errors
    wins = {holder: won for holder, won, _ in results}
    assert len(wins) == N_WORKERS
    with open_ledger(url) as led:
        _check_each_won_once(led, keys, wins)


@pytest.mark.parametrize("shared", [False, True], ids=["own-ledger", "shared-ledger"])
def test_concurrent_threads_claim_each_key_once(ledger_url, shared):
    keys = [f"thread-key-{i}" for i in range(N_KEYS)]
    barrier = threading.Barrier(N_WORKERS)
    wins: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    shared_led = open_ledger(ledger_url) if shared else None

    def work(holder: str) -> None:
        try:
            led = shared_led or open_ledger(ledger_url)
            try:
                barrier.wait(timeout=30)
                wins[holder] = _claim_all(led, keys, holder)
            finally:
                if led is not shared_led:
                    led.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(N_WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    with open_ledger(ledger_url) as led:
        _check_each_won_once(led, keys, wins)
    if shared_led is not None:
        shared_led.close()


# -- URLs ----------------------------------------------------------------------------------------


def test_default_ledger_url(tmp_path, monkeypatch):
    import tempfile

    assert default_ledger_url() == f"sqlite:///{tempfile.gettempdir()}/dcs-maintenance.sqlite3"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    url = default_ledger_url()
    with open_ledger(url) as led:
        assert isinstance(led, SqliteLedger) and led.path == f"{tmp_path}/dcs-maintenance.sqlite3"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///tmp/x/ledger.db", "/tmp/x/ledger.db"),
        ("sqlite:////tmp/x/ledger.db", "/tmp/x/ledger.db"),
        ("  SQLite:///tmp/x/ledger.db\n", "/tmp/x/ledger.db"),
    ],
)
def test_sqlite_url_paths(url, path, monkeypatch):
    seen = []
    monkeypatch.setattr(SqliteLedger, "__init__", lambda self, p: seen.append(p))
    open_ledger(url)
    assert seen == [path]


def _redis_kwargs(url: str) -> dict:
    led = open_ledger(url)  # a Redis client connects lazily: nothing is contacted here
    try:
        assert isinstance(led, RedisLedger)
        kw = dict(led._client.connection_pool.connection_kwargs)
        kw["prefix"] = led.prefix
        kw["display_url"] = led.display_url
        kw["ssl"] = "SSL" in led._client.connection_pool.connection_class.__name__
        return kw
    finally:
        led.close()


def test_redis_url_parsing():
    kw = _redis_kwargs("redis://:p%40ss@10.0.0.5:6380/3")
    assert (kw["host"], kw["port"], kw["db"], kw["password"], kw["username"]) == ("10.0.0.5", 6380, 3, "p@ss", None)
    assert (kw["socket_timeout"], kw["socket_connect_timeout"], kw["ssl"], kw["prefix"]) == (5.0, 5.0, False, "dcsm:")
    assert kw["display_url"] == "redis://:***@10.0.0.5:6380/3"
    kw = _redis_kwargs("redis://redis.internal")
    assert (kw["host"], kw["port"], kw["db"], kw["password"]) == ("redis.internal", 6379, 0, None)
    kw = _redis_kwargs("rediss://app:pw@[::1]:6379/0?prefix=x:&socket_timeout=2.5&ssl_cert_reqs=none")
    assert (kw["host"], kw["username"], kw["password"], kw["ssl"]) == ("::1", "app", "pw", True)
    assert (kw["prefix"], kw["socket_timeout"], kw["socket_connect_timeout"]) == ("x:", 2.5, 5.0)
    assert kw["ssl_cert_reqs"] == "none"
    assert "pw" not in kw["display_url"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("/tmp/ledger.db", "not a URL"),
        ("localhost:6379", "not a URL"),
        ("postgres://u:pw@db/x", "unknown scheme"),
        ("memcached://host", "unknown scheme"),
        ("sqlite://relative/path", "three slashes"),
        ("sqlite:///", "no file"),
        ("sqlite:///tmp/dir/", "no file"),
        ("sqlite:///tmp/x.db?mode=ro", "no query"),
        ("redis://", "no host"),
        ("redis://:pw@/0", "no host"),
        ("redis://host:notaport/0", "malformed"),
        ("redis://host:70000/0", "malformed"),
        ("redis://host:0/0", "port 0"),
        ("redis://host:6379/db1", "database number"),
        ("redis://host:6379/0/1", "database number"),
        ("redis://host:6379/-1", "database number"),
        ("redis://host/0#frag", "fragment"),
        ("redis://host/0?ssl_cert_reqs=none", "unknown option"),
        ("redis://host/0?bogus=1", "unknown option"),
        ("redis://host/0?socket_timeout=0", "socket_timeout"),
        ("redis://host/0?socket_timeout=abc", "socket_timeout"),
        ("rediss://host/0?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
    ],
)
def test_bad_urls(url, why):
    with pytest.raises(ValueError, match="LEDGER_URL") as err:
        open_ledger(url)
    assert why in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:topsecret@host:notaport/0",
        "redis://user:topsecret@host/db9x",
        "redis://:top/secret@host:6379/0",  # unescaped '/' in the password: still hidden
        "rediss://:topsecret@host/0?bogus=1",
        "redis://host/0?password=topsecret",
        "postgres://admin:topsecret@db/x",
        "topsecret@host:6379",
        "redis://:topsecret@host/0#frag",
    ],
)
def test_password_never_in_errors(url):
    with pytest.raises(ValueError) as err:
        open_ledger(url)
    assert "topsecret" not in str(err.value) and "secret" not in str(err.value)
    assert "LEDGER_URL" in str(err.value)


def test_unescaped_at_in_password_is_taken_as_part_of_it():
    kw = _redis_kwargs("redis://:top@secret@host:6379/0")  # the last '@' ends the userinfo, as in redis-py
    assert (kw["host"], kw["password"]) == ("host", "top@secret")
    assert "secret" not in kw["display_url"] and "top" not in kw["display_url"]


def test_redact_url():
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("rediss://user:pw@h:1/0") == "rediss://user:***@h:1/0"
    assert redact_url("redis://pw@h:1/0") == "redis://***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact_url("redis://h/0?password=pw&prefix=p") == "redis://h/0?password=***&prefix=p"


def test_importing_the_package_is_cheap():
    code = (
        "import sys, dcs_maintenance.ledger as L\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
        "assert 'sqlite3' not in sys.modules, 'sqlite3 imported'\n"
        "L.open_ledger('sqlite:///:memory:').close()\n"
        "assert 'redis' not in sys.modules, 'redis imported by the sqlite backend'\n"
        "L.open_ledger('redis://127.0.0.1:6379/0').close()\n"
        "assert 'redis' in sys.modules\n"
    )
    import dcs_maintenance

    root = os.path.dirname(os.path.dirname(os.path.abspath(dcs_maintenance.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
