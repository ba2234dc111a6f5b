"""Schedule files: the schema, the checks beyond it, hostile input, defaults, caching, and the examples.

The field tables read like SPEC section 2: each row is a schedule that differs from a valid one in
one field, and says where the problem is reported and what its message is about.
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcs_maintenance import loader
from dcs_maintenance.durations import format_duration, parse_duration
from dcs_maintenance.loader import Catalog, load_catalog, parse_document
from dcs_maintenance.model import Problem, Schedule, Selector, Window

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "schedules_bad"
DELETE = object()

ONE_SHOT = {"name": "nightly", "action": "restart", "cron": "0 3 * * *", "instances": {"tags": {"env": "staging"}}}
WINDOW = {"name": "evenings", "window": {"stop": "0 20 * * *", "start": "0 7 * * *"},
          "instances": {"names": ["dev-*"]}}


def variant(base: dict, changes: dict) -> dict:
    item = json.loads(json.dumps(base))
    for key, value in changes.items():
        if value is DELETE:
            item.pop(key, None)
        else:
            item[key] = value
    return item


def check_json(*items: object, defaults: object = DELETE) -> tuple[list[Schedule], list[Problem]]:
    doc: dict = {"schedules": list(items)}
    if defaults is not DELETE:
        doc["defaults"] = defaults
    return parse_document(json.dumps(doc), "test.json")


def check_yaml(text: str) -> tuple[list[Schedule], list[Problem]]:
    return parse_document(text, "test.yaml")


def assert_problem(problems: list[Problem], path: str, *gist: str) -> Problem:
    for problem in problems:
        if problem.path == path and all(g.lower() in problem.message.lower() for g in gist):
            return problem
    raise AssertionError(f"no problem at {path} mentioning {gist}; got:\n" + "\n".join(map(str, problems)))


@pytest.fixture(autouse=True)
def _fresh_cache():
    loader.clear_cache()
    yield
    loader.clear_cache()


# ---------------------------------------------------------------------------------------------
# Each field's valid forms


VALID = [
    ("minimal one-shot", ONE_SHOT, {}, lambda s: s.action == "restart" and s.cron == "0 3 * * *"),
    ("minimal window", WINDOW, {}, lambda s: s.window == Window("0 20 * * *", "0 7 * * *") and s.action is None),
    ("defaults", ONE_SHOT, {}, lambda s: (s.enabled, s.timezone, s.enforce, s.starting_deadline, s.allow_flush,
                                          s.max_instances, s.dry_run, s.project_id, s.region, s.description)
     == (True, "UTC", False, timedelta(minutes=10), False, 50, False, None, None, "")),
    ("name 1 char", ONE_SHOT, {"name": "a"}, lambda s: s.name == "a"),
    ("name 63 chars", ONE_SHOT, {"name": "a" + "-" * 61 + "9"}, lambda s: len(s.name) == 63),
    ("description", ONE_SHOT, {"description": "Restarts staging. Owner: ops"}, lambda s: s.description.startswith("R")),
    ("enabled false", ONE_SHOT, {"enabled": False}, lambda s: s.enabled is False),
    ("timezone", ONE_SHOT, {"timezone": "Asia/Shanghai"}, lambda s: s.timezone == "Asia/Shanghai"),
    ("timezone UTC", ONE_SHOT, {"timezone": "UTC"}, lambda s: s.timezone == "UTC"),
    ("timezone three parts", ONE_SHOT, {"timezone": "America/Argentina/Buenos_Aires"},
     lambda s: s.timezone.endswith("Aires")),
    ("soft_restart", ONE_SHOT, {"action": "soft_restart"}, lambda s: s.action == "soft_restart"),
    ("flush allowed", ONE_SHOT, {"action": "flush", "allow_flush": True}, lambda s: s.allow_flush),
    ("cron names", ONE_SHOT, {"cron": "30 4 * jan-mar sun"}, lambda s: s.cron == "30 4 * jan-mar sun"),
    ("cron steps", ONE_SHOT, {"cron": "*/15 * * * *"}, lambda s: s.cron == "*/15 * * * *"),
    ("cron 29 Feb", ONE_SHOT, {"cron": "0 0 29 2 *"}, lambda s: True),
    ("window weekend", WINDOW, {"window": {"stop": "0 20 * * fri", "start": "0 7 * * mon"}},
     lambda s: s.window.stop == "0 20 * * fri"),
    ("enforce on window", WINDOW, {"enforce": True}, lambda s: s.enforce is True),
    ("enforce false on one-shot", ONE_SHOT, {"enforce": False}, lambda s: s.enforce is False),
    ("ids", ONE_SHOT, {"instances": {"ids": ["6f4a2c1e-0b5d-4e7a-9c3f-2d8e1a7b6c90", "x", "x"]}},
     lambda s: s.instances == Selector(ids=("6f4a2c1e-0b5d-4e7a-9c3f-2d8e1a7b6c90", "x"))),
    ("names", ONE_SHOT, {"instances": {"names": ["staging-*", "cache-[ab]?"]}},
     lambda s: s.instances.names == ("staging-*", "cache-[ab]?")),
    ("tags sorted", ONE_SHOT, {"instances": {"tags": {"tier": "cache", "env": "staging"}}},
     lambda s: s.instances.tags == (("env", "staging"), ("tier", "cache"))),
    ("all selector kinds", ONE_SHOT, {"instances": {"ids": ["a"], "names": ["b*"], "tags": {"c": ""}}},
     lambda s: s.instances == Selector(("a",), ("b*",), (("c", ""),))),
    ("exclude", ONE_SHOT, {"exclude": {"names": ["staging-session-*"]}},
     lambda s: s.exclude == Selector(names=("staging-session-*",))),
    ("no exclude", ONE_SHOT, {}, lambda s: s.exclude == Selector() and s.exclude.is_empty()),
    ("skip_dates", ONE_SHOT, {"skip_dates": ["2026-12-25", "2026-01-01", "2028-02-29"]},
     lambda s: s.skip_dates == frozenset({date(2026, 12, 25), date(2026, 1, 1), date(2028, 2, 29)})),
    ("skip_dates empty", ONE_SHOT, {"skip_dates": []}, lambda s: s.skip_dates == frozenset()),
    ("active range", ONE_SHOT, {"active_from": "2026-03-01", "active_until": "2026-09-30"},
     lambda s: (s.active_from, s.active_until) == (date(2026, 3, 1), date(2026, 9, 30))),
    ("active one day", ONE_SHOT, {"active_from": "2026-03-01", "active_until": "2026-03-01"},
     lambda s: s.active_from == s.active_until),
    ("active_from only", ONE_SHOT, {"active_from": "2026-03-01"}, lambda s: s.active_until is None),
    ("deadline 30s", ONE_SHOT, {"starting_deadline": "30s"}, lambda s: s.starting_deadline == timedelta(seconds=30)),
    ("deadline 15m", ONE_SHOT, {"starting_deadline": "15m"}, lambda s: s.starting_deadline == timedelta(minutes=15)),
    ("deadline 2h", ONE_SHOT, {"starting_deadline": "2h"}, lambda s: s.starting_deadline == timedelta(hours=2)),
    ("deadline 24h", ONE_SHOT, {"starting_deadline": "24h"}, lambda s: s.starting_deadline == timedelta(hours=24)),
    ("max_instances 1", ONE_SHOT, {"max_instances": 1}, lambda s: s.max_instances == 1),
    ("max_instances 10.0", ONE_SHOT, {"max_instances": 10.0},
     lambda s: s.max_instances == 10 and isinstance(s.max_instances, int)),
    ("project and region", ONE_SHOT, {"project_id": "0123456789abcdef0123456789abcdef", "region": "cn-north-4"},
     lambda s: (s.project_id, s.region) == ("0123456789abcdef0123456789abcdef", "cn-north-4")),
    ("dry_run", ONE_SHOT, {"dry_run": True}, lambda s: s.dry_run is True),
]


@pytest.mark.parametrize("base, changes, expect", [row[1:] for row in VALID], ids=[row[0] for row in VALID])
def test_valid_field(base: dict, changes: dict, expect) -> None:
    schedules, problems = check_json(variant(base, changes))
    assert problems == []
    assert len(schedules) == 1
    assert expect(schedules[0]), schedules[0]
    assert schedules[0].source == "test.json"


# ---------------------------------------------------------------------------------------------
# Each field's invalid forms: where the problem is reported and what it says

S = "$.schedules[0]"
INVALID = [
    # name
    ("name missing", ONE_SHOT, {"name": DELETE}, f"{S}.name", ["missing required field 'name'"]),
    ("name upper case", ONE_SHOT, {"name": "Nightly"}, f"{S}.name", ["lower-case", "'Nightly'"]),
    ("name underscore", ONE_SHOT, {"name": "night_ly"}, f"{S}.name", ["lower-case"]),
    ("name trailing dash", ONE_SHOT, {"name": "nightly-"}, f"{S}.name", ["ending with a letter or digit"]),
    ("name 64 chars", ONE_SHOT, {"name": "a" * 64}, f"{S}.name", ["too long", "63"]),
    ("name empty", ONE_SHOT, {"name": ""}, f"{S}.name", ["lower-case"]),
    ("name trailing newline", ONE_SHOT, {"name": "nightly\n"}, f"{S}.name", ["lower-case"]),
    ("name number", ONE_SHOT, {"name": 7}, f"{S}.name", ["must be text", "whole number 7"]),
    # description / enabled
    ("description list", ONE_SHOT, {"description": ["a"]}, f"{S}.description", ["must be text", "a list"]),
    ("description too long", ONE_SHOT, {"description": "x" * 2001}, f"{S}.description", ["too long", "2000"]),
    ("enabled string", ONE_SHOT, {"enabled": "yes"}, f"{S}.enabled", ["true or false", "'yes'"]),
    # timezone
    ("timezone UTC+8", ONE_SHOT, {"timezone": "UTC+8"}, f"{S}.timezone", ["unknown time zone 'UTC+8'", "IANA"]),
    ("timezone +08:00", ONE_SHOT, {"timezone": "+08:00"}, f"{S}.timezone", ["IANA", "fixed offsets"]),
    ("timezone unknown", ONE_SHOT, {"timezone": "Mars/Olympus_Mons"}, f"{S}.timezone", ["unknown time zone"]),
    ("timezone lower case", ONE_SHOT, {"timezone": "asia/shanghai"}, f"{S}.timezone", ["unknown time zone"]),
    ("timezone localtime", ONE_SHOT, {"timezone": "localtime"}, f"{S}.timezone", ["not allowed"]),
    ("timezone right/", ONE_SHOT, {"timezone": "right/UTC"}, f"{S}.timezone", ["not allowed"]),
    ("timezone path", ONE_SHOT, {"timezone": "../../etc/passwd"}, f"{S}.timezone", ["IANA"]),
    ("timezone number", ONE_SHOT, {"timezone": 8}, f"{S}.timezone", ["must be text"]),
    # action + cron, window: exactly one
    ("neither", ONE_SHOT, {"action": DELETE, "cron": DELETE}, S, ["exactly one of action+cron", "window"]),
    ("both", ONE_SHOT, {"window": {"stop": "0 20 * * *", "start": "0 7 * * *"}}, S, ["exactly one", "not both"]),
    ("cron without action", ONE_SHOT, {"action": DELETE}, f"{S}.action", ["missing 'action'", "cron"]),
    ("action without cron", ONE_SHOT, {"cron": DELETE}, f"{S}.cron", ["missing 'cron'", "action"]),
    ("window with cron", WINDOW, {"cron": "0 3 * * *"}, S, ["exactly one", "not both"]),
    ("action unknown", ONE_SHOT, {"action": "reboot"}, f"{S}.action", ["one of 'restart', 'soft_restart', 'flush'"]),
    ("action typo", ONE_SHOT, {"action": "restat"}, f"{S}.action", ["did you mean 'restart'"]),
    ("action stop", ONE_SHOT, {"action": "stop"}, f"{S}.action", ["one of"]),
    # cron (check_cron's rules; the path names the field)
    ("cron 6 fields", ONE_SHOT, {"cron": "0 0 3 * * *"}, f"{S}.cron", ["5 fields"]),
    ("cron 7 fields", ONE_SHOT, {"cron": "0 0 3 * * * 2026"}, f"{S}.cron", ["5 fields"]),
    ("cron 4 fields", ONE_SHOT, {"cron": "0 3 * *"}, f"{S}.cron", ["5 fields"]),
    ("cron H", ONE_SHOT, {"cron": "H 3 * * *"}, f"{S}.cron", ["minute", "H"]),
    ("cron R", ONE_SHOT, {"cron": "0 R * * *"}, f"{S}.cron", ["hour", "R"]),
    ("cron equal range", ONE_SHOT, {"cron": "0 9-9 * * *"}, f"{S}.cron", ["hour", "9-9"]),
    ("cron 31 Feb", ONE_SHOT, {"cron": "0 0 31 2 *"}, f"{S}.cron", ["0 0 31 2 *"]),
    ("cron 30 Feb", ONE_SHOT, {"cron": "0 0 30 feb *"}, f"{S}.cron", ["february"]),
    ("cron out of range", ONE_SHOT, {"cron": "0 24 * * *"}, f"{S}.cron", ["hour", "24"]),
    ("cron macro", ONE_SHOT, {"cron": "@daily"}, f"{S}.cron", ["@daily"]),
    ("cron empty", ONE_SHOT, {"cron": ""}, f"{S}.cron", ["empty"]),
    ("cron number", ONE_SHOT, {"cron": 5}, f"{S}.cron", ["must be text"]),
    # window
    ("window missing stop", WINDOW, {"window": {"start": "0 7 * * *"}}, f"{S}.window.stop", ["missing", "'stop'"]),
    ("window missing start", WINDOW, {"window": {"stop": "0 20 * * *"}}, f"{S}.window.start", ["'start'"]),
    ("window extra key", WINDOW, {"window": {"stop": "0 20 * * *", "start": "0 7 * * *", "days": "mon"}},
     f"{S}.window.days", ["unknown field 'days'"]),
    ("window stop 6 fields", WINDOW, {"window": {"stop": "0 0 20 * * *", "start": "0 7 * * *"}},
     f"{S}.window.stop", ["5 fields"]),
    ("window start impossible", WINDOW, {"window": {"stop": "0 20 * * *", "start": "0 7 31 4 *"}},
     f"{S}.window.start", ["april"]),
    ("window stop equal range", WINDOW, {"window": {"stop": "0 20-20 * * *", "start": "0 7 * * *"}},
     f"{S}.window.stop", ["20-20"]),
    ("window stop = start", WINDOW, {"window": {"stop": "0 20 * * *", "start": "0  20 * * *"}},
     f"{S}.window.start", ["same expression"]),
    ("window string", WINDOW, {"window": "20:00-07:00"}, f"{S}.window", ["must be a mapping"]),
    ("window empty", WINDOW, {"window": {}}, f"{S}.window.stop", ["missing"]),
    # enforce
    ("enforce on one-shot", ONE_SHOT, {"enforce": True}, f"{S}.enforce", ["only to window"]),
    ("enforce string", WINDOW, {"enforce": "true"}, f"{S}.enforce", ["true or false"]),
    # instances / exclude (selectors)
    ("instances missing", ONE_SHOT, {"instances": DELETE}, f"{S}.instances", ["missing required field"]),
    ("instances empty", ONE_SHOT, {"instances": {}}, f"{S}.instances", ["at least one of 'ids', 'names' or 'tags'"]),
    ("instances ids empty", ONE_SHOT, {"instances": {"ids": []}}, f"{S}.instances.ids", ["must not be empty"]),
    ("instances names empty", ONE_SHOT, {"instances": {"names": []}}, f"{S}.instances.names", ["not be empty"]),
    ("instances tags empty", ONE_SHOT, {"instances": {"tags": {}}}, f"{S}.instances.tags", ["not be empty"]),
    ("instances typo", ONE_SHOT, {"instances": {"name": ["x"]}}, f"{S}.instances.name",
     ["unknown field 'name'", "did you mean 'names'"]),
    ("instances list", ONE_SHOT, {"instances": ["staging-*"]}, f"{S}.instances", ["must be a mapping"]),
    ("ids not a list", ONE_SHOT, {"instances": {"ids": "abc"}}, f"{S}.instances.ids", ["must be a list"]),
    ("id with slash", ONE_SHOT, {"instances": {"ids": ["../x"]}}, f"{S}.instances.ids[0]", ["letters, digits"]),
    ("names item empty", ONE_SHOT, {"instances": {"names": [""]}}, f"{S}.instances.names[0]", ["not be empty"]),
    ("tag value number", ONE_SHOT, {"instances": {"tags": {"version": 4}}}, f"{S}.instances.tags.version",
     ["must be text", "quotes"]),
    ("tag value false", ONE_SHOT, {"instances": {"tags": {"backup": False}}}, f"{S}.instances.tags.backup",
     ["boolean false", "quotes"]),
    ("tag key dotted", ONE_SHOT, {"instances": {"tags": {"app.io/tier": None}}},
     f"{S}.instances.tags['app.io/tier']", ["must be text"]),
    ("tag key too long", ONE_SHOT, {"instances": {"tags": {"k" * 129: "v"}}}, f"{S}.instances.tags",
     ["key 'kkk", "too long"]),
    ("exclude empty", ONE_SHOT, {"exclude": {}}, f"{S}.exclude", ["at least one of"]),
    ("exclude names empty", ONE_SHOT, {"exclude": {"names": []}}, f"{S}.exclude.names", ["not be empty"]),
    # skip_dates / active_from / active_until
    ("skip date 30 Feb", ONE_SHOT, {"skip_dates": ["2026-01-01", "2026-02-30"]}, f"{S}.skip_dates[1]",
     ["2026-02-30", "not a calendar date"]),
    ("skip date 29 Feb 2026", ONE_SHOT, {"skip_dates": ["2026-02-29"]}, f"{S}.skip_dates[0]", ["calendar date"]),
    ("skip date slashes", ONE_SHOT, {"skip_dates": ["2026/01/01"]}, f"{S}.skip_dates[0]", ["YYYY-MM-DD"]),
    ("skip date time", ONE_SHOT, {"skip_dates": ["2026-01-01T00:00"]}, f"{S}.skip_dates[0]", ["too long"]),
    ("skip date string", ONE_SHOT, {"skip_dates": "2026-01-01"}, f"{S}.skip_dates", ["must be a list"]),
    ("skip date number", ONE_SHOT, {"skip_dates": [20260101]}, f"{S}.skip_dates[0]", ["must be text"]),
    ("active_from month 13", ONE_SHOT, {"active_from": "2026-13-01"}, f"{S}.active_from", ["calendar date"]),
    ("active_until short", ONE_SHOT, {"active_until": "2026-1-1"}, f"{S}.active_until", ["YYYY-MM-DD"]),
    ("active reversed", ONE_SHOT, {"active_from": "2026-05-01", "active_until": "2026-04-30"},
     f"{S}.active_until", ["2026-04-30", "before active_from"]),
    # starting_deadline
    ("deadline no unit", ONE_SHOT, {"starting_deadline": "600"}, f"{S}.starting_deadline", ["30s", "15m", "2h"]),
    ("deadline days", ONE_SHOT, {"starting_deadline": "1d"}, f"{S}.starting_deadline", ["s, m or h"]),
    ("deadline fraction", ONE_SHOT, {"starting_deadline": "1.5h"}, f"{S}.starting_deadline", ["whole number"]),
    ("deadline compound", ONE_SHOT, {"starting_deadline": "1h30m"}, f"{S}.starting_deadline", ["duration"]),
    ("deadline zero", ONE_SHOT, {"starting_deadline": "0s"}, f"{S}.starting_deadline", ["more than 0s"]),
    ("deadline too long", ONE_SHOT, {"starting_deadline": "25h"}, f"{S}.starting_deadline", ["at most 24h"]),
    ("deadline number", ONE_SHOT, {"starting_deadline": 600}, f"{S}.starting_deadline", ["must be text"]),
    # allow_flush
    ("flush not allowed", ONE_SHOT, {"action": "flush"}, f"{S}.allow_flush", ["allow_flush: true"]),
    ("flush allow false", ONE_SHOT, {"action": "flush", "allow_flush": False}, f"{S}.allow_flush",
     ["deletes all data"]),
    ("allow_flush string", ONE_SHOT, {"action": "flush", "allow_flush": "true"}, f"{S}.allow_flush",
     ["true or false"]),
    # max_instances
    ("max_instances 0", ONE_SHOT, {"max_instances": 0}, f"{S}.max_instances", ["at least 1"]),
    ("max_instances negative", ONE_SHOT, {"max_instances": -5}, f"{S}.max_instances", ["at least 1"]),
    ("max_instances huge", ONE_SHOT, {"max_instances": 10001}, f"{S}.max_instances", ["at most 10000"]),
    ("max_instances fraction", ONE_SHOT, {"max_instances": 1.5}, f"{S}.max_instances", ["whole number"]),
    ("max_instances string", ONE_SHOT, {"max_instances": "10"}, f"{S}.max_instances", ["whole number"]),
    ("max_instances bool", ONE_SHOT, {"max_instances": True}, f"{S}.max_instances", ["whole number"]),
    # project_id / region / dry_run
    ("project_id path", ONE_SHOT, {"project_id": "abc/../def"}, f"{S}.project_id", ["letters, digits"]),
    ("project_id empty", ONE_SHOT, {"project_id": ""}, f"{S}.project_id", ["letters, digits"]),
    ("region spaces", ONE_SHOT, {"region": "CN North 4"}, f"{S}.region", ["region name"]),
    ("dry_run string", ONE_SHOT, {"dry_run": "no"}, f"{S}.dry_run", ["true or false"]),
    # unknown fields
    ("unknown field typo", WINDOW, {"enforced": True}, f"{S}.enforced", ["unknown field", "did you mean 'enforce'"]),
    ("unknown field", ONE_SHOT, {"owner": "ops"}, f"{S}.owner", ["unknown field 'owner'"]),
]


@pytest.mark.parametrize("base, changes, path, gist", [row[1:] for row in INVALID], ids=[row[0] for row in INVALID])
def test_invalid_field(base: dict, changes: dict, path: str, gist: list[str]) -> None:
    item = variant(base, changes)
    schedules, problems = check_json(item)
    assert schedules == []
    problem = assert_problem(problems, path, *gist)
    assert problem.file == "test.json"
    name = item.get("name")
    assert problem.schedule == (name if isinstance(name, str) else None)
    assert str(problem).startswith("test.json")


def test_one_problem_per_field_and_all_fields_reported() -> None:
    item = variant(ONE_SHOT, {"name": "Bad_Name", "cron": "0 0 3 * * *", "timezone": "UTC+8", "max_instances": 0})
    _, problems = check_json(item)
    paths = [p.path for p in problems]
    assert sorted(paths) == sorted([f"{S}.name", f"{S}.cron", f"{S}.timezone", f"{S}.max_instances"])


def test_items_that_are_not_mappings() -> None:
    schedules, problems = check_json(ONE_SHOT, "nightly", None, [1])
    assert [s.name for s in schedules] == ["nightly"]
    for i in (1, 2, 3):
        assert_problem(problems, f"$.schedules[{i}]", "must be a mapping")
    assert len(problems) == 3


def test_invalid_schedule_dropped_others_in_file_load() -> None:
    bad = variant(ONE_SHOT, {"name": "broken", "cron": "0 0 31 2 *"})
    good = variant(WINDOW, {"name": "good"})
    schedules, problems = check_json(ONE_SHOT, bad, good)
    assert [s.name for s in schedules] == ["nightly", "good"]
    assert [(p.schedule, p.path) for p in problems] == [("broken", "$.schedules[1].cron")]


# ---------------------------------------------------------------------------------------------
# YAML specifics


def test_yaml_unquoted_dates_are_dates() -> None:
    schedules, problems = check_yaml(
        "schedules:\n"
        "  - name: nightly\n"
        "    action: restart\n"
        "    cron: 0 3 * * *\n"
        "    instances: {tags: {env: staging}}\n"
        "    skip_dates: [2026-12-25, '2026-12-26']\n"
        "    active_from: 2026-01-01\n"
        "    active_until: 2026-12-31\n"
    )
    assert problems == []
    assert schedules[0].skip_dates == frozenset({date(2026, 12, 25), date(2026, 12, 26)})
    assert (schedules[0].active_from, schedules[0].active_until) == (date(2026, 1, 1), date(2026, 12, 31))


def test_yaml_unquoted_impossible_date_is_reported_as_such() -> None:
    _, problems = check_yaml("schedules:\n- {name: a, action: restart, cron: '0 3 * * *', instances: {ids: [x]},"
                             " skip_dates: [2026-02-30]}\n")
    assert_problem(problems, "$.schedules[0].skip_dates[0]", "not a calendar date")


def test_yaml_values_that_are_not_text_get_a_quoting_hint() -> None:
    # YAML 1.1: 20:00 is the number 1200 (base 60), `no` is false, 0123 is octal.
    _, problems = check_yaml("schedules:\n- name: a\n  window: {stop: 20:00, start: '0 7 * * *'}\n"
                             "  instances: {tags: {backup: no}, ids: [0123]}\n")
    assert_problem(problems, "$.schedules[0].window.stop", "whole number 1200", "quotes")
    assert_problem(problems, "$.schedules[0].instances.tags.backup", "boolean false", "quotes")
    assert_problem(problems, "$.schedules[0].instances.ids[0]", "whole number 83")


def test_yaml_keys_are_text() -> None:
    schedules, problems = check_yaml("schedules:\n- {name: a, action: restart, cron: '0 3 * * *',"
                                     " instances: {tags: {1: one, on: 'yes', null: x}}}\n")
    assert problems == []
    assert schedules[0].instances.tags == (("1", "one"), ("null", "x"), ("on", "yes"))


def test_yaml_merge_key_is_just_an_unknown_field() -> None:
    _, problems = check_yaml("schedules:\n- {name: a, action: restart, cron: '0 3 * * *', instances: {ids: [x]},"
                             " <<: {dry_run: true}}\n")
    assert_problem(problems, "$.schedules[0]['<<']", "unknown field '<<'")


ALIAS_BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
schedules: [*i]
"""


def test_yaml_alias_bomb_is_refused_quickly() -> None:
    started = time.perf_counter()
    schedules, problems = check_yaml(ALIAS_BOMB)
    assert time.perf_counter() - started < 1
    assert schedules == []
    assert len(problems) == 1
    assert problems[0].path == "$"
    assert "YAML aliases are not allowed" in problems[0].message
    assert "line 2" in problems[0].message


def test_yaml_any_alias_is_refused() -> None:
    text = ("ids: &ids [a, b]\nschedules:\n- {name: a, action: restart, cron: '0 3 * * *',"
            " instances: {ids: *ids}}\n")
    _, problems = check_yaml(text)
    assert_problem(problems, "$", "YAML aliases are not allowed", "*ids", "line 3")


@pytest.mark.parametrize("text, tag", [
    ("schedules: !!python/object/apply:os.system ['touch /tmp/pwned']\n", "!!python/object/apply:os.system"),
    ("schedules:\n- !schedule {name: a}\n", "!schedule"),
    ("schedules: []\nx: !!binary aGVsbG8=\n", "!!binary"),
    ("schedules: []\nx: !!set {a: null}\n", "!!set"),
    ("schedules: []\nx: !!timestamp 2026-01-01\n", "!!timestamp"),
])
def test_yaml_custom_tags_are_refused(text: str, tag: str) -> None:
    _, problems = check_yaml(text)
    assert_problem(problems, "$", f"YAML tag '{tag}' is not allowed", "line")


def test_yaml_standard_tags_are_fine() -> None:
    schedules, problems = check_yaml("schedules:\n- {name: !!str a, action: restart, cron: '0 3 * * *',"
                                     " instances: {tags: {version: !!str 4}}}\n")
    assert problems == []
    assert schedules[0].instances.tags == (("version", "4"),)


def test_yaml_syntax_error_has_line_and_column() -> None:
    _, problems = check_yaml("schedules:\n  - name: a\n   action: restart\n")
    problem = assert_problem(problems, "$", "YAML syntax error", "line 3, column 4")
    assert problem.schedule is None


def test_yaml_duplicate_keys_are_refused() -> None:
    _, problems = check_yaml("schedules:\n- name: a\n  cron: '0 3 * * *'\n  cron: '0 4 * * *'\n")
    assert_problem(problems, "$", "duplicate key 'cron'", "line 4", "first at line 3")


def test_yaml_several_documents_are_refused() -> None:
    _, problems = check_yaml("schedules: []\n---\nschedules: []\n")
    assert_problem(problems, "$", "single document")


@pytest.mark.parametrize("depth", [40, 200_000])
def test_deep_nesting_is_refused_without_crashing(depth: int) -> None:
    # libyaml's own composer recurses in C: 200,000 '[' crash the interpreter with it.
    _, problems = check_yaml("schedules: " + "[" * depth + "]" * depth)
    assert_problem(problems, "$", "nested too deeply")
    _, problems = parse_document('{"schedules": ' + "[" * depth + "]" * depth + "}", "deep.json")
    if depth > 1000:
        assert_problem(problems, "$", "nested too deeply")


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_flavour(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Where libyaml is not built (some deployment packages), the pure-Python parser is used."""
    import yaml

    if request.param == "pure-python":
        monkeypatch.setattr(yaml, "__with_libyaml__", False)
    loader._strict_loader_class.cache_clear()
    yield request.param
    loader._strict_loader_class.cache_clear()


@pytest.mark.parametrize("text, gist", [
    (ALIAS_BOMB, "YAML aliases are not allowed"),
    ("schedules: " + "[" * 100_000, "nested too deeply"),
    ("schedules: !!python/name:os.system\n", "YAML tag '!!python/name:os.system' is not allowed"),
    ("schedules: []\nschedules: []\n", "duplicate key 'schedules'"),
    ("schedules: []\n\x07\n", "U+0007"),
    ("schedules: [\n", "YAML syntax error"),
    ("? [a]\n: b\nschedules: []\n", "mapping keys must be plain text"),
])
def test_hostile_yaml_with_either_parser(yaml_flavour: str, text: str, gist: str) -> None:
    _, problems = check_yaml(text)
    assert len(problems) == 1
    assert_problem(problems, "$", gist)


def test_valid_yaml_with_either_parser(yaml_flavour: str) -> None:
    catalog = load_catalog(REPO / "schedules")
    assert catalog.problems == () and len(catalog.schedules) == 5
    schedules, _ = check_yaml("schedules:\n- {name: a, action: restart, cron: 0 3 * * *, instances: {tags: {1: on}},"
                              " skip_dates: [2026-01-01]}\n")
    assert schedules == []  # `on` is true in YAML 1.1, a tag value must be text
    schedules, problems = check_yaml("schedules:\n- {name: a, action: restart, cron: 0 3 * * *,"
                                     " instances: {tags: {1: 'on'}}, skip_dates: [2026-01-01]}\n")
    assert problems == []
    assert schedules[0].instances.tags == (("1", "on"),) and schedules[0].skip_dates == {date(2026, 1, 1)}


def test_yaml_control_characters() -> None:
    _, problems = check_yaml("schedules: []\n# \x00\n")
    assert_problem(problems, "$", "U+0000", "line 2")


# ---------------------------------------------------------------------------------------------
# Whole documents


@pytest.mark.parametrize("text, gist", [
    ("- a\n- b\n", "got a list"),
    ("just text\n", "got text 'just text'"),
    ("", "it is empty"),
    ("# only a comment\n", "it is empty"),
    ("42\n", "got whole number 42"),
])
def test_not_a_mapping(text: str, gist: str) -> None:
    schedules, problems = check_yaml(text)
    assert schedules == []
    assert [p.path for p in problems] == ["$"]
    assert_problem(problems, "$", "must be a mapping with a 'schedules' list", gist)


def test_schedules_missing_or_not_a_list() -> None:
    _, problems = check_yaml("defaults: {timezone: UTC}\n")
    assert_problem(problems, "$.schedules", "missing required field 'schedules'")
    _, problems = check_yaml("schedules: {name: a}\n")
    assert_problem(problems, "$.schedules", "must be a list")


def test_unknown_top_level_key_loads_nothing() -> None:
    schedules, problems = check_json(ONE_SHOT, defaults={"timezone": "UTC"})
    assert problems == [] and len(schedules) == 1
    schedules, problems = parse_document(json.dumps({"default": {"timezone": "Asia/Shanghai"},
                                                     "schedules": [ONE_SHOT]}), "t.json")
    assert schedules == []
    assert_problem(problems, "$.default", "unknown field 'default'", "did you mean 'defaults'", "no schedule")


def test_dollar_schema_key_is_allowed_for_editors() -> None:
    schedules, problems = parse_document(json.dumps({"$schema": "./schema.json", "schedules": [ONE_SHOT]}), "t.json")
    assert problems == [] and len(schedules) == 1


def test_too_many_schedules() -> None:
    items = [variant(ONE_SHOT, {"name": f"s{i}"}) for i in range(loader.MAX_SCHEDULES_PER_FILE + 1)]
    schedules, problems = check_json(*items)
    assert schedules == []
    assert len(problems) == 1
    assert_problem(problems, "$.schedules", "too many schedules", "10,000")


def test_problems_per_file_are_capped() -> None:
    items = [{"name": f"s{i}"} for i in range(2000)]  # each lacks instances and action/window
    _, problems = check_json(*items)
    assert len(problems) == loader.MAX_PROBLEMS_PER_FILE + 1
    assert "more problems" in problems[-1].message


def test_json_errors() -> None:
    _, problems = parse_document('{"schedules": [\n  {"name": "a",}\n]}', "t.json")
    assert_problem(problems, "$", "JSON syntax error at line 2, column 16")
    _, problems = parse_document('{"schedules": [], "schedules": []}', "t.json")
    assert_problem(problems, "$", "duplicate key 'schedules'")


def test_parse_document_formats() -> None:
    text = json.dumps({"schedules": [ONE_SHOT]})
    for fmt in (None, "json", "yaml", "YAML", "yml"):
        schedules, problems = parse_document(text, "posted", fmt)
        assert problems == [] and [s.name for s in schedules] == ["nightly"], fmt
    assert parse_document(text.encode(), "posted.json")[1] == []
    # a JSON-only mistake is a JSON error with the json parser, valid YAML without it
    assert parse_document("{schedules: []}", "posted", "json")[1][0].message.startswith("JSON syntax error")
    assert parse_document("{schedules: []}", "posted")[1] == []
    with pytest.raises(ValueError, match="unknown schedule document format"):
        parse_document(text, "posted", "toml")


def test_non_utf8() -> None:
    _, problems = parse_document("schedules: []\n# caf\xe9\n".encode("latin-1"), "t.yaml")
    assert_problem(problems, "$", "not valid UTF-8", "0xe9", "line 2")


def test_utf8_bom_and_unicode_text() -> None:
    text = "schedules:\n- {name: a, description: 'Redémarrage 重启', action: restart, cron: '0 3 * * *'," \
           " instances: {names: ['缓存-*']}}\n"
    schedules, problems = parse_document(b"\xef\xbb\xbf" + text.encode(), "t.yaml")
    assert problems == []
    assert schedules[0].description == "Redémarrage 重启"
    assert schedules[0].instances.names == ("缓存-*",)


def test_oversized_document() -> None:
    text = "schedules: []\n" + "#" * loader.MAX_FILE_BYTES
    _, problems = parse_document(text, "t.yaml")
    assert_problem(problems, "$", "too large")
    _, problems = parse_document(text.encode(), "t.yaml")
    assert_problem(problems, "$", "too large")


def test_duplicate_names_in_one_document() -> None:
    schedules, problems = check_json(ONE_SHOT, variant(WINDOW, {"name": "other"}), variant(WINDOW, {"name": "nightly"}))
    assert [s.name for s in schedules] == ["other"]
    first = assert_problem(problems, "$.schedules[0].name", "duplicate schedule name 'nightly'", "$.schedules[2]")
    assert first.schedule == "nightly"
    assert_problem(problems, "$.schedules[2].name", "duplicate schedule name 'nightly'", "$.schedules[0]")


def test_duplicate_of_an_invalid_schedule_still_counts() -> None:
    schedules, problems = check_json(ONE_SHOT, variant(ONE_SHOT, {"cron": "bad"}))
    assert schedules == []
    assert_problem(problems, "$.schedules[0].name", "duplicate")
    assert_problem(problems, "$.schedules[1].cron", "fields")


# ---------------------------------------------------------------------------------------------
# defaults


def test_defaults_apply_and_own_values_win() -> None:
    defaults = {"timezone": "Asia/Shanghai", "project_id": "p1", "region": "cn-north-4", "starting_deadline": "15m"}
    own = variant(WINDOW, {"name": "own", "timezone": "Europe/Berlin", "project_id": "p2", "region": "eu-west-0",
                           "starting_deadline": "30s"})
    schedules, problems = check_json(ONE_SHOT, own, defaults=defaults)
    assert problems == []
    inherited, overridden = schedules
    assert (inherited.timezone, inherited.project_id, inherited.region, inherited.starting_deadline) == (
        "Asia/Shanghai", "p1", "cn-north-4", timedelta(minutes=15))
    assert (overridden.timezone, overridden.project_id, overridden.region, overridden.starting_deadline) == (
        "Europe/Berlin", "p2", "eu-west-0", timedelta(seconds=30))


def test_defaults_are_per_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("defaults: {timezone: Asia/Shanghai}\nschedules:\n"
                                     "- {name: a, action: restart, cron: '0 3 * * *', instances: {ids: [x]}}\n")
    (tmp_path / "b.yaml").write_text("schedules:\n"
                                     "- {name: b, action: restart, cron: '0 3 * * *', instances: {ids: [x]}}\n")
    catalog = load_catalog(tmp_path)
    assert catalog.by_name("a").timezone == "Asia/Shanghai"
    assert catalog.by_name("b").timezone == "UTC"


@pytest.mark.parametrize("defaults, path, gist", [
    ({"timezone": "UTC+8"}, "$.defaults.timezone", ["unknown time zone"]),
    ({"timezone": "+08:00"}, "$.defaults.timezone", ["IANA"]),
    ({"starting_deadline": "2d"}, "$.defaults.starting_deadline", ["duration"]),
    ({"starting_deadline": "48h"}, "$.defaults.starting_deadline", ["at most 24h"]),
    ({"project_id": "a b"}, "$.defaults.project_id", ["letters, digits"]),
    ({"dry_run": True}, "$.defaults.dry_run", ["unknown field 'dry_run'"]),
    ({"timezon": "UTC"}, "$.defaults.timezon", ["did you mean 'timezone'"]),
    (["UTC"], "$.defaults", ["must be a mapping"]),
])
def test_invalid_defaults_load_nothing_from_the_file(defaults: object, path: str, gist: list[str]) -> None:
    schedules, problems = check_json(ONE_SHOT, WINDOW, defaults=defaults)
    assert schedules == []
    problem = assert_problem(problems, path, *gist, "no schedule in this file is loaded")
    assert problem.schedule is None


# ---------------------------------------------------------------------------------------------
# Directories: several files, bad files, duplicates, caching


def write(path: Path, *items: dict, **doc: object) -> Path:
    path.write_text(json.dumps({"schedules": list(items), **doc}) if path.suffix == ".json"
                    else _yaml_dump({"schedules": list(items), **doc}))
    return path


def _yaml_dump(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)


def test_bad_file_beside_good_one(tmp_path: Path) -> None:
    d = tmp_path / "schedules"
    d.mkdir()
    write(d / "good.yaml", ONE_SHOT)
    (d / "bad.yaml").write_text("schedules:\n  - name: x\n   oops: [\n")
    catalog = load_catalog(d)
    assert [s.name for s in catalog.schedules] == ["nightly"]
    assert catalog.files == ("schedules/bad.yaml", "schedules/good.yaml")
    assert len(catalog.problems) == 1
    assert catalog.problems[0].file == "schedules/bad.yaml"
    assert "YAML syntax error" in catalog.problems[0].message
    assert catalog.by_name("nightly").source == "schedules/good.yaml"
    assert not catalog.ok


@pytest.mark.parametrize("content, gist", [
    (b"schedules: []\n\xff\xfe", "not valid UTF-8"),
    (b"- 1\n", "must be a mapping"),
    (b"", "it is empty"),
    (b"a: &x 1\nb: *x\nschedules: []\n", "YAML aliases are not allowed"),
])
def test_each_bad_file_is_one_problem(tmp_path: Path, content: bytes, gist: str) -> None:
    (tmp_path / "bad.yaml").write_bytes(content)
    write(tmp_path / "good.json", ONE_SHOT)
    catalog = load_catalog(tmp_path)
    assert [s.name for s in catalog.schedules] == ["nightly"]
    assert len(catalog.problems) == 1
    assert_problem(list(catalog.problems), "$", gist)


def test_oversized_file_is_not_read(tmp_path: Path) -> None:
    with open(tmp_path / "big.yaml", "wb") as fh:
        fh.write(b"schedules: []\n")
        fh.truncate(loader.MAX_FILE_BYTES + 1)
    catalog = load_catalog(tmp_path)
    assert_problem(list(catalog.problems), "$", "too large", "split it")


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "secret.yaml", ONE_SHOT)
    write(tmp_path / "open.yaml", variant(WINDOW, {"name": "readable"}))

    def refuse(path: object, *args: object, **kwargs: object):
        if str(path).endswith("secret.yaml"):
            raise PermissionError(13, "Permission denied")
        return open(path, *args, **kwargs)  # noqa: SIM115

    monkeypatch.setattr(loader, "open", refuse, raising=False)
    catalog = load_catalog(tmp_path)
    assert [s.name for s in catalog.schedules] == ["readable"]
    assert len(catalog.problems) == 1
    assert_problem(list(catalog.problems), "$", "cannot read the file", "Permission denied")


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", ONE_SHOT, variant(WINDOW, {"name": "only-a"}))
    write(tmp_path / "b.json", variant(WINDOW, {"name": "nightly"}))
    catalog = load_catalog(tmp_path)
    assert [s.name for s in catalog.schedules] == ["only-a"]
    prefix = tmp_path.name
    in_a = [p for p in catalog.problems if p.file == f"{prefix}/a.yaml"]
    in_b = [p for p in catalog.problems if p.file == f"{prefix}/b.json"]
    assert_problem(in_a, "$.schedules[0].name", "duplicate schedule name 'nightly'", f"{prefix}/b.json")
    assert_problem(in_b, "$.schedules[0].name", "duplicate schedule name 'nightly'", f"{prefix}/a.yaml")
    assert {p.schedule for p in catalog.problems} == {"nightly"}
    assert catalog.problems_for("nightly") == catalog.problems


def test_bad_fixture_files() -> None:
    catalog = load_catalog(FIXTURES)
    assert sorted(s.name for s in catalog.schedules) == ["fixture-good", "fixture-valid-among-invalid"]
    assert len(catalog.files) == 9
    by_file: dict[str, list[Problem]] = {}
    for problem in catalog.problems:
        by_file.setdefault(problem.file.split("/", 1)[1], []).append(problem)
    expected = {
        "alias-bomb.yaml": ("$", ["YAML aliases are not allowed"]),
        "broken.json": ("$", ["JSON syntax error at line 1"]),
        "custom-tag.yaml": ("$", ["YAML tag '!!python/object/apply:os.system' is not allowed"]),
        "latin1.yaml": ("$", ["not valid UTF-8", "line 3"]),
        "not-a-mapping.yml": ("$", ["must be a mapping", "got a list"]),
        "syntax-error.yaml": ("$", ["YAML syntax error", "line 4"]),
    }
    for name, (path, gist) in expected.items():
        assert len(by_file[name]) == 1, by_file[name]
        assert_problem(by_file[name], path, *gist)
    assert_problem(by_file["good.yaml"], "$.schedules[1].name", "duplicate", "schedules_bad/duplicate-name.json")
    assert_problem(by_file["duplicate-name.json"], "$.schedules[0].name", "duplicate", "schedules_bad/good.yaml")
    invalid = by_file["invalid-fields.yaml"]
    assert {(p.schedule, p.path) for p in invalid} == {
        ("fixture-bad-cron", "$.schedules[1].cron"),
        ("fixture-flush-not-allowed", "$.schedules[2].allow_flush"),
        ("fixture-both-kinds", "$.schedules[3]"),
        ("fixture-window-typo", "$.schedules[4].window.stop"),
        ("fixture-window-typo", "$.schedules[4].enforced"),
        ("fixture-bad-dates", "$.schedules[5].timezone"),
        ("fixture-bad-dates", "$.schedules[5].skip_dates[0]"),
        ("fixture-bad-dates", "$.schedules[5].active_until"),
    }
    # and nothing was executed by the custom tag
    assert all("this must never run" not in p.message or "not allowed" in p.message for p in catalog.problems)


def test_which_files_are_read(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", variant(ONE_SHOT, {"name": "a"}))
    write(tmp_path / "b.yml", variant(ONE_SHOT, {"name": "b"}))
    write(tmp_path / "c.json", variant(ONE_SHOT, {"name": "c"}))
    write(tmp_path / ".hidden.yaml", variant(ONE_SHOT, {"name": "hidden"}))
    (tmp_path / "schema.json").write_text('{"not": "a schedule file"}')
    (tmp_path / "notes.txt").write_text("not read")
    (tmp_path / "README.md").write_text("not read")
    (tmp_path / "sub.yaml").mkdir()  # named like a schedule file: reported (issue 12), not skipped in silence
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested" / "d.yaml", variant(ONE_SHOT, {"name": "d"}))
    catalog = load_catalog(str(tmp_path))
    assert [(Path(p.file).name, "directory" in p.message) for p in catalog.problems] == [("sub.yaml", True)]
    assert [s.name for s in catalog.schedules] == ["a", "b", "c"]
    assert [Path(f).name for f in catalog.files] == ["a.yaml", "b.yml", "c.json", "sub.yaml"]
    assert catalog.by_name("missing") is None


def test_missing_directory(tmp_path: Path) -> None:
    catalog = load_catalog(tmp_path / "nope")
    assert catalog.schedules == () and catalog.files == ()
    assert_problem(list(catalog.problems), "$", "does not exist")


def test_unchanged_files_are_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "a.yaml", ONE_SHOT)
    first = load_catalog(tmp_path)
    calls = []
    original = loader._load_document
    monkeypatch.setattr(loader, "_load_document", lambda *a: calls.append(a) or original(*a))
    second = load_catalog(tmp_path)
    assert calls == []
    assert second.schedules[0] is first.schedules[0]
    assert second == first

    # a changed file is read again
    write(tmp_path / "a.yaml", variant(ONE_SHOT, {"cron": "30 4 * * *"}))
    third = load_catalog(tmp_path)
    assert len(calls) == 1
    assert third.schedules[0].cron == "30 4 * * *"

    # uniqueness is recomputed though the first file comes from the cache
    write(tmp_path / "b.yaml", variant(WINDOW, {"name": "nightly"}))
    fourth = load_catalog(tmp_path)
    assert len(calls) == 2
    assert fourth.schedules == ()
    assert len(fourth.problems) == 2
    (tmp_path / "b.yaml").unlink()
    assert [s.name for s in load_catalog(tmp_path).schedules] == ["nightly"]
    assert len(calls) == 2


def test_catalog_is_a_value() -> None:
    schedules, _ = check_json(ONE_SHOT)
    a = Catalog(tuple(schedules), (), ("x",))
    b = Catalog(tuple(schedules), (), ("x",))
    assert a == b and hash(a) == hash(b)
    assert a.by_name("nightly") is schedules[0]
    assert a.ok


def test_ten_thousand_schedules_in_one_json_file(tmp_path: Path) -> None:
    items = []
    for i in range(10_000):
        item = {"name": f"sched-{i:05d}", "description": "generated", "timezone": ["Asia/Shanghai", "UTC"][i % 2],
                "instances": {"tags": {"env": "staging", "team": f"t{i % 50}"}, "names": ["staging-*"]},
                "exclude": {"names": ["staging-session-*"]}, "skip_dates": ["2026-10-01"], "max_instances": 20}
        if i % 4:
            item.update(action="restart", cron=f"{i % 60} {i % 24} * * *")
        else:
            item["window"] = {"stop": f"{i % 60} 20 * * mon-fri", "start": f"{i % 60} 7 * * mon-fri"}
        items.append(item)
    write(tmp_path / "many.json", *items, defaults={"starting_deadline": "15m"})
    started = time.perf_counter()
    first = load_catalog(tmp_path)
    middle = time.perf_counter()
    second = load_catalog(tmp_path)
    ended = time.perf_counter()
    print(f"\n10,000 schedules: first load {middle - started:.3f}s, second load {ended - middle:.4f}s")
    assert first.problems == () and len(first.schedules) == 10_000
    assert second == first
    assert middle - started < 10  # about 0.5 s on a laptop; generous for slow CI
    assert ended - middle < (middle - started) / 5


# ---------------------------------------------------------------------------------------------
# The examples in schedules/ and the schema itself


def test_examples_validate() -> None:
    catalog = load_catalog(REPO / "schedules")
    assert catalog.problems == ()
    assert set(catalog.files) == {"schedules/nightly-restart.yaml", "schedules/weekly-soft-restart.yaml",
                                  "schedules/cache-flush.yaml", "schedules/weekday-window.yaml"}
    nightly = catalog.by_name("staging-nightly-restart")
    assert (nightly.action, nightly.cron, nightly.timezone) == ("restart", "0 3 * * *", "Asia/Shanghai")
    assert nightly.instances.tags == (("env", "staging"),) and nightly.exclude.names
    weekly = catalog.by_name("staging-weekly-soft-restart")
    assert (weekly.action, weekly.timezone, weekly.instances.names) == ("soft_restart", "Europe/Berlin", ("staging-*",))
    flush = catalog.by_name("cache-weekly-flush")
    assert (flush.action, flush.allow_flush, flush.max_instances) == ("flush", True, 10)
    assert flush.instances.tags == (("tier", "cache"),)
    weeknights = catalog.by_name("dev-weeknight-stop")
    assert weeknights.window is not None and weeknights.instances.tags == (("env", "dev"),)
    weekend = catalog.by_name("dev-weekend-stop")
    assert weekend.window == Window("0 20 * * fri", "0 7 * * mon")
    for path in (REPO / "schedules").glob("*.yaml"):
        text = path.read_text()
        assert text.startswith("#") and "defaults:" in text, path.name


def test_examples_parse_document_like_the_validate_route() -> None:
    for path in sorted((REPO / "schedules").glob("*.yaml")):
        schedules, problems = parse_document(path.read_bytes(), path.name)
        assert problems == [] and schedules, path.name


def test_schema_is_a_valid_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    doc = loader.schema()
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"]
    assert doc["properties"]["schedules"]["maxItems"] == loader.MAX_SCHEDULES_PER_FILE
    assert doc == json.loads((REPO / "schedules" / "schema.json").read_text())
    doc["title"] = "changed"
    assert loader.schema()["title"] != "changed"  # a copy


def _resolve(node: dict, root: dict) -> dict:
    merged = dict(node)
    while "$ref" in merged:
        ref = merged.pop("$ref")
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        merged = {**target, **merged}
    return merged


def test_schema_documents_every_property() -> None:
    root = loader.schema()
    seen = 0

    def walk(node: dict, where: str) -> None:
        nonlocal seen
        node = _resolve(node, root)
        for key, sub in node.get("properties", {}).items():
            resolved = _resolve(sub, root)
            assert resolved.get("title") and resolved.get("description"), f"{where}.{key}"
            seen += 1
            walk(sub, f"{where}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}[]")
        assert node.get("type") != "object" or node.get("additionalProperties") is not None, where

    walk(root, "$")
    assert seen > 30


def test_schema_strings_and_lists_are_bounded() -> None:
    root = loader.schema()

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "string" and "enum" not in node:
                assert "maxLength" in node, where
            if node.get("type") == "array":
                assert "maxItems" in node, where
            if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
                assert "maxProperties" in node, where
            for key, sub in node.items():
                walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}/{i}")

    walk(root, "#")


def test_schema_enum_matches_the_model() -> None:
    from dcs_maintenance.model import ONE_SHOT_ACTIONS

    assert tuple(loader.schema()["$defs"]["schedule"]["properties"]["action"]["enum"]) == ONE_SHOT_ACTIONS


# ---------------------------------------------------------------------------------------------
# The compiled fast check says exactly what jsonschema says


def test_fast_check_covers_the_schema() -> None:
    assert loader._fast_check() is not None
    assert loader._fast_file_check() is not None


_VALUES = st.sampled_from([
    None, True, False, 0, 1, 7, -1, 1.5, 10.0, 10001, "", "a", "nightly", "Nightly", "nightly\n", "restart", "flush",
    "stop", "0 3 * * *", "0 0 3 * * *", "2026-01-01", "2026-1-1", "15m", "1d", "UTC", "+08:00", "x" * 300,
    [], ["a"], [""], ["2026-01-01"], [1], {}, {"ids": ["a"]}, {"names": []}, {"tags": {"a": "b"}}, {"tags": {"a": 1}},
    {"stop": "0 20 * * *", "start": "0 7 * * *"}, {"stop": "0 20 * * *"}, {"ids": ["a"], "other": 1},
])
_KEYS = st.sampled_from(sorted(loader.schema()["$defs"]["schedule"]["properties"]) + ["bogus"])


@st.composite
def near_valid_items(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 20)) == 0:
        return draw(_VALUES)
    item = variant(draw(st.sampled_from([ONE_SHOT, WINDOW])), {})
    for _ in range(draw(st.integers(0, 3))):
        key = draw(_KEYS)
        if draw(st.booleans()):
            item.pop(key, None)
        else:
            item[key] = draw(_VALUES)
    return item


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_items())
def test_fast_check_agrees_with_jsonschema(item: object) -> None:
    expected = loader._validator().is_valid({"schedules": [item]})
    assert loader._fast_check()(item) is expected


@pytest.mark.parametrize("doc", [
    {"schedules": []}, {"schedules": [], "defaults": {}}, {"schedules": [], "defaults": {"timezone": "UTC"}},
    {"schedules": [], "defaults": {"timezone": 1}}, {"schedules": [], "x": 1}, {"schedules": [], "$schema": "s"},
    {"schedules": {}}, {}, {"schedules": [], "defaults": {"starting_deadline": "15m", "region": "cn-north-4"}},
])
def test_fast_file_check_agrees_with_jsonschema(doc: dict) -> None:
    assert loader._fast_file_check()(doc) is loader._validator().is_valid(doc)


def test_pattern_dollar_means_end_of_text() -> None:
    # ECMA-262 (JSON Schema's regex dialect): '$' does not match before a final newline as Python's does
    assert not loader._validator().is_valid({"schedules": [variant(ONE_SHOT, {"name": "nightly\n"})]})
    assert not loader._fast_check()(variant(ONE_SHOT, {"name": "nightly\n"}))


# ---------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("0s", 0), (" 5m ", 300), ("90m", 5400),
])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", [
    "", "5", "m", "1.5h", "-5m", "1h30m", "5 m", "5M", "5w", "\uff115m", "9" * 13 + "s", None, 5,
])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds, text", [
    (30, "30s"), (600, "10m"), (5400, "90m"), (7200, "2h"), (86400, "24h"), (0, "0s"), (61, "61s"), (3660, "61m"),
])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_format_duration_rejects() -> None:
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        format_duration(timedelta(milliseconds=1500))
