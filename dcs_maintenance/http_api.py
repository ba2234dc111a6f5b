"""The API Gateway (APIG) side of the function: event -> typed request -> route -> APIG response.

Every request goes through the same steps, and each step can only answer with an error, never act:

1. the envelope (`parse_event`): method, path, headers (names lower-cased), query and request id. The
   body is kept as delivered, not decoded yet. A malformed event is a 400;
2. the route (`Resolver.resolve`): method plus the END of the path, so any API base path works
   (`/dcs-maintenance/health` and `/health` both reach health). No route: 404; wrong method: 405 with Allow;
3. authentication: every route but `/health` needs `Authorization: Bearer <API_TOKEN>`, compared in
   constant time, BEFORE the body is decoded or anything is loaded or called. API_TOKEN unset: 503; a
   missing or wrong token: 401 with `WWW-Authenticate: Bearer`. Unknown paths need the token too, so an
   anonymous caller learns nothing about the routes. GET /calendar.ics alone also takes `?token=<CALENDAR_TOKEN>`;
4. the body: base64 when `isBase64Encoded` (the platform's default), at most MAX_BODY_BYTES (413);
5. the route function (`dcs_maintenance.routes`): a plain function `(Request) -> Response` that raises
   `HttpError` for anything the caller got wrong.

Responses have the APIG shape `{statusCode, headers, body, isBase64Encoded: false}` with a JSON body;
errors are `{"error_code", "error_msg", "error_ext_msg": null}`. One JSON log line per request (method,
route, status, request ids); the token is a registered secret, so it is masked in logs and responses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Optional
from urllib.parse import unquote

from dcs_maintenance import logs
from dcs_maintenance.settings import SettingsError, TokenNotText, read_api_token

MAX_BODY_BYTES = 256 * 1024
MAX_PATH_CHARS = 2048
JSON = "application/json"

# Error codes (error_code); the HTTP status is the first three digits.
MALFORMED_EVENT = "DCSM.4000"
INVALID_JSON = "DCSM.4001"
INVALID_FIELD = "DCSM.4002"
INVALID_BASE64 = "DCSM.4003"
INVALID_PARAMETER = "DCSM.4004"
CONFIRMATION_REQUIRED = "DCSM.4005"
UNAUTHORIZED = "DCSM.4010"
NO_ROUTE = "DCSM.4040"
NO_SCHEDULE = "DCSM.4041"
METHOD_NOT_ALLOWED = "DCSM.4050"
CONFLICT = "DCSM.4090"
FROZEN = "DCSM.4091"  # a manual action inside a freeze for it, without "override_freeze": true
ROLLOUT_BUSY = "DCSM.4092"  # a manual run of a rollout schedule while another rollout of it is in progress
TOO_LARGE = "DCSM.4130"
THROTTLED = "DCSM.4290"  # DCS throttled a manual action: not sent, retry
INVALID_SCHEDULE = "DCSM.4220"
INTERNAL = "DCSM.5000"
MISCONFIGURED = "DCSM.5001"
UPSTREAM = "DCSM.5020"
NO_TOKEN = "DCSM.5030"
LEDGER_DOWN = "DCSM.5031"
LEDGER_NOT_SHARED = "DCSM.5032"  # a local SQLite ledger while MAX_INSTANCE_NUM allows several instances
NOT_SENT = "DCSM.5033"  # a manual action could not be sent (connection refused, no time left): retry


# -- responses ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Response:
    """A JSON answer; `to_apig` gives the shape APIG needs (anything else, APIG answers 500)."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_apig(self) -> dict[str, Any]:
        """Secrets are masked inside each string of the body, before it is serialized (masking the JSON text
        could change its structure); a lone surrogate is escaped, so the body is always valid UTF-8."""
        text = logs.dumps(logs.masked(self.body))
        headers = {"Content-Type": JSON, **{k: logs.redact(str(v)) for k, v in self.headers.items()}}
        return {"statusCode": self.status, "headers": headers, "body": text, "isBase64Encoded": False}


class HttpError(Exception):
    """A request the function refuses: the status, a DCSM code and a message naming what is wrong."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Mapping[str, str]] = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})
        self.extra = extra  # more keys beside the error triple (e.g. a schedule's problems)

    def response(self) -> Response:
        body = {"error_code": self.code, "error_msg": self.message, "error_ext_msg": None, **self.extra}
        return Response(self.status, body, self.headers)


def error_response(status: int, code: str, message: str) -> dict[str, Any]:
    """An APIG error response (used by app.handle for unexpected errors)."""
    return HttpError(status, code, message).response().to_apig()


# -- the request ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One APIG request. `body` is filled (decoded) only after authentication."""

    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    query: Mapping[str, str]
    request_id: str  # APIG's requestContext.requestId, else the invocation's id
    context: Any = None  # the FunctionGraph context
    raw_body: str = ""
    base64_body: bool = True
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)  # path parameters, e.g. {"name": ...}
    received: float = field(default_factory=time.monotonic)  # when the function got it: APIG_TIMEOUT runs from here

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self, required: bool = True) -> Any:
        """The body as JSON (None for an empty optional body); 400 naming the problem otherwise."""
        if not self.body.strip():
            if required:
                raise HttpError(400, INVALID_JSON, "a JSON body is required")
            return None
        try:
            text = self.body.decode("utf-8-sig")
            return json.loads(text, object_pairs_hook=_unique_keys)
        except UnicodeDecodeError:
            raise HttpError(400, INVALID_JSON, "the body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise HttpError(400, INVALID_JSON, f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                               f"column {exc.colno}") from None
        except RecursionError:
            raise HttpError(400, INVALID_JSON, "the body is not valid JSON: nested too deeply") from None
        except ValueError:  # an integer past sys.get_int_max_str_digits() (4300 digits): json raises a bare one
            raise HttpError(400, INVALID_JSON, "the body is not valid JSON: a number too long to read") from None

    def json_object(self, fields: Mapping[str, type], required: bool = True) -> dict[str, Any]:
        """A JSON object with only `fields`, each of its type (bool is not int); 400 naming the field."""
        data = self.json(required)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise HttpError(400, INVALID_FIELD, f"the body must be a JSON object, not {_json_type(data)}")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise HttpError(400, INVALID_FIELD, f"unknown field(s) {', '.join(map(repr, unknown))}; "
                                                f"known: {', '.join(fields)}")
        for name, kind in fields.items():
            if name in data and not _is(data[name], kind):
                raise HttpError(400, INVALID_FIELD, f"{name}: expected {_type_word(kind)}, got "
                                                    f"{_json_type(data[name])}")
        return data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise HttpError(400, INVALID_JSON, f"the body is not valid JSON: duplicate key {key!r}")
        result[key] = value
    return result


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _type_word(kind: type) -> str:
    return {bool: "true or false", str: "a string", list: "a list", int: "a whole number",
            dict: "an object"}.get(kind, kind.__name__)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def _malformed(message: str) -> HttpError:
    return HttpError(400, MALFORMED_EVENT, f"malformed API Gateway event: {message}")


def _headers(raw: Any) -> dict[str, str]:
    """Header names in any case -> lower case. Two spellings of one name with different values: refused."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _malformed("headers must be an object")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or value is None:
            continue
        key = name.strip().lower()
        if isinstance(value, list):  # multi-value forms: joined as HTTP would, except credentials
            if key == "authorization" and len(value) > 1:
                raise _malformed("header 'authorization' is given more than once: send one bearer token")
            value = ", ".join(str(v) for v in value)
        text = str(value)
        if key in out and out[key] != text:
            raise _malformed(f"header {key!r} is given twice with different values")
        out[key] = text
    return out


def _query(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _malformed("queryStringParameters must be an object")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, list):
            if len(value) != 1:
                raise HttpError(400, INVALID_PARAMETER, f"query parameter {name!r} is given more than once")
            value = value[0]
        if value is not None:
            out[str(name)] = str(value)
    return out


def parse_event(event: dict, context: Any) -> Request:
    """The envelope of an APIG event, as FunctionGraph delivers it; the body stays encoded."""
    method = event.get("httpMethod")
    if not isinstance(method, str) or not re.fullmatch(r"[A-Za-z]{1,16}", method):
        raise _malformed(f"httpMethod must be an HTTP method, got {str(method)[:40]!r}")
    path = event.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise _malformed(f"path must be text starting with '/', got {str(path)[:80]!r}")
    if len(path) > MAX_PATH_CHARS:
        raise _malformed(f"path is longer than {MAX_PATH_CHARS} characters")
    body = event.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise _malformed(f"body must be text (base64 when isBase64Encoded), got {_json_type(body)}")
    encoded = event.get("isBase64Encoded", True)
    if encoded is None:
        encoded = True
    if isinstance(encoded, str) and encoded.lower() in ("true", "false"):
        encoded = encoded.lower() == "true"
    if not isinstance(encoded, bool):
        raise _malformed("isBase64Encoded must be true or false")
    request_context = event.get("requestContext")
    apig_id = request_context.get("requestId") if isinstance(request_context, dict) else None
    request_id = str(apig_id) if isinstance(apig_id, (str, int)) and str(apig_id) else logs.request_id()
    return Request(method.upper(), path.split("?", 1)[0], _headers(event.get("headers")),
                   _query(event.get("queryStringParameters")), request_id[:128], context, body, encoded)


def decode_body(request: Request) -> bytes:
    """The body's bytes: base64-decoded when isBase64Encoded; at most MAX_BODY_BYTES."""
    raw = request.raw_body
    if not raw:
        return b""
    too_large = HttpError(413, TOO_LARGE, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not request.base64_body:
        if len(raw) > MAX_BODY_BYTES:
            raise too_large
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise HttpError(400, INVALID_JSON, "the body is not valid text") from None
    else:
        if len(raw) > (MAX_BODY_BYTES + 2) // 3 * 4 + 1024:  # allow for line breaks in the base64 text
            raise too_large
        compact = re.sub(r"\s+", "", raw) if re.search(r"\s", raw) else raw
        try:
            data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, INVALID_BASE64, "the body is not valid base64, as isBase64Encoded says it "
                                                 "is") from None
    if len(data) > MAX_BODY_BYTES:
        raise too_large
    return data


# -- authentication ---------------------------------------------------------------------------------
def api_token() -> Optional[str]:
    """The configured token, read as Settings.api_token reads it (without parsing the other settings): stripped,
    None when blank; HttpError when it is not UTF-8 text (503) or too short to be a secret (500, a settings error)."""
    try:
        return read_api_token(os.environ)
    except TokenNotText as exc:
        logs.error("api_token", error=str(exc))
        raise HttpError(503, NO_TOKEN, f"{exc}: every route but /health is refused") from None
    except SettingsError as exc:
        raise HttpError(500, MISCONFIGURED, f"invalid settings: {exc}") from None


def authenticate(request: Request) -> None:
    """Bearer API_TOKEN, compared in constant time (of equal-length digests: the length leaks nothing)."""
    token = api_token()
    if not token:
        raise HttpError(503, NO_TOKEN, "API_TOKEN is not configured: every route but /health is refused")
    scheme, _, given = request.header("authorization").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise HttpError(401, UNAUTHORIZED, "missing bearer token: send Authorization: Bearer <API_TOKEN>",
                        {"WWW-Authenticate": 'Bearer realm="dcs-maintenance"'})
    expected = hashlib.sha256(token.encode("utf-8")).digest()
    offered = hashlib.sha256(given.strip().encode("utf-8", "surrogatepass")).digest()
    if not hmac.compare_digest(offered, expected):
        raise HttpError(401, UNAUTHORIZED, "invalid bearer token",
                        {"WWW-Authenticate": 'Bearer realm="dcs-maintenance", error="invalid_token"'})


def calendar_token_ok(request: Request) -> bool:
    """`?token=` equals CALENDAR_TOKEN (at least 16 characters), compared in constant time. Only routes added
    with `calendar_token=True` (GET /calendar.ics: calendar clients cannot send headers) ask this."""
    expected = os.environ.get("CALENDAR_TOKEN") or ""
    given = request.query.get("token", "")
    if len(expected) < 16 or not given:
        return False
    offered = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(offered, hashlib.sha256(expected.encode("utf-8")).digest())


# -- routing ----------------------------------------------------------------------------------------
Handler = Callable[[Request], Response]


def _segments(path: str) -> tuple[str, ...]:
    return tuple(unquote(s) for s in path.split("/") if s)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    func: Handler
    public: bool = False  # no token needed (GET /health only)
    calendar_token: bool = False  # ?token=<CALENDAR_TOKEN> also accepted (GET /calendar.ics only)

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in self.pattern.split("/") if s)

    @property
    def rank(self) -> tuple[int, int]:
        """More segments first, then more literal segments: /schedules/validate beats /schedules/{name}."""
        return len(self.segments), sum(1 for s in self.segments if not s.startswith("{"))

    def match(self, path: tuple[str, ...]) -> Optional[dict[str, str]]:
        """Path parameters when the pattern matches the END of the path, else None."""
        mine = self.segments
        if len(path) < len(mine):
            return None
        params: dict[str, str] = {}
        for want, got in zip(mine, path[len(path) - len(mine):], strict=True):
            if want.startswith("{") and want.endswith("}"):
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


@dataclass(frozen=True)
class Match:
    route: Optional[Route]
    params: dict[str, str]
    allow: tuple[str, ...] = ()  # the path exists with other methods: 405
    public: bool = False


class Resolver:
    """(method, path pattern) -> plain function, in the spirit of Powertools' APIGatewayRestResolver."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, func: Handler, public: bool = False,
            calendar_token: bool = False) -> None:
        self.routes.append(Route(method.upper(), pattern, func, public, calendar_token))

    def resolve(self, method: str, path: str) -> Match:
        segments = _segments(path)
        found = [(route, params) for route in self.routes if (params := route.match(segments)) is not None]
        if not found:
            return Match(None, {})
        best = max(route.rank for route, _ in found)
        found = [(route, params) for route, params in found if route.rank == best]
        public = all(route.public for route, _ in found)
        for route, params in found:
            if route.method == method:
                return Match(route, params, public=route.public)
        return Match(None, {}, tuple(sorted({route.method for route, _ in found})), public)


# -- the entry --------------------------------------------------------------------------------------
def dispatch(request: Request, match: Match) -> Response:
    """Steps 3-5 above, for the route (or the 404/405) that `Resolver.resolve` found."""
    if not match.public and not (match.route is not None and match.route.calendar_token and calendar_token_ok(request)):
        authenticate(request)
    if match.route is None:
        if match.allow:
            raise HttpError(405, METHOD_NOT_ALLOWED, f"{request.method} is not allowed here; allowed: "
                                                     f"{', '.join(match.allow)}", {"Allow": ", ".join(match.allow)})
        raise HttpError(404, NO_ROUTE, f"no route for {request.method} {request.path[:200]}")
    request = replace(request, body=decode_body(request), params=match.params)
    return match.route.func(request)
