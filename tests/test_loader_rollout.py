"""Schedule files: the `rollout` block and `within_maintenance_window`, each field's valid and invalid forms with
their paths; the compiled check agrees with jsonschema on them and on freezes; how they read in listings."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcs_maintenance import loader
from dcs_maintenance.loader import parse_document
from dcs_maintenance.model import Amount, RolloutSpec
from dcs_maintenance.schedule_info import describe_schedule

ONE_SHOT = {"name": "rolling", "action": "restart", "cron": "0 3 * * *", "instances": {"names": ["web-*"]}}
WINDOW = {"name": "evenings", "window": {"stop": "0 20 * * *", "start": "0 7 * * *"},
          "instances": {"names": ["dev-*"]}}


@pytest.fixture(autouse=True)
def _fresh_cache():
    loader.clear_cache()
    yield
    loader.clear_cache()


def check(item: dict):
    return parse_document(json.dumps({"schedules": [item]}), "test.json")


VALID = [
    ("no rollout: all at once, as before", {}, lambda s: s.rollout is None and s.within_maintenance_window is False),
    ("an empty block: every default", {"rollout": {}}, lambda s: s.rollout == RolloutSpec()
     and s.rollout.max_errors == Amount(0) and s.rollout.wave_timeout == timedelta(minutes=15)),
    ("batch 3", {"rollout": {"batch": 3}}, lambda s: s.rollout.batch == Amount(3)),
    ("batch 3.0 (a whole number)", {"rollout": {"batch": 3.0}}, lambda s: s.rollout.batch == Amount(3)),
    ("batch 25%", {"rollout": {"batch": "25%"}}, lambda s: s.rollout.batch == Amount(25, percent=True)),
    ("batch 100%", {"rollout": {"batch": "100%"}}, lambda s: str(s.rollout.batch) == "100%"),
    ("canary", {"rollout": {"canary": True}}, lambda s: s.rollout.canary is True),
    ("wave_timeout 1m", {"rollout": {"wave_timeout": "1m"}}, lambda s: s.rollout.wave_timeout == timedelta(minutes=1)),
    ("wave_timeout 24h", {"rollout": {"wave_timeout": "24h"}}, lambda s: s.rollout.wave_timeout == timedelta(hours=24)),
    ("max_errors 0", {"rollout": {"max_errors": 0}}, lambda s: s.rollout.max_errors == Amount(0)),
    ("max_errors 2", {"rollout": {"max_errors": 2}}, lambda s: s.rollout.max_errors == Amount(2)),
    ("max_errors 10%", {"rollout": {"max_errors": "10%"}}, lambda s: s.rollout.max_errors == Amount(10, True)),
    ("max_errors 0%", {"rollout": {"max_errors": "0%"}}, lambda s: s.rollout.max_errors == Amount(0, True)),
    ("order listed", {"rollout": {"order": "listed"}}, lambda s: s.rollout.order == "listed"),
    ("timeout 2h", {"rollout": {"timeout": "2h"}}, lambda s: s.rollout.timeout == timedelta(hours=2)),
    ("timeout 168h", {"rollout": {"timeout": "168h"}}, lambda s: s.rollout.timeout == timedelta(days=7)),
    ("all of them", {"rollout": {"batch": "25%", "canary": True, "wave_timeout": "10m", "max_errors": 1,
                                 "order": "listed", "timeout": "90m"}},
     lambda s: s.rollout == RolloutSpec(Amount(25, True), True, timedelta(minutes=10), Amount(1), "listed",
                                        timedelta(minutes=90))),
    ("with flush", {"action": "flush", "allow_flush": True, "rollout": {"batch": 1}},
     lambda s: s.action == "flush" and s.rollout.batch == Amount(1)),
    ("within_maintenance_window", {"within_maintenance_window": True}, lambda s: s.within_maintenance_window),
    ("within_maintenance_window false", {"within_maintenance_window": False},
     lambda s: not s.within_maintenance_window),
]


@pytest.mark.parametrize("label, changes, expect", VALID, ids=[v[0] for v in VALID])
def test_valid_fields(label, changes, expect):
    schedules, problems = check({**ONE_SHOT, **changes})
    assert problems == []
    assert expect(schedules[0]), schedules[0]


def test_a_window_may_say_within_maintenance_window_false():
    schedules, problems = check({**WINDOW, "within_maintenance_window": False})
    assert problems == [] and schedules[0].within_maintenance_window is False


R = "$.schedules[0].rollout"
INVALID = [
    # label, base, changes -> path, words in the message
    ("rollout on a window", WINDOW, {"rollout": {"batch": 2}}, R, ["only to one-shot schedules"]),
    ("an empty rollout on a window", WINDOW, {"rollout": {}}, R, ["only to one-shot schedules"]),
    ("within_maintenance_window on a window", WINDOW, {"within_maintenance_window": True},
     "$.schedules[0].within_maintenance_window", ["only to one-shot schedules"]),
    ("rollout not a mapping", ONE_SHOT, {"rollout": "25%"}, R, ["must be a mapping"]),
    ("rollout unknown field", ONE_SHOT, {"rollout": {"batches": 2}}, f"{R}.batches", ["did you mean 'batch'"]),
    ("batch 0", ONE_SHOT, {"rollout": {"batch": 0}}, f"{R}.batch", ["at least 1"]),
    ("batch negative", ONE_SHOT, {"rollout": {"batch": -2}}, f"{R}.batch", ["at least 1"]),
    ("batch fraction", ONE_SHOT, {"rollout": {"batch": 1.5}}, f"{R}.batch", ["whole number", "percentage"]),
    ("batch true", ONE_SHOT, {"rollout": {"batch": True}}, f"{R}.batch", ["whole number", "percentage"]),
    ("batch text", ONE_SHOT, {"rollout": {"batch": "half"}}, f"{R}.batch", ["percentage such as '25%'"]),
    ("batch '3'", ONE_SHOT, {"rollout": {"batch": "3"}}, f"{R}.batch", ["percentage such as '25%'"]),
    ("batch 0%", ONE_SHOT, {"rollout": {"batch": "0%"}}, f"{R}.batch", ["from 1% to 100%"]),
    ("batch 150%", ONE_SHOT, {"rollout": {"batch": "150%"}}, f"{R}.batch", ["from 1% to 100%"]),
    ("batch 12.5%", ONE_SHOT, {"rollout": {"batch": "12.5%"}}, f"{R}.batch", ["percentage"]),
    ("canary text", ONE_SHOT, {"rollout": {"canary": "yes"}}, f"{R}.canary", ["true or false"]),
    ("wave_timeout 30s", ONE_SHOT, {"rollout": {"wave_timeout": "30s"}}, f"{R}.wave_timeout", ["from 1m to 24h"]),
    ("wave_timeout 25h", ONE_SHOT, {"rollout": {"wave_timeout": "25h"}}, f"{R}.wave_timeout", ["from 1m to 24h"]),
    ("wave_timeout a number", ONE_SHOT, {"rollout": {"wave_timeout": 900}}, f"{R}.wave_timeout", ["must be text"]),
    ("wave_timeout days", ONE_SHOT, {"rollout": {"wave_timeout": "1d"}}, f"{R}.wave_timeout", ["s, m or h"]),
    ("max_errors negative", ONE_SHOT, {"rollout": {"max_errors": -1}}, f"{R}.max_errors", ["at least 0"]),
    ("max_errors 101%", ONE_SHOT, {"rollout": {"max_errors": "101%"}}, f"{R}.max_errors", ["from 0% to 100%"]),
    ("max_errors null", ONE_SHOT, {"rollout": {"max_errors": None}}, f"{R}.max_errors", ["whole number"]),
    ("order unknown", ONE_SHOT, {"rollout": {"order": "random"}}, f"{R}.order", ["one of 'name', 'listed'"]),
    ("order typo", ONE_SHOT, {"rollout": {"order": "listd"}}, f"{R}.order", ["did you mean 'listed'"]),
    ("timeout 0s", ONE_SHOT, {"rollout": {"timeout": "0s"}}, f"{R}.timeout", ["from 1s to 168h"]),
    ("timeout 169h", ONE_SHOT, {"rollout": {"timeout": "169h"}}, f"{R}.timeout", ["from 1s to 168h"]),
    ("within_maintenance_window text", ONE_SHOT, {"within_maintenance_window": "yes"},
     "$.schedules[0].within_maintenance_window", ["true or false"]),
]


@pytest.mark.parametrize("label, base, changes, path, gist", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_fields(label, base, changes, path, gist):
    schedules, problems = check({**base, **changes})
    assert schedules == []
    matching = [p for p in problems if p.path == path and all(g.lower() in p.message.lower() for g in gist)]
    assert matching, "\n".join(map(str, problems))
    assert all(p.file == "test.json" and p.schedule == base["name"] for p in problems)


def test_yaml_percentages_and_comments():
    schedules, problems = parse_document("""
schedules:
  - name: rolling
    action: soft_restart
    cron: "30 4 * * sun"
    instances: {names: ["cache-*", "web-*"]}
    rollout:
      batch: 25%          # YAML reads this as text without quotes
      canary: true
      max_errors: 1
      order: listed
    within_maintenance_window: true
""", "r.yaml")
    assert problems == []
    [s] = schedules
    assert s.rollout.batch == Amount(25, True) and s.rollout.order == "listed" and s.within_maintenance_window


# -- how it reads ----------------------------------------------------------------------------------------------
def test_describe_schedule_mentions_the_rollout_and_the_window():
    [s], _ = check({**ONE_SHOT, "rollout": {"batch": "25%", "canary": True, "max_errors": 1},
                    "within_maintenance_window": True})
    assert describe_schedule(s) == ("restart at 03:00 every day (UTC), in waves of 25% after a canary, by name, "
                                    "halting when errors exceed 1, only inside each instance's maintenance window")
    [plain], _ = check({**ONE_SHOT, "rollout": {}})
    assert describe_schedule(plain).endswith("in one wave, by name, halting at the first error")
    [none], _ = check(ONE_SHOT)
    assert describe_schedule(none) == "restart at 03:00 every day (UTC)"


def test_get_schedules_shows_the_rollout_block(http, write_schedules, at_time):
    from conftest import t

    at_time(t("2026-12-01T10:00:00Z"))
    write_schedules(json.dumps({"schedules": [{**ONE_SHOT, "rollout": {"batch": 3, "canary": True},
                                               "within_maintenance_window": True}]}), "r.json")
    [entry] = json.loads(http("GET", "/schedules")["body"])["schedules"]
    assert entry["rollout"] == {"batch": "3", "canary": True, "wave_timeout": 900, "max_errors": "0",
                                "order": "name", "timeout": None, "progress": None}  # no rollout run yet
    assert entry["within_maintenance_window"] is True
    assert "in waves of 3 after a canary" in entry["explanation"]


# -- the compiled check agrees with jsonschema -------------------------------------------------------------------
_AMOUNTS = st.sampled_from([None, True, 0, 1, 3, -1, 1.5, 3.0, 10001, "", "3", "25%", "0%", "100%", "1000%",
                            "12.5%", "x" * 10, [], {}])
_OTHERS = st.sampled_from([None, True, False, 0, "1m", "15m", "1d", "30s", "name", "listed", "random", [], {}])
_ROLLOUT_KEYS = ["batch", "canary", "wave_timeout", "max_errors", "order", "timeout", "bogus"]


@st.composite
def rollout_items(draw: st.DrawFn) -> object:
    block: dict = {}
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(_ROLLOUT_KEYS))
        block[key] = draw(_AMOUNTS if key in ("batch", "max_errors") else _OTHERS)
    item = dict(ONE_SHOT if draw(st.booleans()) else WINDOW)
    item["rollout"] = block if draw(st.integers(0, 8)) else draw(_OTHERS)
    if draw(st.booleans()):
        item["within_maintenance_window"] = draw(_OTHERS)
    return item


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rollout_items())
def test_fast_check_agrees_with_jsonschema_on_rollouts(item):
    assert loader._fast_check()(item) is loader._validator().is_valid({"schedules": [item]})


_FREEZE_VALUES = st.sampled_from([None, True, 0, "", "x", "year-end", "Year", "2026-12-20T00:00", "2026-12-20",
                                  "2026-12-20T00:00:00", "2026-12-20T00:00Z", "UTC", "Europe/Berlin", "+08:00",
                                  [], ["restart"], ["reboot"], ["stop", "start"], {}, "x" * 600])
_FREEZE_KEYS = ["name", "from", "until", "timezone", "reason", "actions", "bogus"]


@st.composite
def freeze_items(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 15)) == 0:
        return draw(_FREEZE_VALUES)
    item = {"name": "f", "from": "2026-12-20T00:00", "until": "2026-12-21T00:00", "reason": "r"}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(_FREEZE_KEYS))
        if draw(st.booleans()):
            item.pop(key, None)
        else:
            item[key] = draw(_FREEZE_VALUES)
    return item


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(freeze_items())
def test_fast_check_agrees_with_jsonschema_on_freezes(item):
    from dcs_maintenance.schema_check import fast_freeze_check

    assert fast_freeze_check()(item) is loader._validator().is_valid({"schedules": [], "freezes": [item]})


def test_the_schema_enums_match_the_model():
    from dcs_maintenance.model import ALL_ACTIONS, ORDERS

    defs = loader.schema()["$defs"]
    assert tuple(defs["rollout"]["properties"]["order"]["enum"]) == ORDERS
    assert tuple(defs["freeze"]["properties"]["actions"]["items"]["enum"]) == ALL_ACTIONS


def test_the_readme_examples_validate_and_say_what_the_code_does():
    import re
    from pathlib import Path

    from dcs_maintenance.loader import parse_catalog
    from dcs_maintenance.model import Instance
    from dcs_maintenance.rollout import describe_waves, plan_waves

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Rollouts, freezes and maintenance windows", 1)[1].split("\n## ", 1)[0]
    rollout_doc, freeze_doc, window_fragment = re.findall(r"```yaml\n(.*?)```", section, re.S)
    rolling = parse_catalog(rollout_doc, "readme.yaml")
    assert rolling.problems == () and rolling.schedules[0].rollout is not None
    waves = plan_waves(rolling.schedules[0].rollout, [Instance(f"i-{k}", f"web-{k:02d}") for k in range(1, 13)])
    assert describe_waves(waves).startswith("wave 1 of 5: web-01; wave 2 of 5: web-02, web-03, web-04; ")
    assert describe_waves(waves).endswith("wave 5 of 5: web-11, web-12")
    assert "wave 1 of 5: web-01; wave 2 of 5: web-02, web-03, web-04; ...; wave 5 of 5: web-11,\nweb-12" in section
    frozen = parse_catalog(freeze_doc, "readme.yaml")
    assert frozen.problems == () and frozen.freezes[0].name == "year-end"
    windowed = parse_catalog("schedules:\n" + window_fragment, "readme.yaml")
    assert windowed.problems == () and windowed.schedules[0].within_maintenance_window
