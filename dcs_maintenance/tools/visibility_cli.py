"""`history` and `calendar`: what the function did (from the ledger) and what it will do (an iCalendar feed).

Hooked into cli.py's parser by `add_commands`. Both read the same code as their HTTP routes (GET /history,
GET /calendar.ics): history.parse_query and calendar_feed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REASON_WIDTH = 70


def _time(text: str) -> datetime:
    from dcs_maintenance.events import EventError, parse_time

    try:
        return parse_time(text, "--after")
    except EventError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_commands(sub: Any) -> None:
    """Add the `history` and `calendar` subcommands to cli.py's subparsers."""
    p = sub.add_parser("history", help="what the function did and decided, newest first (from LEDGER_URL)",
                       description="Entries from the ledger's history, newest first: time, trigger, schedule, "
                                   "occurrence, instance, action, result, DCS error code, reason.")
    p.add_argument("--since", help="ISO 8601 time with an offset, or a duration back from now (24h, 7d)")
    p.add_argument("--until", help="ISO 8601 time with an offset, or a duration back from now (exclusive)")
    p.add_argument("--schedule", help="only this schedule")
    p.add_argument("--instance", help="only this instance (id or name)")
    p.add_argument("--result", help="only these results, comma-separated: "
                                    "success,failed,unknown,missed,skipped,frozen,halted")
    p.add_argument("--limit", default="50", help="entries per page, 1-1000 (default 50)")
    p.add_argument("--cursor", help="the next page: the cursor printed after the previous one")
    p.set_defaults(func=cmd_history)
    p = sub.add_parser("calendar", help="an iCalendar (.ics) feed of upcoming occurrences, window edges and freezes",
                       description="The same feed as GET /calendar.ics: upcoming occurrences (as `next` lists "
                                   "them), window stops and starts, each in its schedule's time zone, and freezes "
                                   "in theirs; an occurrence a freeze holds back is listed as 'frozen: ...'.")
    p.add_argument("--days", type=int, default=30, help="days ahead, 1-366 (default 30)")
    p.add_argument("--after", type=_time, help="ISO 8601 start (default: now)")
    p.add_argument("--output", "-o", help="write the feed to this file (default: stdout)")
    p.add_argument("--resolve", action="store_true",
                   help="list each project's instances once (needs the function's settings and credentials) "
                        "and name the targets in each event")
    p.set_defaults(func=cmd_calendar)


def cmd_history(args: argparse.Namespace) -> int:
    from dcs_maintenance import history
    from dcs_maintenance.ledger import open_ledger
    from dcs_maintenance.ledger.base import LedgerError
    from dcs_maintenance.settings import load_settings

    settings = load_settings()
    query = history.parse_query({name: getattr(args, name) for name in history.QUERY_PARAMETERS})
    try:
        with open_ledger(settings.ledger_url) as ledger:
            page = history.read(ledger, query)
    except LedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    data = history.page_dict(page, settings.history_retention)
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        print(history_table(data["entries"]))
        if page.next_cursor:
            print(f"more: --cursor {page.next_cursor}")
    return 0


def history_table(entries: list[dict[str, Any]]) -> str:
    """A fixed-width table, one entry a line; the reason is cut to REASON_WIDTH (full in --json)."""
    if not entries:
        return "no history entries match"
    headers = ("TIME (UTC)", "TRIGGER", "SCHEDULE", "OCCURRENCE", "INSTANCE", "ACTION", "RESULT", "CODE", "REASON")
    rows = []
    for e in entries:
        reason = " ".join(str(e.get("reason") or "").split())
        if len(reason) > REASON_WIDTH:
            reason = reason[: REASON_WIDTH - 3] + "..."
        rows.append((e["at"][:19].replace("T", " "), e["trigger"], e.get("schedule") or "-",
                     (e.get("occurrence") or "-").replace("T", " "), e.get("instance_name") or e.get("instance_id")
                     or "-", e.get("action") or "-", e["result"], e.get("error_code") or "-", reason))
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in [headers, *rows])


def cmd_calendar(args: argparse.Namespace) -> int:
    from dcs_maintenance import clock
    from dcs_maintenance.calendar_feed import build_events, render, resolve_targets
    from dcs_maintenance.loader import load_catalog

    schedules_dir = Path(getattr(args, "schedules", None) or os.environ.get("SCHEDULES_DIR") or ROOT / "schedules")
    catalog = load_catalog(schedules_dir)
    for problem in catalog.problems:
        print(f"warning: {problem} (not in the feed)", file=sys.stderr)
    after = args.after or clock.now()
    targets = None
    if args.resolve:
        from dcs_maintenance import dcs_rules
        from dcs_maintenance.invocation import runtime
        from dcs_maintenance.settings import load_settings

        settings = load_settings()
        rt = runtime(settings)
        tags = dcs_rules.tag_filters(catalog.schedules, settings.protect_tag)  # list entries without tags
        with contextlib.redirect_stdout(sys.stderr):  # the function's JSON log lines: not into the feed
            targets = resolve_targets(catalog.schedules, settings.project_id, settings.region, settings.protect_tag,
                                      lambda project, region: rt.gateway(project, region).list_instances(tags),
                                      clock.now())
    events = build_events(catalog.schedules, after, args.days, targets, catalog.freezes)  # frozen ones marked
    if getattr(args, "json", False):
        text = json.dumps([e.to_dict() for e in events], indent=2).encode("utf-8") + b"\n"
    else:
        text = render(events, datetime.now(timezone.utc), after, args.days)
    if args.output:
        Path(args.output).write_bytes(text)
        print(f"{len(events)} event(s) from {after.isoformat()} for {args.days} day(s) written to {args.output}",
              file=sys.stderr)
    else:  # text, not bytes: stdout may be the command line's pipe-safe wrapper (no .buffer); CRLFs pass through
        sys.stdout.write(text.decode("utf-8"))
        sys.stdout.flush()
    return 0
