"""``python -m dcs_emulator``: serve the emulator until interrupted, for a demo or a manual run of the function.

The first line on stdout is the URL (for scripts); the rest goes to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .emulator import Emulator
from .modes import SPECS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dcs_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8800, help="port (0: any free port; default 8800)")
    parser.add_argument("--seed", action="append", default=[], help="seed JSON file (repeatable)")
    parser.add_argument("--project", action="append", default=[], help="a known project id (repeatable)")
    parser.add_argument("--ak", default="AK", help="access key the signature must use")
    parser.add_argument("--sk", default="SK", help="secret key the signature must use")
    parser.add_argument("--security-token", default=None, help="require this X-Security-Token")
    parser.add_argument("--transition-delay", type=float, default=0.2, help="seconds in transitional states")
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
        print("give --seed FILE or --project ID: requests for unknown projects are refused", file=sys.stderr)
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
            emulator.load_seed(path)
        emulator.start()
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
