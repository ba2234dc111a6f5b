"""History: each decision of a tick or an acting route becomes a ledger entry, and the write never fails its caller.

Pure conversions first (a tick summary, or PUT /instances/status's answer -> entries), then the one write
(`attach`, `attach_status_change`), which puts `{"recorded": n}` (or `{"recorded": 0, "error": ...}`) in the
summary's `history` field and never raises: the claims and outcomes that make actions exactly-once were
recorded by the runner before, in their own records, and a failed history write leaves them as they are.

Dry runs and previews (GET /plan) record nothing: they changed nothing, and an observer timer in dry-run mode
would otherwise fill the history with what did not happen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Optional

from dcs_maintenance import clock, logs
from dcs_maintenance.durations import parse_duration
from dcs_maintenance.ledger.history_records import (
    DEFAULT_LIMIT,
    RESULTS,
    HistoryEntry,
    HistoryPage,
    HistoryQuery,
)

# A history write starts only with this much time left in the invocation (the summary must still go out).
MIN_SECONDS = 2.0
# "HTTP 400 DCS.4026: ...", "HTTP 429 APIGW.0308: ...": the service's error code in a reason text.
_ERROR_CODE = re.compile(r"\b([A-Z][A-Za-z0-9]{1,15}\.\d{4})\b")
QUERY_PARAMETERS = ("since", "until", "schedule", "instance", "result", "limit", "cursor")


# -- pure: summaries -> entries ---------------------------------------------------------------------
def error_code(reason: Optional[str]) -> Optional[str]:
    """The first service error code (`DCS.4026`, `APIGW.0308`) in a reason, else None."""
    match = _ERROR_CODE.search(reason or "")
    return match.group(1) if match else None


def _entry(at: datetime, trigger: str, request_id: str, result: str, reason: str, **fields: Any) -> HistoryEntry:
    return HistoryEntry(at, trigger, request_id, result, reason or "", error_code=error_code(reason), **fields)


def entries_from_summary(summary: Mapping[str, Any], at: datetime,
                         trigger: Optional[str] = None) -> list[HistoryEntry]:
    """Every recorded decision of a tick summary (run_tick's): instances, passed occurrences, schedule errors.

    Nothing for dry runs and previews; schedules in dry-run mode are left out too.
    """
    if summary.get("dry_run") or summary.get("preview"):
        return []
    trigger = trigger or str(summary.get("trigger") or "timer")
    request_id, tick = str(summary.get("request_id") or "-"), summary.get("tick")
    entries: list[HistoryEntry] = []
    for sched in summary.get("schedules") or []:
        if sched.get("dry_run"):
            continue
        name = sched.get("name")
        for occ in sched.get("occurrences") or []:
            entries.append(_entry(at, trigger, request_id, occ["result"], occ.get("reason", ""), schedule=name,
                                  occurrence=occ.get("occurrence"), action=sched.get("action"), tick=tick))
        for inst in sched.get("instances") or []:
            entries.append(_entry(at, trigger, request_id, inst["result"], inst.get("reason", ""), schedule=name,
                                  occurrence=inst.get("occurrence"), instance_id=inst.get("instance_id"),
                                  instance_name=inst.get("name") or None, action=inst.get("action"), tick=tick))
        if sched.get("decision") == "error":  # nothing was done for the whole schedule: say why
            entries.append(_entry(at, trigger, request_id, "failed", sched.get("reason", ""), schedule=name,
                                  occurrence=sched.get("occurrence"), action=sched.get("action"), tick=tick))
    return entries


def entries_from_status_change(body: Mapping[str, Any], at: datetime, request_id: str) -> list[HistoryEntry]:
    """PUT /instances/status's answer (`action`, `dry_run`, `details[]`) -> one entry per instance."""
    if body.get("dry_run"):
        return []
    return [_entry(at, "http", request_id, d["result"], d.get("reason", ""), instance_id=d.get("instance"),
                   instance_name=d.get("name") or None, action=body.get("action"))
            for d in body.get("details") or [] if d.get("result") in RESULTS]


# -- the write: never raises --------------------------------------------------------------------------
def write(ledger: Any, entries: list[HistoryEntry], retention: timedelta,
          remaining: Callable[[], float] = lambda: float("inf"), now: Optional[datetime] = None) -> dict[str, Any]:
    """Append entries; `{"recorded": n}`, or `{"recorded": 0, "error": ...}` when anything went wrong."""
    try:
        if not entries:
            return {"recorded": 0}
        append = getattr(ledger, "append_history", None)
        if append is None:
            raise RuntimeError(f"{type(ledger).__name__} keeps no history")
        if remaining() < MIN_SECONDS:
            raise TimeoutError(f"not enough time left in the invocation ({remaining():.1f} s)")
        return {"recorded": int(append(entries, retention, now or clock.now()))}
    except Exception as exc:  # a ledger error, a bug: reported in the summary, never raised
        error = logs.redact(f"{type(exc).__name__}: {exc}")[:500]
        logs.error("history_write_failed", entries=len(entries), error=error)
        return {"recorded": 0, "error": f"history not recorded: {error}"}


def attach(summary: dict[str, Any], ledger: Any, retention: timedelta, trigger: Optional[str] = None,
           remaining: Callable[[], float] = lambda: float("inf")) -> dict[str, Any]:
    """Record a tick summary's decisions and put the outcome in `summary["history"]` (not for dry runs)."""
    if not (summary.get("dry_run") or summary.get("preview")):
        now = clock.now()
        summary["history"] = write(ledger, entries_from_summary(summary, now, trigger), retention, remaining, now)
    return summary


def attach_status_change(body: dict[str, Any], ledger: Any, retention: timedelta,
                         remaining: Callable[[], float] = lambda: float("inf")) -> dict[str, Any]:
    """The same for PUT /instances/status's answer."""
    if not body.get("dry_run"):
        now = clock.now()
        entries = entries_from_status_change(body, now, logs.request_id())
        body["history"] = write(ledger, entries, retention, remaining, now)
    return body


# -- reading -------------------------------------------------------------------------------------------
def parse_time_bound(raw: str, name: str, now: datetime) -> datetime:
    """An ISO 8601 instant with an offset, or a duration back from now (`24h`, `7d`)."""
    from dcs_maintenance.events import EventError, parse_time

    text = raw.strip()
    if re.fullmatch(r"\d+[smhd]", text):
        try:
            return now - parse_duration(text)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    try:
        return parse_time(text.replace(" ", "+"), name)  # a "+" in a query string arrives as a space
    except EventError as exc:
        raise ValueError(f"{exc}, or a duration back from now such as 24h or 7d") from None


def parse_query(params: Mapping[str, Optional[str]], now: Optional[datetime] = None) -> HistoryQuery:
    """The filters from query parameters or CLI options (strings); ValueError naming the parameter."""
    unknown = sorted(set(params) - set(QUERY_PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(QUERY_PARAMETERS)}")
    now = now or clock.now()
    values = {k: v.strip() for k, v in params.items() if v is not None and v.strip()}
    since = parse_time_bound(values["since"], "since", now) if "since" in values else None
    until = parse_time_bound(values["until"], "until", now) if "until" in values else None
    if since is not None and until is not None and since >= until:
        raise ValueError("since must be before until")
    results = tuple(dict.fromkeys(r.strip() for r in values.get("result", "").split(",") if r.strip()))
    bad = [r for r in results if r not in RESULTS]
    if bad:
        raise ValueError(f"result: unknown value(s) {', '.join(bad)}; known: {', '.join(RESULTS)}")
    limit_text = values.get("limit", str(DEFAULT_LIMIT))
    if not limit_text.isdigit():
        raise ValueError(f"limit: expected a whole number, got {limit_text[:20]!r}")
    for name in ("schedule", "instance", "cursor"):
        if len(values.get(name, "")) > 512:
            raise ValueError(f"{name}: at most 512 characters")
    return HistoryQuery(since=since, until=until, schedule=values.get("schedule"), instance=values.get("instance"),
                        results=results, limit=int(limit_text), cursor=values.get("cursor"))


def read(ledger: Any, query: HistoryQuery) -> HistoryPage:
    """One page from the ledger. ValueError for a bad cursor; the ledger's own error when it is down."""
    reader = getattr(ledger, "history", None)
    if reader is None:
        raise RuntimeError(f"{type(ledger).__name__} keeps no history")
    return reader(query)


def page_dict(page: HistoryPage, retention: Optional[timedelta] = None) -> dict[str, Any]:
    data: dict[str, Any] = {"entries": [e.to_dict() for e in page.entries], "count": len(page.entries),
                            "next_cursor": page.next_cursor}
    if retention is not None:
        data["retention_days"] = round(retention / timedelta(days=1), 3)
    return data
