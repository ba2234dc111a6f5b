"""Issue 16, ledger gaps: each test kills a named mutant of ledger/sqlite.py, ledger/redis.py or the runner's use of
them (see its docstring). Behaviour tests run on SQLite and on the session's real redis-server.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from conftest import PROJECT, backend_ledger_url
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)

from dcs_maintenance.ledger import CLAIMED, LedgerError, open_ledger
from dcs_maintenance.ledger.base import WindowState, format_utc
from dcs_maintenance.ledger.history_records import HistoryEntry, HistoryQuery
from dcs_maintenance.ledger.sqlite import SqliteLedger

UTC = timezone.utc
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "redis"])
def backend_url(request: pytest.FixtureRequest, tmp_path) -> str:
    return backend_ledger_url(request.param, request, tmp_path)


def old_sqlite_limit(ledger) -> None:
    """Give an SQLite ledger's connection the variable limit of SQLite before 3.32 (999), the limit `_CHUNK`
    stays under: today's libraries allow 32,766, so without this a missing chunking would go unnoticed."""
    conn = getattr(ledger, "_conn", None)
    if isinstance(ledger, SqliteLedger) and conn is not None and hasattr(conn, "setlimit"):  # Python 3.11+
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)


# -- get_claims / get_metas over more keys than one statement takes -------------------------------------------
def test_get_claims_and_get_metas_over_more_than_500_keys(backend_url):
    """1,201 keys (three chunks of at most 500 on SQLite, one MGET on Redis), read back in full, on a connection
    limited to 999 variables.
    kills: sqlite.py `_CHUNK = 500` -> 1000 ("too many SQL variables": 1,001 with the expiry), `for chunk in
    _chunks(...)` reading the first chunk only, `range(0, len(items), _CHUNK)` -> `range(0, len(items) - _CHUNK,
    _CHUNK)` (the last chunk dropped), `items[i : i + _CHUNK]` -> `items[i : i + _CHUNK - 1]`."""
    keys = [f"s|2026-06-01T10:00:00Z|i-{n:04d}|restart" for n in range(1201)]
    with open_ledger(backend_url) as ledger:
        old_sqlite_limit(ledger)
        assert ledger.claim_many(keys, "req-1", now=T0) == [True] * 1201
        ledger.record_many({keys[0]: ("success", "first"), keys[-1]: ("failed", "last")})
        found = ledger.get_claims(keys + keys[:3])  # repeated keys are read once
        assert sorted(found) == sorted(keys)
        assert (found[keys[0]].outcome, found[keys[-1]].outcome, found[keys[700]].outcome) == (
            "success", "failed", CLAIMED)
        assert all(record.holder == "req-1" for record in found.values())
        exact = keys[:1000]  # an exact multiple of the chunk size: nothing more, nothing less
        assert sorted(ledger.get_claims(exact)) == sorted(exact)
        for n in range(0, 1201, 2):
            ledger.set_meta(f"m{n}", str(n))
        metas = ledger.get_metas([f"m{n}" for n in range(1201)])
        assert len(metas) == 1201
        assert all(metas[f"m{n}"] == (str(n) if n % 2 == 0 else None) for n in range(1201))


# -- SQLite's error paths: a failing write rolls back and the ledger stays usable --------------------------------
def test_a_write_failing_midway_rolls_back_and_the_ledger_stays_usable(tmp_path):
    """The second UPDATE of one record_many transaction breaks a NOT NULL constraint after the first succeeded: a
    LedgerError, nothing of the transaction kept, and the next writes work.
    kills: sqlite.py `_transaction`'s `conn.execute("ROLLBACK")` on an exception dropped (the open transaction
    makes the next BEGIN fail, and keeps the first UPDATE), its `isinstance(exc, sqlite3.Error)` wrapping
    dropped (a bare sqlite3.IntegrityError escapes)."""
    path = str(tmp_path / "ledger.sqlite3")
    with SqliteLedger(path) as ledger:
        assert ledger.claim_many(["k1", "k2"], "req-1", now=T0) == [True, True]
        with pytest.raises(LedgerError, match="NOT NULL"):
            ledger.record_many({"k1": ("success", "done"), "k2": (None, "no outcome")})  # type: ignore[dict-item]
        assert {k: r.outcome for k, r in ledger.get_claims(["k1", "k2"]).items()} == {"k1": CLAIMED, "k2": CLAIMED}
        ledger.record_many({"k1": ("success", "done")})
        assert ledger.claim_many(["k3"], "req-2", now=T0) == [True]
        ledger.set_meta("m", "v")
    with SqliteLedger(path) as again:  # and what was committed is what another connection reads
        claims = again.get_claims(["k1", "k2", "k3"])
        assert {k: r.outcome for k, r in claims.items()} == {"k1": "success", "k2": CLAIMED, "k3": CLAIMED}
        assert again.get_meta("m") == "v"


def test_a_write_that_cannot_begin_is_a_ledger_error_and_the_ledger_recovers(tmp_path):
    """Another connection holds the write lock past the busy timeout: BEGIN IMMEDIATE fails, as a LedgerError
    (never a bare sqlite3 error), and once the lock is gone the same ledger object writes again.
    kills: sqlite.py `_transaction`'s try/except around `conn.execute(begin)` dropped (sqlite3.OperationalError
    escapes)."""
    path = str(tmp_path / "ledger.sqlite3")
    with SqliteLedger(path, timeout=0.05) as ledger:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(LedgerError, match="locked"):
                ledger.claim_many(["k1"], "req-1", now=T0)
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert ledger.claim_many(["k1"], "req-1", now=T0) == [True]
        assert ledger.get_claims(["k1"])["k1"].holder == "req-1"


# -- settled-window markers through a real tick, on both backends -------------------------------------------------
NIGHTS = """
schedules:
  - name: nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {ids: [i-a]}
"""


@pytest.mark.parametrize("ledger_url", ["sqlite", "redis"], indirect=True)
def test_a_settled_window_marker_round_trips_and_keeps_the_next_ticks_quiet(emulator, write_schedules, tick,
                                                                            ledger_url):
    """The stop done everywhere stores `settled:nights` = the occurrence; the next ticks read it back (get_metas)
    and make no DCS call until the next transition.
    kills: runner.py `_write_bookkeeping`'s `ledger.set_meta(f"settled:{name}", occurrence)` dropped (on Redis no
    window test ran before); redis.py `get_metas` -> `dict.fromkeys(keys)` (the marker never read back)."""
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(NIGHTS)
    stop = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    tick(stop)
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "CLOSED"
    with open_ledger(ledger_url) as ledger:
        assert ledger.get_meta("settled:nights") == "2026-06-01T20:00:00Z"
        assert ledger.get_metas(["settled:nights"]) == {"settled:nights": "2026-06-01T20:00:00Z"}
    emulator.clear_log()
    for minutes in (5, 10, 15):
        summary = tick(stop + timedelta(minutes=minutes))
        assert summary["api_calls"].get("list_calls", 0) == 0 and summary["schedules"] == [], summary
    assert emulator.requests == []
    tick(datetime(2026, 6, 2, 7, 0, tzinfo=UTC))
    assert emulator.calls() == [{"instances": ["i-a"], "action": "start"}]  # the next transition acts (log cleared)


# -- the Redis client's own retries are off ---------------------------------------------------------------------
def test_the_redis_clients_own_retries_are_off(redis_server):  # noqa: F811
    """redis-py 6+ retries a failed command (ten times in 8.x) by default: a write whose reply was lost would be
    sent again. The ledger's client, and every connection it makes, retries nothing, on no error.
    kills: redis.py `retry=Retry(NoBackoff(), 0)` -> `Retry(NoBackoff(), 3)`, or the `retry=` argument dropped."""
    with open_ledger(f"{redis_server.url}?prefix=t-{uuid.uuid4().hex[:12]}:") as ledger:
        ledger.set_meta("m", "v")  # a connection is made and used
        client = ledger._client
        retry = client.get_retry()
        assert retry is not None and retry._retries == 0
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["retry"]._retries == 0
        assert not kwargs.get("retry_on_timeout") and not kwargs.get("retry_on_error")
        connection = client.connection_pool.get_connection()
        try:
            assert connection.retry._retries == 0
        finally:
            client.connection_pool.release(connection)


# -- claims_by_prefix: what the runner reads for an occurrence -------------------------------------------------
def test_claims_by_prefix_returns_exactly_the_live_claims_under_the_prefix(backend_url):
    """Every live claim whose key starts with the prefix, in full (outcome, detail, holder, at), and nothing else:
    not a key that only shares its first characters, not one beyond the prefix in key order, not an expired one;
    '%', '_' and '*' in a prefix are plain characters.
    kills: sqlite.py `prefix + "\\U0010ffff"` -> `prefix + "XX\\U0010ffffXX"` (the upper bound drops `s|z…`), the
    record built with `detail` -> None or with an argument dropped, the expiry filter dropped; redis.py's glob
    escaping dropped (`*` matches anything)."""
    with open_ledger(backend_url) as ledger:
        inside = ["s|2026|i-1|restart", "s|z", "s|\u00e9t\u00e9", "s|"]
        outside = ["s", "s}", "t|2026", "s-|x", "r|2026", "s%|x", "s_|x"]
        assert ledger.claim_many(inside + outside, "req-1", now=T0) == [True] * 11
        assert ledger.claim_many(["s|short"], "req-2", ttl=timedelta(milliseconds=50), now=T0) == [True]
        ledger.record_many({"s|z": ("success", "restart accepted")})
        time.sleep(0.15)  # s|short has expired: not a live claim
        found = ledger.claims_by_prefix("s|")
        assert sorted(found) == sorted(inside)
        assert (found["s|z"].outcome, found["s|z"].detail, found["s|z"].holder, found["s|z"].at) == (
            "success", "restart accepted", "req-1", T0)
        assert (found["s|"].outcome, found["s|"].detail, found["s|"].key) == (CLAIMED, "", "s|")
        assert set(ledger.claims_by_prefix("s%|")) == {"s%|x"}
        assert set(ledger.claims_by_prefix("s_|")) == {"s_|x"}
        assert ledger.claim_many(["a*b|1", "axb|1"], "req-1", now=T0) == [True, True]
        assert set(ledger.claims_by_prefix("a*b|")) == {"a*b|1"}
        assert ledger.claims_by_prefix("nothing|") == {}


# -- a Redis ledger that cannot be reached names what failed --------------------------------------------------------
def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REDIS_OPERATIONS = [
    ("reading watermarks", lambda led: led.watermarks()),
    ("advancing watermarks", lambda led: led.advance_watermarks({"s": T0})),
    ("claiming", lambda led: led.claim_many(["k"], "req-1", now=T0)),
    ("recording outcomes", lambda led: led.record_many({"k": ("success", "")})),
    ("releasing claims", lambda led: led.release_many(["k"], "req-1")),
    ("scanning claims", lambda led: led.claims_by_prefix("s|")),
    ("reading claims", lambda led: led.get_claims(["k"])),
    ("reading window states", lambda led: led.window_states("nights")),
    ("writing window states", lambda led: led.set_window_states("nights", {"i-a": WindowState("stopped", T0)})),
    ("reading meta", lambda led: led.get_meta("m")),
    ("reading meta", lambda led: led.get_metas(["m", "n"])),
    ("writing meta", lambda led: led.set_meta("m", "v")),
    ("updating rollout:web", lambda led: led.update_meta("rollout:web", lambda old: "v")),
    ("appending history", lambda led: led.append_history([HistoryEntry(T0, "timer", "req-1", "success")],
                                                         timedelta(days=1), now=T0)),
    ("reading history", lambda led: led.history(HistoryQuery())),
]


@pytest.mark.parametrize("what, operation", REDIS_OPERATIONS, ids=[f"{w}-{n}" for n, (w, _) in
                                                                    enumerate(REDIS_OPERATIONS)])
def test_an_unreachable_redis_ledger_error_names_the_operation(what, operation):
    """The LedgerError a tick reports (in its summary and log) says which ledger operation failed, and how.
    kills: redis.py each `self._run("<what>", ...)` label mutated (`None`, `"XX<what>XX"`, upper case)."""
    port = _closed_port()
    with open_ledger(f"redis://127.0.0.1:{port}/0") as ledger, pytest.raises(LedgerError) as err:
        operation(ledger)
    assert str(err.value).startswith(f"Redis ledger redis://127.0.0.1:{port}/0: {what} failed: ConnectionError: ")


# -- a history entry whose text holds the member separator ------------------------------------------------------
def test_history_entries_holding_the_member_separator_round_trip(backend_url):
    """A reason, a name, a schedule with `|` in them (the Redis member's separator) are read back whole.
    kills: redis.py `_history_entry`'s `member.split("|", 2)` -> `split("|")`, `rsplit("|", 2)` or `split("|", 3)`
    (such an entry read back as not ours and skipped)."""
    entry = HistoryEntry(T0, "timer", "req-1", "failed", reason="HTTP 400 DCS.4026: a|b", schedule="web|1",
                         occurrence="2026-06-01T10:00:00Z", instance_id="i-1", instance_name="web|one",
                         action="restart", error_code="DCS.4026", tick="2026-06-01T10:00:00Z")
    plain = HistoryEntry(T0 + timedelta(minutes=1), "timer", "req-2", "success", instance_id="i-2")
    with open_ledger(backend_url) as ledger:
        assert ledger.append_history([entry, plain], timedelta(days=30), now=T0) == 2
        page = ledger.history(HistoryQuery())
    assert page.entries == [plain, entry] and page.next_cursor is None
    assert page.entries[1].reason == "HTTP 400 DCS.4026: a|b" and page.entries[1].instance_name == "web|one"


# -- history paging: a cursor with `until`, forged cursors, the per-request scan bound -------------------------
def _minutes(n: int) -> list[HistoryEntry]:
    """n entries a minute apart from T0, their reasons holding the Redis member separator."""
    return [HistoryEntry(T0 + timedelta(minutes=m), "timer", f"req-{m}", "success", reason=f"restart|{m}",
                         instance_id=f"i-{m}") for m in range(n)]


def test_a_cursor_followed_under_an_earlier_until_stays_before_it(backend_url):
    """A cursor from an unbounded query, followed with an `until` before its position: `until` still bounds the
    page (the earlier of the two wins), both backends alike.
    kills: redis.py `position if high == "+" else min(high, position)` -> `... or True ...` or `high != "+"` (the
    cursor's position replaces `until`); sqlite.py `more = len(rows) > query.limit` -> `>=` (a cursor to nothing)."""
    with open_ledger(backend_url) as ledger:
        ledger.append_history(_minutes(5), timedelta(days=30), now=T0)
        first = ledger.history(HistoryQuery(limit=2))
        assert [e.instance_id for e in first.entries] == ["i-4", "i-3"] and first.next_cursor
        later = ledger.history(HistoryQuery(limit=5, until=T0 + timedelta(minutes=2), cursor=first.next_cursor))
        assert [e.instance_id for e in later.entries] == ["i-1", "i-0"] and later.next_cursor is None
        exact = ledger.history(HistoryQuery(limit=5))  # exactly `limit` entries: no next page
        assert len(exact.entries) == 5 and exact.next_cursor is None


@pytest.mark.parametrize("backend, key", [("redis", "a|b"), ("redis", 7), ("sqlite", "a")])
def test_a_forged_cursor_is_refused_with_the_message_the_api_shows(backend, key, request, tmp_path):
    """A cursor whose id is not the kind the backend makes (Redis: a string without '|'; SQLite: an integer) is a
    ValueError with the text GET /history shows as its 400.
    kills: redis.py `"|" in entry_id` -> `"XX|XX" in entry_id`, the message mutated."""
    from dcs_maintenance.ledger.history_records import encode_cursor

    with open_ledger(backend_ledger_url(backend, request, tmp_path)) as ledger:
        ledger.append_history(_minutes(2), timedelta(days=30), now=T0)
        with pytest.raises(ValueError) as err:
            ledger.history(HistoryQuery(cursor=encode_cursor(T0, key)))
    assert str(err.value) == "cursor: not a cursor from a previous page"


@pytest.mark.parametrize("scan", [3, 4])
def test_redis_history_hands_back_its_position_after_examining_the_scan_bound(redis_server, monkeypatch,  # noqa: F811
                                                                              scan):
    """With a filter matching only the oldest entry, each request examines whole batches until it has examined
    at least HISTORY_SCAN members, then hands back the position reached; following the cursors finds the entry.
    Batches of 2 and bounds of 3 and 4 make the edges visible (a bound of 20,000 would need 20,000 entries).
    kills: redis.py `examined, last = 0, None` -> `1, None` (the bound of 3 reached after one batch),
    `examined >= HISTORY_SCAN` -> `>` (the bound of 4 passed: a third batch), the position's `split("|", 2)` ->
    `split("|")` / `rsplit("|", 2)` (reasons hold '|')."""
    from dcs_maintenance.ledger import redis as redis_ledger

    monkeypatch.setattr(redis_ledger, "_HISTORY_BATCH", 2)
    monkeypatch.setattr(redis_ledger, "HISTORY_SCAN", scan)
    with open_ledger(f"{redis_server.url}?prefix=t-{uuid.uuid4().hex[:12]}:") as ledger:
        ledger.append_history(_minutes(10), timedelta(days=30), now=T0)
        examined, cursor, found = [], None, []
        for _ in range(10):
            before = {e.id for e in found}
            page = ledger.history(HistoryQuery(instance="i-0", cursor=cursor))
            found += [e for e in page.entries if e.id not in before]
            examined.append(page.next_cursor)
            cursor = page.next_cursor
            if cursor is None:
                break
    assert [e.instance_id for e in found] == ["i-0"] and found[0].reason == "restart|0"
    assert len(examined) == 3 and examined[-1] is None
    from dcs_maintenance.ledger.history_records import decode_cursor

    positions = [decode_cursor(c)[0] for c in examined if c is not None]
    assert positions == [format_utc(T0 + timedelta(minutes=m)) for m in (6, 2)]


def test_redis_history_reads_one_more_batch_to_know_whether_there_is_a_next_page(redis_server, monkeypatch):  # noqa: F811
    """Exactly `limit` entries found in a full batch: the next batch is read to see whether there is more, so the
    page carries a cursor when there is.
    kills: redis.py `len(found) > query.limit or ...` -> `>=` (stops with no cursor: the third entry is lost)."""
    from dcs_maintenance.ledger import redis as redis_ledger

    monkeypatch.setattr(redis_ledger, "_HISTORY_BATCH", 2)
    with open_ledger(f"{redis_server.url}?prefix=t-{uuid.uuid4().hex[:12]}:") as ledger:
        ledger.append_history(_minutes(3), timedelta(days=30), now=T0)
        first = ledger.history(HistoryQuery(limit=2))
        assert [e.instance_id for e in first.entries] == ["i-2", "i-1"] and first.next_cursor is not None
        second = ledger.history(HistoryQuery(limit=2, cursor=first.next_cursor))
        assert [e.instance_id for e in second.entries] == ["i-0"] and second.next_cursor is None


def test_sqlite_expiry_is_judged_in_utc_whatever_the_machines_zone(tmp_path, monkeypatch):
    """On a machine fourteen hours ahead of UTC, a claim with an hour to live is live for get_claims and
    claims_by_prefix, and still blocks claim_many: the expiry is stored and compared as UTC, never local time.
    kills: sqlite.py `datetime.now(timezone.utc)` -> `datetime.now(None)` (local wall time, read as UTC) in
    claims_by_prefix, get_claims and claim_many (its expiry then lies fourteen hours ahead)."""
    monkeypatch.setenv("TZ", "Etc/GMT-14")  # POSIX sign: UTC+14
    time.tzset()
    try:
        with SqliteLedger(str(tmp_path / "ledger.sqlite3")) as ledger:
            assert ledger.claim_many(["s|1"], "req-1", ttl=timedelta(hours=1), now=T0) == [True]
            assert set(ledger.get_claims(["s|1"])) == {"s|1"}
            assert set(ledger.claims_by_prefix("s|")) == {"s|1"}
            assert ledger.claim_many(["s|1"], "req-2", now=T0) == [False]
            assert ledger.claim_many(["s|short"], "req-1", ttl=timedelta(milliseconds=50), now=T0) == [True]
            time.sleep(0.1)  # and a claim expires when its time is up, not fourteen hours later
            assert ledger.get_claims(["s|short"]) == {}
            assert ledger.claim_many(["s|short"], "req-2", now=T0) == [True]
    finally:
        monkeypatch.undo()
        time.tzset()


# -- record_many's only_claimed, history's trimming clock, Redis's unreadable records and defaults ----------------
def test_record_many_only_claimed_never_overwrites_a_recorded_outcome(backend_url):
    """kills: redis.py `condition = (CLAIMED,) if only_claimed else ()` -> always `()` (a late read-back overwrites
    the outcome) or always `(CLAIMED,)` (a correction never lands), the condition dropped from the script call."""
    with open_ledger(backend_url) as ledger:
        ledger.claim_many(["a", "b"], "req-1", now=T0)
        ledger.record_many({"a": ("success", "restart accepted")})
        ledger.record_many({"a": ("unknown", "late"), "b": ("failed", "refused")}, only_claimed=True)
        claims = ledger.get_claims(["a", "b"])
        assert [(claims[k].outcome, claims[k].detail) for k in "ab"] == [
            ("success", "restart accepted"), ("failed", "refused")]
        ledger.record_many({"a": ("failed", "corrected")})  # not only_claimed: overwrites
        assert ledger.get_claims(["a"])["a"].detail == "corrected"


def test_history_trimming_follows_the_now_given(backend_url):
    """Entries older than `now - retention` go at the next append, judged on the `now` passed (a simulated tick's),
    not on the wall clock; an empty append writes nothing and says 0.
    kills: redis.py `now = now or clock.now()` -> `now and clock.now()` (today's wall clock trims June's entries),
    `if not entries: return 0` -> `return 1`."""
    old = HistoryEntry(T0, "timer", "req-1", "success", instance_id="i-old")
    new = HistoryEntry(T0 + timedelta(days=2), "timer", "req-2", "success", instance_id="i-new")
    with open_ledger(backend_url) as ledger:
        assert ledger.append_history([], timedelta(days=30), now=T0) == 0
        ledger.append_history([old], timedelta(days=30), now=T0)
        ledger.append_history([new], timedelta(days=30), now=T0 + timedelta(days=2))
        assert [e.instance_id for e in ledger.history(HistoryQuery()).entries] == ["i-new", "i-old"]
        ledger.append_history([], timedelta(days=1), now=T0 + timedelta(days=2))  # nothing to trim with
        ledger.append_history([new], timedelta(days=1), now=T0 + timedelta(days=2))
        assert [e.instance_id for e in ledger.history(HistoryQuery()).entries] == ["i-new", "i-new"]


def test_redis_history_key_lives_a_day_past_its_retention(redis_server):  # noqa: F811
    """kills: redis.py `expire_ms = int(... * 1000)` -> `/ 1000` (the history gone within seconds)."""
    import redis as redis_py

    prefix = f"t-{uuid.uuid4().hex[:12]}:"
    with open_ledger(f"{redis_server.url}?prefix={prefix}") as ledger:
        ledger.append_history([HistoryEntry(T0, "timer", "req-1", "success")], timedelta(days=30), now=T0)
    client = redis_py.Redis.from_url(redis_server.url)
    try:
        assert 31 * 86_400_000 - 60_000 < client.pttl(f"{prefix}history") <= 31 * 86_400_000
    finally:
        client.close()


def test_redis_reads_unreadable_or_partial_claim_records_as_claims(redis_server):  # noqa: F811
    """A claim key whose value is not ours still blocks re-claiming and reads as an unknown claim; a record missing
    fields reads with their defaults (claimed, no detail, no holder).
    kills: redis.py get_claims' defaults (`rec.get("outcome", CLAIMED)`, `"detail", ""`, `"holder", ""`) and the
    unreadable record's fields mutated."""
    import redis as redis_py

    prefix = f"t-{uuid.uuid4().hex[:12]}:"
    client = redis_py.Redis.from_url(redis_server.url)
    try:
        client.set(f"{prefix}claim:bad", "not json")
        client.set(f"{prefix}claim:partial", '{"at":"2026-06-01T10:00:00.000000Z"}')
    finally:
        client.close()
    with open_ledger(f"{redis_server.url}?prefix={prefix}") as ledger:
        found = ledger.get_claims(["bad", "partial"])
        bad, partial = found["bad"], found["partial"]
        assert (bad.key, bad.outcome, bad.detail, bad.holder) == ("bad", CLAIMED, "unreadable claim record", "")
        assert isinstance(bad.at, datetime) and bad.at.tzinfo is not None
        assert (partial.key, partial.outcome, partial.detail, partial.holder, partial.at) == (
            "partial", CLAIMED, "", "", T0)
        assert ledger.claim_many(["bad", "partial"], "req-1", now=T0) == [False, False]


def test_a_redis_ledger_made_directly_names_its_server():
    """open_ledger passes every connection option; a RedisLedger made directly (no connection until used) shows
    its defaults. kills: redis.py `__init__`'s defaults and the display URL's scheme mutated."""
    from dcs_maintenance.ledger.redis import RedisLedger

    assert repr(RedisLedger()) == "RedisLedger('redis://127.0.0.1:6379/0', prefix='dcsm:')"
    assert RedisLedger(host="cache.internal", port=6380, db=2, ssl=True).display_url == "rediss://cache.internal:6380/2"


def test_redis_update_meta_gives_up_when_the_key_keeps_changing(redis_server):  # noqa: F811
    """Another client writes the key between every read and write: after UPDATE_ATTEMPTS (50) tries, a
    LedgerError saying so. kills: redis.py update_meta's final `LedgerError(...)` message -> None."""
    import redis as redis_py

    prefix = f"t-{uuid.uuid4().hex[:12]}:"
    other = redis_py.Redis.from_url(redis_server.url)
    tries = []

    def change(old):
        tries.append(old)
        other.set(f"{prefix}meta:rollout:web", f"theirs-{len(tries)}")
        return "ours"

    try:
        with open_ledger(f"{redis_server.url}?prefix={prefix}") as ledger, pytest.raises(LedgerError) as err:
            ledger.update_meta("rollout:web", change)
    finally:
        other.close()
    assert str(err.value) == (f"Redis ledger {redis_server.url}?prefix={prefix}: rollout:web kept changing under 50 "
                              "attempts to update it")
    assert len(tries) == 50


def test_sqlite_history_trimming_without_a_now_is_judged_in_utc(tmp_path, monkeypatch):
    """With no `now` given, the trimming cutoff is the UTC wall clock, also on a machine fourteen hours ahead.
    kills: sqlite.py append_history's `datetime.now(timezone.utc)` -> `datetime.now(None)` (a cutoff 14 h late
    trims a 20-hour-old entry under a one-day retention)."""
    monkeypatch.setenv("TZ", "Etc/GMT-14")
    time.tzset()
    try:
        recent = datetime.now(UTC) - timedelta(hours=20)
        with SqliteLedger(str(tmp_path / "ledger.sqlite3")) as ledger:
            ledger.append_history([HistoryEntry(recent, "timer", "req-1", "success", instance_id="i-1")],
                                  timedelta(days=1))
            ledger.append_history([], timedelta(days=1))
            assert [e.instance_id for e in ledger.history(HistoryQuery()).entries] == ["i-1"]
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_redis_ledger_without_the_redis_package_says_so(monkeypatch):
    """kills: redis.py `__init__`'s ImportError message mutated."""
    import sys

    from dcs_maintenance.ledger.redis import RedisLedger

    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` raises ImportError
    with pytest.raises(LedgerError) as err:
        RedisLedger()
    assert str(err.value) == "LEDGER_URL names a Redis ledger but the 'redis' package is not installed"


def test_a_redis_ledgers_connection_options_reach_its_client():
    """The URL's TLS and timeout options are what the client connects with. No connection is made here.
    kills: redis.py `if ssl_ca_certs is not None` -> `is None`, `kwargs["ssl_ca_certs"]` mutated, the
    `socket_connect_timeout=` argument dropped."""
    url = "rediss://cache.internal:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required&socket_connect_timeout=2.5"
    with open_ledger(url) as ledger:
        options = ledger._client.connection_pool.connection_kwargs
        assert (options["ssl_ca_certs"], options["ssl_cert_reqs"], options["socket_connect_timeout"]) == (
            "/etc/ca.pem", "required", 2.5)
    with open_ledger("rediss://cache.internal:6380/0") as plain:
        assert "ssl_ca_certs" not in plain._client.connection_pool.connection_kwargs or \
            plain._client.connection_pool.connection_kwargs["ssl_ca_certs"] is None


def test_a_new_sqlite_ledger_is_stamped_with_its_schema_version_and_an_existing_stamp_is_kept(tmp_path):
    """PRAGMA user_version marks the file's layout, so that a later release can tell which files need a
    migration: a new file gets 1; a file already stamped (here by a later release) is never stamped back.
    kills: ledger/sqlite.py `... fetchone()[0] == 0` -> `!= 0` (a new file left unstamped, a stamped one
    overwritten) and `== 1` (a new file left unstamped)."""
    fresh, later = str(tmp_path / "fresh.sqlite3"), str(tmp_path / "later.sqlite3")
    SqliteLedger(fresh).close()
    with sqlite3.connect(later) as conn:
        conn.execute("PRAGMA user_version = 7")
    SqliteLedger(later).close()
    for path, version in ((fresh, 1), (later, 7)):
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == version, path
        finally:
            conn.close()


class _LockedConnection:
    """A connection whose switch to WAL answers `errors` in turn (then succeeds): what a new file does while
    another process switches it at the same moment ("locked" without waiting for the busy timeout)."""

    def __init__(self, *errors: str) -> None:
        self.errors = list(errors)
        self.asked = 0

    def execute(self, sql: str) -> _LockedConnection:
        self.asked += 1
        if self.errors:
            raise sqlite3.OperationalError(self.errors.pop(0))
        return self

    def fetchone(self) -> tuple[str]:
        return ("wal",)


class _Clock:
    """time.monotonic and time.sleep for _enable_wal: each sleep is recorded and moves the clock by 1/64 s, a
    step binary floating point adds exactly (so "at the deadline" is exactly equal, not off by a rounding)."""

    STEP = 1 / 64

    def __init__(self) -> None:
        self.now, self.slept = 100.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += self.STEP


def test_switching_to_wal_retries_locked_and_busy_until_its_timeout(monkeypatch):
    """"locked" and "busy" are retried every 20 ms while the timeout lasts (up to and including its last
    instant); past it, the error says WAL could not be enabled; any other error is not retried and is named.
    kills: ledger/sqlite.py _enable_wal's deadline (None, or `- timeout`), every change to the locked/busy test
    (`or`, `in`, the words changed, `str(None)`), `time.monotonic() > deadline` -> `>=`, both LedgerError
    messages -> None, and `time.sleep(0.02)` -> None or 1.02."""
    from dcs_maintenance.ledger import sqlite as sqlite_ledger

    clock = _Clock()
    monkeypatch.setattr(sqlite_ledger, "time", clock)
    conn = _LockedConnection("database is locked", "database table is locked", "database is busy")
    SqliteLedger._enable_wal(conn, "/l.db", 3 * _Clock.STEP)  # three retries: the third at exactly the deadline
    assert conn.asked == 4 and clock.slept == [0.02] * 3

    conn = _LockedConnection(*["database is locked"] * 10)
    with pytest.raises(LedgerError) as err:
        SqliteLedger._enable_wal(conn, "/l.db", 2 * _Clock.STEP)
    assert str(err.value) == "SQLite ledger at /l.db: cannot enable WAL: database is locked"
    assert conn.asked == 4

    conn = _LockedConnection("disk I/O error")
    with pytest.raises(LedgerError) as err:
        SqliteLedger._enable_wal(conn, "/l.db", 5.0)
    assert str(err.value) == "SQLite ledger at /l.db: disk I/O error" and conn.asked == 1


def test_a_claim_taken_under_a_simulated_clock_is_dated_by_that_clock(backend_url):
    """A claim's `at` judges whether an outcome-less claim is still in flight, on the wall clock the function
    runs by: the simulated one in the demo, rehearsals and tests (its expiry stays on the system clock).
    kills: ledger/sqlite.py claim_many `clock.now() if clock.simulated() else stored` -> always `stored`
    (claim_many_11: the claim dated now, months after the simulated tick)."""
    from dcs_maintenance import clock

    clock.set_clock(lambda: T0)
    try:
        with open_ledger(backend_url) as ledger:
            assert ledger.claim_many(["k|sim"], "rid") == [True]
            assert ledger.get_claims(["k|sim"])["k|sim"].at == T0
    finally:
        clock.set_clock(None)
