"""The Redis ledger: shared by every function instance, with atomic claims.

Keys (all under a configurable prefix, default `dcsm:`):
- `<prefix>claim:<claim key>`: JSON `{outcome, detail, holder, at}`, taken with `SET NX PX <ttl>`;
- `<prefix>watermarks`: hash schedule -> UTC ISO text, advanced by a Lua script (max semantics);
- `<prefix>window:<schedule>`: hash instance id -> JSON `{state, occurrence}`;
- `<prefix>meta:<key>`: plain string (`meta:rollout:<schedule>`: a rollout's state, JSON, updated by
  `update_meta` with WATCH/MULTI and expiring 8 days after its last write).

Every script touches one key, and needs nothing newer than Redis 2.6 (so a DCS Redis 4.0/5.0 will do).
The `redis` package is imported when a `RedisLedger` is made, never by importing this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any, Optional

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
)

DEFAULT_PREFIX = "dcsm:"
DEFAULT_TIMEOUT = 5.0
UPDATE_ATTEMPTS = 50  # update_meta: reads retried when another client wrote the key in between

# KEYS[1] = the watermarks hash; ARGV = schedule, mark, schedule, mark, ... (fixed-width UTC text).
# Compared byte by byte, since Lua's `<` on strings follows the server's collation locale.
_ADVANCE_WATERMARKS = """
local function later(a, b)
  for i = 1, math.max(#a, #b) do
    local x, y = string.byte(a, i) or -1, string.byte(b, i) or -1
    if x ~= y then return x > y end
  end
  return false
end
local changed = 0
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or later(ARGV[i + 1], cur) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    changed = changed + 1
  end
end
return changed
"""

# KEYS[1] = a claim; ARGV = outcome, detail[, only this current outcome]. Keeps holder, at and the remaining
# TTL; a claim that does not exist (never taken, or expired), or whose outcome is not ARGV[3] when given, is
# left as it is. Returns 1 when recorded, else 0.
_RECORD = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, rec = pcall(cjson.decode, v)
if not ok or type(rec) ~= 'table' then rec = {} end
if ARGV[3] and rec['outcome'] ~= ARGV[3] then return 0 end
rec['outcome'] = ARGV[1]
rec['detail'] = ARGV[2]
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], cjson.encode(rec), 'PX', ttl)
else
  redis.call('SET', KEYS[1], cjson.encode(rec))
end
return 1
"""


# KEYS[1] = a claim; ARGV[1] = holder. Deletes it only while this holder holds it unrecorded. Returns 1 if deleted.
_RELEASE = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, rec = pcall(cjson.decode, v)
if not ok or type(rec) ~= 'table' or rec['holder'] ~= ARGV[1] or rec['outcome'] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


def _claim_value(outcome: str, detail: str, holder: str, at: str) -> str:
    return json.dumps({"outcome": outcome, "detail": detail, "holder": holder, "at": at}, separators=(",", ":"))


class RedisLedger(LedgerBase):
    """`Ledger` on a Redis server (a DCS instance). Usually made by `open_ledger("redis://...")`.

    Commands are never retried automatically: a write whose reply is lost raises `LedgerError`
    and its effect is unknown (a claim may have been taken), which callers treat as "not sent".
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        *,
        username: Optional[str] = None,
        password: Optional[str] = None,
        ssl: bool = False,
        ssl_cert_reqs: Optional[str] = None,
        ssl_ca_certs: Optional[str] = None,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = DEFAULT_TIMEOUT,
        socket_connect_timeout: float = DEFAULT_TIMEOUT,
        client: Any = None,
        display_url: Optional[str] = None,
    ) -> None:
        self.prefix = prefix
        self.display_url = display_url or f"{'rediss' if ssl else 'redis'}://{host}:{port}/{db}"
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - redis is a pinned dependency
            raise LedgerError("LEDGER_URL names a Redis ledger but the 'redis' package is not installed") from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        if client is None:
            kwargs: dict[str, Any] = {}
            if ssl:
                kwargs["ssl"] = True
                if ssl_cert_reqs is not None:
                    kwargs["ssl_cert_reqs"] = ssl_cert_reqs
                if ssl_ca_certs is not None:
                    kwargs["ssl_ca_certs"] = ssl_ca_certs
            client = redis.Redis(
                host=host,
                port=port,
                db=db,
                username=username,
                password=password,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
                retry=Retry(NoBackoff(), 0),  # never re-send a write whose reply was lost
                decode_responses=True,
                driver_info=None,  # no CLIENT SETINFO round trip on connect
                **kwargs,
            )
        self._client = client

    def __repr__(self) -> str:
        return f"RedisLedger({self.display_url!r}, prefix={self.prefix!r})"

    # -- plumbing -----------------------------------------------------------------------------

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}{name}"

    def _claim_key(self, key: str) -> str:
        return self._key("claim:", key)

    def _run(self, what: str, fn):
        if self._client is None:
            raise LedgerError(f"the Redis ledger {self.display_url} is closed")
        try:
            return fn(self._client)
        except self._errors as exc:
            raise LedgerError(f"Redis ledger {self.display_url}: {what} failed: {type(exc).__name__}: {exc}") from exc

    # -- Ledger -------------------------------------------------------------------------------

    def watermarks(self) -> dict[str, datetime]:
        raw = self._run("reading watermarks", lambda r: r.hgetall(self._key("watermarks")))
        return {schedule: parse_utc(mark) for schedule, mark in raw.items()}

    def advance_watermarks(self, marks: dict[str, datetime]) -> None:
        if not marks:
            return
        args: list[str] = []
        for schedule, mark in marks.items():
            args += [schedule, format_utc(mark)]
        self._run(
            "advancing watermarks",
            lambda r: r.eval(_ADVANCE_WATERMARKS, 1, self._key("watermarks"), *args),
        )

    def claim_many(self, keys: list[str], holder: str, ttl: timedelta = CLAIM_TTL,
                   now: Optional[datetime] = None) -> list[bool]:
        if ttl <= timedelta(0):
            raise ValueError(f"claim ttl must be positive, got {ttl}")
        if not keys:
            return []
        ttl_ms = max(1, int(ttl.total_seconds() * 1000))  # expiry on the server's own clock
        value = _claim_value(CLAIMED, "", holder, format_utc(now or clock.now()))

        def claim(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)  # one round trip; each SET NX is atomic on its own
            for key in keys:
                pipe.set(self._claim_key(key), value, nx=True, px=ttl_ms)
            return pipe.execute()

        return [bool(ok) for ok in self._run("claiming", claim)]

    def record_many(self, outcomes: dict[str, tuple[str, str]], only_claimed: bool = False) -> None:
        if not outcomes:
            return
        condition = (CLAIMED,) if only_claimed else ()

        def record(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for key, (outcome, detail) in outcomes.items():
                pipe.eval(_RECORD, 1, self._claim_key(key), outcome, detail, *condition)
            return pipe.execute()

        self._run("recording outcomes", record)

    def release_many(self, keys: list[str], holder: str) -> None:
        if not keys:
            return

        def release(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.eval(_RELEASE, 1, self._claim_key(key), holder, CLAIMED)
            return pipe.execute()

        self._run("releasing claims", release)

    def claims_by_prefix(self, prefix: str, now: Optional[datetime] = None) -> dict[str, ClaimRecord]:
        # SCAN walks the whole key space: fine for its rare use (an occurrence reported past its deadline).
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._claim_key(prefix)) + "*"
        found = self._run("scanning claims", lambda r: list(r.scan_iter(match=pattern, count=1000)))
        start = len(self._claim_key(""))
        return self.get_claims([key[start:] for key in found], now)

    def get_claims(self, keys: list[str], now: Optional[datetime] = None) -> dict[str, ClaimRecord]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        values = self._run("reading claims", lambda r: r.mget([self._claim_key(k) for k in keys]))
        found: dict[str, ClaimRecord] = {}
        for key, value in zip(keys, values, strict=True):
            if value is None:
                continue
            try:
                rec = json.loads(value)
                found[key] = ClaimRecord(
                    key=key,
                    outcome=str(rec.get("outcome", CLAIMED)),
                    detail=str(rec.get("detail", "")),
                    holder=str(rec.get("holder", "")),
                    at=parse_utc(rec["at"]),
                )
            except (ValueError, TypeError, KeyError, AttributeError):
                # Present but unreadable: still a claim (it blocks re-claiming), outcome unknown.
                found[key] = ClaimRecord(key, CLAIMED, "unreadable claim record", "", clock.now())
        return found

    def window_states(self, schedule: str) -> dict[str, WindowState]:
        raw = self._run("reading window states", lambda r: r.hgetall(self._key("window:", schedule)))
        states: dict[str, WindowState] = {}
        for instance, value in raw.items():
            rec = json.loads(value)
            states[instance] = WindowState(state=rec["state"], occurrence=parse_utc(rec["occurrence"]))
        return states

    def set_window_states(self, schedule: str, states: dict[str, WindowState]) -> None:
        """Upsert the given instances' states; instances not given keep theirs."""
        if not states:
            return
        mapping = {
            instance: json.dumps({"state": ws.state, "occurrence": format_utc(ws.occurrence)}, separators=(",", ":"))
            for instance, ws in states.items()
        }
        self._run("writing window states", lambda r: r.hset(self._key("window:", schedule), mapping=mapping))

    def get_meta(self, key: str) -> Optional[str]:
        return self._run("reading meta", lambda r: r.get(self._key("meta:", key)))

    def set_meta(self, key: str, value: str) -> None:
        self._run("writing meta", lambda r: r.set(self._key("meta:", key), value))

    def get_metas(self, keys: list[str]) -> dict[str, Optional[str]]:
        """Several meta values in one round trip (MGET): key -> value or None."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        values = self._run("reading meta", lambda r: r.mget([self._key("meta:", k) for k in keys]))
        return dict(zip(keys, values, strict=True))

    def update_meta(self, key: str, change: Callable[[Optional[str]], Optional[str]],
                    ttl: Optional[timedelta] = None) -> Optional[str]:
        """Read, change and write one meta value: WATCH, GET, `change`, then MULTI/SET/EXEC, again from the read
        when another client wrote the key in between (optimistic: `change` must be a pure function of what it
        reads). With `ttl` the key expires that long after this write (PX)."""
        full = self._key("meta:", key)
        px = max(1, int(ttl.total_seconds() * 1000)) if ttl is not None else None

        def update(r: Any) -> Optional[str]:
            from redis.exceptions import WatchError

            with r.pipeline(transaction=True) as pipe:
                for _ in range(UPDATE_ATTEMPTS):
                    try:
                        pipe.watch(full)
                        stored = pipe.get(full)
                        value = change(stored)
                        if value is None or value == stored:
                            pipe.unwatch()
                            return stored
                        pipe.multi()
                        pipe.set(full, value, px=px)
                        pipe.execute()
                        return value
                    except WatchError:
                        continue
            raise LedgerError(f"Redis ledger {self.display_url}: {key} kept changing under "
                              f"{UPDATE_ATTEMPTS} attempts to update it")

        return self._run(f"updating {key}", update)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with suppress(*self._errors):
                client.close()

    # -- history (issue 14): one sorted set, trimmed by retention; never touches the claims --------------
    #
    # `<prefix>history`: every member has score 0, so the set is ordered by the member's bytes (ZRANGEBYLEX,
    # Redis 2.8.9+). A member is `<at>|<id>|<JSON payload>` with `at` in format_utc's fixed width: byte order is
    # time order, and the id (a random batch prefix plus a sequence number, fixed width) breaks ties. Trimming
    # is one ZREMRANGEBYLEX below `now - retention` at every append, and the key expires one day after the last
    # append's retention, so no key outlives its data.

    def append_history(self, entries: list[HistoryEntry], retention: timedelta,
                       now: Optional[datetime] = None) -> int:
        if not entries:
            return 0
        import secrets

        key = self._key("history")
        now = now or clock.now()
        batch = secrets.token_hex(6)
        members = {
            f"{format_utc(e.at)}|{batch}{n:05d}|{json.dumps(e.payload(), separators=(',', ':'), ensure_ascii=False)}": 0
            for n, e in enumerate(entries)
        }
        expire_ms = int((retention + timedelta(days=1)).total_seconds() * 1000)

        def append(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=True)  # MULTI/EXEC: trimmed and appended together
            pipe.zremrangebylex(key, "-", f"({format_utc(now - retention)}")
            pipe.zadd(key, members)
            pipe.pexpire(key, max(1, expire_ms))
            return pipe.execute()

        self._run("appending history", append)
        return len(members)

    def history(self, query: HistoryQuery) -> HistoryPage:
        """Newest first: ZREVRANGEBYLEX in batches from the cursor down to `since`, filtered here.

        Each request reads at most HISTORY_SCAN members: with a rare filter a page may hold fewer than `limit`
        entries and still have a next cursor (the position reached); follow it until it is None.
        """
        key = self._key("history")
        high = "+"
        if query.until is not None:
            high = f"({format_utc(query.until)}"
        if query.cursor is not None:
            at_text, entry_id = decode_cursor(query.cursor)
            if not isinstance(entry_id, str) or "|" in entry_id:
                raise ValueError("cursor: not a cursor from a previous page")
            position = f"({at_text}|{entry_id}"
            high = position if high == "+" else min(high, position)
        low = "-" if query.since is None else f"[{format_utc(query.since)}"
        found: list[HistoryEntry] = []
        examined, last = 0, None
        while True:
            members = self._run("reading history",
                                lambda r, hi=high: r.zrevrangebylex(key, hi, low, start=0, num=_HISTORY_BATCH))
            for member in members:
                last = member
                entry = _history_entry(member)
                if entry is not None and query.matches(entry):
                    found.append(entry)
                    if len(found) > query.limit:
                        break
            examined += len(members)
            if len(found) > query.limit or len(members) < _HISTORY_BATCH:
                break
            high = f"({last}"
            if examined >= HISTORY_SCAN:  # bounded work per request: hand back the position reached
                at_text, entry_id, _ = str(last).split("|", 2)
                return HistoryPage(found, encode_cursor(at_text, entry_id))
        entries = found[: query.limit]
        more = len(found) > query.limit
        return HistoryPage(entries, encode_cursor(entries[-1].at, entries[-1].id) if more else None)


_HISTORY_BATCH = 500
HISTORY_SCAN = 20_000  # members examined per history request at most


def _history_entry(member: str) -> Optional[HistoryEntry]:
    """The entry a member holds; None for a member that is not ours (it is skipped, never fatal)."""
    try:
        at_text, entry_id, payload = member.split("|", 2)
        return HistoryEntry.from_payload(parse_utc(at_text), entry_id, json.loads(payload))
    except (ValueError, TypeError, KeyError):
        return None


from .history_records import HistoryEntry, HistoryPage, HistoryQuery, decode_cursor, encode_cursor  # noqa: E402
