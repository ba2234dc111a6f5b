"""The local command line: validate, preview, run and invoke the function, start the emulator, demo.

Every command exits non-zero on failure (invalid schedules, a tick that is not ok, a bad
argument) so it can gate CI or a deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from dcs_maintenance import clock
from dcs_maintenance.events import EventError, parse_time

ROOT = Path(__file__).resolve().parent.parent


def _time(text: str) -> datetime:
    try:
        return parse_time(text, "--at")
    except EventError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print(data: Any, as_json: bool, text: Optional[str] = None) -> None:
    if as_json or text is None:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


def _schedules_dir(args: argparse.Namespace) -> Path:
    return Path(args.schedules or os.environ.get("SCHEDULES_DIR") or ROOT / "schedules")


# -- validate / next ------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from dcs_maintenance.loader import load_catalog

    catalog = load_catalog(_schedules_dir(args))
    data = {"ok": not catalog.problems, "files": list(catalog.files), "schedules": [s.name for s in catalog.schedules],
            "problems": [p.to_dict() for p in catalog.problems]}
    lines = [f"{len(catalog.files)} file(s), {len(catalog.schedules)} valid schedule(s)"]
    lines += [f"  ok       {s.name} ({s.source})" for s in catalog.schedules]
    lines += [f"  INVALID  {p}" for p in catalog.problems]
    _print(data, args.json, "\n".join(lines))
    return 0 if not catalog.problems else 1


def cmd_next(args: argparse.Namespace) -> int:
    from dcs_maintenance.loader import load_catalog
    from dcs_maintenance.schedule_info import describe_schedule, upcoming

    catalog = load_catalog(_schedules_dir(args))
    after = args.after or datetime.now(timezone.utc)
    chosen = [s for s in catalog.schedules if not args.names or s.name in args.names]
    data = [{"name": s.name, "description": describe_schedule(s), "enabled": s.enabled,
             "next": upcoming(s, after, args.count)} for s in chosen]
    lines = []
    for item in data:
        lines.append(f"{item['name']}: {item['description']}" + ("" if item["enabled"] else " [disabled]"))
        lines += [f"    {n['action']:<12} {n['local']}  ({n['utc']})" for n in item["next"]]
    _print(data, args.json, "\n".join(lines))
    return 0 if chosen else 1


# -- plan / run / invoke ------------------------------------------------------------------------
def _summary_text(summary: dict[str, Any]) -> str:
    lines = [f"tick {summary.get('tick')}  ok={summary.get('ok')}  counts={summary.get('counts')}"]
    for sched in summary.get("schedules", []):
        lines.append(f"  {sched['name']}: {sched['decision']} - {sched['reason']}")
        for occ in sched.get("occurrences", []):
            lines.append(f"      occurrence {occ['occurrence']}: {occ['result']} ({occ['reason']})")
        for inst in sched.get("instances", []):
            lines.append(f"      {inst['result']:<8} {inst.get('action') or '-':<12} {inst['instance_id']} "
                         f"{inst.get('name') or ''}: {inst['reason']}")
    lines += [f"  INVALID {p['file']} {p['path']}: {p['message']}" for p in summary.get("problems", [])]
    lines += [f"  ERROR {e}" for e in summary.get("errors", [])]
    return "\n".join(lines)


def cmd_plan(args: argparse.Namespace) -> int:
    from dcs_maintenance.app import runtime
    from dcs_maintenance.loader import load_catalog
    from dcs_maintenance.runner import TickRequest, run_tick
    from dcs_maintenance.settings import load_settings

    settings = load_settings()
    at = args.at or datetime.now(timezone.utc)
    summary = run_tick(load_catalog(settings.schedules_dir), TickRequest(at, "plan", True, None, preview=True),
                       runtime(settings))
    _print(summary, args.json, _summary_text(summary))
    return 0 if summary["ok"] else 1


def cmd_run(args: argparse.Namespace) -> int:
    import handler
    from dcs_maintenance.local import LocalContext, timer_event

    at = args.at or datetime.now(timezone.utc).replace(second=0, microsecond=0)
    if args.at:
        clock.set_clock(clock.offset_clock(at))
    options: dict[str, Any] = {}
    if args.dry_run:
        options["dry_run"] = True
    if args.schedule:
        options["schedules"] = args.schedule
    summary = handler.handler(timer_event(at, options or ""), LocalContext())
    _print(summary, args.json, _summary_text(summary))
    return 0 if summary.get("ok") else 1


def cmd_invoke(args: argparse.Namespace) -> int:
    import handler
    from dcs_maintenance.local import LocalContext, apig_event, timer_event

    if args.kind == "timer":
        at = args.at or datetime.now(timezone.utc)
        event = timer_event(at, args.user_event or "")
    else:
        headers = dict(h.split(":", 1) for h in args.header or [])
        headers = {k.strip(): v.strip() for k, v in headers.items()}
        token = os.environ.get("API_TOKEN")
        if token and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {token}"
        event = apig_event(args.method, args.path, args.body, headers,
                           dict(q.split("=", 1) for q in args.query or []))
    print(json.dumps(handler.handler(event, LocalContext()), indent=2, default=str))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from dcs_maintenance.serve import serve

    return serve(args.host, args.port)


def cmd_emulator(args: argparse.Namespace) -> int:
    from dcs_emulator.__main__ import main as emulator_main

    return emulator_main(args.emulator_args) or 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dcs_maintenance.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dcs_maintenance", description=__doc__)
    parser.add_argument("--schedules", help="schedules folder (default: SCHEDULES_DIR or ./schedules)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="validate the schedule files")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("next", help="upcoming occurrences, with the cron in plain language")
    p.add_argument("names", nargs="*", help="schedule names (default: all)")
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--after", type=_time, help="ISO 8601 start (default: now)")
    p.set_defaults(func=cmd_next)
    p = sub.add_parser("plan", help="what a tick at --at would do, calling only read APIs")
    p.add_argument("--at", type=_time)
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("run", help="run one tick now, or at --at (the wall clock is set to --at)")
    p.add_argument("--at", type=_time)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--schedule", action="append", help="only this schedule (repeatable)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("invoke", help="call handler.handler with a TIMER or APIG event and print its answer")
    p.add_argument("kind", choices=["timer", "http"])
    p.add_argument("method", nargs="?", default="GET")
    p.add_argument("path", nargs="?", default="/health")
    p.add_argument("--at", type=_time)
    p.add_argument("--user-event")
    p.add_argument("--body")
    p.add_argument("--header", action="append", help="Name: value (repeatable)")
    p.add_argument("--query", action="append", help="key=value (repeatable)")
    p.set_defaults(func=cmd_invoke)
    p = sub.add_parser("serve", help="serve the HTTP routes locally (real HTTP -> APIG events -> handler.handler)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("emulator", help="start the local DCS emulator (arguments go to python -m dcs_emulator)")
    p.add_argument("emulator_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_emulator)
    p = sub.add_parser("demo", help="a night of maintenance against the local emulator, printed as it happens")
    p.add_argument("--from", dest="start", type=_time, default=None, help="first tick (ISO 8601)")
    p.add_argument("--hours", type=float, default=38.0, help="how many hours of 5-minute ticks")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:  # a clear one-line error, not a traceback, for expected failures
        from dcs_maintenance.settings import SettingsError

        if isinstance(exc, (SettingsError, EventError, ValueError)):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
