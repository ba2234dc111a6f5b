"""What the deployment must guarantee before the function acts, through the harness (TIMER and APIG events).

- A local SQLite ledger is only safe while FunctionGraph runs one instance at a time (MAX_INSTANCE_NUM=1):
  with a higher cap the function refuses to act (the tick says `ok: false`, the acting routes answer 503),
  before any DCS call; read-only routes still answer.
- A schedule that names another region must name that region's project too: project ids are per region.
- TICK_PERIOD must be a period FunctionGraph's Cron timer can fire evenly; a one-shot schedule whose
  starting_deadline is shorter than the tick period is valid but warned about (validate, GET /schedules).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from conftest import NIGHTLY, PROJECT, ROOT, acted_ids, add_staging_pair, t

from dcs_maintenance import deployment
from dcs_maintenance.loader import load_catalog, parse_document
from dcs_maintenance.schedule_checks import ValidationContext
from dcs_maintenance.settings import SettingsError, load_settings

AT_3_SHANGHAI = t("2026-12-01T19:00:00Z")  # NIGHTLY's 03:00 Asia/Shanghai


def body(response: dict) -> dict:
    return json.loads(response["body"])


def dcs_requests(emu) -> list[dict]:
    return [r for r in emu.requests if r["path"].startswith("/v2/")]


# -- 1. a local SQLite ledger with more than one instance -----------------------------------------------------
FIX = "use a redis:// ledger or set MAX_INSTANCE_NUM=1"


def test_a_tick_on_sqlite_with_four_instances_allowed_refuses_before_any_dcs_call(emulator, write_schedules, tick,
                                                                                   monkeypatch):
    add_staging_pair(emulator)
    write_schedules(NIGHTLY)
    monkeypatch.setenv("MAX_INSTANCE_NUM", "4")
    summary = tick(AT_3_SHANGHAI)
    assert summary["ok"] is False
    [error] = summary["errors"]
    assert "LEDGER_URL is a local SQLite file but MAX_INSTANCE_NUM=4 allows 4 concurrent instances" in error
    assert FIX in error
    assert dcs_requests(emulator) == [] and acted_ids(emulator) == []


def test_the_same_tick_acts_with_one_instance_or_a_redis_ledger(emulator, write_schedules, tick, monkeypatch):
    add_staging_pair(emulator)
    write_schedules(NIGHTLY)
    monkeypatch.setenv("MAX_INSTANCE_NUM", "1")
    summary = tick(AT_3_SHANGHAI)
    assert summary["ok"] is True and sorted(acted_ids(emulator, "restart")) == ["i-stg-1", "i-stg-2"]


def test_max_instance_num_defaults_to_one_and_is_checked():
    assert load_settings({}).max_instance_num == 1
    assert load_settings({"MAX_INSTANCE_NUM": "1000"}).max_instance_num == 1000
    for bad, why in (("0", "outside 1..1000"), ("1001", "outside 1..1000"), ("-1", "outside 1..1000"),
                     ("four", "not a whole number")):
        with pytest.raises(SettingsError, match=f"MAX_INSTANCE_NUM.*{why}"):
            load_settings({"MAX_INSTANCE_NUM": bad})


@pytest.mark.parametrize(("url", "cap", "refused"), [
    ("sqlite:////tmp/x.sqlite3", 1, False),
    ("sqlite:////tmp/x.sqlite3", 2, True),
    ("sqlite:///:memory:", 2, True),
    ("SQLITE:////tmp/x.sqlite3", 3, True),
    ("redis://10.0.0.5:6379/0", 400, False),
    ("rediss://:pw@10.0.0.5:6379/0", 1000, False),
])
def test_the_ledger_guard_as_a_table(url, cap, refused):
    problem = deployment.unshared_ledger_problem(url, cap)
    assert (problem is not None) is refused
    if refused:
        assert f"MAX_INSTANCE_NUM={cap} allows {cap} concurrent instances" in problem and FIX in problem
        assert "pw" not in problem


@pytest.fixture
def many_instances(monkeypatch, function_env):
    monkeypatch.setenv("MAX_INSTANCE_NUM", "4")


def test_acting_routes_answer_503_naming_the_fix(emulator, write_schedules, http, many_instances):
    add_staging_pair(emulator)
    write_schedules(NIGHTLY)
    run = http("POST", "/schedules/nightly/run", {})
    status = http("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart"})
    dry = http("POST", "/schedules/nightly/run", {"dry_run": True})
    for response in (run, status, dry):
        assert response["statusCode"] == 503, response
        assert body(response)["error_code"] == "DCSM.5032"
        assert "MAX_INSTANCE_NUM=4 allows 4 concurrent instances" in body(response)["error_msg"]
        assert FIX in body(response)["error_msg"]
    assert dcs_requests(emulator) == []


def test_read_only_routes_still_answer(emulator, write_schedules, http, many_instances):
    add_staging_pair(emulator)
    write_schedules(NIGHTLY)
    assert http("GET", "/health")["statusCode"] == 200
    listed = http("GET", "/schedules")
    assert listed["statusCode"] == 200 and body(listed)["schedules"][0]["name"] == "nightly"
    assert http("POST", "/schedules/validate", NIGHTLY)["statusCode"] == 200
    plan = http("GET", "/plan", query={"at": "2026-12-01T19:00:00Z"})
    assert plan["statusCode"] == 200
    assert acted_ids(emulator) == []


# -- 2. a region without its project --------------------------------------------------------------------------
OTHER_REGION = """
schedules:
  - name: nightly
    action: restart
    cron: "0 3 * * *"
    timezone: Asia/Shanghai
    region: eu-west-0
    instances: {tags: {env: staging}}
"""


def test_a_schedule_in_another_region_without_its_project_is_invalid_and_acts_nowhere(emulator, write_schedules,
                                                                                       tick):
    add_staging_pair(emulator)  # in the function's own project: the one the old code used for eu-west-0
    write_schedules(OTHER_REGION, "regions.yaml")
    summary = tick(AT_3_SHANGHAI)
    assert summary["ok"] is False
    [problem] = summary["problems"]
    assert problem["file"].endswith("regions.yaml") and problem["path"] == "$.schedules[0].project_id"
    assert "eu-west-0" in problem["message"] and "cn-north-4" in problem["message"]
    assert dcs_requests(emulator) == []


def test_the_function_region_or_an_explicit_project_is_fine(emulator, write_schedules, tick):
    add_staging_pair(emulator)
    own = OTHER_REGION.replace("eu-west-0", "cn-north-4")
    explicit = OTHER_REGION.replace("region: eu-west-0", f"region: eu-west-0\n    project_id: {PROJECT}")
    for text in (own, explicit):
        write_schedules(text, "regions.yaml")
        settings = load_settings()
        assert load_catalog(settings.schedules_dir, settings.validation_context()).problems == ()
    write_schedules(own, "regions.yaml")
    assert tick(AT_3_SHANGHAI)["ok"] is True


@pytest.mark.parametrize(("doc", "own_region", "problem_path"), [
    ({"schedules": [{"region": "eu-west-0"}]}, "cn-north-4", "$.schedules[0].project_id"),
    ({"schedules": [{"region": "eu-west-0"}]}, None, "$.schedules[0].project_id"),
    ({"schedules": [{"region": "cn-north-4"}]}, "cn-north-4", None),
    ({"schedules": [{"region": "eu-west-0", "project_id": "0123456789abcdef0123456789abcdef"}]}, "cn-north-4", None),
    ({"defaults": {"region": "eu-west-0"}, "schedules": [{}]}, "cn-north-4", "$.schedules[0].project_id"),
    ({"defaults": {"region": "eu-west-0", "project_id": "p1"}, "schedules": [{}]}, "cn-north-4", None),
    ({"defaults": {"project_id": "p1"}, "schedules": [{"region": "eu-west-0"}]}, "cn-north-4", None),
    ({"schedules": [{"project_id": "p1"}]}, "cn-north-4", None),
])
def test_region_and_project_as_a_table(doc, own_region, problem_path):
    base = {"name": "s", "action": "restart", "cron": "0 3 * * *", "instances": {"names": ["a"]}}
    doc = {**doc, "schedules": [{**base, **item} for item in doc["schedules"]]}
    schedules, problems = parse_document(json.dumps(doc), "regions.json",
                                         context=ValidationContext(region=own_region))
    paths = [p.path for p in problems]
    if problem_path is None:
        assert paths == [] and len(schedules) == 1
    else:
        assert paths == [problem_path] and schedules == []
        assert problems[0].file == "regions.json" and "project ids differ per region" in problems[0].message
        if own_region is None:
            assert "DCS_REGION" in problems[0].message


def test_the_validate_cli_passes_the_function_region(tmp_path):
    (tmp_path / "regions.yaml").write_text(OTHER_REGION)
    cli = [sys.executable, "-m", "dcs_maintenance", "validate", "--json", "--schedules", str(tmp_path)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DCS_REGION": "cn-north-4"}
    result = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1, result.stderr
    [problem] = json.loads(result.stdout)["problems"]
    assert problem["path"] == "$.schedules[0].project_id" and "cn-north-4" in problem["message"]
    own = OTHER_REGION.replace("eu-west-0", "cn-north-4")
    (tmp_path / "regions.yaml").write_text(own)
    result = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout


def test_the_validate_route_passes_the_function_region(http, function_env):
    response = http("POST", "/schedules/validate", OTHER_REGION, query={"file": "regions.yaml"})
    result = body(response)
    assert response["statusCode"] == 200 and result["valid"] is False
    [problem] = result["problems"]
    assert problem["file"] == "regions.yaml" and problem["path"] == "$.schedules[0].project_id"


# -- 4. TICK_PERIOD and the starting deadline ------------------------------------------------------------------
@pytest.mark.parametrize(("text", "cron"), [
    ("1m", "0 * * * * ?"), ("2m", "0 0/2 * * * ?"), ("5m", "0 0/5 * * * ?"), ("300s", "0 0/5 * * * ?"),
    ("15m", "0 0/15 * * * ?"), ("30m", "0 0/30 * * * ?"), ("60m", "0 0 * * * ?"), ("1h", "0 0 * * * ?"),
    ("2h", "0 0 0/2 * * ?"), ("12h", "0 0 0/12 * * ?"), ("24h", "0 0 0 * * ?"),
])
def test_tick_periods_a_cron_can_fire_evenly(text, cron):
    settings = load_settings({"TICK_PERIOD": text})
    assert deployment.timer_cron(settings.tick_period) == cron


@pytest.mark.parametrize("text", ["30s", "90s", "7m", "45m", "90m", "5h", "25h", "48h", "1m30s"])
def test_tick_periods_a_cron_cannot_fire_evenly_are_settings_errors(text):
    with pytest.raises(SettingsError, match="TICK_PERIOD"):
        load_settings({"TICK_PERIOD": text})


def test_every_accepted_tick_period_has_its_cron():
    assert deployment.TICK_PERIODS[0] == "1m" and deployment.TICK_PERIODS[-1] == "24h"
    for text in deployment.TICK_PERIODS:
        assert deployment.tick_period_problem(load_settings({"TICK_PERIOD": text}).tick_period) is None
    assert len({deployment.timer_cron(load_settings({"TICK_PERIOD": p}).tick_period)
                for p in deployment.TICK_PERIODS}) == len(deployment.TICK_PERIODS)


SHORT_DEADLINE = """
schedules:
  - name: quick
    action: restart
    cron: "7 3 * * *"
    starting_deadline: 2m
    instances: {tags: {env: staging}}
  - name: fine
    action: restart
    cron: "7 3 * * *"
    instances: {tags: {env: staging}}
"""


def test_a_deadline_shorter_than_the_tick_period_is_a_warning_not_an_error():
    context = ValidationContext(region="cn-north-4", tick_period=timedelta(minutes=5))
    schedules, problems, warnings = deployment_check(SHORT_DEADLINE, context)
    assert problems == [] and [s.name for s in schedules] == ["quick", "fine"]
    [warning] = warnings
    assert (warning.schedule, warning.path) == ("quick", "$.schedules[0].starting_deadline")
    assert "2m" in warning.message and "TICK_PERIOD=5m" in warning.message
    # the default deadline (10m) is short for a 15-minute tick too
    _, _, warnings = deployment_check(SHORT_DEADLINE, ValidationContext("cn-north-4", timedelta(minutes=15)))
    assert [(w.schedule, w.path) for w in warnings] == [("quick", "$.schedules[0].starting_deadline"),
                                                        ("fine", "$.schedules[1].starting_deadline")]
    assert "default" in warnings[1].message


def deployment_check(text, context):
    from dcs_maintenance.loader import check_document

    return check_document(text, "deadlines.yaml", "yaml", context)


def test_deadline_warnings_show_in_validate_and_get_schedules(emulator, write_schedules, http, function_env,
                                                              tmp_path):
    write_schedules(SHORT_DEADLINE)
    listed = body(http("GET", "/schedules"))
    quick = next(s for s in listed["schedules"] if s["name"] == "quick")
    assert quick["valid"] is True and listed["valid"] is True
    assert [w["path"] for w in quick["warnings"]] == ["$.schedules[0].starting_deadline"]
    assert [w["schedule"] for w in listed["warnings"]] == ["quick"]
    validated = body(http("POST", "/schedules/validate", SHORT_DEADLINE))
    assert validated["valid"] is True and [w["schedule"] for w in validated["warnings"]] == ["quick"]

    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "deadlines.yaml").write_text(SHORT_DEADLINE)
    cli = [sys.executable, "-m", "dcs_maintenance", "validate", "--schedules", str(tmp_path / "cli")]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TICK_PERIOD": "5m", "DCS_REGION": "cn-north-4"}
    text = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert text.returncode == 0 and "WARNING" in text.stdout and "quick" in text.stdout, text.stdout
    as_json = subprocess.run([*cli, "--json"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert [w["schedule"] for w in json.loads(as_json.stdout)["warnings"]] == ["quick"]
