"""The DCS v2 and SMN endpoints, in the order a request meets them: route, signature, project, fault, handler.

Every request that reaches this module is logged, whatever its fate (401, injected fault, success).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from . import errors, signing
from .ces import CesInbox
from .errors import ApiError
from .faults import ANSWER_INSTEAD, Fault, FaultBook
from .holds import HoldBook
from .requestlog import Journal, RequestLog
from .sampler import StatusSampler
from .server import Reply, Request
from .state import RequestRefused, State

log = logging.getLogger("dcs_emulator")

PLACEHOLDER = "{project_id}"
# GET /v2/{project_id}/instances/{instance_id}/<sub>: the SDK's show_tags, list_backup_records, list_configurations.
INSTANCE_SUBRESOURCES = ("tags", "backups", "configs")


@dataclass(frozen=True)
class Route:
    endpoint: str  # "list" | "show" | "status" | "statistics" | "tags" | "backups" | "configs" | "smn" | "ces"
    project_id: str
    target: str | None = None  # instance id (show, tags, backups, configs) or topic URN (smn)


def match_route(method: str, raw_path: str) -> Route:
    """Map method and path to an endpoint; anything else is API Gateway's 404."""
    parts = [unquote(p) for p in raw_path.split("/")]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if len(parts) >= 4 and parts[0] == "" and parts[1] == "v2":
        project, rest = parts[2], parts[3:]
        if method == "GET" and rest == ["instances"]:
            return Route("list", project)
        if method == "PUT" and rest == ["instances", "status"]:
            return Route("status", project)
        if method == "GET" and rest == ["instances", "status"]:  # ListNumberOfInstancesInDifferentStatus
            return Route("statistics", project)
        if method == "GET" and len(rest) == 2 and rest[0] == "instances" and rest[1]:
            return Route("show", project, rest[1])
        sub = rest[2] if len(rest) == 3 and rest[0] == "instances" and rest[1] else None
        if method == "GET" and sub in INSTANCE_SUBRESOURCES:
            return Route(str(sub), project, rest[1])
        if method == "POST" and len(rest) == 4 and rest[:2] == ["notifications", "topics"] and rest[3] == "publish":
            return Route("smn", project, rest[2])
    if method == "POST" and len(parts) == 4 and parts[0] == "" and parts[1] == "V1.0" and parts[3] == "metric-data":
        return Route("ces", parts[2])  # Cloud Eye custom metrics (ces.py)
    raise ApiError(404, errors.NO_SUCH_API, "The API does not exist or has not been published in the environment.")


class DcsApi:
    """Answers signed DCS/SMN requests against the shared ``State``."""

    def __init__(
        self,
        state: State,
        faults: FaultBook,
        request_log: RequestLog,
        credentials: dict[str, str],
        security_token: str | None = None,
        max_clock_skew: float = 900.0,
        sampler: StatusSampler | None = None,
    ):
        self.state = state
        self.sampler = sampler or StatusSampler(0)
        self.faults = faults
        self.log = request_log
        self.ces = CesInbox()  # Cloud Eye metric data (ces.py)
        self.credentials = credentials
        self.security_token = security_token
        self.max_clock_skew = max_clock_skew
        self.smn = SmnInbox()
        self.holds = HoldBook()

    def handle(self, req: Request) -> Reply:
        query = _parse_query(req.raw_query)
        body = _parse_body(req.body)
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": req.method,
            "path": unquote(req.raw_path),
            "query": query,
            "body": body,
            "endpoint": None,
            "project_id": None,
            "ak": None,
            "authenticated": False,
            "fault": None,
            "status": None,
            "error_code": None,
            "request_id": None,
        }
        reply = Reply()
        fault: Fault | None = None
        hold = None
        try:
            route = match_route(req.method, req.raw_path)
            entry.update(endpoint=route.endpoint, project_id=route.project_id)
            entry["ak"] = _claimed_access_key(req.headers.get("authorization"))
            entry["ak"] = self._authenticate(req)
            entry["authenticated"] = True
            self._check_project(route.project_id, req.headers.get("x-project-id"))
            repeated = sorted(k for k, v in query.items() if isinstance(v, list))
            if repeated:
                raise errors.invalid(repeated[0], "The parameter is given more than once.")
            named = _named_instances(route, body, query)
            hold = self.holds.take(route.endpoint, named)
            if hold is not None and hold.before:
                hold.block()
                hold = None
            fault = self.faults.take(route.endpoint, named)
            if fault is not None:
                entry["fault"] = fault.kind
            if fault is not None and fault.kind in ANSWER_INSTEAD:
                reply = _fault_reply(fault)
                entry["error_code"] = fault.params.get("error_code")
            else:
                reply = self._dispatch(route, body, query, fault, entry)
        except RequestRefused as exc:  # a whole status request refused for one instance's sake
            reply = Reply.json(exc.status, exc.body(), exc.headers)
            entry.update(error_code=exc.error_code, reasons=exc.reasons, codes=exc.codes, refused_by=exc.instance_id)
        except ApiError as exc:
            reply = Reply.json(exc.status, exc.body(), exc.headers)
            entry["error_code"] = exc.error_code
        except Exception:
            log.exception("error handling %s %s", req.method, req.raw_path)
            reply = Reply.json(500, errors.error_body(errors.INTERNAL_ERROR, errors.MESSAGES[errors.INTERNAL_ERROR]))
        if fault is not None and fault.kind == "slow":
            reply.delay = float(fault.params["delay"])
        if fault is not None and fault.kind == "reset_after":
            reply.drop = True
        if fault is not None and fault.kind == "corrupt_after":
            reply.corrupt = True
        if fault is not None and fault.kind == "throttle_after":
            reply = _fault_reply(fault)
        if fault is not None and fault.kind == "refuse_after":
            reply.refuse = True
        if hold is not None:  # processed: only the answer waits
            hold.block()
        entry["status"] = None if reply.drop or reply.corrupt else reply.status
        entry["request_id"] = None if reply.drop or reply.corrupt else reply.request_id
        self.log.append(entry)
        if self.sampler.limit:
            self.sampler.record(self.state.clock(), entry.get("seq"), entry["endpoint"], req.method,
                                self.state.status_snapshot())  # fmt: skip
        return reply

    # -- checks ------------------------------------------------------------------------------------------------
    def _authenticate(self, req: Request) -> str:
        try:
            ak = signing.verify(
                method=req.method,
                raw_path=req.raw_path,
                raw_query=req.raw_query,
                headers=req.headers,
                body=req.body,
                credentials=self.credentials,
                max_skew=self.max_clock_skew,
            )
        except signing.SignatureError as exc:
            raise _auth_error(str(exc)) from None
        token = req.headers.get("x-security-token")
        if self.security_token is None and token is not None:
            raise _auth_error("a security token was sent, but these credentials are permanent (no token expected)")
        if self.security_token is not None and token != self.security_token:
            raise _auth_error("missing or wrong X-Security-Token for these temporary credentials")
        return ak

    def _check_project(self, project_id: str, header_project: str | None) -> None:
        if project_id == PLACEHOLDER:
            raise errors.dcs_error(
                errors.PROJECT_ID_INVALID,
                detail="The path holds the literal placeholder '{project_id}': the credentials carry no project id.",
            )
        if not self.state.has_project(project_id):
            raise _forbidden(f"project {project_id} is not accessible with these credentials")
        if header_project and header_project != project_id:
            raise _forbidden(f"X-Project-Id {header_project} does not match the path's project {project_id}")

    # -- endpoints ---------------------------------------------------------------------------------------------
    def _dispatch(self, route: Route, body: Any, query: dict[str, Any], fault: Fault | None, entry: dict) -> Reply:
        if route.endpoint == "list":
            page = self.state.list_page(route.project_id, query)
            if fault is not None and fault.kind == "overcount":  # the page is right, the total is not
                page["instance_num"] += int(fault.params["extra"])
            return Reply.json(200, page)
        if route.endpoint == "show":
            return Reply.json(200, self.state.show(route.project_id, route.target or ""))
        if route.endpoint == "status":
            return self._change_status(route.project_id, body, fault, entry)
        if route.endpoint == "statistics":
            return Reply.json(200, self.state.statistics(route.project_id, query))
        if route.endpoint == "tags":
            return Reply.json(200, self.state.tags(route.project_id, route.target or ""))
        if route.endpoint == "backups":
            return Reply.json(200, self.state.backup_page(route.project_id, route.target or "", query))
        if route.endpoint == "configs":
            return Reply.json(200, self.state.configs(route.project_id, route.target or ""))
        if route.endpoint == "ces":
            return self.ces.record(route.project_id, body)
        return self._publish(route, body)

    def _change_status(self, project_id: str, body: Any, fault: Fault | None, entry: dict) -> Reply:
        if body is None:
            raise errors.dcs_error(errors.BODY_EMPTY)
        if not isinstance(body, dict):
            raise errors.dcs_error(errors.BODY_NOT_JSON, detail="A JSON object with instances and action is expected.")
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances or not all(isinstance(i, str) for i in instances):
            raise errors.dcs_error(errors.INSTANCES_MISSING)
        forced: list[str] = []
        if fault is not None and fault.kind == "failed_entries":
            forced = [i for i in instances if fault.instance_ids is None or i in fault.instance_ids]
        results, reasons, codes = self.state.change_status(project_id, instances, str(body.get("action")), forced)
        entry.update(reasons=reasons, codes=codes)
        return Reply.json(200, {"results": results})

    def _publish(self, route: Route, body: Any) -> Reply:
        if not isinstance(body, dict) or not any(
            body.get(k) for k in ("message", "message_structure", "message_template_name")
        ):
            raise ApiError(
                400,
                errors.SMN_INVALID_REQUEST,
                "One of message, message_structure or message_template_name is required.",
            )
        message_id = uuid.uuid4().hex
        record = {
            **body,
            "project_id": route.project_id,
            "topic_urn": route.target,
            "message_id": message_id,
            "time": time.time(),
        }
        self.smn.append(record)
        return Reply.json(200, {"request_id": uuid.uuid4().hex, "message_id": message_id})


class SmnInbox(Journal):
    """Messages published to any topic, in arrival order."""

    def messages(self) -> list[dict[str, Any]]:
        return self._snapshot()


def _parse_query(raw: str) -> dict[str, Any]:
    """Decoded parameters; a repeated one (the SDK repeats a parameter given a list) becomes a list."""
    query: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if key in query:
            previous = query[key]
            query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[key] = value
    return query


def _claimed_access_key(authorization: str | None) -> str | None:
    try:
        return signing.parse_authorization(authorization).access
    except signing.SignatureError:
        return None


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", errors="replace")


def _named_instances(route: Route, body: Any, query: dict[str, Any]) -> list[str]:
    """The instance ids a request is about, for faults restricted to some instances."""
    if route.endpoint == "status" and isinstance(body, dict) and isinstance(body.get("instances"), list):
        return [str(i) for i in body["instances"]]
    if route.endpoint in ("show", *INSTANCE_SUBRESOURCES) and route.target:
        return [route.target]
    if route.endpoint == "list" and query.get("instance_id"):
        return [query["instance_id"]]
    return []


def _auth_error(reason: str) -> ApiError:
    return ApiError(401, errors.AUTH_FAILED, f"Incorrect IAM authentication information: {reason}.")


def _forbidden(reason: str) -> ApiError:
    return ApiError(403, errors.NOT_AUTHORIZED, f"The IAM user is not authorized to access the API: {reason}.")


def _fault_reply(fault: Fault) -> Reply:
    p = fault.params
    if fault.kind == "reset_before":
        return Reply(drop=True)
    if fault.kind == "malformed":
        return Reply(int(p["status"]), str(p["body"]).encode("utf-8"), {"Content-Type": str(p["content_type"])})
    if fault.kind in ("throttle", "throttle_after"):
        headers = {"Retry-After": str(p["retry_after"])} if p["retry_after"] is not None else {}
        return Reply.json(429, errors.error_body(p["error_code"], p["error_msg"]), headers)
    return Reply.json(int(p["status"]), errors.error_body(p["error_code"], p["error_msg"]))
