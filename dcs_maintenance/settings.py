"""Settings from the environment (FunctionGraph "user data"), checked once, with clear errors.

SPEC section 4 names are public: keep them. Extra settings are documented in the README.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from dcs_maintenance import dcs_rules
from dcs_maintenance.deployment import MAX_INSTANCE_CAP, tick_period_problem
from dcs_maintenance.durations import parse_duration
from dcs_maintenance.logs import LEVELS as _LEVELS
from dcs_maintenance.schedule_checks import ValidationContext

HERE = Path(__file__).resolve().parent.parent
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


MIN_API_TOKEN_CHARS = 16  # shorter values are guessable, and masking them in output would hit ordinary words
DEFAULT_APIG_TIMEOUT = 60.0  # seconds: the APIG trigger's backend timeout in deploy/terraform (func_info.timeout)


class SettingsError(ValueError):
    """One or more settings are missing or invalid; the message names each."""


class TokenNotText(SettingsError):
    """API_TOKEN holds a byte that is not UTF-8 (os.environ keeps it as a lone surrogate): it can never match."""


def read_api_token(env: Mapping[str, str]) -> Optional[str]:
    """API_TOKEN stripped of surrounding whitespace; None when unset or blank (the routes then refuse everything).

    Raises TokenNotText for a value that is not UTF-8 text and SettingsError for one shorter than
    MIN_API_TOKEN_CHARS. Neither message quotes the value.
    """
    raw = env.get("API_TOKEN") or ""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise TokenNotText("API_TOKEN is not valid UTF-8 text (it holds a byte that is not UTF-8): set it again "
                           "as plain text") from None
    token = raw.strip()
    if not token:
        return None
    if len(token) < MIN_API_TOKEN_CHARS:
        raise SettingsError(f"API_TOKEN is shorter than {MIN_API_TOKEN_CHARS} characters: use a long random value "
                            "(e.g. the output of `openssl rand -hex 32`)")
    return token


@dataclass(frozen=True)
class Credentials:
    """AK/SK (and an agency's security token). Never printed: repr hides the values."""

    ak: str = field(repr=False)
    sk: str = field(repr=False)
    token: Optional[str] = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        return [s for s in (self.ak, self.sk, self.token) if s]


@dataclass(frozen=True)
class Settings:
    schedules_dir: Path
    region: Optional[str]
    endpoint: Optional[str]
    project_id: Optional[str]
    tick_period: timedelta
    ledger_url: str
    batch_size: int
    protect_tag: tuple[str, str]
    dry_run: bool
    api_token: Optional[str] = field(repr=False)
    log_level: str
    connect_timeout: float
    read_timeout: float
    safety_margin: timedelta
    max_parallel_projects: int
    notify_topic: Optional[str]
    notify_endpoint: Optional[str] = None  # SMN_ENDPOINT, else DCS_ENDPOINT; None: the topic region's endpoint
    # MAX_INSTANCE_NUM: the instance cap the deployment gives the function (deployment.unshared_ledger_problem)
    max_instance_num: int = 1
    history_retention: timedelta = timedelta(days=30)  # HISTORY_RETENTION: how long history entries are kept
    calendar_token: Optional[str] = field(default=None, repr=False)  # CALENDAR_TOKEN: ?token= on /calendar.ics
    ces_namespace: Optional[str] = None  # CES_NAMESPACE: Cloud Eye custom metrics on (unset: off)
    ces_endpoint: Optional[str] = None  # CES_ENDPOINT, else DCS_ENDPOINT; None: the region's Cloud Eye endpoint
    apig_timeout: float = DEFAULT_APIG_TIMEOUT  # APIG_TIMEOUT: seconds the API Gateway waits for an HTTP answer
    # ROLLOUT_MAX_WAIT: how long one invocation may wait for rollout waves' health gates (0s: each tick looks once;
    # never past the next tick nor the invocation's own time: rollout_runner)
    rollout_max_wait: timedelta = timedelta(minutes=10)

    @property
    def call_budget(self) -> float:
        """Seconds one API call may take at worst, plus the margin kept to return the summary in time:
        no call starts with less than this left in the invocation."""
        return self.connect_timeout + self.read_timeout + self.safety_margin.total_seconds()

    def validation_context(self) -> ValidationContext:
        """What schedule validation needs to know about this function: its region and tick period."""
        return ValidationContext(region=self.region, tick_period=self.tick_period)


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int, errors: list[str],
         why: str = "") -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(f"{name}={raw!r} is not a whole number")
        return default
    if not low <= value <= high:
        errors.append(f"{name}={value} is outside {low}..{high}" + (f" ({why})" if why else ""))
    return value


def _float(env: Mapping[str, str], name: str, default: float, errors: list[str]) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        errors.append(f"{name}={raw!r} is not a number of seconds")
        return default
    if not 0 < value <= 600:
        errors.append(f"{name}={value} must be more than 0 and at most 600 seconds")
    return value


def _bool(env: Mapping[str, str], name: str, errors: list[str]) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw not in _FALSE:
        errors.append(f"{name}={raw!r} must be true or false")
    return False


def _duration(env: Mapping[str, str], name: str, default: str, errors: list[str]) -> timedelta:
    raw = env.get(name, "").strip() or default
    try:
        return parse_duration(raw)
    except ValueError as exc:
        errors.append(f"{name}={raw!r}: {exc}")
        return parse_duration(default)


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """Read and check every setting; raise SettingsError listing all problems at once."""
    env = os.environ if env is None else env
    errors: list[str] = []
    schedules_dir = Path(env.get("SCHEDULES_DIR") or HERE / "schedules")
    endpoint = env.get("DCS_ENDPOINT", "").strip() or None
    if endpoint and not re.match(r"^https?://[^/\s]+", endpoint):
        errors.append(f"DCS_ENDPOINT={endpoint!r} must be an http:// or https:// URL")
    smn_endpoint = env.get("SMN_ENDPOINT", "").strip() or None
    if smn_endpoint and not re.match(r"^https?://[^/\s]+", smn_endpoint):
        errors.append(f"SMN_ENDPOINT={smn_endpoint!r} must be an http:// or https:// URL")
    notify_topic = env.get("NOTIFY_SMN_TOPIC_URN", "").strip() or None
    if notify_topic and not re.fullmatch(r"urn:smn:[a-z0-9-]+:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,255}", notify_topic):
        errors.append(f"NOTIFY_SMN_TOPIC_URN={notify_topic!r} is not an SMN topic URN "
                      "(urn:smn:<region>:<project>:<name>)")
    region = env.get("DCS_REGION", "").strip() or None
    project_id = (env.get("DCS_PROJECT_ID") or env.get("RUNTIME_PROJECT_ID") or "").strip() or None
    if project_id and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", project_id):
        errors.append(f"DCS_PROJECT_ID/RUNTIME_PROJECT_ID={project_id!r} is not a project id")
    protect_raw = env.get("PROTECT_TAG", "maintenance-protect=true")
    key, sep, value = protect_raw.partition("=")
    if not sep or not key.strip():
        errors.append(f"PROTECT_TAG={protect_raw!r} must be key=value")
    tick_period = _duration(env, "TICK_PERIOD", "5m", errors)
    tick_problem = tick_period_problem(tick_period)
    if tick_problem and not any(e.startswith("TICK_PERIOD=") for e in errors):
        errors.append(f"TICK_PERIOD={env.get('TICK_PERIOD', '').strip()!r}: {tick_problem}")
    try:
        api_token = read_api_token(env)
    except SettingsError as exc:
        api_token = None
        errors.append(str(exc))
    log_level = (env.get("LOG_LEVEL") or "INFO").strip().upper()
    if log_level not in _LEVELS:
        errors.append(f"LOG_LEVEL={log_level!r} must be one of {', '.join(_LEVELS)}")
    visibility = _visibility_settings(env, endpoint, errors)
    settings = Settings(
        schedules_dir=schedules_dir,
        region=region,
        endpoint=endpoint.rstrip("/") if endpoint else None,
        project_id=project_id,
        tick_period=tick_period,
        ledger_url=env.get("LEDGER_URL", "").strip()
        or f"sqlite:///{Path(tempfile.gettempdir()) / 'dcs-maintenance.sqlite3'}",
        batch_size=_int(env, "BATCH_SIZE", 50, 1, dcs_rules.MAX_IDS_PER_CALL, errors,
                        f"DCS takes at most {dcs_rules.MAX_IDS_PER_CALL} instances in one call: DCS.4100"),
        protect_tag=(key.strip(), value.strip()),
        dry_run=_bool(env, "DRY_RUN", errors),
        api_token=api_token,
        log_level=log_level,
        connect_timeout=_float(env, "DCS_CONNECT_TIMEOUT", 5.0, errors),
        read_timeout=_float(env, "DCS_READ_TIMEOUT", 30.0, errors),
        safety_margin=_duration(env, "SAFETY_MARGIN", "5s", errors),
        max_parallel_projects=_int(env, "MAX_PARALLEL_PROJECTS", 4, 1, 32, errors),
        notify_topic=notify_topic,
        notify_endpoint=(smn_endpoint or endpoint or "").rstrip("/") or None,
        max_instance_num=_int(env, "MAX_INSTANCE_NUM", 1, 1, MAX_INSTANCE_CAP, errors),
        **visibility,
        apig_timeout=_float(env, "APIG_TIMEOUT", DEFAULT_APIG_TIMEOUT, errors),
        rollout_max_wait=_rollout_max_wait(env, errors),
    )
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    return settings


ROLLOUT_MAX_WAIT_LIMIT = timedelta(hours=1)


def _rollout_max_wait(env: Mapping[str, str], errors: list[str]) -> timedelta:
    value = _duration(env, "ROLLOUT_MAX_WAIT", "10m", errors)
    if value > ROLLOUT_MAX_WAIT_LIMIT:
        errors.append(f"ROLLOUT_MAX_WAIT={env.get('ROLLOUT_MAX_WAIT', '').strip()!r}: at most 1h (an invocation "
                      "never waits past the next tick anyway)")
        return ROLLOUT_MAX_WAIT_LIMIT
    return value


# Cloud Eye custom namespaces: `service.item`, each part a letter then letters, digits or `_`, 3-32 characters in
# all; `service` must not start with SYS, AGT or SRE, and SERVICE.BMS is taken (Cloud Eye API reference,
# "Querying Metrics" and "Adding Monitoring Data": namespace).
_CES_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*")
_CES_RESERVED = ("SYS", "AGT", "SRE")
MIN_CALENDAR_TOKEN = 16
HISTORY_RETENTION_RANGE = (timedelta(hours=1), timedelta(days=400))


def _visibility_settings(env: Mapping[str, str], dcs_endpoint: Optional[str], errors: list[str]) -> dict[str, Any]:
    """HISTORY_RETENTION, CALENDAR_TOKEN, CES_NAMESPACE and CES_ENDPOINT (history, calendar feed, metrics)."""
    retention = _duration(env, "HISTORY_RETENTION", "30d", errors)
    low, high = HISTORY_RETENTION_RANGE
    if not low <= retention <= high:
        errors.append(f"HISTORY_RETENTION={env.get('HISTORY_RETENTION', '').strip()!r} must be between 1h and 400d")
    token = env.get("CALENDAR_TOKEN") or None
    if token is not None and (len(token) < MIN_CALENDAR_TOKEN or token != token.strip()):
        errors.append(f"CALENDAR_TOKEN must be at least {MIN_CALENDAR_TOKEN} characters without surrounding spaces "
                      "(it is a secret in a URL: use a long random value)")
    namespace = env.get("CES_NAMESPACE", "").strip() or None
    if namespace is not None:
        service = namespace.split(".", 1)[0].upper()
        if not (_CES_NAMESPACE.fullmatch(namespace) and 3 <= len(namespace) <= 32):
            errors.append(f"CES_NAMESPACE={namespace!r} must be service.item (each part a letter, then letters, digits "
                          "or _; 3-32 characters), e.g. DCSM.maintenance")
        elif service.startswith(_CES_RESERVED) or namespace.upper() == "SERVICE.BMS":
            errors.append(f"CES_NAMESPACE={namespace!r}: namespaces starting with SYS, AGT or SRE (and SERVICE.BMS) "
                          "are Cloud Eye's own")
    ces_endpoint = env.get("CES_ENDPOINT", "").strip() or None
    if ces_endpoint and not re.match(r"^https?://[^/\s]+", ces_endpoint):
        errors.append(f"CES_ENDPOINT={ces_endpoint!r} must be an http:// or https:// URL")
    return {"history_retention": retention, "calendar_token": token, "ces_namespace": namespace,
            "ces_endpoint": (ces_endpoint or dcs_endpoint or "").rstrip("/") or None}


def context_value(context: Any, method: str) -> Optional[str]:
    getter = getattr(context, method, None)
    if getter is None:
        return None
    try:
        value = getter()
    except Exception:  # a context without an agency raises or returns nothing: fall back to the environment
        return None
    return value or None


def load_credentials(context: Any = None, env: Optional[Mapping[str, str]] = None) -> Credentials:
    """The agency's temporary keys from the context where present, else HUAWEICLOUD_SDK_AK/SK.

    Read per invocation and never cached: an agency's keys expire.
    """
    env = os.environ if env is None else env
    ak = context_value(context, "getSecurityAccessKey")
    sk = context_value(context, "getSecuritySecretKey")
    if ak and sk:
        return Credentials(ak, sk, context_value(context, "getSecurityToken"))
    ak, sk = env.get("HUAWEICLOUD_SDK_AK", "").strip(), env.get("HUAWEICLOUD_SDK_SK", "").strip()
    if not ak or not sk:
        raise SettingsError(
            "no credentials: give the function an agency (context security keys) or set "
            "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK"
        )
    return Credentials(ak, sk, env.get("HUAWEICLOUD_SDK_SECURITY_TOKEN", "").strip() or None)


def missing_for_api(settings: Settings, context: Any, schedules: Iterable[Any]) -> list[str]:
    """The settings a tick needs to call DCS and lacks, by name; checked at every tick, due or not, so that a
    deployment missing them says so at once rather than on the night something is due.

    A region (or DCS_ENDPOINT) and a project id are not needed when every enabled schedule names its own
    `region` / `project_id`; credentials are always needed.
    """
    missing = []
    needs_region, needs_project = not (settings.endpoint or settings.region), not settings.project_id
    if needs_region or needs_project:  # only then do the schedules matter (10,000 of them cost a tick otherwise)
        enabled = [s for s in schedules if getattr(s, "enabled", True)]
        if needs_region and not (enabled and all(s.region for s in enabled)):
            missing.append("DCS_REGION (or DCS_ENDPOINT)")
        if needs_project and not (enabled and all(s.project_id for s in enabled)):
            missing.append("RUNTIME_PROJECT_ID (or DCS_PROJECT_ID)")
    try:
        load_credentials(context)
    except SettingsError:
        missing.append("credentials (an agency for the function, or HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK)")
    return missing

