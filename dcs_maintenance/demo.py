"""The README's main command: a weekend night of maintenance against the local emulator.

It starts the emulator in this process with demo/seed.json, points the function at it (real
SDK, real HTTP, signed requests), and runs the function's TIMER handler every 5 minutes of
simulated time with the example schedules, printing each tick that did something.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dcs_maintenance import clock

ROOT = Path(__file__).resolve().parent.parent
DEMO_AK, DEMO_SK = "DEMOACCESSKEY00000000", "demo-secret-key-not-a-real-one"
DEMO_PROJECT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
DEFAULT_START = datetime(2026, 12, 5, 18, 0, tzinfo=timezone.utc)  # Saturday evening


def run_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("HOME", tempfile.mkdtemp(prefix="dcsm-home-"))
    import handler
    from dcs_emulator import Emulator
    from dcs_maintenance.cli import _summary_text
    from dcs_maintenance.local import LocalContext, timer_event

    start = args.start or DEFAULT_START
    ticks = int(args.hours * 12)
    work = Path(tempfile.mkdtemp(prefix="dcsm-demo-"))
    with Emulator(ak=DEMO_AK, sk=DEMO_SK, projects=[DEMO_PROJECT], transition_delay=0.0) as emu:
        emu.load_seed(str(ROOT / "demo" / "seed.json"))
        os.environ.update({
            "DCS_ENDPOINT": emu.url, "DCS_REGION": "cn-north-4", "RUNTIME_PROJECT_ID": DEMO_PROJECT,
            "HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK,
            "LEDGER_URL": f"sqlite:///{work / 'ledger.sqlite3'}",
            "SCHEDULES_DIR": str(Path(args.schedules) if args.schedules else ROOT / "schedules"),
            "LOG_LEVEL": "ERROR",
        })
        print(f"emulator at {emu.url} with {len(emu.instances(DEMO_PROJECT))} instances; "
              f"{ticks} ticks from {start.isoformat()} every 5 minutes")
        ok = True
        for n in range(ticks):
            at = start + timedelta(minutes=5 * n)
            clock.set_clock(clock.offset_clock(at + timedelta(seconds=20)))  # ticks arrive a little late
            summary = handler.handler(timer_event(at), LocalContext())
            ok &= bool(summary.get("ok")) or not summary.get("errors")
            if summary.get("schedules") or summary.get("problems") or summary.get("errors"):
                print(_summary_text(summary))
        clock.set_clock(None)
        puts = [r for r in emu.requests if r["method"] == "PUT"]
        print(f"\n{len(puts)} status call(s) sent:")
        for r in puts:
            print(f"  {r['body']['action']:<12} {', '.join(r['body']['instances'])}")
        print("\nfinal instance states:")
        for inst in emu.instances(DEMO_PROJECT):
            print(f"  {inst['name']:<24} {inst['status']}")
    return 0 if ok else 1
