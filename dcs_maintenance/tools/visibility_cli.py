"""`history`: what the function did and decided, from the ledger.

Hooked into cli.py's parser by `add_commands`. It reads the same code as GET /history (history.parse_query).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
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
    """Add the `history` subcommand to cli.py's subparsers."""
    p = sub.add_parser("history", help="what the function did and decided, newest first (from LEDGER_URL)",
                       description="Entries from the ledger's history, newest first: time, trigger, schedule, "
                                   "occurrence, instance, action, result, DCS error code, reason.")
    p.add_argument("--since", help="ISO 8601 time with an offset, or a duration back from now (24h, 7d)")
    p.add_argument("--until", help="ISO 8601 time with an offset, or a duration back from now (exclusive)")
    p.add_argument("--schedule", help="only this schedule")
    p.add_argument("--instance", help="only this instance (id or name)")
    p.add_argument("--result", help="only these results, comma-separated: success,failed,unknown,missed,skipped")
    p.add_argument("--limit", default="50", help="entries per page, 1-1000 (default 50)")
    p.add_argument("--cursor", help="the next page: the cursor printed after the previous one")
    p.set_defaults(func=cmd_history)


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
