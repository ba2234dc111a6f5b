"""Cloud Eye (CES) custom metrics for a TIMER tick: its result counts and its duration, in ONE call.

With `CES_NAMESPACE` set, each tick sends one count per result the summary counts (`success`, `failed`,
`skipped`, `unknown`, `missed`, `frozen`, `halted`: report.RESULTS, so an alarm can watch any of them) and
`tick_duration_ms` under that namespace with one dimension, `function_name`, through the official SDK
(`CesClient.create_metric_data`, `POST /V1.0/{project_id}/metric-data`; Cloud Eye API reference, "Adding
Monitoring Data"). The SDK is imported only here, only when the namespace is set.

Never fails the tick: any error (HTTP, connection, timeout, settings) is logged and returned as
`{"sent": false, "error": ...}` for the summary's `metrics` field; with too little time left in the invocation
the call is skipped with a `reason`. The call is sent once (the SDK's transport retry stays off). Dry-run ticks
send nothing: their counts are what would have happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dcs_maintenance import logs
from dcs_maintenance.report import RESULTS
from dcs_maintenance.settings import Settings, context_value, load_credentials

COUNTS = RESULTS  # every result the summary counts: a new result value is sent without a change here
DURATION = "tick_duration_ms"
METRIC_NAMES = COUNTS + (DURATION,)
DIMENSION = "function_name"
TTL_SECONDS = 604800  # the longest Cloud Eye keeps raw custom data (1..604800 s)
READ_TIMEOUT_CAP = 10.0  # seconds to wait for Cloud Eye's answer, at most


def metric_data(summary: dict[str, Any], duration_ms: float, namespace: str, function_name: str,
                collect_time_ms: int) -> list[dict[str, Any]]:
    """The request body: one item per metric, all with the same dimension and collection time (pure)."""
    counts = summary.get("counts") or {}
    dimensions = [{"name": DIMENSION, "value": function_name[:256]}]
    items = [{"metric": {"namespace": namespace, "metric_name": name, "dimensions": dimensions},
              "ttl": TTL_SECONDS, "collect_time": collect_time_ms, "value": int(counts.get(name, 0) or 0),
              "unit": "count", "type": "int"} for name in COUNTS]
    items.append({"metric": {"namespace": namespace, "metric_name": DURATION, "dimensions": dimensions},
                  "ttl": TTL_SECONDS, "collect_time": collect_time_ms, "value": round(float(duration_ms), 1),
                  "unit": "ms", "type": "float"})
    return items


def function_name(context: Any) -> str:
    return str(context_value(context, "getFunctionName") or "dcs-maintenance")


def create_metric_data(settings: Settings, context: Any, items: list[dict[str, Any]]) -> None:
    """One CreateMetricData call with every item. Raises on any failure."""
    from huaweicloudsdkces.v1.ces_client import CesClient
    from huaweicloudsdkces.v1.model.create_metric_data_request import CreateMetricDataRequest
    from huaweicloudsdkces.v1.model.create_metric_data_request_body import CreateMetricDataRequestBody
    from huaweicloudsdkces.v1.model.metric_info import MetricInfo
    from huaweicloudsdkces.v1.model.metrics_dimension import MetricsDimension
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig

    from dcs_maintenance.gateway import quiet_sdk_logger

    if not settings.project_id:
        raise ValueError("no project id for Cloud Eye: set DCS_PROJECT_ID or RUNTIME_PROJECT_ID")
    credentials = load_credentials(context)
    logs.add_secrets(credentials.secrets())
    creds = BasicCredentials(credentials.ak, credentials.sk, settings.project_id)
    if credentials.token:
        creds = creds.with_security_token(credentials.token)
    config = HttpConfig.get_default_config()
    config.timeout = (settings.connect_timeout, min(settings.read_timeout, READ_TIMEOUT_CAP))
    config.retry_times = 0  # one call per tick, never re-sent
    quiet_sdk_logger(CesClient)
    builder = CesClient.new_builder().with_credentials(creds).with_http_config(config)
    if settings.ces_endpoint:
        builder = builder.with_endpoints([settings.ces_endpoint])
    else:
        from huaweicloudsdkces.v1.region.ces_region import CesRegion

        if not settings.region:
            raise ValueError("no Cloud Eye endpoint: set DCS_REGION or CES_ENDPOINT")
        try:
            builder = builder.with_region(CesRegion.value_of(settings.region))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown Cloud Eye region {settings.region!r}: set CES_ENDPOINT") from exc
    body = [CreateMetricDataRequestBody(
        metric=MetricInfo(namespace=i["metric"]["namespace"], metric_name=i["metric"]["metric_name"],
                          dimensions=[MetricsDimension(name=d["name"], value=d["value"])
                                      for d in i["metric"]["dimensions"]]),
        ttl=i["ttl"], collect_time=i["collect_time"], value=i["value"], unit=i["unit"], type=i["type"])
        for i in items]
    builder.build().create_metric_data(CreateMetricDataRequest(body=body))


def send_tick_metrics(summary: dict[str, Any], duration_ms: float, settings: Settings, context: Any = None,
                      remaining: Callable[[], float] = lambda: float("inf")) -> dict[str, Any]:
    """Send a tick's metrics to Cloud Eye. Never raises; returns the summary's `metrics` field."""
    namespace = settings.ces_namespace
    result: dict[str, Any] = {"sent": False, "namespace": namespace}
    try:
        if not namespace:
            result["reason"] = "CES_NAMESPACE is not set"
            return result
        if summary.get("dry_run") or summary.get("preview"):
            result["reason"] = "dry-run tick: its counts are what would have happened; nothing sent"
            return result
        needed = settings.connect_timeout + min(settings.read_timeout, READ_TIMEOUT_CAP)
        if remaining() < needed:
            result["reason"] = f"not enough time left in the invocation ({remaining():.0f} s < {needed:.0f} s)"
            logs.warning("metrics_skipped", namespace=namespace, reason=result["reason"])
            return result
        # Cloud Eye checks collect_time against its own clock (within 3 days back, 10 minutes ahead): the real
        # time of sending, not the tick time (which `run --at` may put anywhere).
        items = metric_data(summary, duration_ms, namespace, function_name(context), int(time.time() * 1000))
        create_metric_data(settings, context, items)
        result.update(sent=True, metrics=len(items))
        logs.log("metrics_sent", namespace=namespace, metrics=len(items), counts=summary.get("counts"))
    except Exception as exc:  # SDK, HTTP, connection, timeout and settings errors alike: report, never raise
        from dcs_maintenance.notify import describe_error

        result["error"] = logs.redact(describe_error(exc))
        logs.error("metrics_failed", namespace=namespace, error=result["error"])
    return result
