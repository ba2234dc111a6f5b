"""DST end to end: 5-minute TIMER ticks through handler.handler across 2026's transitions, asserted on the calls.

The pure table tests of the cron rules live in test_cronrules.py; these drive the whole function: every tick is a
TIMER event (exact, or a few seconds to a minute late with the wall clock a little later still), and what is
checked is the emulator's status-call log: which instance was acted on, by which tick, for which occurrence.

Each schedule below targets its own instance, so a call names the schedule it came from. Expected instants are
written by hand (cron's Vixie/Debian rules, SPEC 3), with the local time and offset where it helps the reader:
- fixed-time jobs: a time skipped by spring-forward fires once, at the jump; a repeated time fires on its first pass;
- jobs whose minute or hour field starts with `*` follow real time: twice in a repeated hour, never in a gap.

2026 transitions: Europe/Berlin 03-29 01:00Z (+1 -> +2), 10-25 01:00Z (+2 -> +1); America/New_York 03-08 07:00Z
(-5 -> -4), 11-01 06:00Z (-4 -> -5); Australia/Lord_Howe 04-04 15:00Z (+11 -> +10:30), 10-03 15:30Z (+10:30 -> +11).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from conftest import PROJECT, results_by_instance
from simulation import utc as t  # ISO text (any offset) as an aware UTC datetime

UTC = timezone.utc
TICK = timedelta(minutes=5)
REGION_TZ = timezone(timedelta(hours=8))


def every(first: str, last: str, minutes: int) -> list[str]:
    """Instants from `first` to `last` inclusive, `minutes` apart in real time."""
    out, at, end = [], t(first), t(last)
    while at <= end:
        out.append(at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        at += timedelta(minutes=minutes)
    return out


# (case id, zone, first tick, last tick, {cron: [expected fire instants in (first tick - 5m, last tick]]})
CASES = [
    ("berlin-spring", "Europe/Berlin", "2026-03-28T20:00Z", "2026-03-29T06:00Z", {
        "0 2 * * *": ["2026-03-29T03:00+02:00"],  # 02:00 never happens: at the jump, 01:00Z
        "30 2 * * *": ["2026-03-29T03:00+02:00"],
        "0 3 * * *": ["2026-03-29T03:00+02:00"],
        "59 1 * * *": ["2026-03-29T01:59+01:00"],
        "30 */2 * * *": ["2026-03-28T22:30+01:00", "2026-03-29T00:30+01:00",  # no 02:30: nothing invented
                         "2026-03-29T04:30+02:00", "2026-03-29T06:30+02:00"],
        "*/30 * * * *": every("2026-03-28T20:00Z", "2026-03-29T06:00Z", 30),  # real time, no gap
        "0 2 * * 0L": ["2026-03-29T03:00+02:00"],  # the last Sunday of March is the DST day
    }),
    ("berlin-autumn", "Europe/Berlin", "2026-10-24T20:00Z", "2026-10-25T06:00Z", {
        "0 2 * * *": ["2026-10-25T02:00+02:00"],  # first pass only: 00:00Z, not 01:00Z
        "30 2 * * *": ["2026-10-25T02:30+02:00"],
        "0 3 * * *": ["2026-10-25T03:00+01:00"],
        "*/15 * * * *": every("2026-10-24T20:00Z", "2026-10-25T06:00Z", 15),  # 8 from 02:00+02 to 02:45+01
        "30 */2 * * *": ["2026-10-24T22:30+02:00", "2026-10-25T00:30+02:00", "2026-10-25T02:30+02:00",
                         "2026-10-25T02:30+01:00", "2026-10-25T04:30+01:00", "2026-10-25T06:30+01:00"],
        "0 2 * * sun#4": ["2026-10-25T02:00+02:00"],
        "0 2 * * 0L": ["2026-10-25T02:00+02:00"],
    }),
    ("new-york-spring", "America/New_York", "2026-03-08T04:00Z", "2026-03-08T12:00Z", {
        "0 2 * * *": ["2026-03-08T03:00-04:00"],  # 07:00Z
        "30 2 * * *": ["2026-03-08T03:00-04:00"],
        "30 1 * * *": ["2026-03-08T01:30-05:00"],
        "0 3 * * *": ["2026-03-08T03:00-04:00"],
        "30 */2 * * *": ["2026-03-08T00:30-05:00", "2026-03-08T04:30-04:00", "2026-03-08T06:30-04:00"],
        "0 2 * * 0#2": ["2026-03-08T03:00-04:00"],  # the second Sunday of March is the DST day
    }),
    ("new-york-autumn", "America/New_York", "2026-11-01T03:00Z", "2026-11-01T11:00Z", {
        "30 1 * * *": ["2026-11-01T01:30-04:00"],  # 05:30Z only, not 06:30Z
        "0 1 * * *": ["2026-11-01T01:00-04:00"],
        "0 2 * * *": ["2026-11-01T02:00-05:00"],
        "0 * * * *": every("2026-11-01T03:00Z", "2026-11-01T11:00Z", 60),  # 01:00 twice: 05:00Z and 06:00Z
        "*/30 * * * *": every("2026-11-01T03:00Z", "2026-11-01T11:00Z", 30),
        "30 */2 * * *": ["2026-11-01T00:30-04:00", "2026-11-01T02:30-05:00", "2026-11-01T04:30-05:00"],
        "30 1 * * sun#1": ["2026-11-01T01:30-04:00"],
    }),
    ("lord-howe-spring", "Australia/Lord_Howe", "2026-10-03T12:00Z", "2026-10-03T19:00Z", {  # 30-minute jump
        "0 2 * * *": ["2026-10-04T02:30+11:00"],  # 02:00-02:30 never happens: at the jump, 15:30Z
        "15 2 * * *": ["2026-10-04T02:30+11:00"],
        "30 2 * * *": ["2026-10-04T02:30+11:00"],
        "0 * * * *": ["2026-10-03T23:00+10:30", "2026-10-04T00:00+10:30", "2026-10-04T01:00+10:30",
                      "2026-10-04T03:00+11:00", "2026-10-04T04:00+11:00", "2026-10-04T05:00+11:00",
                      "2026-10-04T06:00+11:00"],  # nothing at 15:30Z
        "0 2 * * 0#1": ["2026-10-04T02:30+11:00"],
    }),
    ("lord-howe-autumn", "Australia/Lord_Howe", "2026-04-04T11:00Z", "2026-04-04T19:00Z", {  # 30-minute repeat
        "45 1 * * *": ["2026-04-05T01:45+11:00"],  # first pass: 14:45Z, not 15:15Z
        "30 1 * * *": ["2026-04-05T01:30+11:00"],
        "0 2 * * *": ["2026-04-05T02:00+10:30"],
        "*/15 * * * *": every("2026-04-04T11:00Z", "2026-04-04T19:00Z", 15),  # 01:30, 01:45 twice
        "0 * * * *": ["2026-04-04T22:00+11:00", "2026-04-04T23:00+11:00", "2026-04-05T00:00+11:00",
                      "2026-04-05T01:00+11:00", "2026-04-05T02:00+10:30", "2026-04-05T03:00+10:30",
                      "2026-04-05T04:00+10:30", "2026-04-05T05:00+10:30"],
        "0 2 * * 0#1": ["2026-04-05T02:00+10:30"],
    }),
    ("shanghai", "Asia/Shanghai", "2026-03-30T16:00Z", "2026-03-31T00:00Z", {  # no DST: the control
        "0 2 * * *": ["2026-03-31T02:00+08:00"],
        "30 2 * * *": ["2026-03-31T02:30+08:00"],
        "30 */2 * * *": ["2026-03-31T00:30+08:00", "2026-03-31T02:30+08:00", "2026-03-31T04:30+08:00",
                         "2026-03-31T06:30+08:00"],
        "0 2 L * *": ["2026-03-31T02:00+08:00"],
    }),
    ("utc", "UTC", "2026-03-29T00:00Z", "2026-03-29T04:00Z", {
        "0 2 * * *": ["2026-03-29T02:00Z"],
        "30 2 * * *": ["2026-03-29T02:30Z"],
        "*/15 * * * *": every("2026-03-29T00:00Z", "2026-03-29T04:00Z", 15),
        "0 2 * * 0L": ["2026-03-29T02:00Z"],
        "0 2 L * *": [],  # the 31st is two days later
    }),
]


def _schedules(zone: str, crons: list[str]) -> str:
    lines = ["schedules:"]
    for n, cron in enumerate(crons):
        lines += [f"  - name: s{n}", "    action: soft_restart", f'    cron: "{cron}"', f"    timezone: {zone}",
                  f"    instances: {{ids: [i-{n}]}}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("jitter", [False, True], ids=["exact", "jitter"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fires_exactly_once_at_the_right_instant(emulator, write_schedules, tick, case, jitter):
    name, zone, first, last, table = case
    crons = list(table)
    for n in range(len(crons)):
        emulator.add_instance(PROJECT, instance_id=f"i-{n}", name=f"dst-{n}")
    write_schedules(_schedules(zone, crons))
    rng = random.Random(name)
    sent_by: dict[str, list[tuple[datetime, str]]] = {f"i-{n}": [] for n in range(len(crons))}  # (tick, occurrence)
    ticks: list[datetime] = []
    seen = 0
    nominal = t(first)
    while nominal <= t(last):
        # With jitter the event is also stamped in the region's offset (+08:00), as FunctionGraph does.
        when = (nominal + timedelta(seconds=rng.randint(2, 60))).astimezone(REGION_TZ) if jitter else nominal
        lag = timedelta(seconds=rng.randint(0, 30)) if jitter else None
        summary = tick(when, lag=lag)
        assert summary["ok"], summary
        ticks.append(when)
        calls = emulator.calls()
        results = results_by_instance(summary)
        for body in calls[seen:]:
            assert body["action"] == "soft_restart"
            for iid in body["instances"]:
                assert results[iid]["result"] == "success"
                sent_by[iid].append((when, results[iid]["occurrence"]))
        seen = len(calls)
        nominal += TICK
    assert all(len(b["instances"]) == len(set(b["instances"])) for b in emulator.calls())
    for n, cron in enumerate(crons):
        expected = [t(x) for x in table[cron]]
        fired = [t(occ) for _, occ in sent_by[f"i-{n}"]]
        assert fired == expected, f"{zone} {cron!r}: fired {fired}, expected {expected}"
        for (sent_at, _occ), occ in zip(sent_by[f"i-{n}"], expected, strict=True):
            # Sent by the first tick at or after the occurrence: never earlier, never a tick later.
            assert sent_at == min(x for x in ticks if x >= occ), f"{cron!r} {occ} sent by the tick at {sent_at}"
        assert emulator.get_instance(PROJECT, f"i-{n}")["counters"]["soft_restarts"] == len(expected)


def test_the_spec_examples(emulator, write_schedules, tick):
    """SPEC 3's own examples, ticked through the night of 2026-10-25 in Berlin (and the spring night)."""
    emulator.add_instance(PROJECT, instance_id="i-0", name="fixed")
    emulator.add_instance(PROJECT, instance_id="i-1", name="quarterly")
    write_schedules(_schedules("Europe/Berlin", ["0 2 * * *", "*/15 * * * *"]))
    fired: dict[str, list[str]] = {"i-0": [], "i-1": []}
    for start, end in (("2026-03-28T22:00Z", "2026-03-29T03:00Z"), ("2026-10-24T22:00Z", "2026-10-25T03:00Z")):
        when = t(start)
        while when <= t(end):
            summary = tick(when)
            for iid, entry in results_by_instance(summary).items():
                if entry["result"] == "success":
                    fired[iid].append(entry["occurrence"])
            when += TICK
    assert [x for x in fired["i-0"]] == ["2026-03-29T01:00:00Z", "2026-10-25T00:00:00Z"]
    night = [x for x in fired["i-1"] if "2026-10-25T00:00:00Z" <= x <= "2026-10-25T01:45:00Z"]
    assert len(night) == 8 and len(set(night)) == 8


@pytest.mark.parametrize("zone, stop, start, nights", [
    # New York, stop 01:30, start 02:30: 2 real hours on the autumn night, 30 minutes on the spring night
    # (02:30 is skipped: the start runs at the jump, 03:00-04:00).
    ("America/New_York", "30 1 * * *", "30 2 * * *", [
        ("2026-03-08T04:00Z", "2026-03-08T09:00Z", [("stop", "2026-03-08T06:30Z"), ("start", "2026-03-08T07:00Z")]),
        ("2026-11-01T03:00Z", "2026-11-01T09:00Z", [("stop", "2026-11-01T05:30Z"), ("start", "2026-11-01T07:30Z")]),
    ]),
    # Berlin, stop 02:00, start 03:00: on the spring night both happen at the jump (01:00Z), a tie, which goes to
    # running: the instance is not stopped; on the autumn night it is stopped from 02:00+02 to 03:00+01 (2 hours).
    ("Europe/Berlin", "0 2 * * *", "0 3 * * *", [
        ("2026-03-28T22:00Z", "2026-03-29T03:00Z", []),
        ("2026-10-24T22:00Z", "2026-10-25T03:00Z", [("stop", "2026-10-25T00:00Z"), ("start", "2026-10-25T02:00Z")]),
    ]),
], ids=["new-york", "berlin"])
def test_windows_across_dst(emulator, write_schedules, tick, zone, stop, start, nights):
    emulator.add_instance(PROJECT, instance_id="i-w", name="w")
    write_schedules(f"""
schedules:
  - name: w
    timezone: {zone}
    window: {{stop: "{stop}", start: "{start}"}}
    instances: {{ids: [i-w]}}
""")
    for first, last, expected in nights:
        sent: list[tuple[str, datetime]] = []
        seen = len(emulator.calls())
        when = t(first)
        while when <= t(last):
            tick(when)
            sent += [(body["action"], when) for body in emulator.calls()[seen:]]
            seen = len(emulator.calls())
            when += TICK
        assert sent == [(action, t(at)) for action, at in expected], f"{zone} night of {first}: {sent}"
        assert emulator.get_instance(PROJECT, "i-w")["status"] == "RUNNING"
