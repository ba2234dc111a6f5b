"""Instance type facts: cache mode and spec code kept consistent, persistence, maintenance windows, parameters.

Why these matter to the function: a single-node instance, or one with AOF off (``appendonly no``), loses its data on
restart (user guide, "Restarting a DCS Instance"); the list entry's ``spec_code`` and ShowInstance's ``cache_mode``
are how a caller can tell. Sources are in README.md ("Behaviours and their documents").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

# ShowInstanceResponse.cache_mode values (SDK docstring; Terraform's dcs_flavors data source lists the same five).
CACHE_MODES = ("single", "ha", "cluster", "proxy", "ha_rw_split")
# One spec code per cache mode, in the product specification tables' style (spec_code column of "Redis 4.0/5.0/6.0/7.0
# Instance Specifications"); proxy and read/write splitting codes are unverified guesses of that style.
DEFAULT_SPEC = {
    "single": "redis.single.xu1.large.2",
    "ha": "redis.ha.xu1.large.r2.2",
    "cluster": "redis.cluster.xu1.large.r2.4",
    "proxy": "redis.proxy.xu1.large.4",
    "ha_rw_split": "redis.ha.xu1.large.p2.2",
}
DEFAULT_CACHE_MODE = "ha"

TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d):([0-5]\d)$")
FOUR_HOUR_BEGINS = ("22:00:00", "02:00:00", "06:00:00", "10:00:00", "14:00:00", "18:00:00")
DEFAULT_WINDOW = {"any": ("18:00:00", "19:00:00"), "one_hour": ("18:00:00", "19:00:00"),
                  "four_hour": ("02:00:00", "06:00:00")}  # fmt: skip


def cache_mode_of(spec_code: str) -> str | None:
    """The cache mode a spec code names, or None when it follows no documented pattern.

    ``redis.single.*``/``dcs.single_node``: single; ``redis.ha.*.p<N>.*``: read/write splitting (unverified);
    ``redis.ha.*``/``dcs.master_standby``: ha; ``redis.cluster.*``: Redis Cluster; ``redis.proxy.*`` and Redis 3.0's
    ``dcs.cluster`` (3.0 had Proxy Cluster only): proxy.
    """
    code = spec_code.lower()
    if "single" in code:
        return "single"
    if code.startswith("dcs.cluster") or ".proxy." in code or code.startswith("redis.proxy"):
        return "proxy"
    if ".cluster." in code or code.startswith("redis.cluster"):
        return "cluster"
    if re.search(r"\.ha\..*\.p\d+\.", code):
        return "ha_rw_split"
    if ".ha." in code or "master_standby" in code:
        return "ha"
    return None


def settle_type(fields: MutableMapping[str, Any], persistence: str) -> None:
    """Fill ``cache_mode`` and ``spec_code`` from each other; refuse contradictions, and AOF on a single node."""
    spec = fields.get("spec_code")
    mode = fields.get("cache_mode")
    if mode is not None and mode not in CACHE_MODES:
        raise ValueError(f"cache_mode must be one of {', '.join(CACHE_MODES)}, not {mode!r}")
    derived = cache_mode_of(str(spec)) if spec else None
    if mode and derived and mode != derived:
        raise ValueError(f"spec_code {spec!r} is a {derived} spec, but cache_mode is {mode!r}")
    mode = mode or derived or DEFAULT_CACHE_MODE
    fields["cache_mode"] = mode
    fields["spec_code"] = spec or DEFAULT_SPEC[mode]
    if mode == "single" and persistence == "aof":
        raise ValueError("a single-node instance has no persistence (user guide FAQ): persistence must be 'none'")


def check_window(fields: MutableMapping[str, Any], rule: str) -> None:
    """Fill a missing maintenance window with the rule's default; refuse a window the rule does not allow."""
    begin, end = fields.get("maintain_begin"), fields.get("maintain_end")
    if begin is None and end is None:
        fields["maintain_begin"], fields["maintain_end"] = DEFAULT_WINDOW[rule]
        return
    if begin is None or end is None:
        raise ValueError("maintain_begin and maintain_end are set in pairs (API reference, CreateInstance)")
    for name, value in (("maintain_begin", begin), ("maintain_end", end)):
        if not isinstance(value, str) or not TIME_OF_DAY.match(value):
            raise ValueError(f"{name} must be a UTC time of day HH:mm:ss, not {value!r}")
    if rule == "four_hour" and (
        begin not in FOUR_HOUR_BEGINS or seconds_of(end) != (seconds_of(begin) + 4 * 3600) % 86400
    ):
        raise ValueError(
            f"maintenance window {begin}-{end}: with maintain_window_rule four_hour the begin is one of "
            f"{', '.join(FOUR_HOUR_BEGINS)} and the end 4 hours later (SDK CreateInstanceBody)"
        )
    if rule == "one_hour" and (not begin.endswith(":00:00") or seconds_of(end) != (seconds_of(begin) + 3600) % 86400):
        raise ValueError(
            f"maintenance window {begin}-{end}: with maintain_window_rule one_hour the begin is on the hour and "
            "the end 1 hour later (Terraform huaweicloud_dcs_instance docs)"
        )


def seconds_of(time_of_day: str) -> int:
    hours, minutes, seconds = (int(part) for part in time_of_day.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def redis_config(info: Mapping[str, Any], persistence: str) -> list[dict[str, str]]:
    """ListConfigurations' ``redis_config``: the persistence parameters, consistent with ``persistence``.

    Parameter ids, descriptions and ranges follow the v1 parameter table (appendonly id 17, appendfsync id 16) and
    the v2 example (timeout id 1). ``appendonly`` is "Not available for single-node instances" (FAQ "Do DCS Redis
    Instances Support Data Persistence?"), so it is left out for them.
    """
    params = [
        {"param_id": "1", "param_name": "timeout", "param_value": "0", "value_type": "Interger",
         "value_range": "0-7200", "default_value": "0",
         "description": "Close the connection after a client is idle for N seconds (0 to disable)"},
    ]  # fmt: skip
    if info.get("cache_mode") != "single" and str(info.get("engine", "")).lower() == "redis":
        params += [
            {"param_id": "16", "param_name": "appendfsync", "param_value": "everysec", "value_type": "Enum",
             "value_range": "no,always,everysec", "default_value": "everysec",
             "description": "How often fsync() writes the append-only file to disk."},
            {"param_id": "17", "param_name": "appendonly", "param_value": "yes" if persistence == "aof" else "no",
             "value_type": "Enum", "value_range": "yes,no", "default_value": "yes",
             "description": "Whether each modification is logged (AOF persistence). With no, recent data can be "
                            "lost on a power failure, and all data on a restart."},
        ]  # fmt: skip
    return params
