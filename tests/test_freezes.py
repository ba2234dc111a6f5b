"""Freezes: local bounds across 2026's DST changes (Berlin, New York), the decisions (occurrences, windows,
manual runs), validation with file and JSON paths, and the listings (`next`, GET /schedules)."""

from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path

import pytest
from conftest import t

from dcs_maintenance import loader
from dcs_maintenance.freezes import (
    FROM,
    UNTIL,
    active_freeze,
    freeze_entries,
    local_instant,
    manual_verdict,
    occurrence_verdict,
    parse_local,
    window_verdict,
)
from dcs_maintenance.loader import load_catalog, parse_catalog, parse_document
from dcs_maintenance.model import ALL_ACTIONS, RUNNING, STOPPED, Freeze

UTC = timezone.utc


@pytest.fixture(autouse=True)
def _fresh_cache():
    loader.clear_cache()
    yield
    loader.clear_cache()


# -- local date-times on a zone -> instants ------------------------------------------------------------------
DST = [
    # zone, local, edge -> UTC instant: the freeze covers every instant whose local time is in [from, until)
    ("Europe/Berlin", "2026-03-29T01:59", FROM, "2026-03-29T00:59:00Z"),  # before the jump
    ("Europe/Berlin", "2026-03-29T02:00", FROM, "2026-03-29T01:00:00Z"),  # in the gap: the jump
    ("Europe/Berlin", "2026-03-29T02:30", FROM, "2026-03-29T01:00:00Z"),
    ("Europe/Berlin", "2026-03-29T02:30", UNTIL, "2026-03-29T01:00:00Z"),
    ("Europe/Berlin", "2026-03-29T03:00", UNTIL, "2026-03-29T01:00:00Z"),  # the first time after the gap
    ("Europe/Berlin", "2026-10-25T01:59", FROM, "2026-10-24T23:59:00Z"),
    ("Europe/Berlin", "2026-10-25T02:00", FROM, "2026-10-25T00:00:00Z"),  # repeated: from is the first pass
    ("Europe/Berlin", "2026-10-25T02:30", FROM, "2026-10-25T00:30:00Z"),
    ("Europe/Berlin", "2026-10-25T02:30", UNTIL, "2026-10-25T01:30:00Z"),  # until is the second pass
    ("Europe/Berlin", "2026-10-25T03:00", UNTIL, "2026-10-25T02:00:00Z"),  # not repeated
    ("America/New_York", "2026-03-08T01:59:59", FROM, "2026-03-08T06:59:59Z"),
    ("America/New_York", "2026-03-08T02:30", FROM, "2026-03-08T07:00:00Z"),  # in the gap: the jump
    ("America/New_York", "2026-03-08T02:30", UNTIL, "2026-03-08T07:00:00Z"),
    ("America/New_York", "2026-11-01T01:30", FROM, "2026-11-01T05:30:00Z"),  # EDT pass
    ("America/New_York", "2026-11-01T01:30", UNTIL, "2026-11-01T06:30:00Z"),  # EST pass
    ("America/New_York", "2026-11-01T02:00", UNTIL, "2026-11-01T07:00:00Z"),
    ("Australia/Lord_Howe", "2026-10-04T02:15", FROM, "2026-10-03T15:30:00Z"),  # a 30-minute gap
    ("Asia/Shanghai", "2026-12-20T00:00", FROM, "2026-12-19T16:00:00Z"),
    ("UTC", "2026-12-20T00:00:30", UNTIL, "2026-12-20T00:00:30Z"),
]


@pytest.mark.parametrize("zone, local, edge, instant", DST)
def test_local_instant(zone, local, edge, instant):
    assert local_instant(parse_local(local), zone, edge) == t(instant)


@pytest.mark.parametrize("text", ["2026-12-20", "2026-12-20 00:00", "2026-12-20T00", "2026-02-30T00:00",
                                  "2026-12-20T24:00", "2026-12-20T00:00:00+01:00"])
def test_parse_local_refuses(text):
    with pytest.raises(ValueError):
        parse_local(text)


def freeze(name: str, start: str, end: str, *actions: str, reason: str = "a reason") -> Freeze:
    return Freeze(name, "f.yaml", t(start), t(end), "UTC", start[:16], end[:16], reason,
                  frozenset(actions) if actions else frozenset(ALL_ACTIONS))


YEAR_END = freeze("year-end", "2026-12-20T00:00:00Z", "2027-01-04T00:00:00Z", reason="year-end change freeze")
RESTARTS = freeze("no-restarts", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", "restart", "soft_restart")
LONG = freeze("long", "2026-12-01T12:00:00Z", "2026-12-03T00:00:00Z", "restart")
ACTIVE = [
    # action, instant -> the freeze holding it back (None: none)
    ("restart", "2026-12-19T23:59:59Z", None),
    ("restart", "2026-12-20T00:00:00Z", "year-end"),  # from is included
    ("flush", "2027-01-03T23:59:59Z", "year-end"),
    ("flush", "2027-01-04T00:00:00Z", None),  # until is not
    ("restart", "2026-12-01T06:00:00Z", "no-restarts"),
    ("flush", "2026-12-01T06:00:00Z", None),  # no-restarts does not cover flush
    ("restart", "2026-12-01T13:00:00Z", "long"),  # overlapping: the one ending last
    ("soft_restart", "2026-12-01T13:00:00Z", "no-restarts"),
    ("restart", "2026-12-02T12:00:00Z", "long"),
    ("start", "2026-12-25T00:00:00Z", "year-end"),
]


@pytest.mark.parametrize("action, instant, name", ACTIVE)
def test_active_freeze(action, instant, name):
    found = active_freeze([YEAR_END, RESTARTS, LONG], action, t(instant))
    assert (found.name if found else None) == name


def test_a_freeze_across_the_fall_back_covers_both_passes():
    # Berlin, 2026-10-25: 02:30 to 02:45 local is first-pass 02:30 (00:30Z) to second-pass 02:45 (01:45Z)
    item = {"name": "dst", "from": "2026-10-25T02:30", "until": "2026-10-25T02:45", "reason": "r",
            "timezone": "Europe/Berlin"}
    [dst] = catalog_of(item).freezes
    assert (dst.start, dst.end) == (t("2026-10-25T00:30:00Z"), t("2026-10-25T01:45:00Z"))
    # every */15 occurrence Berlin's cron fires in there is frozen: 02:30+02, 02:45+02, 02:00+01 ... 02:30+01
    for instant in ("2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z"):
        assert occurrence_verdict([dst], "restart", t(instant), t(instant)).frozen, instant
    assert not occurrence_verdict([dst], "restart", t("2026-10-25T01:45:00Z"), t("2026-10-25T01:45:00Z")).frozen


def test_a_freeze_across_the_spring_forward():
    # New York, 2026-03-08: 01:00 to 03:30 local is 06:00Z to 07:30Z, an hour and a half of real time
    item = {"name": "dst", "from": "2026-03-08T01:00", "until": "2026-03-08T03:30", "reason": "r",
            "timezone": "America/New_York"}
    [dst] = catalog_of(item).freezes
    assert (dst.start, dst.end) == (t("2026-03-08T06:00:00Z"), t("2026-03-08T07:30:00Z"))
    # "30 2 * * *" New York fires at the jump (07:00Z) that day: frozen
    assert occurrence_verdict([dst], "flush", t("2026-03-08T07:00:00Z"), t("2026-03-08T07:00:10Z")).frozen


# -- decisions ------------------------------------------------------------------------------------------------
def test_an_occurrence_in_a_freeze_is_frozen_once_and_not_sent_later():
    verdict = occurrence_verdict([YEAR_END], "restart", t("2026-12-24T03:00:00Z"), t("2026-12-24T03:00:05Z"))
    assert verdict.frozen and verdict.settled and verdict.freeze is YEAR_END
    assert "year-end" in verdict.reason and "year-end change freeze" in verdict.reason
    assert "not sent later" in verdict.reason


def test_a_freeze_that_begins_before_a_late_send_holds_it_back():
    verdict = occurrence_verdict([YEAR_END], "restart", t("2026-12-19T23:58:00Z"), t("2026-12-20T00:01:00Z"))
    assert verdict.frozen and "began before" in verdict.reason
    assert not occurrence_verdict([YEAR_END], "restart", t("2026-12-19T23:58:00Z"), t("2026-12-19T23:59:00Z")).frozen
    assert not occurrence_verdict([RESTARTS], "flush", t("2026-12-01T03:00:00Z"), t("2026-12-01T03:00:00Z")).frozen


WINDOWS = [
    # desired state, its occurrence, tick, freezes -> frozen, settled
    (RUNNING, "2026-12-24T06:00:00Z", "2026-12-24T06:00:00Z", [YEAR_END], False, True),  # starts always go through
    (STOPPED, "2026-12-24T19:00:00Z", "2026-12-24T19:05:00Z", [YEAR_END], True, True),  # the stop is in the freeze
    (STOPPED, "2026-12-24T19:00:00Z", "2027-01-05T00:00:00Z", [YEAR_END], True, True),  # and is not applied later
    (STOPPED, "2026-12-19T19:00:00Z", "2026-12-20T00:05:00Z", [YEAR_END], True, False),  # held during the freeze
    (STOPPED, "2026-12-19T19:00:00Z", "2026-12-19T19:05:00Z", [YEAR_END], False, True),
    (STOPPED, "2026-12-01T19:00:00Z", "2026-12-01T19:05:00Z", [RESTARTS], False, True),  # restarts only
]


@pytest.mark.parametrize("state, occurrence, tick, freezes, frozen, settled", WINDOWS)
def test_window_verdict(state, occurrence, tick, freezes, frozen, settled):
    verdict = window_verdict(freezes, state, t(occurrence), t(tick))
    assert (verdict.frozen, verdict.settled) == (frozen, settled)
    assert bool(verdict.reason) is frozen


MANUAL = [
    # action, now, override -> allowed, overridden
    ("restart", "2026-12-24T10:00:00Z", False, False, False),
    ("restart", "2026-12-24T10:00:00Z", True, True, True),
    ("start", "2026-12-24T10:00:00Z", False, False, False),  # a manual start is refused too (override exists)
    ("flush", "2026-12-01T10:00:00Z", False, True, False),  # no-restarts does not cover flush
    ("restart", "2027-01-04T00:00:00Z", False, True, False),
]


@pytest.mark.parametrize("action, now, override, allowed, overridden", MANUAL)
def test_manual_verdict(action, now, override, allowed, overridden):
    verdict = manual_verdict([YEAR_END, RESTARTS], action, t(now), override)
    assert (verdict.allowed, verdict.overridden) == (allowed, overridden)
    if not allowed:
        assert '"override_freeze": true' in verdict.reason and "2027-01-04T00:00:00Z" in verdict.reason


def test_freeze_entries_are_listed_soonest_first_with_their_state():
    entries = freeze_entries([YEAR_END, LONG, RESTARTS], t("2026-12-02T06:00:00Z"))
    assert [(e["name"], e["state"]) for e in entries] == [("no-restarts", "past"), ("long", "active"),
                                                          ("year-end", "upcoming")]
    assert entries[0]["actions"] == ["restart", "soft_restart"] and entries[2]["actions"] == list(ALL_ACTIONS)
    assert entries[2]["start"] == "2026-12-20T00:00:00Z" and entries[2]["reason"] == "year-end change freeze"
    json.dumps(entries)


# -- validation ------------------------------------------------------------------------------------------------
GOOD = {"name": "year-end", "from": "2026-12-20T00:00", "until": "2027-01-04T00:00", "reason": "year-end freeze"}
ONE_SHOT = {"name": "nightly", "action": "restart", "cron": "0 3 * * *", "instances": {"tags": {"env": "staging"}}}


def document(*freezes: object, defaults: object = None, schedules: object = None) -> str:
    doc: dict = {"schedules": [ONE_SHOT] if schedules is None else schedules, "freezes": list(freezes)}
    if defaults is not None:
        doc["defaults"] = defaults
    return json.dumps(doc)


def catalog_of(*freezes: object, defaults: object = None) -> loader.Catalog:
    catalog = parse_catalog(document(*freezes, defaults=defaults), "f.json")
    assert catalog.problems == (), catalog.problems
    return catalog


def variant(**changes: object) -> dict:
    item = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value
    return item


VALID = [
    ("minimal: UTC, every action", variant(), None,
     lambda f: (f.timezone, f.start, f.end, f.actions) == ("UTC", t("2026-12-20T00:00:00Z"),
                                                           t("2027-01-04T00:00:00Z"), frozenset(ALL_ACTIONS))),
    ("the file's default zone", variant(), {"timezone": "Europe/Berlin"},
     lambda f: (f.timezone, f.start) == ("Europe/Berlin", t("2026-12-19T23:00:00Z"))),
    ("its own zone wins", variant(timezone="Asia/Shanghai"), {"timezone": "Europe/Berlin"},
     lambda f: f.start == t("2026-12-19T16:00:00Z")),
    ("seconds", variant(**{"from": "2026-12-20T00:00:30"}), None, lambda f: f.start == t("2026-12-20T00:00:30Z")),
    ("some actions", variant(actions=["restart", "flush", "restart"]), None,
     lambda f: f.actions == frozenset({"restart", "flush"})),
    ("a minute long", variant(until="2026-12-20T00:01"), None, lambda f: (f.end - f.start).total_seconds() == 60),
    ("kept as written", variant(), None, lambda f: (f.local_from, f.local_until, f.reason, f.source)
     == ("2026-12-20T00:00", "2027-01-04T00:00", "year-end freeze", f"{f.source}")),
]


@pytest.mark.parametrize("label, item, defaults, expect", VALID, ids=[v[0] for v in VALID])
def test_valid_freeze(label, item, defaults, expect):
    [found] = catalog_of(item, defaults=defaults).freezes
    assert found.name == "year-end" and expect(found), found
    assert found.source.endswith("f.json")


F = "$.freezes[0]"
INVALID = [
    ("name missing", variant(name=None), f"{F}.name", ["missing required field 'name'"]),
    ("name upper case", variant(name="Year-End"), f"{F}.name", ["lower-case"]),
    ("from missing", variant(**{"from": None}), f"{F}.from", ["missing required field 'from'"]),
    ("until missing", variant(until=None), f"{F}.until", ["missing required field 'until'"]),
    ("reason missing", variant(reason=None), f"{F}.reason", ["missing required field 'reason'"]),
    ("reason empty", variant(reason=""), f"{F}.reason", ["must not be empty"]),
    ("from a date only", variant(**{"from": "2026-12-20"}), f"{F}.from", ["YYYY-MM-DDTHH:MM"]),
    ("from with an offset", variant(**{"from": "2026-12-20T00:00+01:00"}), f"{F}.from", ["without an offset"]),
    ("from with a space", variant(**{"from": "2026-12-20 00:00"}), f"{F}.from", ["YYYY-MM-DDTHH:MM"]),
    ("from 30 February", variant(**{"from": "2026-02-30T00:00"}), f"{F}.from", ["not a real date and time"]),
    ("until 24:00", variant(until="2026-12-20T24:00"), f"{F}.until", ["not a real date and time"]),
    ("from a number", variant(**{"from": 20261220}), f"{F}.from", ["must be text"]),
    ("until before from", variant(until="2026-12-19T00:00"), f"{F}.until", ["must be after from"]),
    ("until equal to from", variant(until="2026-12-20T00:00"), f"{F}.until", ["must be after from"]),
    ("timezone unknown", variant(timezone="Mars/Olympus"), f"{F}.timezone", ["unknown time zone"]),
    ("timezone offset", variant(timezone="+08:00"), f"{F}.timezone", ["IANA"]),
    ("actions empty", variant(actions=[]), f"{F}.actions", ["must not be empty"]),
    ("actions unknown", variant(actions=["restart", "reboot"]), f"{F}.actions[1]", ["one of 'restart'"]),
    ("actions a string", variant(actions="restart"), f"{F}.actions", ["must be a list"]),
    ("unknown field", variant(to="2027-01-04T00:00"), f"{F}.to", ["unknown field 'to'"]),
    ("typo", variant(reasons="x"), f"{F}.reasons", ["did you mean 'reason'"]),
    ("not a mapping", "year-end", F, ["must be a mapping"]),
]


@pytest.mark.parametrize("label, item, path, gist", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_freeze_is_a_problem_that_stops_nothing_else(label, item, path, gist):
    schedules, problems = parse_document(document(item, GOOD | {"name": "other"}), "f.json")
    assert [s.name for s in schedules] == ["nightly"]  # the file's schedules still load
    matching = [p for p in problems if p.path == path and all(g.lower() in p.message.lower() for g in gist)]
    assert matching, "\n".join(map(str, problems))
    assert all(p.file == "f.json" and p.schedule is None for p in problems)


@pytest.mark.parametrize("zone, start, end", [
    ("Europe/Berlin", "2026-03-29T02:10", "2026-03-29T02:50"),
    ("America/New_York", "2026-03-08T02:00", "2026-03-08T02:59:59"),
])
def test_a_freeze_inside_a_spring_forward_gap_covers_no_time(zone, start, end):
    _, problems = parse_document(document(variant(**{"from": start}, until=end, timezone=zone)), "f.json")
    [problem] = problems
    assert problem.path == f"{F}.until" and "skipped hour" in problem.message and zone in problem.message


def test_the_other_freezes_of_a_file_still_load(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("""
defaults: {timezone: Europe/Berlin}
schedules: []
freezes:
  - {name: broken, from: 2026-12-20T00:00, until: 2026-12-19T00:00, reason: x}
  - {name: year-end, from: 2026-12-20T00:00, until: 2027-01-04T00:00, reason: "year end"}
""")
    (tmp_path / "b.json").write_text(document(variant(name="easter", **{"from": "2026-04-03T00:00"},
                                                      until="2026-04-07T00:00")))
    catalog = load_catalog(tmp_path)
    assert [f.name for f in catalog.freezes] == ["year-end", "easter"]
    assert [s.name for s in catalog.schedules] == ["nightly"]
    [problem] = catalog.problems
    assert problem.file.endswith("a.yaml") and problem.path == "$.freezes[0].until"
    assert catalog.by_name("year-end") is None  # freezes are not schedules


def test_freeze_names_are_unique_across_files(tmp_path: Path):
    (tmp_path / "a.json").write_text(document(GOOD, schedules=[]))
    (tmp_path / "b.json").write_text(document(variant(reason="other"), variant(name="easter"), schedules=[]))
    catalog = load_catalog(tmp_path)
    assert [f.name for f in catalog.freezes] == ["easter"]
    paths = sorted((p.file.rsplit("/", 1)[-1], p.path) for p in catalog.problems)
    assert paths == [("a.json", "$.freezes[0].name"), ("b.json", "$.freezes[0].name")]
    assert all("duplicate freeze name 'year-end'" in p.message for p in catalog.problems)
    assert "in " in catalog.problems[0].message  # names the other file


def test_a_freeze_may_share_a_schedule_name():
    schedules, problems = parse_document(document(variant(name="nightly")), "f.json")
    assert problems == [] and [s.name for s in schedules] == ["nightly"]


@pytest.mark.parametrize("value, gist", [("2026-12-20", "must be a list of freezes"),
                                         ({"name": "x"}, "must be a list of freezes")])
def test_freezes_not_a_list(value, gist):
    schedules, problems = parse_document(json.dumps({"schedules": [ONE_SHOT], "freezes": value}), "f.json")
    assert [s.name for s in schedules] == ["nightly"]
    assert [(p.path, gist in p.message) for p in problems] == [("$.freezes", True)]


def test_too_many_freezes():
    items = [variant(name=f"f{k}") for k in range(loader.MAX_FREEZES_PER_FILE + 1)]
    schedules, problems = parse_document(document(*items), "f.json")
    assert [s.name for s in schedules] == ["nightly"]
    assert [p.path for p in problems] == ["$.freezes"] and "too many freezes" in problems[0].message


def test_a_file_level_problem_loads_no_freeze(tmp_path: Path):
    (tmp_path / "a.json").write_text(document(GOOD, defaults={"timezone": "Mars/Base"}))
    catalog = load_catalog(tmp_path)
    assert catalog.freezes == () and catalog.schedules == ()
    assert any(p.path == "$.defaults.timezone" and "no schedule or freeze in this file is loaded" in p.message
               for p in catalog.problems)


def test_unquoted_yaml_date_times_stay_text():
    schedules, problems = parse_document("""
schedules: []
freezes:
  - name: x
    from: 2026-12-20T00:00:00
    until: 2026-12-21T00:00
    reason: yaml reads the first as a timestamp unless told otherwise
    actions: [restart]
""", "f.yaml")
    assert problems == []


# -- listings --------------------------------------------------------------------------------------------------
FREEZE_FILE = """
schedules:
  - name: nightly
    action: restart
    cron: "0 3 * * *"
    instances: {tags: {env: staging}}
freezes:
  - name: year-end
    from: "2026-12-20T00:00"
    until: "2027-01-04T00:00"
    timezone: Europe/Berlin
    reason: year-end change freeze
    actions: [restart, flush]
  - name: spring
    from: "2026-03-01T00:00"
    until: "2026-03-02T00:00"
    reason: over
"""


def test_get_schedules_lists_the_freezes(http, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:00Z"))
    write_schedules(FREEZE_FILE)
    response = http("GET", "/schedules")
    data = json.loads(response["body"])
    assert response["statusCode"] == 200 and data["valid"] is True
    assert [(f["name"], f["state"]) for f in data["freezes"]] == [("spring", "past"), ("year-end", "upcoming")]
    year_end = data["freezes"][1]
    assert year_end == {"name": "year-end", "file": year_end["file"], "from": "2026-12-20T00:00",
                        "until": "2027-01-04T00:00", "timezone": "Europe/Berlin", "start": "2026-12-19T23:00:00Z",
                        "end": "2027-01-03T23:00:00Z", "reason": "year-end change freeze",
                        "actions": ["restart", "flush"], "state": "upcoming"}
    assert year_end["file"].endswith("test.yaml")


def test_next_lists_the_freezes_that_are_not_over(capsys, schedules_dir, write_schedules, monkeypatch):
    from dcs_maintenance.tools import cli

    write_schedules(FREEZE_FILE)
    code = cli.main(["next", "--schedules", str(schedules_dir), "--after", "2026-12-01T00:00:00Z", "--count", "1",
                     "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [d["name"] for d in data["schedules"]] == ["nightly"] and [f["name"] for f in data["freezes"]] == [
        "year-end"]
    code = cli.main(["next", "--schedules", str(schedules_dir), "--after", "2026-12-24T00:00:00Z"])
    out = capsys.readouterr().out
    assert code == 0 and "freeze year-end [active]: 2026-12-20T00:00 to 2027-01-04T00:00 Europe/Berlin" in out
    assert "year-end change freeze" in out and "spring" not in out
    code = cli.main(["next", "--schedules", str(schedules_dir), "year-end", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["schedules"] == [] and [f["name"] for f in data["freezes"]] == ["year-end"]
