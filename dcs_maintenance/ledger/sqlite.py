"""The SQLite ledger: one file, safe for concurrent processes (and threads) on one machine.

WAL journal, a busy timeout and `BEGIN IMMEDIATE` for every write, so writers queue instead of
failing and a claim is decided inside one write transaction. Datetimes are stored as fixed-width
UTC ISO text (see `format_utc`), whose string order is time order. A claim's time is clock.now() (the wall
clock; a simulated one in tests); its expiry is on the system clock, as Redis's PX is. Only the stdlib (and
clock.py) is imported.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from typing import Optional

from dcs_maintenance import clock

from .base import (
    CLAIM_TTL,
    CLAIMED,
    ClaimRecord,
    LedgerBase,
    LedgerError,
    WindowState,
    format_utc,
    parse_utc,
    to_utc,
)

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS watermarks (schedule TEXT PRIMARY KEY, mark TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS claims ("
    " key TEXT PRIMARY KEY, outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',"
    " holder TEXT NOT NULL, at TEXT NOT NULL, expires TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS claims_expires ON claims (expires)",
    "CREATE TABLE IF NOT EXISTS window_states ("
    " schedule TEXT NOT NULL, instance_id TEXT NOT NULL, state TEXT NOT NULL, occurrence TEXT NOT NULL,"
    " PRIMARY KEY (schedule, instance_id))",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# Stay well under SQLITE_MAX_VARIABLE_NUMBER (999 before SQLite 3.32).
_CHUNK = 500

MEMORY = ":memory:"


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class SqliteLedger(LedgerBase):
    """`Ledger` on an SQLite file (or `:memory:`, for tests). One connection, guarded by a lock."""

    # `INSERT ... ON CONFLICT DO UPDATE` needs SQLite 3.24; older libraries take an equivalent path.
    _has_upsert = sqlite3.sqlite_version_info >= (3, 24, 0)
    # json_each is built in from SQLite 3.38 (and usually compiled in before): 10,000 watermarks in one statement
    # cost about half of executemany's 10,000.
    _has_json = sqlite3.sqlite_version_info >= (3, 38, 0)

    def __init__(self, path: str, *, timeout: float = 10.0) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn: Optional[sqlite3.Connection] = None
        # The watermarks as last read, with the file's data_version then: a warm instance re-reads them only when
        # another connection committed something since (its own writes are applied to the copy).
        self._marks: Optional[tuple[int, dict[str, datetime]]] = None
        try:
            if path != MEMORY:
                parent = os.path.dirname(os.path.abspath(path))
                os.makedirs(parent, exist_ok=True)
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the SQLite ledger at {path}: {exc}") from exc
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if path != MEMORY:
                self._enable_wal(conn, path, timeout)
                conn.execute("PRAGMA synchronous = FULL")
            with self._write() as c:
                for statement in _SCHEMA:
                    c.execute(statement)
                if c.execute("PRAGMA user_version").fetchone()[0] == 0:
                    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            self.close()
            raise LedgerError(f"cannot open the SQLite ledger at {path}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteLedger({self.path!r})"

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection, path: str, timeout: float) -> None:
        # Switching a new file to WAL can report "locked" without waiting while another process
        # does the same; retry within the busy timeout. A filesystem without WAL support keeps the
        # rollback journal, which is still correct (only slower under contention).
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise LedgerError(f"SQLite ledger at {path}: {exc}") from exc
                if time.monotonic() > deadline:
                    raise LedgerError(f"SQLite ledger at {path}: cannot enable WAL: {exc}") from exc
                time.sleep(0.02)

    # -- transactions -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"the SQLite ledger at {self.path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                conn.execute(begin)
            except sqlite3.Error as exc:
                raise LedgerError(f"SQLite ledger at {self.path}: {exc}") from exc
            try:
                yield conn
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise LedgerError(f"SQLite ledger at {self.path}: {exc}") from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise LedgerError(f"SQLite ledger at {self.path}: commit failed: {exc}") from exc

    def _write(self):
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self):
        return self._transaction("BEGIN")

    # -- Ledger -------------------------------------------------------------------------------

    def watermarks(self) -> dict[str, datetime]:
        with self._read() as c:
            version = c.execute("PRAGMA data_version").fetchone()[0]
            if self._marks is not None and self._marks[0] == version:
                return dict(self._marks[1])
            rows = c.execute("SELECT schedule, mark FROM watermarks").fetchall()
            marks = {schedule: parse_utc(mark) for schedule, mark in rows}
            self._marks = (version, marks)
        return dict(marks)

    def _remember_marks(self, written: dict[str, datetime]) -> None:
        """Apply this connection's own committed advance to the cached copy (data_version does not change for
        a connection's own commits)."""
        with self._lock:
            if self._marks is not None:
                cached = self._marks[1]
                for schedule, mark in written.items():
                    old, new = cached.get(schedule), to_utc(mark)
                    cached[schedule] = new if old is None or new > old else old

    def advance_watermarks(self, marks: dict[str, datetime]) -> None:
        if not marks:
            return
        if self._has_json:  # one statement per distinct mark (a tick writes the same instant for most schedules)
            groups: dict[datetime, list[str]] = {}
            for schedule, mark in marks.items():
                groups.setdefault(mark, []).append(schedule)
            with self._write() as c:
                for mark, names in groups.items():
                    c.execute("INSERT INTO watermarks (schedule, mark) SELECT value, ? FROM json_each(?) WHERE true"
                              " ON CONFLICT (schedule) DO UPDATE SET mark = max(mark, excluded.mark)",
                              (format_utc(mark), json.dumps(names)))
            self._remember_marks(marks)  # committed: only now
            return
        rows = [(schedule, format_utc(mark)) for schedule, mark in marks.items()]
        with self._write() as c:
            if self._has_upsert:
                c.executemany(
                    "INSERT INTO watermarks (schedule, mark) VALUES (?, ?)"
                    " ON CONFLICT (schedule) DO UPDATE SET mark = max(mark, excluded.mark)",
                    rows,
                )
            else:
                c.executemany("INSERT OR IGNORE INTO watermarks (schedule, mark) VALUES (?, ?)", rows)
                c.executemany(
                    "UPDATE watermarks SET mark = ? WHERE schedule = ? AND mark < ?",
                    [(mark, schedule, mark) for schedule, mark in rows],
                )
        self._remember_marks(marks)

    def claim_many(self, keys: list[str], holder: str, ttl: timedelta = CLAIM_TTL,
                   now: Optional[datetime] = None) -> list[bool]:
        if ttl <= timedelta(0):
            raise ValueError(f"claim ttl must be positive, got {ttl}")
        if not keys:
            return []
        # Two clocks, as on Redis (JSON `at`, PX expiry): the claim's time is the wall clock's (simulated in
        # tests), which judges whether an outcome-less claim is still in flight; its expiry is storage, on the
        # system clock.
        stored = datetime.now(timezone.utc)
        at, expires = format_utc(now or (clock.now() if clock.simulated() else stored)), format_utc(stored + ttl)
        won: list[bool] = []
        with self._write() as c:
            # An expired claim no longer guards anything (its occurrence is long past its deadline).
            c.execute("DELETE FROM claims WHERE expires < ?", (format_utc(stored),))
            for key in keys:
                cur = c.execute(
                    "INSERT OR IGNORE INTO claims (key, outcome, detail, holder, at, expires)"
                    " VALUES (?, ?, '', ?, ?, ?)",
                    (key, CLAIMED, holder, at, expires),
                )
                won.append(cur.rowcount == 1)  # sqlite3_changes(): 0 when the key already existed
        return won

    def record_many(self, outcomes: dict[str, tuple[str, str]], only_claimed: bool = False) -> None:
        if not outcomes:
            return
        if only_claimed:
            rows = [(outcome, detail, key, CLAIMED) for key, (outcome, detail) in outcomes.items()]
            statement = "UPDATE claims SET outcome = ?, detail = ? WHERE key = ? AND outcome = ?"
        else:
            rows = [(outcome, detail, key) for key, (outcome, detail) in outcomes.items()]
            statement = "UPDATE claims SET outcome = ?, detail = ? WHERE key = ?"
        with self._write() as c:
            c.executemany(statement, rows)

    def release_many(self, keys: list[str], holder: str) -> None:
        if not keys:
            return
        with self._write() as c:
            c.executemany("DELETE FROM claims WHERE key = ? AND holder = ? AND outcome = ?",
                          [(key, holder, CLAIMED) for key in keys])

    def get_claims(self, keys: list[str], now: Optional[datetime] = None) -> dict[str, ClaimRecord]:
        if not keys:
            return {}
        now_text = format_utc(datetime.now(timezone.utc))  # expiry is on the system clock (see claim_many)
        found: dict[str, ClaimRecord] = {}
        with self._read() as c:
            for chunk in _chunks(list(dict.fromkeys(keys))):
                marks = ",".join("?" * len(chunk))
                rows = c.execute(
                    f"SELECT key, outcome, detail, holder, at FROM claims WHERE expires >= ? AND key IN ({marks})",
                    (now_text, *chunk),
                ).fetchall()
                for key, outcome, detail, holder, at in rows:
                    found[key] = ClaimRecord(key, outcome, detail, holder, parse_utc(at))
        return found

    def claims_by_prefix(self, prefix: str, now: Optional[datetime] = None) -> dict[str, ClaimRecord]:
        # A key range, not LIKE: '%' and '_' in a prefix would be wildcards, and the range uses the primary key.
        with self._read() as c:
            rows = c.execute(
                "SELECT key, outcome, detail, holder, at FROM claims WHERE key >= ? AND key < ? AND expires >= ?",
                (prefix, prefix + "\U0010ffff", format_utc(datetime.now(timezone.utc))),
            ).fetchall()
        return {key: ClaimRecord(key, outcome, detail, holder, parse_utc(at)) for key, outcome, detail, holder, at
                in rows}

    def window_states(self, schedule: str) -> dict[str, WindowState]:
        with self._read() as c:
            rows = c.execute(
                "SELECT instance_id, state, occurrence FROM window_states WHERE schedule = ?", (schedule,)
            ).fetchall()
        return {instance: WindowState(state, parse_utc(occurrence)) for instance, state, occurrence in rows}

    def set_window_states(self, schedule: str, states: dict[str, WindowState]) -> None:
        """Upsert the given instances' states; instances not given keep theirs."""
        if not states:
            return
        rows = [(schedule, instance, ws.state, format_utc(ws.occurrence)) for instance, ws in states.items()]
        with self._write() as c:
            c.executemany(
                "INSERT OR REPLACE INTO window_states (schedule, instance_id, state, occurrence) VALUES (?, ?, ?, ?)",
                rows,
            )

    def get_meta(self, key: str) -> Optional[str]:
        with self._read() as c:
            row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_metas(self, keys: list[str]) -> dict[str, Optional[str]]:
        """Several meta values in one read: key -> value or None."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, Optional[str]] = dict.fromkeys(keys)
        if not keys:
            return found
        with self._read() as c:
            for chunk in _chunks(keys):
                marks = ",".join("?" * len(chunk))
                found.update(c.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", chunk).fetchall())
        return found

    def update_meta(self, key: str, change: Callable[[Optional[str]], Optional[str]],
                    ttl: Optional[timedelta] = None) -> Optional[str]:
        """Read, change and write one meta value inside one `BEGIN IMMEDIATE` transaction: writers of other
        processes queue behind it, so none of their updates is lost. `ttl` is not kept (no expiry column): the
        row stays until it is overwritten (a rollout's state: one row per schedule)."""
        with self._write() as c:
            row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            stored = None if row is None else row[0]
            value = change(stored)
            if value is None or value == stored:
                return stored
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(sqlite3.Error):
                conn.close()

    # -- history (issue 14): its own table, created on first use; never touches the claims ---------------

    def _ensure_history(self) -> None:
        if getattr(self, "_history_ready", False):
            return
        with self._write() as c:
            for statement in _HISTORY_SCHEMA:
                c.execute(statement)
        self._history_ready = True

    def append_history(self, entries: list[HistoryEntry], retention: timedelta,
                       now: Optional[datetime] = None) -> int:
        """Insert entries and delete those recorded before `now - retention`, in one write transaction."""
        self._ensure_history()
        cutoff = format_utc((now or datetime.now(timezone.utc)) - retention)
        rows = [(format_utc(e.at), e.trigger, e.request_id, e.schedule, e.occurrence, e.instance_id, e.instance_name,
                 e.action, e.result, e.reason, e.error_code, e.tick) for e in entries]
        with self._write() as c:
            c.execute("DELETE FROM history WHERE at < ?", (cutoff,))
            c.executemany(f"INSERT INTO history ({_HISTORY_COLUMNS}) VALUES ({','.join('?' * 12)})", rows)
        return len(rows)

    def history(self, query: HistoryQuery) -> HistoryPage:
        """Newest first by (at, id); every filter is answered by SQL and an index."""
        self._ensure_history()
        where: list[str] = []
        args: list[object] = []
        if query.since is not None:
            where.append("at >= ?")
            args.append(format_utc(query.since))
        if query.until is not None:
            where.append("at < ?")
            args.append(format_utc(query.until))
        if query.schedule is not None:
            where.append("schedule = ?")
            args.append(query.schedule)
        if query.instance is not None:
            where.append("(instance_id = ? OR instance_name = ?)")
            args += [query.instance, query.instance]
        if query.results:
            where.append(f"result IN ({','.join('?' * len(query.results))})")
            args += list(query.results)
        if query.cursor is not None:
            at_text, key = decode_cursor(query.cursor)
            if not isinstance(key, int):
                raise ValueError("cursor: not a cursor from a previous page")
            where.append("(at < ? OR (at = ? AND id < ?))")
            args += [at_text, at_text, key]
        sql = (f"SELECT id, {_HISTORY_COLUMNS} FROM history {'WHERE ' + ' AND '.join(where) if where else ''}"
               " ORDER BY at DESC, id DESC LIMIT ?")
        with self._read() as c:
            rows = c.execute(sql, (*args, query.limit + 1)).fetchall()
        entries = [_history_entry(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return HistoryPage(entries, encode_cursor(entries[-1].at, int(entries[-1].id)) if more else None)


_HISTORY_COLUMNS = ("at, trigger, request_id, schedule, occurrence, instance_id, instance_name, action, result, "
                    "reason, error_code, tick")
_HISTORY_SCHEMA = (
    # AUTOINCREMENT: ids are never reused after trimming, so a cursor's (at, id) position stays unique.
    "CREATE TABLE IF NOT EXISTS history ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, trigger TEXT NOT NULL, request_id TEXT NOT NULL,"
    " schedule TEXT, occurrence TEXT, instance_id TEXT, instance_name TEXT, action TEXT, result TEXT NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '', error_code TEXT, tick TEXT)",
    "CREATE INDEX IF NOT EXISTS history_at ON history (at, id)",
    "CREATE INDEX IF NOT EXISTS history_schedule ON history (schedule, at, id)",
    "CREATE INDEX IF NOT EXISTS history_instance_id ON history (instance_id, at, id)",
    "CREATE INDEX IF NOT EXISTS history_instance_name ON history (instance_name, at, id)",
)


def _history_entry(row: tuple) -> HistoryEntry:
    (entry_id, at, trigger, request_id, schedule, occurrence, instance_id, instance_name, action, result, reason,
     error_code, tick) = row
    return HistoryEntry(parse_utc(at), trigger, request_id, result, reason, schedule, occurrence, instance_id,
                        instance_name, action, error_code, tick, str(entry_id))


from .history_records import HistoryEntry, HistoryPage, HistoryQuery, decode_cursor, encode_cursor  # noqa: E402
