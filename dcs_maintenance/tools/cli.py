"""The local command line: validate, preview, run and invoke the function, start the emulator, demo.

Every command exits non-zero on failure (invalid schedules, a tick that is not ok, a bad
argument) so it can gate CI or a deployment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from dcs_maintenance import clock
from dcs_maintenance.events import EventError, parse_time
from dcs_maintenance.tools.summary_text import summary_text

ROOT = Path(__file__).resolve().parents[2]


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


def _logs_to_stderr() -> contextlib.AbstractContextManager:
    """The function writes its JSON log lines to stdout (FunctionGraph collects them there); on the command line
    they go to stderr, so that stdout carries only the command's output (text or --json)."""
    return contextlib.redirect_stdout(sys.stderr)


def _schedules_dir(args: argparse.Namespace) -> Path:
    return Path(args.schedules or os.environ.get("SCHEDULES_DIR") or ROOT / "schedules")


# -- validate / next ------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from dcs_maintenance.loader import ValidationContext, load_catalog
    from dcs_maintenance.settings import SettingsError, load_settings

    try:  # the function's region and tick period, where the environment gives them
        context = load_settings().validation_context()
    except SettingsError:
        context = ValidationContext(region=os.environ.get("DCS_REGION", "").strip() or None)
    catalog = load_catalog(_schedules_dir(args), context)
    data = {"ok": not catalog.problems, "files": list(catalog.files), "schedules": [s.name for s in catalog.schedules],
            "problems": [p.to_dict() for p in catalog.problems], "warnings": [w.to_dict() for w in catalog.warnings]}
    lines = [f"{len(catalog.files)} file(s), {len(catalog.schedules)} valid schedule(s)"]
    lines += [f"  ok       {s.name} ({s.source})" for s in catalog.schedules]
    lines += [f"  INVALID  {p}" for p in catalog.problems]
    lines += [f"  WARNING  {w}" for w in catalog.warnings]
    _print(data, args.json, "\n".join(lines))
    return 0 if not catalog.problems else 1


def cmd_next(args: argparse.Namespace) -> int:
    from dcs_maintenance.loader import load_catalog
    from dcs_maintenance.schedule_info import describe_schedule, freezes_info, upcoming

    catalog = load_catalog(_schedules_dir(args))
    after = args.after or datetime.now(timezone.utc)
    chosen = [s for s in catalog.schedules if not args.names or s.name in args.names]
    data = [{"name": s.name, "description": describe_schedule(s), "enabled": s.enabled,
             "next": upcoming(s, after, args.count)} for s in chosen]
    lines = []
    for item in data:
        lines.append(f"{item['name']}: {item['description']}" + ("" if item["enabled"] else " [disabled]"))
        lines += [f"    {n['action']:<12} {n['local']}  ({n['utc']})" for n in item["next"]]
    # Freezes that are not over, listed after the schedules (JSON: entries with "kind": "freeze").
    frozen = [{"kind": "freeze", **f} for f in freezes_info(catalog.freezes, after)
              if f["state"] != "past" and (not args.names or f["name"] in args.names)]
    lines += [f"freeze {f['name']} [{f['state']}]: {f['from']} to {f['until']} {f['timezone']} "
              f"({f['start']} to {f['end']}), {', '.join(f['actions'])}: {f['reason']}" for f in frozen]
    _print(data + frozen, args.json, "\n".join(lines))
    return 0 if chosen or frozen else 1


# -- plan / run / invoke ------------------------------------------------------------------------
def cmd_plan(args: argparse.Namespace) -> int:
    from dcs_maintenance.invocation import runtime
    from dcs_maintenance.loader import load_catalog
    from dcs_maintenance.runner import TickRequest, run_tick
    from dcs_maintenance.settings import load_settings

    settings = load_settings()
    at = args.at or datetime.now(timezone.utc)
    with _logs_to_stderr():
        summary = run_tick(load_catalog(settings.schedules_dir), TickRequest(at, "plan", True, None, preview=True),
                           runtime(settings))
    _print(summary, args.json, summary_text(summary))
    return 0 if summary["ok"] else 1


def cmd_run(args: argparse.Namespace) -> int:
    import handler
    from dcs_maintenance.tools.local import LocalContext, timer_event

    at = args.at or datetime.now(timezone.utc).replace(second=0, microsecond=0)
    if args.at:  # judge the tick as it would have been judged then; the wall clock stays the real one
        clock.set_as_of(clock.offset_clock(at))
    options: dict[str, Any] = {}
    if args.dry_run:
        options["dry_run"] = True
    if args.schedule:
        options["schedules"] = args.schedule
    try:
        if args.until:
            return _run_ticks(args, at, options)
        with _logs_to_stderr():
            summary = handler.handler(timer_event(at, options or ""), LocalContext())
    finally:
        clock.set_as_of(None)
    _print(summary, args.json, summary_text(summary))
    return 0 if summary.get("ok") else 1


def _run_ticks(args: argparse.Namespace, start: datetime, options: dict[str, Any]) -> int:
    """Successive ticks from --at to --until every --every (default TICK_PERIOD), the wall clock following."""
    import handler
    from dcs_maintenance.durations import parse_duration
    from dcs_maintenance.settings import load_settings
    from dcs_maintenance.tools.local import LocalContext, timer_event
    from dcs_maintenance.tools.progress import Progress

    step = parse_duration(args.every) if args.every else load_settings().tick_period
    if args.until < start or step.total_seconds() <= 0:
        raise ValueError("--until must not be before --at, and --every must be positive")
    count = int((args.until - start) / step) + 1
    ok, active = True, []
    with Progress(count, "ticks", enabled=False if args.json else None) as bar:
        for n in range(count):
            at = start + n * step
            clock.set_as_of(clock.offset_clock(at))
            with _logs_to_stderr():
                summary = handler.handler(timer_event(at, options or ""), LocalContext())
            ok = ok and bool(summary.get("ok"))
            if summary.get("schedules") or summary.get("problems") or summary.get("errors"):
                active.append(summary)
                if not args.json:
                    bar.clear()
                    print(summary_text(summary))
            bar.update(n + 1, at.isoformat())
    _print({"ok": ok, "ticks": count, "from": start.isoformat(), "until": args.until.isoformat(), "active": active},
           args.json, f"{count} tick(s) from {start.isoformat()}, {len(active)} with activity, ok={ok}")
    return 0 if ok else 1


def cmd_invoke(args: argparse.Namespace) -> int:
    import handler
    from dcs_maintenance.tools.local import LocalContext, apig_event, timer_event

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
    with _logs_to_stderr():
        result = handler.handler(event, LocalContext())
    print(json.dumps(result, indent=2, default=str))
    failed = result.get("statusCode", 200) >= 400 if args.kind == "http" else not result.get("ok")
    return 1 if failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from dcs_maintenance.tools.serve import serve

    return serve(args.host, args.port)


def cmd_emulator(args: argparse.Namespace) -> int:
    from dcs_emulator.__main__ import main as emulator_main

    return emulator_main(args.emulator_args) or 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dcs_maintenance.tools.demo import run_demo

    return run_demo(args)


def cmd_package(args: argparse.Namespace) -> int:
    from dcs_maintenance.tools.package import run_cli

    return run_cli(args)


EXAMPLES = """examples:
  python -m dcs_maintenance validate --json
  python -m dcs_maintenance next staging-nightly-restart --count 3
  python -m dcs_maintenance plan --at 2026-12-06T19:00:00Z
  python -m dcs_maintenance run --at 2026-12-05T18:00:00Z --until 2026-12-07T07:00:00Z --dry-run
  python -m dcs_maintenance invoke http GET /schedules
  python -m dcs_maintenance emulator --port 8800 --seed demo/seed.json
  python -m dcs_maintenance package --python 3.10
  python -m dcs_maintenance demo

--json and --schedules go before or after the command. Exit codes: 0 ok; 1 a check failed or a tick
was not ok; 2 bad arguments or settings. plan, run and invoke read the function's settings from the
environment (DCS_ENDPOINT, DCS_REGION, RUNTIME_PROJECT_ID, HUAWEICLOUD_SDK_AK/SK, LEDGER_URL, ...)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dcs_maintenance", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", help="schedules folder (default: SCHEDULES_DIR or ./schedules)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="validate the schedule files")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("next", help="upcoming occurrences, with the cron in plain language")
    p.add_argument("names", nargs="*", help="schedule names (default: all)")
    p.add_argument("--count", type=int, default=5, help="occurrences per schedule (default 5)")
    p.add_argument("--after", type=_time, help="ISO 8601 start (default: now)")
    p.set_defaults(func=cmd_next)
    p = sub.add_parser("plan", help="what a tick at --at would do, calling only read APIs")
    p.add_argument("--at", type=_time, help="tick time, ISO 8601 (default: now)")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("run", help="run one tick now, or at --at (the wall clock is set to --at)")
    p.add_argument("--at", type=_time, help="tick time, ISO 8601 (default: now, to the minute)")
    p.add_argument("--until", type=_time, help="run successive ticks from --at up to this time (ISO 8601)")
    p.add_argument("--every", help="interval between those ticks, e.g. 5m (default: TICK_PERIOD)")
    p.add_argument("--dry-run", action="store_true", help="decide and report, change nothing")
    p.add_argument("--schedule", action="append", help="only this schedule (repeatable)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("invoke", help="call handler.handler with a TIMER or APIG event and print its answer")
    p.add_argument("kind", choices=["timer", "http"], help="the event to build")
    p.add_argument("method", nargs="?", default="GET", help="http: the method (default GET)")
    p.add_argument("path", nargs="?", default="/health", help="http: the path (default /health)")
    p.add_argument("--at", type=_time, help="timer: the event's time (default: now)")
    p.add_argument("--user-event", help="timer: user_event, e.g. '{\"dry_run\": true}'")
    p.add_argument("--body", help="http: request body (JSON or YAML text)")
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
    from dcs_maintenance.tools import demo, package

    demo.add_arguments(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("package", help="build the FunctionGraph deployment zip (code, schedules, wheels, bytecode)",
                       description="Build dist/dcs-maintenance.zip for FunctionGraph: handler.py, the package, "
                                   "schedules/ and the requirements' manylinux wheels, with bytecode compiled by the "
                                   "target Python. Fails above the console's 40 MB upload limit.")
    package.add_arguments(p)
    p.set_defaults(func=cmd_package)
    from dcs_maintenance.tools import visibility_cli  # history, calendar

    visibility_cli.add_commands(sub)
    for name, command in sub.choices.items():  # `validate --json` works as well as `--json validate`
        for flag, kwargs in (("--json", {"action": "store_true", "help": "print JSON instead of text"}),
                             ("--schedules", {"help": "schedules folder (default: SCHEDULES_DIR or ./schedules)"})):
            servers = ("emulator", "serve") if flag == "--json" else ("emulator",)
            if name not in servers and flag not in command._option_string_actions:
                command.add_argument(flag, default=argparse.SUPPRESS, **kwargs)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # `emulator --port 0 ...`: argparse's REMAINDER does not take leading options, so hand them on
        if getattr(args, "command", None) != "emulator":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.emulator_args = extra + list(args.emulator_args)
    if getattr(args, "schedules", None) and args.command in ("plan", "run", "invoke", "serve"):
        os.environ["SCHEDULES_DIR"] = args.schedules  # the function reads its schedules folder from there
    try:
        return int(args.func(args) or 0)
    except Exception as exc:  # a clear one-line error, not a traceback, for expected failures
        from dcs_maintenance.settings import SettingsError

        if isinstance(exc, (SettingsError, EventError, ValueError)):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
