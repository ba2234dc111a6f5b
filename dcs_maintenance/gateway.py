"""The DCS SDK gateway: the only module that talks to the cloud API.

It turns SDK objects and exceptions into the model's plain values. Reads are retried
with capped exponential backoff and jitter; the status PUT is sent exactly once (the
SDK's transport retry is off: urllib3 would re-send a PUT after a read timeout). The SDK
is imported lazily, so a tick with nothing due never pays its ~0.3 s import.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Optional

from dcs_maintenance import dcs_rules
from dcs_maintenance.model import Instance, Outcome, Refusal
from dcs_maintenance.settings import Credentials, Settings

LIST_PAGE = 1000  # the API's maximum page size
READ_ATTEMPTS = 4
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
# Only connect-phase failures prove the request never reached the server: the TCP connection was refused or
# never completed, or the TLS handshake failed on the certificate (the request is written after the handshake).
# NOT "Max retries exceeded with url": urllib3 wraps EVERY error in it with retry_times=0, read timeouts and
# resets after the request was sent included. NOT any SSL error: the SDK turns every SSLError into
# SslHandShakeException, also one raised while READING the answer, after the request took effect.
NOT_SENT_MARKERS = ("NewConnectionError", "Connection refused", "Failed to establish", "ConnectTimeout",
                    "CERTIFICATE_VERIFY_FAILED")

# Statuses an accepted action moves an instance into: read back after an unknown outcome.
ACTION_STATUSES = {
    "restart": ("RESTARTING",),
    "soft_restart": ("RESTARTING",),
    "flush": ("FLUSHING",),
    "stop": ("CLOSING", "CLOSED"),
    "start": ("STARTING",),
}


class MalformedResponse(Exception):
    """A 2xx answer whose body is not the JSON the API documents (e.g. a proxy's HTML page): retried like a 5xx."""


def _checked(response: Any, *fields: str) -> Any:
    """The SDK turns an unparseable 2xx body into an empty response object: refuse it instead of reading
    "no instances" (a list) or "no status" (a read-back) into it."""
    if all(getattr(response, name, None) is None for name in fields):
        raw = getattr(response, "raw_content", None) or b""
        raise MalformedResponse(f"malformed response body (none of {', '.join(fields)}): {bytes(raw)[:80]!r}")
    return response


class GatewayError(Exception):
    """A read that failed for good (after retries), with what the API said."""

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class CallStats:
    """Counts of requests sent, for the summary and the API-economy benchmark."""

    list_calls: int = 0
    show_calls: int = 0
    status_calls: int = 0
    retries: int = 0
    backup_calls: int = 0  # ListBackupRecords before a restart, soft restart or flush (issue 11)
    config_calls: int = 0  # ListConfigurations for a restart's data-loss mark (issue 11)

    def count(self, name: str) -> None:
        """Reads may run in a few threads (sending.read_each): count under a lock."""
        with _STATS_LOCK:
            setattr(self, name, getattr(self, name) + 1)


_STATS_LOCK = threading.Lock()


def describe_error(exc: BaseException) -> str:
    """A short text for an SDK exception: HTTP status, DCS error code and message, request id."""
    status = getattr(exc, "status_code", None)
    if status is not None:
        code = getattr(exc, "error_code", None) or ""
        msg = getattr(exc, "error_msg", None) or ""
        rid = getattr(exc, "request_id", None)
        text = f"HTTP {status} {code}: {msg}".strip()
        return f"{text} (request {rid})" if rid else text
    msg = getattr(exc, "error_msg", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {msg}"[:500]


def _retriable(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    if status is not None:
        return status == 429 or status >= 500
    return True  # connection errors, timeouts, malformed responses


def _retry_after(exc: BaseException) -> Optional[float]:
    """A 429's Retry-After where the SDK kept it (it usually loses the body and headers)."""
    for attr in ("retry_after", "headers"):
        value = getattr(exc, attr, None)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, dict) and value.get("Retry-After", "").isdigit():
            return float(value["Retry-After"])
    return None


def _not_sent(exc: BaseException) -> bool:
    """True only where the request certainly never reached the server (the connection was never made)."""
    text = f"{getattr(exc, 'error_msg', '')} {exc!r}"
    return type(exc).__name__ == "HostUnreachableException" or any(marker in text for marker in NOT_SENT_MARKERS)


def quiet_sdk_logger(client_class: type) -> None:
    """Silence the SDK client's own logger: its unstructured lines (URLs, exception text) would reach stderr
    through Python's last-resort handler. Every failure is reported in this project's JSON lines instead."""
    sdk_logger = logging.getLogger(f"HuaweiCloud-SDK-{client_class.__name__}")
    if not any(isinstance(h, logging.NullHandler) for h in sdk_logger.handlers):
        sdk_logger.addHandler(logging.NullHandler())


def to_instance(info: Any) -> Instance:
    """An SDK InstanceListInfo / ShowInstanceResponse as a model Instance.

    A list entry without a `tags` field (the SDK gives None, not []) has UNKNOWN tags, never "no tags": whether
    ListInstances entries carry tags is not documented (the Terraform provider reads them per instance), and
    reading None as untagged would restart a protected instance selected by name (dcs_rules.resolve_tags)."""
    raw_tags = getattr(info, "tags", None)
    tags = tuple(sorted((t.key, t.value or "") for t in (raw_tags or []) if t.key))
    return Instance(
        instance_id=info.instance_id,
        name=info.name or "",
        engine=info.engine or "",
        engine_version=str(info.engine_version or ""),
        status=info.status or "",
        tags=tags,
        maintain_begin=getattr(info, "maintain_begin", None) or None,  # UTC HH:mm:ss (maintenance_windows.py)
        maintain_end=getattr(info, "maintain_end", None) or None,
        spec_code=getattr(info, "spec_code", None) or "",
        service_upgrade=getattr(info, "service_upgrade", None) is True,
        tags_known=raw_tags is not None,
    )


class DcsGateway:
    """One project in one region, with per-invocation credentials."""

    def __init__(
        self,
        settings: Settings,
        credentials: Credentials,
        project_id: str,
        region: Optional[str] = None,
        remaining: Callable[[], float] = lambda: float("inf"),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not project_id or "{" in project_id:
            # With with_endpoints and no project id the SDK silently requests /v2/%7Bproject_id%7D/.
            raise GatewayError(f"no valid project id ({project_id!r}): set DCS_PROJECT_ID or RUNTIME_PROJECT_ID")
        if not settings.endpoint and not (region or settings.region):
            raise GatewayError("no region: set DCS_REGION or the schedule's region, or DCS_ENDPOINT")
        self.settings = settings
        self.project_id = project_id
        self.region = region or settings.region
        self.stats = CallStats()
        self._credentials = credentials
        self._remaining = remaining
        self._sleep = sleep
        self._client: Any = None

    # -- client ---------------------------------------------------------------------------
    def _sdk(self) -> Any:
        if self._client is None:
            from huaweicloudsdkcore.auth.credentials import BasicCredentials
            from huaweicloudsdkcore.http.http_config import HttpConfig
            from huaweicloudsdkdcs.v2.dcs_client import DcsClient

            creds = BasicCredentials(self._credentials.ak, self._credentials.sk, self.project_id)
            if self._credentials.token:
                creds = creds.with_security_token(self._credentials.token)
            config = HttpConfig.get_default_config()
            config.timeout = (self.settings.connect_timeout, self.settings.read_timeout)
            config.retry_times = 0  # never let urllib3 re-send the status PUT
            quiet_sdk_logger(DcsClient)
            builder = DcsClient.new_builder().with_credentials(creds).with_http_config(config)
            if self.settings.endpoint:
                builder = builder.with_endpoints([self.settings.endpoint])
            else:
                from huaweicloudsdkdcs.v2.region.dcs_region import DcsRegion

                try:
                    builder = builder.with_region(DcsRegion.value_of(self.region))
                except (KeyError, ValueError) as exc:
                    raise GatewayError(f"unknown DCS region {self.region!r}") from exc
            self._client = builder.build()
        return self._client

    # -- reads ----------------------------------------------------------------------------
    def _read(self, what: str, call: Callable[[], Any]) -> Any:
        """Run a read with capped exponential backoff and full jitter on 5xx, 429 and I/O errors."""
        attempt = 0
        while True:
            if self._remaining() < self.settings.call_budget:
                raise GatewayError(f"{what}: not started, not enough time left in this invocation "
                                   "(connect + read timeout + SAFETY_MARGIN); the next tick picks it up")
            try:
                return call()
            except Exception as exc:  # SDK exceptions have no common retriable base
                attempt += 1
                if not _retriable(exc) or attempt >= READ_ATTEMPTS:
                    raise GatewayError(f"{what}: {describe_error(exc)}", getattr(exc, "status_code", None),
                                       getattr(exc, "error_code", None)) from exc
                delay = min(BACKOFF_CAP, _retry_after(exc) or random.uniform(0, BACKOFF_BASE * 2 ** attempt))
                if self._remaining() < delay + self.settings.call_budget:
                    raise GatewayError(f"{what}: {describe_error(exc)} (no time left to retry)") from exc
                self.stats.count("retries")
                self._sleep(delay)

    def list_instances(self, tag_filters: Iterable[dcs_rules.TagPairs] = ()) -> list[Instance]:
        """Every instance of the project, paginated at the API's maximum page size.

        Where list entries carry no `tags`, the project is listed once more per tag filter (`tag_filters`: the
        selectors', excludes' and the protect tag's pairs, dcs_rules.tag_filters) with ListInstances' `tags`
        query, which DCS evaluates on the instances' own tags: one call per distinct filter rather than one
        ShowTags call per instance. Where such a call fails, those instances keep unknown tags (never touched)."""
        found = self._list(None)
        filters = sorted(set(tag_filters))
        if all(inst.tags_known for inst in found) or not filters:
            return found
        matched: dict[dcs_rules.TagPairs, frozenset[str]] = {}
        for pairs in filters:
            try:
                matched[pairs] = frozenset(inst.instance_id for inst in self._list(dcs_rules.filter_text(pairs)))
            except GatewayError as exc:
                return dcs_rules.resolve_tags(found, {}, f"listing by tag {dcs_rules.filter_text(pairs)} failed: "
                                                         f"{exc}")
        return dcs_rules.resolve_tags(found, matched)

    def _list(self, tags: Optional[str]) -> list[Instance]:
        from huaweicloudsdkdcs.v2.model.list_instances_request import ListInstancesRequest

        client, found, offset = self._sdk(), [], 0
        what = f"list instances of project {self.project_id}" + (f" with tags {tags}" if tags else "")
        while True:
            request = ListInstancesRequest(offset=offset, limit=LIST_PAGE, tags=tags)
            self.stats.count("list_calls")
            page = self._read(what, lambda req=request: _checked(client.list_instances(req), "instances",
                                                                  "instance_num"))
            batch = page.instances or []
            found.extend(to_instance(info) for info in batch)
            offset += len(batch)
            if not batch or offset >= (page.instance_num or 0):
                return found

    def backup_records(self, instance_id: str) -> list[dcs_rules.BackupRecord]:
        """One page of the instance's backup records (ListBackupRecords): enough to see one in progress."""
        from huaweicloudsdkdcs.v2.model.list_backup_records_request import ListBackupRecordsRequest

        client = self._sdk()
        request = ListBackupRecordsRequest(instance_id=instance_id, offset=0, limit=dcs_rules.BACKUP_PAGE)
        self.stats.count("backup_calls")
        page = self._read(f"list backup records of instance {instance_id}",
                          lambda: _checked(client.list_backup_records(request), "backup_record_response",
                                           "total_num"))
        return [dcs_rules.BackupRecord(r.backup_id or "", r.status or "", r.created_at or "")
                for r in page.backup_record_response or []]

    def redis_config(self, instance_id: str) -> dict[str, str]:
        """The instance's configuration parameters (ListConfigurations' redis_config): name -> value."""
        from huaweicloudsdkdcs.v2.model.list_configurations_request import ListConfigurationsRequest

        client = self._sdk()
        request = ListConfigurationsRequest(instance_id=instance_id)
        self.stats.count("config_calls")
        page = self._read(f"read the configuration of instance {instance_id}",
                          lambda: _checked(client.list_configurations(request), "redis_config", "instance_id"))
        return {c.param_name: str(c.param_value) for c in page.redis_config or [] if c.param_name}

    def show_instance(self, instance_id: str) -> Optional[Instance]:
        """One instance, or None where the API says it does not exist."""
        from huaweicloudsdkdcs.v2.model.show_instance_request import ShowInstanceRequest

        client = self._sdk()
        request = ShowInstanceRequest(instance_id=instance_id)
        self.stats.count("show_calls")
        try:
            return to_instance(self._read(f"show instance {instance_id}",
                                          lambda: _checked(client.show_instance(request), "status")))
        except GatewayError as exc:
            if exc.status == 404:
                return None
            raise

    # -- the one state-changing call ----------------------------------------------------------
    def change_status(self, action: str, instance_ids: list[str]) -> list[Outcome]:
        """One restart_or_flush_instances call; every result entry read; never re-sent.

        A call whose outcome is unknown (timeout, reset, 5xx) is reported `unknown`, refined
        by reading each instance's status back, and never repeated.
        """
        from huaweicloudsdkdcs.v2.model.change_instance_status_body import ChangeInstanceStatusBody
        from huaweicloudsdkdcs.v2.model.restart_or_flush_instances_request import RestartOrFlushInstancesRequest

        if action not in ACTION_STATUSES:
            raise ValueError(f"unknown action {action!r}")
        request = RestartOrFlushInstancesRequest(body=ChangeInstanceStatusBody(instances=list(instance_ids),
                                                                               action=action))
        self.stats.count("status_calls")
        try:
            response = self._sdk().restart_or_flush_instances(request)
        except GatewayError:
            raise
        except Exception as exc:  # classify: certainly not executed, or unknown
            return self._after_error(action, instance_ids, exc)
        results = {}
        for entry in getattr(response, "results", None) or []:
            if getattr(entry, "instance", None) in instance_ids:
                results[entry.instance] = (entry.result or "").lower()
        outcomes = []
        for iid in instance_ids:
            result = results.get(iid)
            if result == "success":
                outcomes.append(Outcome(iid, "success", f"{action} accepted"))
            elif result == "failed":  # DCS gives no reason in the entry
                outcomes.append(Outcome(iid, "failed", dcs_rules.entry_refusal_reason(action), refused=True))
            else:
                outcomes.append(self._read_back(action, iid, f"no result entry for the instance ({result!r})"))
        return outcomes

    def _after_error(self, action: str, instance_ids: list[str], exc: BaseException) -> list[Outcome]:
        """No answer is trusted to mean "not executed" without evidence (issue 10).

        Only a connection that was never made releases without a look. A 429 usually stops a request before DCS,
        but a proxy or gateway can throttle the ANSWER of one that took effect: the status is read back, and only
        an instance not in the action's transitional state counts as not executed. Anything else (a reset, a read
        timeout, a 5xx, an SSL error while reading) may have run: read back, and unknown unless it shows the
        action's state.
        """
        status = getattr(exc, "status_code", None)
        text = describe_error(exc)
        if status == 429:
            return [self._read_back(action, iid, f"{text} (throttled)", unchanged_means_not_executed=True,
                                    retry_after=_retry_after(exc)) for iid in instance_ids]
        if status in dcs_rules.AUTH_STATUSES:
            return [Outcome(iid, "failed", f"{text} (rejected, not executed)") for iid in instance_ids]
        if status is not None and status < 500:
            # Any other 4xx refuses the whole request: nothing executed (sending.send_split isolates the cause).
            refusal = Refusal(status, getattr(exc, "error_code", None) or "", getattr(exc, "error_msg", None) or "")
            return [Outcome(iid, "failed", f"{text} (the whole request was refused, not executed)", refusal=refusal)
                    for iid in instance_ids]
        if status is None and _not_sent(exc):
            return [Outcome(iid, "failed", f"{text} (not sent: the connection was never made)", not_executed=True)
                    for iid in instance_ids]
        return [self._read_back(action, iid, text) for iid in instance_ids]

    def _read_back(self, action: str, instance_id: str, why: str, unchanged_means_not_executed: bool = False,
                   retry_after: Optional[float] = None) -> Outcome:
        """After an answer that does not say what happened: report from the instance's status, never re-send."""
        try:
            instance = self.show_instance(instance_id) if self._remaining() >= self.settings.call_budget else None
        except GatewayError as exc:
            return Outcome(instance_id, "unknown", f"{why}; status read-back failed: {exc}")
        if instance is None:
            return Outcome(instance_id, "unknown", f"{why}; status not read back")
        if instance.status in ACTION_STATUSES[action]:
            return Outcome(instance_id, "success",
                           f"{why}; status read back {instance.status}: the {action} was accepted")
        if unchanged_means_not_executed:
            return Outcome(instance_id, "failed", f"{why}; status read back {instance.status}: not executed",
                           not_executed=True, retry_after=retry_after)
        return Outcome(instance_id, "unknown", f"{why}; status read back {instance.status}: outcome unknown, "
                                               "not re-sent")
