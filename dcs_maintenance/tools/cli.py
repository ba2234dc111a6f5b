"""The local command line: validate, preview, run and invoke the function, start the emulator, demo.

Every command exits non-zero on failure (invalid schedules, a tick that is not ok, a bad
argument) so it can gate CI or a deployment.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from dcs_maintenance import __version__, clock
from dcs_maintenance.events import EventError, parse_time
from dcs_maintenance.tools.summary_text import summary_text

ROOT = Path(__file__).resolve().parents[2]
MAX_COUNT = 1000  # `next --count`: more is a typo, and a sparse cron would search for a long time
OK, FAILED, USAGE = 0, 1, 2  # the exit codes (README, "Command line")


class UsageError(Exception):
    """A bad argument found after parsing (a path that does not exist, a missing companion option): exit 2."""


# -- argument types: each refuses a bad value with a message argparse prints (exit 2) -----------------------------
def _time(text: str) -> datetime:
    try:
        return parse_time(text, "time")
    except EventError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("time: ")) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{value} is outside 1..{MAX_COUNT}")
    return value


def _duration(text: str) -> Any:
    from dcs_maintenance.durations import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value.total_seconds() <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than 0s")
    return value


def _name_value(kind: str, separators: str) -> Any:
    """--header / --query values: NAME=VALUE (headers also NAME: VALUE), split at the first separator."""
    def parse(text: str) -> tuple[str, str]:
        cut = min((i for i in (text.find(sep) for sep in separators) if i >= 0), default=-1)
        name = text[:cut].strip() if cut >= 0 else ""
        if cut < 0 or not name or any(c.isspace() for c in name):
            forms = "NAME=VALUE or 'NAME: VALUE'" if ":" in separators else "NAME=VALUE"
            example = "Idempotency-Key=change-42" if kind == "header" else "at=2026-12-01T19:00:00Z"
            raise argparse.ArgumentTypeError(f"{text!r}: expected {forms}, e.g. {example}")
        return name, text[cut + 1:].strip() if kind == "header" else text[cut + 1:]
    parse.__name__ = kind  # argparse names the type in its messages
    return parse


# -- output ---------------------------------------------------------------------------------------------------------
class _QuietPipe(io.TextIOBase):
    """stdout for the commands: when the reader goes away (`... | head`), the rest of the output is dropped
    quietly and the command ends with its usual exit status, instead of a BrokenPipeError traceback."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream
        self.broken = False

    def _gone(self) -> None:
        self.broken = True
        with contextlib.suppress(Exception):  # the interpreter's last flush must not fail either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


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
    return Path(getattr(args, "schedules", None) or os.environ.get("SCHEDULES_DIR") or ROOT / "schedules")


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


def _check_schedules_dir(args: argparse.Namespace) -> None:
    """The schedules folder a command reads must exist: a typo would otherwise look like an empty folder."""
    given = getattr(args, "schedules", None)
    path = _schedules_dir(args)
    if not path.is_dir():
        where = f"--schedules {given}" if given else (f"SCHEDULES_DIR={os.environ['SCHEDULES_DIR']}"
                                                      if os.environ.get("SCHEDULES_DIR") else str(path))
        raise UsageError(f"{where}: {'not a folder' if path.exists() else 'no such folder'}")


def _problem_lines(problems: Any) -> list[str]:
    return [f"  INVALID  {p}" for p in problems]


# -- validate / next ------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from dcs_maintenance.loader import ValidationContext, load_catalog, load_paths
    from dcs_maintenance.settings import SettingsError, load_settings

    try:  # the function's region and tick period, where the environment gives them
        context = load_settings().validation_context()
    except SettingsError:
        context = ValidationContext(region=os.environ.get("DCS_REGION", "").strip() or None)
    if args.paths:
        missing = [p for p in args.paths if not os.path.lexists(p)]
        if missing:
            raise UsageError(f"no such file or folder: {', '.join(missing)}")
        catalog = load_paths(args.paths, context)
    else:
        _check_schedules_dir(args)
        catalog = load_catalog(_schedules_dir(args), context)
    data = {"ok": not catalog.problems, "files": list(catalog.files), "schedules": [s.name for s in catalog.schedules],
            "problems": [p.to_dict() for p in catalog.problems], "warnings": [w.to_dict() for w in catalog.warnings]}
    lines = [f"{len(catalog.files)} file(s), {len(catalog.schedules)} valid schedule(s)"
             + (f", {len(catalog.problems)} problem(s)" if catalog.problems else "")]
    lines += [f"  ok       {s.name} ({s.source})" for s in catalog.schedules]
    lines += _problem_lines(catalog.problems)
    lines += [f"  WARNING  {w}" for w in catalog.warnings]
    _print(data, args.json, "\n".join(lines))
    return OK if not catalog.problems else FAILED


def cmd_next(args: argparse.Namespace) -> int:
    """Upcoming occurrences, and the freezes not over yet. Every name asked for (a schedule's or a freeze's) is
    shown or explained (invalid, or unknown with close names); without names every valid schedule and freeze is
    shown and the invalid ones are listed as problems."""
    from dcs_maintenance.loader import load_catalog
    from dcs_maintenance.schedule_info import describe_schedule, freezes_info, upcoming

    _check_schedules_dir(args)
    catalog = load_catalog(_schedules_dir(args))
    folder = _shown(_schedules_dir(args))
    after = args.after or datetime.now(timezone.utc)
    names = list(dict.fromkeys(args.names))
    chosen = [s for s in catalog.schedules if not names or s.name in names]
    known = ({s.name for s in catalog.schedules} | {p.schedule for p in catalog.problems if p.schedule}
             | {f.name for f in catalog.freezes})
    unknown = []
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
            unknown.append({"name": name, "did_you_mean": close})
    # Asked by name: that schedule's problems, and a whole file's problems when a name was not found (an
    # unreadable file hides its schedules). Otherwise every problem: an invalid schedule is never left out quietly.
    problems = [p for p in catalog.problems if not names or p.schedule in names or (unknown and not p.schedule)]
    items = [{"name": s.name, "description": describe_schedule(s), "enabled": s.enabled,
              "next": upcoming(s, after, args.count)} for s in chosen]
    frozen = [f for f in freezes_info(catalog.freezes, after)
              if f["state"] != "past" and (not names or f["name"] in names)]
    ok = bool(chosen or frozen) and not problems and not unknown
    lines = []
    for item in items:
        lines.append(f"{item['name']}: {item['description']}" + ("" if item["enabled"] else " [disabled]"))
        lines += [f"    {n['action']:<12} {n['local']}  ({n['utc']})" for n in item["next"]]
    for entry in unknown:
        hint = f"; did you mean {' or '.join(map(repr, entry['did_you_mean']))}?" if entry["did_you_mean"] else ""
        lines.append(f"no schedule named {entry['name']!r} in {folder}{hint}")
    if not catalog.schedules:
        lines.append(f"no valid schedule in {folder}")
    lines += _problem_lines(problems)
    lines += [f"freeze {f['name']} [{f['state']}]: {f['from']} to {f['until']} {f['timezone']} "
              f"({f['start']} to {f['end']}), {', '.join(f['actions'])}: {f['reason']}" for f in frozen]
    data = {"ok": ok, "schedules": items, "unknown": unknown, "problems": [p.to_dict() for p in problems],
            "freezes": frozen}
    _print(data, args.json, "\n".join(lines))
    return OK if ok else FAILED


# -- plan / run / invoke ------------------------------------------------------------------------
def cmd_plan(args: argparse.Namespace) -> int:
    from dcs_maintenance.invocation import runtime
    from dcs_maintenance.loader import load_catalog
    from dcs_maintenance.runner import TickRequest, run_tick
    from dcs_maintenance.settings import SettingsError, load_settings, missing_for_api

    _check_schedules_dir(args)
    settings = load_settings()
    at = args.at or datetime.now(timezone.utc)
    catalog = load_catalog(settings.schedules_dir)
    missing = missing_for_api(settings, None, catalog.schedules)
    if missing:  # as a tick would say: a plan lists instances, so it needs what a tick needs
        raise SettingsError(f"missing settings: {'; '.join(missing)}")
    with _logs_to_stderr():
        summary = run_tick(catalog, TickRequest(at, "plan", True, None, preview=True), runtime(settings))
    _print(summary, args.json, summary_text(summary))
    return OK if summary["ok"] else FAILED


def _tick_status(summary: dict[str, Any]) -> int:
    """0 for an ok tick, 2 when settings are missing (nothing was run), else 1."""
    if summary.get("missing"):
        return USAGE
    return OK if summary.get("ok") else FAILED


def cmd_run(args: argparse.Namespace) -> int:
    import handler
    from dcs_maintenance.tools.local import LocalContext, timer_event

    if args.every and not args.until:
        raise UsageError("--every needs --until (the last tick's time)")
    _check_schedules_dir(args)
    at = args.at or datetime.now(timezone.utc).replace(second=0, microsecond=0)
    if args.until and args.until < at:
        raise UsageError("--until must not be before --at")
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
    return _tick_status(summary)


def _run_ticks(args: argparse.Namespace, start: datetime, options: dict[str, Any]) -> int:
    """Successive ticks from --at to --until every --every (default TICK_PERIOD), each judged as of its own time.

    With --dry-run the ticks are a rehearsal: each one's bookkeeping goes to a scratch ledger as if what it would
    send had been sent, so the next previewed tick carries on from there (a night shows one stop and one start).
    """
    import handler
    from dcs_maintenance.settings import load_settings
    from dcs_maintenance.tools.local import LocalContext, timer_event
    from dcs_maintenance.tools.progress import Progress

    step = args.every or load_settings().tick_period
    count = int((args.until - start) / step) + 1
    ok, active = True, []
    rehearse = _rehearsal(options) if options.get("dry_run") else None
    with Progress(count, "ticks", enabled=False if args.json else None) as bar:
        for n in range(count):
            at = start + n * step
            clock.set_as_of(clock.offset_clock(at))
            with _logs_to_stderr():
                summary = (rehearse(at) if rehearse else
                           handler.handler(timer_event(at, options or ""), LocalContext()))
            if summary.get("missing"):  # every tick would say the same: stop at the first
                _print(summary, args.json, summary_text(summary))
                return USAGE
            ok = ok and bool(summary.get("ok"))
            if summary.get("schedules") or summary.get("problems") or summary.get("errors"):
                active.append(summary)
                if not args.json:
                    bar.clear()
                    print(summary_text(summary))
            bar.update(n + 1, at.isoformat())
    _print({"ok": ok, "ticks": count, "from": start.isoformat(), "until": args.until.isoformat(), "active": active},
           args.json, f"{count} tick(s) from {start.isoformat()}, {len(active)} with activity, ok={ok}")
    return OK if ok else FAILED


def _rehearsal(options: dict[str, Any]) -> Any:
    """A function running one rehearsed dry-run tick at a time over one scratch ledger (tools/rehearsal.py)."""
    from dcs_maintenance.invocation import ledger_for, runtime
    from dcs_maintenance.loader import load_catalog
    from dcs_maintenance.runner import TickRequest, run_tick
    from dcs_maintenance.settings import load_settings, missing_for_api
    from dcs_maintenance.tools.local import LocalContext
    from dcs_maintenance.tools.rehearsal import RehearsalLedger

    settings = load_settings()
    only = frozenset(options["schedules"]) if options.get("schedules") else None
    scratch = RehearsalLedger(ledger_for(settings))

    def tick(at: datetime) -> dict[str, Any]:
        context = LocalContext()
        catalog = load_catalog(settings.schedules_dir, settings.validation_context())
        missing = missing_for_api(settings, context, catalog.schedules)
        if missing:
            return {"ok": False, "missing": missing, "errors": [f"missing settings: {'; '.join(missing)}"]}
        request = TickRequest(at, "timer", True, only, rehearse=True)
        return run_tick(catalog, request, runtime(settings, context, scratch))

    return tick


def cmd_invoke(args: argparse.Namespace) -> int:
    import handler
    from dcs_maintenance.tools.local import LocalContext, apig_event, timer_event

    if args.kind == "timer":
        _check_schedules_dir(args)  # a tick reads the schedules; an HTTP route answers for itself
        at = args.at or datetime.now(timezone.utc)
        event = timer_event(at, args.user_event or "")
    else:
        headers = dict(args.header or [])
        token = (os.environ.get("API_TOKEN") or "").strip()
        if token and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {token}"
        event = apig_event(args.method, args.path, args.body, headers, dict(args.query or []))
    with _logs_to_stderr():
        result = handler.handler(event, LocalContext())
    print(json.dumps(result, indent=2, default=str))
    if args.kind == "timer":
        return _tick_status(result)
    return FAILED if result.get("statusCode", 200) >= 400 else OK


def cmd_serve(args: argparse.Namespace) -> int:
    from dcs_maintenance.tools.serve import serve

    return serve(args.host, args.port)


def cmd_emulator(args: argparse.Namespace) -> int:
    from dcs_emulator.__main__ import main as emulator_main

    return emulator_main(args.emulator_args) or OK


def cmd_demo(args: argparse.Namespace) -> int:
    from dcs_maintenance.tools.demo import run_demo

    return run_demo(args)


def cmd_package(args: argparse.Namespace) -> int:
    """The zip ships the schedules folder every other command reads (--schedules, else SCHEDULES_DIR): what
    validate and next checked is what the deployed function runs."""
    from dcs_maintenance.tools.package import run_cli

    _check_schedules_dir(args)
    return run_cli(args, _schedules_dir(args))


EXAMPLES = """examples:
  python -m dcs_maintenance validate                         # the schedules folder
  python -m dcs_maintenance validate my-schedules/ extra.yaml  # files and folders, names unique across all
  python -m dcs_maintenance next staging-nightly-restart --count 3
  python -m dcs_maintenance plan --at 2026-12-06T19:00:00Z
  python -m dcs_maintenance run --at 2026-12-05T18:00:00Z --until 2026-12-07T07:00:00Z --dry-run
  python -m dcs_maintenance invoke http GET /schedules
  python -m dcs_maintenance emulator --port 8800 --seed demo/seed.json
  python -m dcs_maintenance package --python 3.10
  python -m dcs_maintenance demo

--json and --schedules go before or after the command. Exit codes: 0 ok; 1 a check failed (invalid
schedules, a tick that is not ok, HTTP status >= 400, a build that failed); 2 a bad argument or
setting (nothing was done). plan, run, invoke and serve read the function's settings from the
environment (DCS_ENDPOINT, DCS_REGION, RUNTIME_PROJECT_ID, HUAWEICLOUD_SDK_AK/SK, LEDGER_URL, API_TOKEN, ...)."""

SCHEDULES_HELP = "schedules folder (default: SCHEDULES_DIR, else the repository's schedules/)"
JSON_HELP = "print JSON instead of text"


def build_parser() -> argparse.ArgumentParser:
    from dcs_emulator.__main__ import port_number

    parser = argparse.ArgumentParser(prog="python -m dcs_maintenance", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    parser.add_argument("--schedules", metavar="DIR", help=SCHEDULES_HELP)
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of these (COMMAND --help shows its options):")

    p = sub.add_parser("validate", help="validate schedule files: the schedules folder, or the files and folders "
                                        "given",
                       description="Validate schedule files against the package's schema.json and the checks a "
                                   "schema cannot express. Without PATH: the schedules folder. Exit 1 when any "
                                   "file or schedule is invalid.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="a schedule file (YAML, or JSON for .json) or a folder of them; names must be unique across "
                        "all of them (default: the schedules folder)")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("next", help="upcoming occurrences, with the cron in plain language",
                       description="Upcoming occurrences of valid schedules. Unknown names (with close matches) and "
                                   "invalid schedules are reported, with exit status 1.")
    p.add_argument("names", nargs="*", metavar="NAME", help="schedule names (default: every valid schedule)")
    p.add_argument("--count", type=_count, default=5, metavar="N",
                   help=f"occurrences per schedule, 1-{MAX_COUNT} (default 5)")
    p.add_argument("--after", type=_time, metavar="TIME",
                   help="list occurrences after this ISO 8601 time with an offset (default: now)")
    p.set_defaults(func=cmd_next)
    p = sub.add_parser("plan", help="what a tick at --at would do, calling only read APIs",
                       description="A preview tick: lists instances (a read API), calls nothing that changes state "
                                   "and writes nothing to the ledger.")
    p.add_argument("--at", type=_time, metavar="TIME", help="tick time, ISO 8601 with an offset (default: now)")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("run", help="run one tick now, or as of --at (lateness judged then; the wall clock stays "
                                   "real)",
                       description="Run the function's TIMER handler: one tick, or ticks from --at to --until. "
                                   "--at is the tick's time, and lateness (starting_deadline) is judged as it would "
                                   "have been then; the wall clock stays the real one, so a time ahead of it is "
                                   "refused unless --dry-run (it would write state ahead of real time). This acts "
                                   "on instances unless --dry-run.")
    p.add_argument("--at", type=_time, metavar="TIME",
                   help="the tick's time, ISO 8601 with an offset (default: now, to the minute); lateness "
                        "(starting_deadline) is judged as it would have been then; the wall clock stays the real "
                        "one, so a time ahead of it is refused unless --dry-run")
    p.add_argument("--until", type=_time, metavar="TIME",
                   help="run successive ticks from --at up to this ISO 8601 time")
    p.add_argument("--every", type=_duration, metavar="DURATION",
                   help="interval between those ticks, e.g. 5m; needs --until (default: TICK_PERIOD)")
    p.add_argument("--dry-run", action="store_true", help="decide and report, change nothing")
    p.add_argument("--schedule", action="append", metavar="NAME",
                   help="run only this schedule (repeatable; default: all)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("invoke", help="call handler.handler with a TIMER or APIG event and print its answer",
                       description="Build a TIMER or API Gateway event, call handler.handler with it and print the "
                                   "result. For http, the Authorization: Bearer header is added from API_TOKEN "
                                   "when the environment has one and no --header gives Authorization.")
    p.add_argument("kind", choices=["timer", "http"], help="the event to build: timer or http")
    p.add_argument("method", nargs="?", default="GET", help="http: the method (default GET)")
    p.add_argument("path", nargs="?", default="/health", help="http: the path (default /health)")
    p.add_argument("--at", type=_time, metavar="TIME", help="timer: the event's time, ISO 8601 (default: now)")
    p.add_argument("--user-event", metavar="TEXT", help="timer: user_event, e.g. '{\"dry_run\": true}'")
    p.add_argument("--body", help="http: request body (JSON or YAML text)")
    p.add_argument("--header", action="append", type=_name_value("header", ":="), metavar="NAME=VALUE",
                   help="http: a request header, NAME=VALUE or 'NAME: VALUE' (repeatable); Authorization: Bearer "
                        "$API_TOKEN is added unless given here")
    p.add_argument("--query", action="append", type=_name_value("query", "="), metavar="NAME=VALUE",
                   help="http: a query string parameter, NAME=VALUE (repeatable)")
    p.set_defaults(func=cmd_invoke)
    p = sub.add_parser("serve", help="serve the HTTP routes locally (real HTTP -> APIG events -> handler.handler)",
                       description="Serve the function's HTTP routes on a local port: each request becomes the "
                                   "APIG event FunctionGraph would deliver. Needs API_TOKEN for every route but "
                                   "/health.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=8080, help="port to listen on (0: any free port; default 8080)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("emulator", help="start the local DCS emulator (arguments go to python -m dcs_emulator)",
                       description="Start the local DCS emulator. Every argument goes to python -m dcs_emulator: "
                                   "--port, --seed FILE, --project ID, --ak, --sk, --redis, ... (see "
                                   "python -m dcs_emulator --help).")
    p.add_argument("emulator_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments for python -m dcs_emulator, e.g. --port 8800 --seed demo/seed.json")
    p.set_defaults(func=cmd_emulator)
    p = sub.add_parser("demo", help="a night of maintenance against the local emulator, printed as it happens")
    from dcs_maintenance.tools import demo, package

    demo.add_arguments(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("package", help="build the FunctionGraph deployment zip (code, schedules, wheels, bytecode)",
                       description="Build dist/dcs-maintenance.zip for FunctionGraph: handler.py, the package, "
                                   "the schedules folder and the requirements' manylinux wheels, with bytecode "
                                   "compiled by the target Python. Refuses invalid schedules (unless "
                                   "--allow-invalid) and fails above the console's 40 MB upload limit.")
    package.add_arguments(p)
    p.set_defaults(func=cmd_package)
    from dcs_maintenance.tools import visibility_cli  # history, calendar

    visibility_cli.add_commands(sub)
    for name, command in sub.choices.items():  # `validate --json` works as well as `--json validate`
        for flag, kwargs in (("--json", {"action": "store_true", "help": JSON_HELP}),
                             ("--schedules", {"metavar": "DIR", "help": SCHEDULES_HELP})):
            servers = ("emulator", "serve") if flag == "--json" else ("emulator",)
            if name not in servers and flag not in command._option_string_actions:
                command.add_argument(flag, default=argparse.SUPPRESS, **kwargs)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command's exit status; stdout guarded so that a closed pipe (`| head`) ends quietly."""
    real_stdout = sys.stdout
    sys.stdout = guard = _QuietPipe(real_stdout)
    try:
        code = _main(argv)
        guard.flush()
        return code
    finally:
        sys.stdout = real_stdout


def _main(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # `emulator --port 0 ...`: argparse's REMAINDER does not take leading options, so hand them on
        if getattr(args, "command", None) != "emulator":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.emulator_args = extra + list(args.emulator_args)
    try:
        if getattr(args, "schedules", None):  # a folder given on the command line must exist (validate: its PATHs)
            _check_schedules_dir(args)
        if getattr(args, "schedules", None) and args.command in ("plan", "run", "invoke", "serve"):
            os.environ["SCHEDULES_DIR"] = args.schedules  # the function reads its schedules folder from there
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a clear one-line error, not a traceback, for expected failures
        from dcs_maintenance.ledger.base import LedgerError
        from dcs_maintenance.settings import SettingsError

        if isinstance(exc, (SettingsError, EventError, ValueError)):  # ValueError: e.g. a malformed LEDGER_URL
            print(f"error: {exc}", file=sys.stderr)
            return USAGE
        if isinstance(exc, (LedgerError, OSError)):
            print(f"error: {exc}", file=sys.stderr)
            return FAILED
        raise
