"""DCS instance status values, as documented, and how the status-statistics API counts them.

Sources (see README.md, "Behaviours and their documents"):
- the API reference's status table, "DCS Instance Statuses" (dcs-api-0312047): the Chinese page lists 16 values
  (the English page only the first 9);
- the SDK's ``StatusStatistic`` (huaweicloudsdkdcs 3.1.219) and ``ListNumberOfInstancesInDifferentStatus``: 13 counts,
  three of which (paying, freezing, migrating) name states the status table does not list.
"""

from __future__ import annotations

# The status table of the API reference (https://support.huaweicloud.com/api-dcs/dcs-api-0312047.html).
DOCUMENTED = (
    "CREATING",
    "CREATEFAILED",
    "RUNNING",
    "ERROR",
    "RESTARTING",
    "FROZEN",
    "EXTENDING",
    "RESTORING",
    "FLUSHING",
    "CLOSING",
    "STARTING",
    "CLOSED",
    "DELETED",
    "UPGRADING",
    "ROLLBACKING",
    "IPEXCHANGING",
)
# Counted by StatusStatistic (paying_count, freezing_count, migrating_count) but absent from the status table:
# whether an instance's ``status`` field ever carries them is unverified. Accepted by set_status without opt-in.
COUNTED_ONLY = ("PAYING", "FREEZING", "MIGRATING")
KNOWN = DOCUMENTED + COUNTED_ONLY

# StatusStatistic's fields, in the SDK's order, and the status each counts.
STATISTIC_FIELDS = {
    "paying_count": "PAYING",
    "freezing_count": "FREEZING",
    "migrating_count": "MIGRATING",
    "flushing_count": "FLUSHING",
    "upgrading_count": "UPGRADING",
    "restoring_count": "RESTORING",
    "extending_count": "EXTENDING",
    "creating_count": "CREATING",
    "running_count": "RUNNING",
    "error_count": "ERROR",
    "frozen_count": "FROZEN",
    "createfailed_count": "CREATEFAILED",
    "restarting_count": "RESTARTING",
}


def check_status(status: object, allow_unknown: bool = False) -> str:
    """``status`` if DCS documents it (or counts it); otherwise a ValueError naming the known values."""
    if not isinstance(status, str) or not status:
        raise ValueError(f"status must be a non-empty string, not {status!r}")
    if status not in KNOWN and not allow_unknown:
        raise ValueError(
            f"status {status!r} is not a documented DCS instance status ({', '.join(KNOWN)}); "
            "pass allow_unknown=True to test how a caller handles an unknown one"
        )
    return status


def statistics(instances: list[dict], include_failure: bool) -> dict[str, object]:
    """The body of ``GET /v2/{project_id}/instances/status``: counts per engine plus the totals at top level.

    DELETED and the states StatusStatistic has no field for (CLOSED, CLOSING, STARTING, ROLLBACKING, IPEXCHANGING,
    unknown ones) are not counted; CREATEFAILED only with ``include_failure=true``.
    """
    per_engine = {"redis": dict.fromkeys(STATISTIC_FIELDS, 0), "memcached": dict.fromkeys(STATISTIC_FIELDS, 0)}
    by_status = {status: field for field, status in STATISTIC_FIELDS.items()}
    for info in instances:
        status = info.get("status")
        if status == "CREATEFAILED" and not include_failure:
            continue
        field = by_status.get(str(status))
        engine = "memcached" if str(info.get("engine", "")).lower() == "memcached" else "redis"
        if field is not None:
            per_engine[engine][field] += 1
    totals = {field: per_engine["redis"][field] + per_engine["memcached"][field] for field in STATISTIC_FIELDS}
    return {**per_engine, **totals}
