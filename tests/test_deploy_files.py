"""serverless.yml and deploy/terraform/ agree with each other and with the code they deploy."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from dcs_maintenance.durations import parse_duration
from dcs_maintenance.tools import package

ROOT = Path(__file__).resolve().parent.parent
TF = ROOT / "deploy" / "terraform"
# The DCS API calls the gateway makes, and the IAM action each needs (DCS API reference, "Permissions Policies
# and Supported Actions"). A new call in gateway.py fails this test until its action is granted below.
SDK_CALL_ACTIONS = {
    "list_instances": "dcs:instance:list",
    "show_instance": "dcs:instance:get",
    "restart_or_flush_instances": "dcs:instance:modifyStatus",
}
SMN_PUBLISH = "smn:topic:publish"
PLATFORM_SET = {"RUNTIME_PROJECT_ID", "RUNTIME_CODE_ROOT"}  # FunctionGraph sets these itself
NEVER_DEPLOYED = {"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "DCS_ENDPOINT",
                  "SMN_ENDPOINT"}  # the agency gives keys; endpoints are for the local emulator


def settings_env_names() -> set[str]:
    """Every environment variable name the function reads: string constants passed to calls in settings.py and
    app.py (env.get("X"), _int(env, "X", ...), os.environ.get("X"), ...)."""
    names: set[str] = set()
    for path in (ROOT / "dcs_maintenance" / "settings.py", ROOT / "dcs_maintenance" / "app.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and re.fullmatch(
                            r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", arg.value):
                        names.add(arg.value)
    return names


@pytest.fixture(scope="module")
def sls() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "serverless.yml").read_text())


@pytest.fixture(scope="module")
def tf() -> dict[str, Any]:
    """All deploy/terraform/*.tf merged: {"resource": {type: {name: body}}, "variable": {...}, "locals": {...}}."""
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    merged: dict[str, Any] = {"resource": {}, "variable": {}, "locals": {}, "output": {}, "terraform": [],
                              "provider": []}
    for path in sorted(TF.glob("*.tf")):
        with path.open() as fh:
            doc = hcl2.load(fh, serialization_options=options)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    assert name not in merged["resource"].setdefault(rtype, {}), f"duplicate {rtype}.{name}"
                    merged["resource"][rtype][name] = body
        for key in ("variable", "output"):
            for block in doc.get(key, []):
                merged[key].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        merged["terraform"] += doc.get("terraform", [])
        merged["provider"] += doc.get("provider", [])
    return merged


def default(tf: dict[str, Any], name: str) -> Any:
    return tf["variable"][name].get("default")


def resolve(tf: dict[str, Any], value: Any) -> Any:
    """A plain "${var.x}" / "${local.x}" reference replaced by the variable's default / the local's value."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{(var|local)\.(\w+)\}", value)
        if m:
            return resolve(tf, default(tf, m[2]) if m[1] == "var" else tf["locals"][m[2]])
    return value


def sls_function(sls: dict[str, Any]) -> dict[str, Any]:
    [(name, fn)] = sls["functions"].items()
    return fn


def sls_event(sls: dict[str, Any], kind: str) -> dict[str, Any]:
    [event] = [e[kind] for e in sls_function(sls)["events"] if kind in e]
    return event


# -- the code the files point at -------------------------------------------------------------------------------
def test_handler_path_exists_and_is_callable(sls, tf):
    import handler

    fn = tf["resource"]["huaweicloud_fgs_function"]["dcs_maintenance"]
    for configured in (sls_function(sls)["handler"], fn["handler"]):
        module, _, attr = configured.partition(".")
        assert (ROOT / f"{module}.py").is_file(), configured
        assert module == "handler" and callable(getattr(handler, attr))


def test_environment_names_are_settings_the_function_reads(sls, tf):
    known = settings_env_names()
    assert {"TICK_PERIOD", "LEDGER_URL", "DCS_REGION", "API_TOKEN", "NOTIFY_SMN_TOPIC_URN", "SMN_ENDPOINT",
            "HUAWEICLOUD_SDK_AK", "RUNTIME_PROJECT_ID"} <= known  # the scan itself works
    sls_names = set(sls["provider"]["environment"]["variables"]) | set(sls["provider"]["encryptedUserData"])
    tf_names = set(tf["locals"]["environment"]) | set(tf["locals"]["secret_environment"])
    for names in (sls_names, tf_names):
        assert names <= known, names - known
        assert not names & (PLATFORM_SET | NEVER_DEPLOYED), names & (PLATFORM_SET | NEVER_DEPLOYED)
        assert {"TICK_PERIOD", "DCS_REGION", "LEDGER_URL", "API_TOKEN", "NOTIFY_SMN_TOPIC_URN"} <= names
    assert sls_names == tf_names
    assert set(sls["provider"]["encryptedUserData"]) == set(tf["locals"]["secret_environment"]) == {"API_TOKEN"}
    fn = tf["resource"]["huaweicloud_fgs_function"]["dcs_maintenance"]
    assert fn["user_data"] == "${jsonencode(local.environment)}"
    assert fn["encrypted_user_data"] == "${jsonencode(local.secret_environment)}"


def test_the_iam_policy_grants_exactly_the_actions_the_code_needs(tf):
    gateway = (ROOT / "dcs_maintenance" / "gateway.py").read_text()
    calls = set(re.findall(r"client\.(\w+)\(", gateway)) | set(re.findall(r"_sdk\(\)\.(\w+)\(", gateway))
    assert calls, "no SDK calls found in gateway.py"
    assert calls <= set(SDK_CALL_ACTIONS), f"grant an IAM action for {calls - set(SDK_CALL_ACTIONS)}"
    assert set(tf["locals"]["dcs_actions"]) == {SDK_CALL_ACTIONS[c] for c in calls} == set(SDK_CALL_ACTIONS.values())
    assert tf["locals"]["smn_actions"] == [SMN_PUBLISH]
    assert "var.notify_topic_urn" in tf["locals"]["policy_statements"]  # SMN only when a topic is configured
    role = tf["resource"]["huaweicloud_identity_role"]["dcs_maintenance"]
    assert role["type"] == "XA" and "local.policy_statements" in role["policy"]
    agency = tf["resource"]["huaweicloud_identity_agency"]["dcs_maintenance"]
    assert agency["delegated_service_name"] == "op_svc_cff"  # FunctionGraph
    assert agency["project_role"][0]["roles"] == ["${huaweicloud_identity_role.dcs_maintenance.name}"]
    fn = tf["resource"]["huaweicloud_fgs_function"]["dcs_maintenance"]
    assert fn["agency"] == "${huaweicloud_identity_agency.dcs_maintenance.name}"


# -- the two deployments agree ---------------------------------------------------------------------------------
def test_timer_period_equals_tick_period_in_both(sls, tf):
    env = sls["provider"]["environment"]["variables"]
    timer = sls_event(sls, "timer")
    assert timer["schedule_type"] == "Rate"
    assert parse_duration(str(timer["schedule"])) == parse_duration(env["TICK_PERIOD"])
    trigger = tf["resource"]["huaweicloud_fgs_function_trigger"]["timer"]
    assert trigger["type"] == "TIMER" and trigger["event_data"] == "${jsonencode(local.timer_event)}"
    event = tf["locals"]["timer_event"]
    assert event["schedule_type"] == "Rate"
    assert event["schedule"] == tf["locals"]["environment"]["TICK_PERIOD"] == "${var.tick_period}"  # one value
    assert parse_duration(resolve(tf, event["schedule"])) == parse_duration(env["TICK_PERIOD"])


def test_no_retries_and_a_real_timeout_in_both(sls, tf):
    fn = sls_function(sls)
    assert fn["asyncInvokeConfig"]["maxAsyncRetryAttempts"] == 0
    [(name, config)] = tf["resource"]["huaweicloud_fgs_async_invoke_configuration"].items()
    assert config["max_async_retry_attempts"] == 0
    assert config["function_urn"] == "${huaweicloud_fgs_function.dcs_maintenance.urn}"
    tf_fn = tf["resource"]["huaweicloud_fgs_function"]["dcs_maintenance"]
    timeout = resolve(tf, tf_fn["timeout"])
    assert timeout >= 60 and sls["provider"]["timeout"] >= 60 and timeout == sls["provider"]["timeout"]
    assert "var.timeout >= 60" in tf["variable"]["timeout"]["validation"][0]["condition"]
    assert resolve(tf, tf_fn["memory_size"]) == sls["provider"]["memorySize"] >= 128


def test_runtime_matches_the_package_default(sls, tf):
    runtime = f"Python{package.DEFAULT_PYTHON}"
    assert sls["provider"]["runtime"] == runtime
    assert default(tf, "runtime") == runtime and package.DEFAULT_PYTHON in package.FUNCTIONGRAPH_PYTHONS
    assert tf["resource"]["huaweicloud_fgs_function"]["dcs_maintenance"]["runtime"] == "${var.runtime}"
    assert sls["package"]["artifact"] == str(package.DEFAULT_OUTPUT)
    assert default(tf, "package_path") == "../../" + str(package.DEFAULT_OUTPUT)


def test_the_apig_trigger_reaches_every_route_in_both(sls, tf):
    api = sls_event(sls, "apigw")
    event = tf["locals"]["apig_event"]
    trigger = tf["resource"]["huaweicloud_fgs_function_trigger"]["apig"]
    assert "APIG" in trigger["type"] and "DEDICATEDGATEWAY" in trigger["type"]
    assert "local.apig_event" in trigger["event_data"]
    for key in ("req_method", "match_mode", "auth", "protocol", "env_name"):
        assert api[key] == event[key], key
    assert api["req_method"] == "ANY" and api["match_mode"] == "SWA"  # one API, every route below the path
    assert api["path"] == resolve(tf, event["path"])
    assert api["auth"] == "NONE"  # the function checks the bearer token; /health needs none


def test_settings_defaults_agree(sls, tf):
    env = sls["provider"]["environment"]["variables"]
    for name, var in (("LEDGER_URL", "ledger_url"), ("PROTECT_TAG", "protect_tag"), ("LOG_LEVEL", "log_level")):
        assert env[name] == default(tf, var), name
    assert int(env["BATCH_SIZE"]) == default(tf, "batch_size")
    assert env["DRY_RUN"] == str(default(tf, "dry_run")).lower()
    from dcs_maintenance.settings import load_settings

    load_settings({k: v for k, v in env.items() if "${" not in str(v)})  # the literal values are valid settings


def test_terraform_references_are_declared(tf):
    text = "\n".join(p.read_text() for p in TF.glob("*.tf"))
    used_vars = set(re.findall(r"\bvar\.(\w+)", text))
    used_locals = set(re.findall(r"\blocal\.(\w+)", text))
    assert used_vars <= set(tf["variable"]), used_vars - set(tf["variable"])
    assert used_locals <= set(tf["locals"]), used_locals - set(tf["locals"])
    assert {"function_urn", "agency_name"} <= set(tf["output"])
    [required] = tf["terraform"][0]["required_providers"]
    assert required["huaweicloud"]["source"] == "huaweicloud/huaweicloud"
    example = (TF / "terraform.tfvars.example").read_text()
    assert set(re.findall(r"^#?\s*(\w+)\s*=", example, re.M)) <= set(tf["variable"])


def test_the_code_is_the_package_zip(tf):
    fn = tf["resource"]["huaweicloud_fgs_function"]["dcs_maintenance"]
    obj = tf["resource"]["huaweicloud_obs_bucket_object"]["code"]
    assert fn["code_type"] == "obs" and "huaweicloud_obs_bucket_object.code.key" in fn["code_url"]
    assert obj["source"] == "${var.package_path}" and "filemd5(var.package_path)" in obj["etag"]
