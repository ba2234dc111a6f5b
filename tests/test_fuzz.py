"""Issue 5: hostile and random input never raises, never acts.

- schedule documents (wrong types, huge lists, unknown fields, invalid cron and zones, YAML tags, anchors,
  billion laughs, non-UTF-8 bytes, very large files) -> `loader.parse_document` / `load_catalog` give a
  clear problem naming what is wrong, never an exception;
- TIMER events, APIG events and non-dict events -> `handler.handler` never raises, always returns a dict,
  and NO fuzzed input causes a state-changing call (the emulator's instances would match, but every
  schedule is a dry run, targets only protected instances, is disabled or is never due).

Bounded for CI (a few hundred examples, well under a minute). A longer run:
    FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/test_fuzz.py
(FUZZ_EXAMPLES sets the examples of each property; hypothesis's database in .hypothesis/ keeps failures.)
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PROJECT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handler
from dcs_maintenance import loader
from dcs_maintenance.model import Schedule
from dcs_maintenance.tools.local import LocalContext, apig_event

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)


def fuzz_settings(default: int) -> settings:
    return settings(max_examples=EXAMPLES or default, deadline=None, derandomize=not EXAMPLES,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------------------------
# Schedule documents


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True once in n draws (st.integers would favour 0, i.e. the rare branch, far more often)."""
    return st.sampled_from([False] * (n - 1) + [True])


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40), st.sampled_from(["", "restart", "flush", "stop", "soft_restart", "0 3 * * *", "UTC",
                                            "2026-02-30", "15m", "-1m", "yes", "null", "~", "\x00", "\ud800"]),
)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=25)

CRONS = st.one_of(
    st.sampled_from(["0 3 * * *", "*/15 * * * *", "0 0 31 2 *", "9-9 * * * *", "H 3 * * *", "0 0 3 * * *",
                     "0 3 * * * *", "61 * * * *", "0 25 * * *", "@daily", "0 3 * * mon-fri", "0 3 L * *",
                     "0 3 * * 8", "*/0 * * * *", "0-59/61 * * * *", "", "     ", "0 3 * *", "R 3 * * *",
                     "0 3 ? * *", "0 3 * * 1#2", "59/15 * * * *", "0 3 * JAN-DEC SUN"]),
    st.lists(st.sampled_from(["*", "0", "3", "*/5", "1-5", "mon", "jan", "L", "W", "?", "#", "-", ",", "/", "99"]),
             min_size=1, max_size=8).map(" ".join),
    st.text(max_size=30),
)
ZONES = st.one_of(
    st.sampled_from(["UTC", "Europe/Berlin", "Asia/Shanghai", "Mars/Olympus", "UTC+8", "+08:00", "", "utc",
                     "../../etc/passwd", "/etc/localtime", "Europe/../Europe/Berlin", "EST5EDT", "posix/UTC",
                     "Etc/GMT+14", "right/UTC", "Europe/Berlin\x00", "A" * 300]),
    st.text(max_size=40),
)
SELECTORS = st.one_of(
    st.fixed_dictionaries({}, optional={"ids": st.lists(st.text(max_size=20), max_size=4),
                                        "names": st.lists(st.text(max_size=20), max_size=4),
                                        "tags": st.dictionaries(st.text(max_size=10), SCALARS, max_size=3)}),
    JSON_VALUES,
)
FIELDS = {
    "name": st.one_of(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), SCALARS),
    "description": SCALARS,
    "enabled": SCALARS,
    "timezone": ZONES,
    "action": st.one_of(st.sampled_from(["restart", "soft_restart", "flush", "stop", "start", "RESTART"]), SCALARS),
    "cron": CRONS,
    "window": st.one_of(st.fixed_dictionaries({"stop": CRONS, "start": CRONS}), JSON_VALUES),
    "enforce": SCALARS,
    "instances": SELECTORS,
    "exclude": SELECTORS,
    "skip_dates": st.one_of(st.lists(st.one_of(st.dates().map(str), SCALARS), max_size=4), SCALARS),
    "active_from": st.one_of(st.dates().map(str), SCALARS),
    "active_until": st.one_of(st.dates().map(str), SCALARS),
    "starting_deadline": st.one_of(st.sampled_from(["30s", "15m", "2h", "25h", "0s", "1d", "1h30m", "-5m"]), SCALARS),
    "allow_flush": SCALARS,
    "max_instances": SCALARS,
    "project_id": SCALARS,
    "region": SCALARS,
    "dry_run": SCALARS,
}
VALID_ONE_SHOT = {"name": "nightly", "action": "restart", "cron": "0 3 * * *", "instances": {"tags": {"env": "x"}}}
VALID_WINDOW = {"name": "nights", "window": {"stop": "0 20 * * *", "start": "0 7 * * *"},
                "instances": {"names": ["dev-*"]}}


@st.composite
def schedule_items(draw: st.DrawFn) -> Any:
    """Mostly near-valid schedules with a few fields replaced, removed or added; sometimes anything at all."""
    if draw(one_in(10)):
        return draw(JSON_VALUES)
    item = dict(draw(st.sampled_from([VALID_ONE_SHOT, VALID_WINDOW])))
    item["name"] = f"{item['name']}-{draw(st.integers(0, 999))}"
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(sorted(FIELDS) + ["bogus", "Name", "cron "]))
        if draw(one_in(4)):
            item.pop(key, None)
        else:
            item[key] = draw(FIELDS.get(key, JSON_VALUES))
    return item


@st.composite
def documents(draw: st.DrawFn) -> tuple[Any, list]:
    """(document object, its schedule items or None when the document is not a mapping with a list)."""
    items = draw(st.lists(schedule_items(), max_size=6))
    doc: Any = {"schedules": items}
    if draw(st.booleans()):
        doc["defaults"] = draw(st.one_of(
            st.fixed_dictionaries({}, optional={"timezone": ZONES, "project_id": SCALARS, "region": SCALARS,
                                                "starting_deadline": FIELDS["starting_deadline"],
                                                "allow_flush": SCALARS}), JSON_VALUES))
    if draw(one_in(6)):
        doc[draw(st.text(max_size=10))] = draw(JSON_VALUES)
    if draw(one_in(9)):
        return draw(JSON_VALUES), None
    return doc, items


def _dump(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, allow_nan=True)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


_ITEM_PATH = re.compile(r"^\$\.schedules\[(\d+)\]")


def check_result(result: Any, source: str, items: list | None = None) -> None:
    """The properties every parse has: lists of Schedules and Problems, each problem with a message, this
    source and a JSON path; every item either loaded or named by a problem."""
    schedules, problems = result
    assert isinstance(schedules, list) and isinstance(problems, list)
    assert all(isinstance(s, Schedule) for s in schedules)
    for problem in problems:
        assert problem.file == source
        assert isinstance(problem.message, str) and problem.message.strip(), problem
        assert "internal error" not in problem.message, problem.message
        assert problem.path.startswith("$"), problem
    if items is None:
        return
    file_level = [p for p in problems if not _ITEM_PATH.match(p.path)]
    if file_level:
        assert schedules == [], "a file-level problem loads nothing from the file"
        return
    failed = {int(_ITEM_PATH.match(p.path).group(1)) for p in problems}
    assert len(schedules) + len(failed) == len(items), (schedules, problems)


@fuzz_settings(300)
@given(documents(), st.sampled_from(["yaml", "json"]))
def test_fuzzed_documents_give_problems_never_exceptions(case, fmt):
    doc, items = case
    try:
        text = _dump(doc, fmt)
    except (ValueError, yaml.YAMLError, UnicodeEncodeError):  # lone surrogates and the like: not a document
        return
    source = f"fuzz.{fmt}"
    check_result(loader.parse_document(text, source, fmt), source, items)
    check_result(loader.parse_document(text.encode("utf-8", "surrogatepass"), source, fmt), source, items)


@fuzz_settings(300)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)), st.sampled_from(["yaml", "json"]))
def test_random_text_and_bytes_give_problems_never_exceptions(data, fmt):
    check_result(loader.parse_document(data, f"raw.{fmt}", fmt), f"raw.{fmt}")


@st.composite
def mutated_valid_text(draw: st.DrawFn) -> bytes:
    """A valid YAML file with bytes inserted, deleted or replaced: syntax errors, bad UTF-8, control chars."""
    text = bytearray(_dump({"schedules": [VALID_ONE_SHOT, VALID_WINDOW]}, "yaml").encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.integers(0, 2))
        if op == 0:
            text[at:at] = draw(st.binary(min_size=1, max_size=6))
        elif op == 1:
            del text[at:at + draw(st.integers(1, 8))]
        else:
            text[at:at + 1] = draw(st.sampled_from([b"\xff", b"\x00", b"&a ", b"*a", b"!!", b"{", b"'", b"\t",
                                                    b"\xc3", b": ", b"- ", b"\n  ", b"<<: "]))
    return bytes(text)


@fuzz_settings(300)
@given(mutated_valid_text())
def test_mutated_files_give_problems_never_exceptions(data):
    check_result(loader.parse_document(data, "mutated.yaml"), "mutated.yaml")


BILLION_LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
       f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(8)]
    + ["schedules: *i"])
ONE = "  - {name: x, action: restart, cron: '0 3 * * *', instances: {ids: [a]}}\n"
HOSTILE: list[tuple[str, Any, str]] = [
    ("billion laughs", BILLION_LAUGHS, "alias"),
    ("python object tag", "schedules: !!python/object/apply:os.system ['touch /tmp/pwned']\n", "tag"),
    ("python name tag", "schedules:\n  - name: !!python/name:os.system x\n", "tag"),
    ("custom local tag", "schedules: !include /etc/passwd\n", "tag"),
    ("binary tag", "schedules: !!binary aGVsbG8=\n", "tag"),
    ("set tag", "schedules: !!set {a, b}\n", "tag"),
    ("timestamp tag", "schedules:\n  - name: !!timestamp 2026-01-01\n", "tag"),
    ("anchor and alias", "x: &sel {ids: [a]}\nschedules:\n  - {name: a, action: restart, cron: '0 3 * * *', "
                         "instances: *sel}\n", "alias"),
    ("merge key", "base: &b {action: restart}\nschedules:\n  - <<: *b\n    name: a\n", "alias"),
    ("duplicate keys", "schedules: []\nschedules: []\n", "duplicate"),
    ("multiple documents", "schedules: []\n---\nschedules: []\n", "document"),
    ("deep nesting", "schedules: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
    ("deep nesting json", '{"schedules": ' + "[" * 100000 + "]" * 100000 + "}", "nested"),
    ("deep mapping", "schedules:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)), ""),
    ("not UTF-8", b"schedules:\n  - name: caf\xe9\n", "UTF-8"),
    ("UTF-16", "schedules: []\n".encode("utf-16"), "UTF-8"),
    ("NUL byte", "schedules: []\n\x00\n", "character"),
    ("lone surrogate", "schedules:\n  - name: \ud800\n", ""),
    ("BOM only", "\ufeff", "mapping"),
    ("empty", "", "mapping"),
    ("only a comment", "# nothing\n", "mapping"),
    ("a list", "- 1\n- 2\n", "mapping"),
    ("a scalar", "hello\n", "mapping"),
    ("schedules not a list", "schedules: {a: 1}\n", ""),
    ("json NaN", '{"schedules": [{"name": "a", "max_instances": NaN}]}', ""),
    ("json huge number", '{"schedules": [{"name": "a", "max_instances": 1' + "0" * 5000 + "}]}", ""),
    ("json huge exponent", '{"schedules": [{"name": "a", "max_instances": 1e99999}]}', ""),
    ("json trailing garbage", '{"schedules": []} x', ""),
    ("huge list", "schedules:\n" + ONE * 10_001, ""),
    ("huge string", "schedules:\n  - name: a\n    description: '" + "x" * 3_000_000 + "'\n", ""),
    ("too large", "schedules: []\n" + "#" * (loader.MAX_FILE_BYTES + 10) + "\n", "too large"),
    ("too large bytes", b"schedules: []\n" + b"#" * (loader.MAX_FILE_BYTES + 10), "too large"),
    ("many problems", "schedules:\n" + "  - {name: 'X', bogus: 1}\n" * 3000, ""),
    ("huge selector", "schedules:\n  - name: a\n    action: restart\n    cron: '0 3 * * *'\n    instances: {ids: ["
                      + ", ".join(f"i{n}" for n in range(100_000)) + "]}\n", ""),
]


@pytest.mark.parametrize("name, data, word", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_documents_are_refused_with_a_clear_problem(name, data, word):
    for fmt in ("yaml", "json"):
        source = f"hostile.{fmt}"
        result = loader.parse_document(data, source, fmt)
        check_result(result, source)
        schedules, problems = result
        assert problems, f"{name} ({fmt}) loaded without a problem"
        if word and fmt == "yaml":
            assert any(word.lower() in p.message.lower() for p in problems), [p.message for p in problems][:3]


def test_catalog_with_hostile_files_still_loads_the_good_one(tmp_path: Path):
    (tmp_path / "good.yaml").write_text(_dump({"schedules": [VALID_ONE_SHOT]}, "yaml"))
    for n, (_name, data, _word) in enumerate(h for h in HOSTILE if "large" not in h[0]):
        path = tmp_path / f"hostile-{n:02}.yaml"
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    (tmp_path / "big.yaml").write_bytes(b"#" * (loader.MAX_FILE_BYTES + 1))
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "link.yaml").symlink_to(tmp_path / "missing-target.yaml")
    catalog = loader.load_catalog(tmp_path)
    assert [s.name for s in catalog.schedules] == ["nightly"]
    assert any("too large" in p.message for p in catalog.problems)
    for problem in catalog.problems:
        assert problem.message and "internal error" not in problem.message


@fuzz_settings(40)
@given(st.lists(st.tuples(st.sampled_from([".yaml", ".yml", ".json", ".txt"]), documents()), max_size=4))
def test_fuzzed_catalogs_never_raise(files):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for n, (suffix, (doc, _items)) in enumerate(files):
            try:
                text = _dump(doc, "json" if suffix == ".json" else "yaml")
            except (ValueError, yaml.YAMLError, UnicodeEncodeError):
                continue
            (directory / f"f{n}{suffix}").write_text(text, "utf-8", "surrogatepass")
        catalog = loader.load_catalog(directory)
        names = [s.name for s in catalog.schedules]
        assert len(names) == len(set(names)), "names are unique across files"
        for problem in catalog.problems:
            assert problem.message and "internal error" not in problem.message


# ---------------------------------------------------------------------------------------------
# Events through handler.handler: never raise, never act

# Schedules that would match every instance, yet can never change anything: dry runs, protected-only
# targets, disabled, or never due (Feb 29 inside 2998 only, which is not a leap year).
SAFE_SCHEDULES = """
schedules:
  - name: dry-restart
    action: restart
    cron: "* * * * *"
    dry_run: true
    instances: {names: ['*']}
  - name: dry-flush
    action: flush
    allow_flush: true
    cron: "*/5 * * * *"
    dry_run: true
    instances: {names: ['*']}
  - name: dry-window
    window: {stop: "*/2 * * * *", start: "1-59/2 * * * *"}
    enforce: true
    dry_run: true
    instances: {names: ['*']}
  - name: protected-restart
    action: restart
    cron: "* * * * *"
    instances: {tags: {maintenance-protect: "true"}}
  - name: protected-window
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    enforce: true
    instances: {tags: {maintenance-protect: "true"}}
  - name: disabled
    action: restart
    cron: "* * * * *"
    enabled: false
    instances: {names: ['*']}
"""
NEVER_DUE = """
  - name: never-due
    action: soft_restart
    cron: "0 0 29 2 *"
    active_from: "2998-01-01"
    active_until: "2998-12-31"
    instances: {names: ['*']}
"""
NAMES = ["dry-restart", "dry-flush", "dry-window", "protected-restart", "protected-window", "disabled"]


@pytest.fixture
def quiet_fleet(emulator, write_schedules):
    """Instances every schedule would select, in every state an action needs; ids no fuzzer can guess."""
    for n, status in enumerate(["RUNNING", "RUNNING", "CLOSED", "ERROR"]):
        emulator.add_instance(PROJECT, instance_id=f"5e1f0c3a-{n:04}-4c1d-9a7e-0d6b1c2e3f4a", name=f"cache-{n}",
                              tags={"env": "prod"}, status=status)
    emulator.add_instance(PROJECT, instance_id="5e1f0c3a-9999-4c1d-9a7e-0d6b1c2e3f4a", name="keep",
                          tags={"maintenance-protect": "true"})
    return emulator


def assert_never_acted(emu) -> None:
    assert emu.calls() == [], "a fuzzed event caused a state-changing call"
    assert all(r["method"] == "GET" for r in emu.requests), "only reads"


TIMES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive
    st.sampled_from(["2026-12-01T10:00:00Z", "2026-12-01T10:00:00+08:00", "2026-12-01T10:00:00z",
                     "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z",
                     "9999-12-31T23:59:59Z", "2026-02-30T00:00:00Z", "2026-12-01 10:00:00+00:00",
                     "2026-12-01T10:00:00+24:00", "yesterday", "", " ", "Z", "2026-W49-2T10:00Z", "1764583200",
                     "2026-12-01T10:00:00.123456789Z", "+002026-12-01T10:00:00Z"]),
    SCALARS,
)
OPTIONS = st.fixed_dictionaries({}, optional={
    "dry_run": st.one_of(st.booleans(), SCALARS),
    "schedules": st.one_of(st.lists(st.sampled_from(NAMES + ["never-due", "nope", "", "*"]), max_size=4),
                           JSON_VALUES)})
USER_EVENTS = st.one_of(
    st.just(""), st.text(max_size=60), SCALARS, JSON_VALUES,
    JSON_VALUES.map(json.dumps),
    OPTIONS.map(json.dumps), OPTIONS.map(json.dumps), OPTIONS.map(json.dumps),
    st.fixed_dictionaries({}, optional={"allow_flush": SCALARS, "force": SCALARS, "dry_run": SCALARS}).map(json.dumps),
    st.text(max_size=40).map(lambda t: "{" + t),
)


VALID_TIMES = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2990, 1, 1),
                          timezones=st.timezones()).map(lambda d: d.isoformat())


@st.composite
def timer_events(draw: st.DrawFn) -> Any:
    """Mostly well-formed TIMER events (so ticks really run) with hostile options; sometimes anything."""
    event: dict[str, Any] = {"version": "v1.0", "time": draw(TIMES if draw(one_in(4)) else VALID_TIMES),
                             "trigger_type": "TIMER", "trigger_name": "tick", "user_event": draw(USER_EVENTS)}
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(sorted(event)))
        if draw(st.booleans()):
            del event[key]
        else:
            event[key] = draw(SCALARS)
    if draw(one_in(5)):
        event.update(draw(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=3)))
    return event


@fuzz_settings(80)
@given(event=timer_events())
def test_fuzzed_timer_events_never_raise_and_never_act(quiet_fleet, write_schedules, function_env, event):
    write_schedules(SAFE_SCHEDULES + NEVER_DUE)
    result = handler.handler(event, LocalContext())
    assert isinstance(result, dict)
    json.dumps(result)
    assert "internal error" not in json.dumps(result), result.get("errors")
    assert_never_acted(quiet_fleet)


def test_timer_events_at_the_edges_of_time_are_refused_clearly(quiet_fleet, write_schedules, function_env):
    write_schedules(SAFE_SCHEDULES + NEVER_DUE)
    for when in ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z",
                 "9999-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "2026-12-01T10:00:00", "2026-13-01T00:00:00Z"]:
        result = handler.handler({"trigger_type": "TIMER", "time": when, "trigger_name": "t"}, LocalContext())
        assert result["ok"] is False and result["errors"], when
        assert result["errors"][0].startswith("time:"), result["errors"]
    assert_never_acted(quiet_fleet)


PATHS = st.one_of(
    st.sampled_from(["/health", "/schedules", "/schedules/validate", "/plan", "/instances/status",
                     "/schedules/dry-restart/run", "/schedules/protected-restart/run", "/schedules/disabled/run",
                     "/schedules/dry-window/run", "/schedules/protected-window/run", "/schedules/nope/run",
                     "/base/stage/schedules", "/schedules/../instances/status", "//health", "/health/",
                     "/%2e%2e/instances/status", "/instances/status?x=1", "/schedules/%00/run", "/",
                     "/" + "a/" * 2000, "/schedules/dry-restart/run/extra", "/SCHEDULES", "/instances%2Fstatus"]),
    st.text(max_size=60).map(lambda t: "/" + t),
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get", "put", "CONNECT"])
ODD_METHODS = st.one_of(st.sampled_from(["", "PUT ", "G\u0130T", "X" * 40]), SCALARS)
BODIES = st.one_of(
    st.none(), st.text(max_size=200), JSON_VALUES.map(json.dumps),
    st.fixed_dictionaries({}, optional={
        "instances": st.one_of(st.lists(st.one_of(st.text(max_size=40), SCALARS), max_size=4), JSON_VALUES),
        "action": st.one_of(st.sampled_from(["restart", "soft_restart", "flush", "stop", "start", "RESTART"]),
                            SCALARS),
        "confirm": st.one_of(st.just("flush"), SCALARS),
        "dry_run": SCALARS, "at": TIMES, "schedules": JSON_VALUES,
    }).map(json.dumps),
    st.sampled_from(["schedules: []\n", "schedules: [{name: x}]\n", "{", "\x00", BILLION_LAUGHS,
                     '{"instances": ["*"], "action": "restart"}', '{"instances": [], "action": "restart"}',
                     '{"instances": ["cache-0"], "action": "restart"}']),
)
TOKEN = "test-api-token-0123456789"
AUTHORIZATIONS = st.sampled_from([f"Bearer {TOKEN}", f"Bearer {TOKEN}", f"bearer {TOKEN}", f"Bearer  {TOKEN}",
                                  f"Bearer {TOKEN}x", TOKEN, "Bearer ", "Basic dXNlcjpwYXNz", ""])
HEADERS = st.builds(lambda auth, extra: {"Authorization": auth, **extra}, AUTHORIZATIONS,
                    st.dictionaries(st.sampled_from(["Content-Type", "authorization", "X-Forwarded-For", "Host"])
                                    | st.text(max_size=20), st.text(max_size=40), max_size=3))
ODD_HEADERS = st.one_of(st.dictionaries(st.text(max_size=20), st.one_of(st.text(max_size=40), JSON_VALUES),
                                        max_size=4), SCALARS, st.lists(SCALARS, max_size=2))


@st.composite
def apig_events(draw: st.DrawFn) -> Any:
    if draw(one_in(8)):  # a raw, anything-goes event
        return draw(st.dictionaries(
            st.sampled_from(["httpMethod", "path", "headers", "queryStringParameters", "body", "isBase64Encoded",
                             "requestContext", "pathParameters"]), JSON_VALUES, max_size=8).map(
            lambda d: {"httpMethod": "GET", **d}))
    body = draw(BODIES)
    encode = draw(st.sampled_from([1, 1, 1, 0, 2, 3]))  # 1: proper base64 (APIG's default)
    method, path = draw(METHODS), draw(PATHS)
    event = apig_event(method, path,
                       None, None, draw(st.one_of(st.none(), st.dictionaries(
                           st.sampled_from(["at", "x", ""]) | st.text(max_size=8), TIMES | SCALARS, max_size=3))),
                       base64_body=encode != 0)
    if isinstance(body, str):
        raw = body.encode("utf-8", "surrogatepass")
        event["body"] = base64.b64encode(raw).decode() if encode == 1 else (
            draw(st.sampled_from(["%%%", "YWJj=", "====", "aGVsbG8", body[:50]])) if encode == 2 else
            body if encode == 0 else base64.b64encode(raw).decode()[:-1])
    else:
        event["body"] = body
    event["headers"] = draw(ODD_HEADERS if draw(one_in(6)) else HEADERS)
    if draw(one_in(10)):
        event["httpMethod"], event["path"] = draw(ODD_METHODS), path
    if draw(one_in(10)):
        event["isBase64Encoded"] = draw(SCALARS)
    return event


def check_apig_response(response: Any) -> None:
    assert isinstance(response, dict)
    assert set(response) >= {"statusCode", "headers", "body", "isBase64Encoded"}, response
    assert isinstance(response["statusCode"], int) and 200 <= response["statusCode"] <= 599
    assert isinstance(response["headers"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response["headers"].items())
    assert isinstance(response["body"], str) and isinstance(response["isBase64Encoded"], bool)
    json.dumps(response)
    assert TOKEN not in response["body"]


@fuzz_settings(150)
@given(event=apig_events())
def test_fuzzed_apig_events_never_raise_and_never_act(quiet_fleet, write_schedules, function_env, event):
    write_schedules(SAFE_SCHEDULES)  # no never-due schedule: a manual run would run it now, legitimately
    response = handler.handler(event, LocalContext())
    check_apig_response(response)
    assert_never_acted(quiet_fleet)


@fuzz_settings(60)
@given(event=st.one_of(st.none(), SCALARS, st.lists(JSON_VALUES, max_size=3), st.binary(max_size=20),
                       st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4)))
def test_events_of_no_known_kind_never_raise(quiet_fleet, write_schedules, function_env, event):
    write_schedules(SAFE_SCHEDULES + NEVER_DUE)
    result = handler.handler(event, LocalContext())
    assert isinstance(result, dict)
    json.dumps(result, default=str)
    assert_never_acted(quiet_fleet)


def test_a_context_that_misbehaves_never_breaks_the_handler(quiet_fleet, write_schedules, function_env):
    class Broken:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise RuntimeError(f"{name} is broken")
            return fail

    write_schedules(SAFE_SCHEDULES)
    for context in (None, Broken(), object(), "context"):
        result = handler.handler({"trigger_type": "TIMER", "time": "2026-12-01T10:00:00Z", "trigger_name": "t"},
                                 context)
        assert isinstance(result, dict)
        check_apig_response(handler.handler(apig_event("GET", "/health"), context))
    assert_never_acted(quiet_fleet)
