"""``python -m dcs_emulator``: serve the emulator until interrupted, for a demo or a manual run of the function.

The first line on stdout is the URL (for scripts); the rest goes to stderr. Mistakes in the command line (a port
in use, a seed file that is missing or not JSON) end with one line naming the problem and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from .emulator import Emulator
from .modes import SPECS


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535; 0: any free port)")
    return port


def listen_error(exc: OSError, host: str, port: int) -> str:
    """One line for a server that could not listen, saying what to change."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use; choose another with --port (0: any free port)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed to listen on port {port} (ports below 1024 need privileges); choose another with --port"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port"


def seed_problem(path: str) -> Optional[str]:
    """Why `path` cannot be a seed file (`{"projects": {"<id>": [instances]}}`), or None."""
    file = Path(path)
    if not file.exists():
        return f"--seed {path}: no such file"
    if not file.is_file():
        return f"--seed {path}: not a file"
    try:
        data: Any = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return f"--seed {path}: not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"--seed {path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    except (OSError, ValueError, RecursionError) as exc:
        return f"--seed {path}: cannot be read ({exc})"
    if not isinstance(data, dict) or not isinstance(data.get("projects"), dict):
        return f"--seed {path}: a seed is a JSON object with a 'projects' mapping of project id to instances"
    for project, instances in data["projects"].items():
        if not isinstance(instances, list) or not all(isinstance(i, dict) for i in instances):
            return f"--seed {path}: projects.{project} must be a list of instance objects"
    return None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dcs_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8800, help="port (0: any free port; default 8800)")
    parser.add_argument("--seed", action="append", default=[], metavar="FILE",
                        help="seed JSON file with projects and their instances (repeatable)")
    parser.add_argument("--project", action="append", default=[], metavar="ID",
                        help="a known project id, without instances (repeatable)")
    parser.add_argument("--ak", default="AK", help="access key the signature must use (default AK)")
    parser.add_argument("--sk", default="SK", help="secret key the signature must use (default SK)")
    parser.add_argument("--security-token", default=None, help="require this X-Security-Token header")
    parser.add_argument("--transition-delay", type=float, default=0.2, metavar="SECONDS",
                        help="seconds an instance stays in a transitional state such as RESTARTING (default 0.2)")
    parser.add_argument("--redis", action="store_true", help="back each instance with a real redis-server")
    parser.add_argument("--status-sample-limit", type=int, default=1000,
                        help="status samples kept (one per request; 0: off; default 1000)")  # fmt: skip
    modes = parser.add_argument_group("modes", "how DCS behaviours that the documents leave open are answered")
    for spec in SPECS:
        choices = [str(c) for c in spec.choices] if spec.choices else None
        if spec.kind == "bool":
            choices = ["true", "false"]
        modes.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            default=None,
            choices=choices,
            metavar="N" if spec.kind == "count" else None,
            help=f"{spec.help} (default {spec.default})",
        )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.seed and not args.project:
        print("error: give --seed FILE or --project ID: requests for unknown projects are refused", file=sys.stderr)
        return 2
    for path in args.seed:
        problem = seed_problem(path)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    emulator = Emulator(
        ak=args.ak,
        sk=args.sk,
        projects=args.project,
        transition_delay=args.transition_delay,
        security_token=args.security_token,
        redis_backed=args.redis,
        host=args.host,
        port=args.port,
        status_sample_limit=args.status_sample_limit,
        modes={spec.name: getattr(args, spec.name) for spec in SPECS if getattr(args, spec.name) is not None},
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        for path in args.seed:
            try:
                emulator.load_seed(path)
            except (ValueError, TypeError, KeyError) as exc:  # an instance field the emulator does not accept
                print(f"error: --seed {path}: {exc}", file=sys.stderr)
                return 2
            except RuntimeError as exc:  # --redis without redis-server, say
                print(f"error: {exc}", file=sys.stderr)
                return 1
        try:
            emulator.start()
        except OSError as exc:
            print(f"error: {listen_error(exc, args.host, args.port)}", file=sys.stderr)
            return 2
        print(emulator.url, flush=True)
        for project_id in emulator.projects():
            print(f"project {project_id}: {len(emulator.instances(project_id))} instance(s)", file=sys.stderr)
        print(f"admin: {emulator.url}/_emulator/ ; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
