"""After `serverless deploy`: what the FunctionGraph plugin for the Serverless Framework cannot do.

    .venv/bin/python deploy/after_serverless.py --function dcs-maintenance --region cn-north-4 [--dry-run]

Reads the deployed function's user data (the settings serverless.yml gave it) and, through the official
FunctionGraph SDK (huaweicloudsdkfunctiongraph):

1. checks them as the function will (dcs_maintenance.settings): nothing is changed when they are invalid, or
   when LEDGER_URL is a local SQLite file while MAX_INSTANCE_NUM allows several instances;
2. caps the function at MAX_INSTANCE_NUM instances (`PUT .../config-max-instance`; the plugin cannot);
3. turns asynchronous retries off (`PUT .../async-invoke-config`, 0 retries; the plugin has no such setting):
   a failed tick is reported, never replayed;
4. makes the TIMER trigger named `dcs-maintenance-tick` a Cron timer derived from TICK_PERIOD
   (dcs_maintenance.deployment.timer_cron), ACTIVE: kept when it already is, else the stale one is deleted and
   the right one created. Only after 2, so the timer never fires an uncapped function. Other TIMER triggers are
   reported (they would tick too) and left alone.

Idempotent: run it after every `serverless deploy`. Credentials: HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK, else
the plugin's INI file (--credentials, default ~/.fg/credentials: access_key_id, secret_access_key). The
project id: --project-id, else HUAWEICLOUD_SDK_PROJECT_ID, else the SDK asks IAM for the region's project.
Exit status 0 when everything is in place, 1 when something was refused or failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the same rules as the function itself

from dcs_maintenance.deployment import timer_cron, unshared_ledger_problem  # noqa: E402
from dcs_maintenance.settings import SettingsError, load_settings  # noqa: E402

TIMER_NAME = "dcs-maintenance-tick"  # the same name as deploy/terraform's timer
ASYNC_EVENT_AGE_SECONDS = 3600


@dataclass(frozen=True)
class Trigger:
    trigger_id: str
    type_code: str
    status: str
    event_data: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.event_data.get("name") or "")


@dataclass
class Plan:
    """What must change, decided from the function's user data and triggers alone (no I/O)."""

    cap: int = 0
    cron: str = ""
    keep: Optional[Trigger] = None
    delete: list[Trigger] = field(default_factory=list)
    create: bool = False
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def decide(user_data: Mapping[str, str], triggers: Sequence[Trigger]) -> Plan:
    """The cap, the timer and what to do about existing TIMER triggers, or why nothing may change."""
    plan = Plan()
    try:
        settings = load_settings(dict(user_data))
    except SettingsError as exc:
        plan.errors.append(f"the function's user data is refused by the function itself: {exc}")
        return plan
    plan.cap, plan.cron = settings.max_instance_num, timer_cron(settings.tick_period)
    if "LEDGER_URL" in user_data:
        problem = unshared_ledger_problem(user_data["LEDGER_URL"], plan.cap)
        if problem:
            plan.errors.append(f"the function would refuse to act: {problem}")
            return plan
    elif plan.cap > 1:
        plan.warnings.append(f"LEDGER_URL is not in the plain user data (encrypted user data cannot be read here): "
                             f"with MAX_INSTANCE_NUM={plan.cap} it must be a redis:// or rediss:// ledger, or the "
                             "function refuses to act")
    for trigger in triggers:
        if trigger.type_code != "TIMER":
            continue
        if trigger.name != TIMER_NAME:
            plan.warnings.append(f"another TIMER trigger ({trigger.name or trigger.trigger_id}) fires this function "
                                 "too; left alone")
        elif plan.keep is None and _is_wanted(trigger, plan.cron):
            plan.keep = trigger
        else:
            plan.delete.append(trigger)
    plan.create = plan.keep is None
    return plan


def _is_wanted(trigger: Trigger, cron: str) -> bool:
    data = trigger.event_data
    return (trigger.status == "ACTIVE" and data.get("schedule_type") == "Cron" and data.get("schedule") == cron
            and not data.get("user_event"))


# -- the FunctionGraph API -------------------------------------------------------------------------------------
def function_urn(region: str, project_id: str, app: str, name: str, version: str = "") -> str:
    urn = f"urn:fss:{region}:{project_id}:function:{app}:{name}"
    return f"{urn}:{version}" if version else urn


def make_client(region: str, project_id: Optional[str], ak: str, sk: str, endpoint: Optional[str] = None) -> Any:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient
    from huaweicloudsdkfunctiongraph.v2.region.functiongraph_region import FunctionGraphRegion

    config = HttpConfig.get_default_config()
    config.timeout = (10, 60)
    builder = (FunctionGraphClient.new_builder().with_http_config(config)
               .with_credentials(BasicCredentials(ak, sk, project_id)))
    if endpoint:
        return builder.with_endpoints([endpoint]).build()
    return builder.with_region(FunctionGraphRegion.value_of(region)).build()


def read_function(client: Any, urn: str) -> tuple[dict[str, str], str]:
    """The function's user data and its URN as FunctionGraph gives it."""
    from huaweicloudsdkfunctiongraph.v2 import ShowFunctionConfigRequest

    config = client.show_function_config(ShowFunctionConfigRequest(function_urn=urn))
    try:
        user_data = json.loads(config.user_data or "{}")
    except ValueError:
        raise RuntimeError("the function's user data is not a JSON object") from None
    if not isinstance(user_data, dict):
        raise RuntimeError("the function's user data is not a JSON object")
    return {str(k): str(v) for k, v in user_data.items()}, config.func_urn or urn


def read_triggers(client: Any, urn: str) -> list[Trigger]:
    from huaweicloudsdkfunctiongraph.v2 import ListFunctionTriggersRequest

    listed = client.list_function_triggers(ListFunctionTriggersRequest(function_urn=urn)).body or []
    return [Trigger(t.trigger_id, t.trigger_type_code, t.trigger_status,
                    t.event_data.to_dict() if t.event_data is not None else {}) for t in listed]


def apply(client: Any, plan: Plan, urn: str, plain_urn: str) -> list[str]:
    """Carry the plan out in order: cap, retries, then the timer. Returns what was done."""
    from huaweicloudsdkfunctiongraph.v2 import (
        CreateFunctionTriggerRequest,
        CreateFunctionTriggerRequestBody,
        DeleteFunctionTriggerRequest,
        TriggerEventDataRequestBody,
        UpdateFunctionAsyncInvokeConfigRequest,
        UpdateFunctionAsyncInvokeConfigRequestBody,
        UpdateFunctionMaxInstanceConfigRequest,
        UpdateFunctionMaxInstanceConfigRequestBody,
    )

    done = []
    client.update_function_max_instance_config(UpdateFunctionMaxInstanceConfigRequest(
        function_urn=plain_urn, body=UpdateFunctionMaxInstanceConfigRequestBody(max_instance_num=plan.cap)))
    done.append(f"instance cap set to {plan.cap}")
    client.update_function_async_invoke_config(UpdateFunctionAsyncInvokeConfigRequest(
        function_urn=urn, body=UpdateFunctionAsyncInvokeConfigRequestBody(
            max_async_event_age_in_seconds=ASYNC_EVENT_AGE_SECONDS, max_async_retry_attempts=0)))
    done.append("asynchronous retries set to 0")
    for stale in plan.delete:
        client.delete_function_trigger(DeleteFunctionTriggerRequest(
            function_urn=urn, trigger_type_code=stale.type_code, trigger_id=stale.trigger_id))
        done.append(f"deleted TIMER {stale.trigger_id} ({stale.event_data.get('schedule_type')} "
                    f"{stale.event_data.get('schedule')!r}, {stale.status})")
    if plan.create:
        event = TriggerEventDataRequestBody(name=TIMER_NAME, schedule_type="Cron", schedule=plan.cron, user_event="")
        body = CreateFunctionTriggerRequestBody(trigger_type_code="TIMER", trigger_status="ACTIVE",
                                                event_type_code="TIMER", event_data=event)
        client.create_function_trigger(CreateFunctionTriggerRequest(function_urn=urn, body=body))
        done.append(f"created TIMER {TIMER_NAME}: Cron {plan.cron!r}")
    else:
        done.append(f"TIMER {TIMER_NAME} already fires on Cron {plan.cron!r}")
    return done


# -- the command -------------------------------------------------------------------------------------------
def credentials(path: Path) -> tuple[str, str]:
    ak, sk = os.environ.get("HUAWEICLOUD_SDK_AK", "").strip(), os.environ.get("HUAWEICLOUD_SDK_SK", "").strip()
    if ak and sk:
        return ak, sk
    if path.is_file():
        parser = configparser.ConfigParser()
        parser.read_string("[default]\n" + path.read_text())
        ak = parser.get("default", "access_key_id", fallback="").strip()
        sk = parser.get("default", "secret_access_key", fallback="").strip()
        if ak and sk:
            return ak, sk
    raise SystemExit(f"no credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or write access_key_id and "
                     f"secret_access_key to {path}")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="after_serverless.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--function", default="dcs-maintenance", help="the function's name (serverless.yml name)")
    p.add_argument("--app", default="default", help="the function's app (serverless.yml package)")
    p.add_argument("--region", default=os.environ.get("HUAWEICLOUD_SDK_REGION", "cn-north-4"))
    p.add_argument("--project-id", default=os.environ.get("HUAWEICLOUD_SDK_PROJECT_ID") or None)
    p.add_argument("--credentials", type=Path, default=Path("~/.fg/credentials").expanduser())
    p.add_argument("--endpoint", help="FunctionGraph endpoint URL replacing the region's (tests)")
    p.add_argument("--dry-run", action="store_true", help="read and decide; change nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    if args.endpoint and not args.project_id:
        p.error("--endpoint needs --project-id")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from huaweicloudsdkcore.exceptions.exceptions import SdkException

    ak, sk = credentials(args.credentials)
    result: dict[str, Any] = {"function": args.function, "ok": False, "done": [], "warnings": [], "errors": []}
    try:
        client = make_client(args.region, args.project_id, ak, sk, args.endpoint)
        project = args.project_id or client.get_credentials().project_id
        plain = function_urn(args.region, project, args.app, args.function)
        user_data, urn = read_function(client, function_urn(args.region, project, args.app, args.function, "latest"))
        plan = decide(user_data, read_triggers(client, urn))
        result.update(cap=plan.cap, cron=plan.cron, warnings=plan.warnings, errors=plan.errors)
        if not plan.errors:
            if args.dry_run:
                result["done"] = [f"would set the instance cap to {plan.cap} and asynchronous retries to 0"]
                result["done"] += [f"would delete TIMER {t.trigger_id}" for t in plan.delete]
                result["done"] += [f"would create TIMER {TIMER_NAME}: Cron {plan.cron!r}"] if plan.create else []
            else:
                result["done"] = apply(client, plan, urn, plain)
            result["ok"] = True
    except SdkException as exc:  # names the call that failed; the AK/SK never appear in SDK errors
        result["errors"].append(f"FunctionGraph API: {type(exc).__name__}: {exc}")
    except RuntimeError as exc:
        result["errors"].append(str(exc))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for line in result["done"]:
            print(f"ok       {line}")
        for line in result["warnings"]:
            print(f"WARNING  {line}")
        for line in result["errors"]:
            print(f"ERROR    {line}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
