"""SMN notification for a TIMER tick that needs attention (summary `ok` is false).

One message per tick to `NOTIFY_SMN_TOPIC_URN`, through the official SMN SDK, with the invocation's
credentials (the agency's temporary keys, else HUAWEICLOUD_SDK_AK/SK) as for DCS. The endpoint is
`SMN_ENDPOINT`, else `DCS_ENDPOINT` (the local emulator answers both), else the topic region's.

The message is plain text for e-mail, SMS and HTTP subscribers alike: counts, the failed and unknown
instances with their reasons, schedules in error, invalid schedule files, tick errors. It is bounded
(lines per section, characters per line and in all) and every secret bound for the invocation is
masked. The same set of problems is not sent again within REPEAT_AFTER of tick time (an invalid file
would otherwise page someone every 5 minutes): that is reported as `suppressed`.

`notify_tick` never raises: a failed publish (SDK error, HTTP error, connection error, read timeout,
which the SDK lets escape as requests' ReadTimeout) is logged and returned as
`{"sent": false, "error": ...}` for the summary's `notification` field. The publish is sent once:
the SDK's transport retry stays off, so a slow answer cannot turn into two messages.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Optional

from dcs_maintenance import logs
from dcs_maintenance.settings import Settings, context_value, load_credentials

MAX_SUBJECT = 200  # characters; SMN allows 512 bytes, mail clients show far fewer
MAX_MESSAGE = 8000  # characters in all; far under SMN's limit, readable in an e-mail
MAX_LINE = 300
MAX_ENTRIES = 20  # per section; the rest are counted
READ_TIMEOUT_CAP = 10.0  # seconds to wait for SMN's answer, at most
REPEAT_AFTER = timedelta(hours=24)
META_KEY = "notify:last"
URN = re.compile(r"urn:smn:(?P<region>[a-z0-9-]+):(?P<project>[A-Za-z0-9_-]+):(?P<name>[A-Za-z0-9_-]+)")
BAD = ("failed", "unknown", "halted")  # halted: instances a rollout did not reach after its error budget ran out
COUNTED = ("success", "failed", "unknown", "skipped", "missed", "frozen", "halted")


def _clip(text: Any, limit: int = MAX_LINE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bad_entries(summary: dict[str, Any], result: str, sent_here: bool = False) -> list[str]:
    """The entries with `result`; with sent_here, only actions this invocation sent (not another's claim)."""
    lines = []
    for sched in summary.get("schedules") or []:
        for inst in sched.get("instances") or []:
            if inst.get("result") == result and not (sent_here and inst.get("handled_by")):
                name = inst.get("name") or "?"
                when = f" for {inst['occurrence']}" if inst.get("occurrence") else ""
                lines.append(f"{sched.get('name')}: {inst.get('action') or '-'} {name} ({inst.get('instance_id')})"
                             f"{when}: {inst.get('reason')}")
    return lines


def _section(title: str, entries: list[str]) -> list[str]:
    if not entries:
        return []
    lines = [f"{title} ({len(entries)}):"]
    lines += [f"- {_clip(e)}" for e in entries[:MAX_ENTRIES]]
    if len(entries) > MAX_ENTRIES:
        lines.append(f"- ... and {len(entries) - MAX_ENTRIES} more (see the function's logs)")
    return lines + [""]


def compose(summary: dict[str, Any], function_name: str = "dcs-maintenance") -> tuple[str, str]:
    """(subject, message) for a tick summary; secrets bound for the invocation are masked."""
    counts = summary.get("counts") or {}
    failed, unknown = _bad_entries(summary, "failed"), _bad_entries(summary, "unknown")
    halted = _bad_entries(summary, "halted")
    in_error = [f"{s.get('name')}: {s.get('reason')}" for s in summary.get("schedules") or []
                if s.get("decision") == "error"]
    invalid = [f"{p.get('file')} {p.get('path') or ''}: {p.get('message')}".replace("  ", " ")
               for p in summary.get("problems") or []]
    errors = [str(e) for e in summary.get("errors") or []]
    parts = [f"{n} {label}" for n, label in ((len(failed), "failed"), (len(unknown), "unknown"),
                                             (len(halted), "halted by a rollout"),
                                             (len(in_error), "schedule(s) in error"),
                                             (len(invalid), "invalid schedule(s)"), (len(errors), "error(s)")) if n]
    tick = summary.get("tick") or "?"
    subject = _clip(f"[{function_name}] tick {tick} needs attention: {', '.join(parts) or 'not ok'}", MAX_SUBJECT)
    lines = [f"{function_name}: the maintenance tick at {tick} (request {summary.get('request_id') or '-'}) "
             "did not complete cleanly.",
             "Results: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in COUNTED) + ".",
             ""]
    lines += _section("Failed", failed)
    lines += _section("Outcome unknown (the call may have run; it is not sent again)", unknown)
    lines += _section("Halted (a rollout's error budget ran out: not touched)", halted)
    lines += _section("Schedules in error", in_error)
    lines += _section("Invalid schedule files (these schedules do not run until fixed)", invalid)
    lines += _section("Errors", errors)
    # What was done, beside what went wrong: a tick whose ledger failed after its calls must still say them.
    lines += _section("Accepted by DCS in this tick", _bad_entries(summary, "success", sent_here=True))
    lines.append("The full summary is in the function's logs under the request id above.")
    message = "\n".join(lines)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 40].rsplit("\n", 1)[0] + "\n[message truncated]"
    return logs.redact(subject), logs.redact(message)


def fingerprint(summary: dict[str, Any]) -> str:
    """What the tick's problems are, without what changes from tick to tick (times, request ids)."""
    items: list[Any] = []
    for sched in summary.get("schedules") or []:
        if sched.get("decision") == "error":
            items.append(["schedule", sched.get("name"), _stable(sched.get("reason"))])
        for inst in sched.get("instances") or []:
            if inst.get("result") in BAD:
                items.append(["instance", sched.get("name"), inst.get("instance_id"), inst.get("result"),
                              inst.get("occurrence")])
    items += [["problem", p.get("file"), p.get("path"), p.get("message")] for p in summary.get("problems") or []]
    items += [["error", _stable(e)] for e in summary.get("errors") or []]
    return hashlib.sha256(json.dumps(sorted(items, key=str), default=str).encode()).hexdigest()[:32]


def _stable(text: Any) -> str:
    text = re.sub(r"\(request [^)]*\)|\b[0-9a-f]{16,}\b", "", str(text or ""))
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?", "", text)


def _tick_time(summary: dict[str, Any]) -> Optional[datetime]:
    try:
        return datetime.fromisoformat(str(summary.get("tick")).replace("Z", "+00:00"))
    except ValueError:
        return None


def _repeat_of(ledger: Any, fp: str, tick: Optional[datetime]) -> Optional[str]:
    """The tick at which the same problems were last notified, when that is recent enough to stay quiet."""
    if ledger is None or tick is None:
        return None
    try:
        last = json.loads(ledger.get_meta(META_KEY) or "{}")
        last_tick = datetime.fromisoformat(last["tick"].replace("Z", "+00:00"))
    except Exception:  # no record, an unreadable one, or a ledger error: notify
        return None
    if last.get("fingerprint") == fp and timedelta(0) <= tick - last_tick < REPEAT_AFTER:
        return last["tick"]
    return None


def _remember(ledger: Any, fp: str, summary: dict[str, Any]) -> None:
    if ledger is None or _tick_time(summary) is None:
        return
    try:
        ledger.set_meta(META_KEY, json.dumps({"fingerprint": fp, "tick": summary.get("tick")}))
    except Exception as exc:
        logs.warning("notification_not_recorded", error=f"{type(exc).__name__}: {exc}")


def describe_error(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    if status is not None:
        return _clip(f"HTTP {status} {getattr(exc, 'error_code', '') or ''}: {getattr(exc, 'error_msg', '') or ''}")
    detail = getattr(exc, "error_msg", None) or str(exc) or ""
    return _clip(f"{type(exc).__name__}: {detail}".rstrip(": "))


def publish(settings: Settings, context: Any, topic: str, subject: str, message: str) -> str:
    """One PublishMessage call; returns SMN's message id. Raises on any failure."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdksmn.v2.model.publish_message_request import PublishMessageRequest
    from huaweicloudsdksmn.v2.model.publish_message_request_body import PublishMessageRequestBody
    from huaweicloudsdksmn.v2.smn_client import SmnClient

    from dcs_maintenance.gateway import quiet_sdk_logger

    match = URN.fullmatch(topic)
    if match is None:
        raise ValueError(f"not an SMN topic URN: {topic!r}")
    project = match["project"] or settings.project_id
    credentials = load_credentials(context)
    logs.add_secrets(credentials.secrets())
    creds = BasicCredentials(credentials.ak, credentials.sk, project)
    if credentials.token:
        creds = creds.with_security_token(credentials.token)
    config = HttpConfig.get_default_config()
    config.timeout = (settings.connect_timeout, min(settings.read_timeout, READ_TIMEOUT_CAP))
    config.retry_times = 0  # a re-sent publish is a duplicate message
    quiet_sdk_logger(SmnClient)
    builder = SmnClient.new_builder().with_credentials(creds).with_http_config(config)
    if settings.notify_endpoint:
        builder = builder.with_endpoints([settings.notify_endpoint])
    else:
        from huaweicloudsdksmn.v2.region.smn_region import SmnRegion

        try:
            builder = builder.with_region(SmnRegion.value_of(match["region"]))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown SMN region {match['region']!r}: set SMN_ENDPOINT") from exc
    request = PublishMessageRequest(topic_urn=topic, body=PublishMessageRequestBody(subject=subject, message=message))
    response = builder.build().publish_message(request)
    return str(getattr(response, "message_id", "") or "")


def notify_tick(summary: dict[str, Any], settings: Settings, context: Any = None, ledger: Any = None,
                remaining: Callable[[], float] = lambda: float("inf")) -> dict[str, Any]:
    """Publish one message about a tick that is not ok. Never raises; returns the summary's `notification`."""
    topic = settings.notify_topic
    result: dict[str, Any] = {"sent": False, "topic": topic}
    try:
        if not topic:
            result["error"] = "NOTIFY_SMN_TOPIC_URN is not set"
            return result
        fp = fingerprint(summary)
        repeat = _repeat_of(ledger, fp, _tick_time(summary))
        if repeat is not None:
            result.update(suppressed=True, reason=f"the same problems were notified for the tick at {repeat}; "
                                                  f"repeated after {int(REPEAT_AFTER.total_seconds() // 3600)} h")
            logs.log("notification_suppressed", topic=topic, previous=repeat)
            return result
        needed = settings.connect_timeout + min(settings.read_timeout, READ_TIMEOUT_CAP)
        if remaining() < needed:
            raise TimeoutError(f"not enough time left in the invocation to publish ({remaining():.0f} s)")
        name = _function_name(context)
        subject, message = compose(summary, name)
        result["message_id"] = publish(settings, context, topic, subject, message)
        result["sent"] = True
        logs.log("notification_sent", topic=topic, message_id=result["message_id"], subject=subject)
        _remember(ledger, fp, summary)
    except Exception as exc:  # SDK, HTTP, connection and requests' ReadTimeout errors alike: report, never raise
        result["error"] = logs.redact(describe_error(exc))
        logs.error("notification_failed", topic=topic, error=result["error"])
    return result


def _function_name(context: Any) -> str:
    return str(context_value(context, "getFunctionName") or "dcs-maintenance")
