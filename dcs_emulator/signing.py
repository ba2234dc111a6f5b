"""Server-side check of the SDK-HMAC-SHA256 signature that huaweicloudsdkcore's ``Signer`` produces.

The emulator does not import the SDK: this module re-derives the canonical request from what arrived on the wire,
so a client that signs differently from the SDK (path or query encoding, a missing header) fails here as it would
against API Gateway.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_HASH = hashlib.sha256(b"").hexdigest()
CONTENT_HASH_HEADER = "x-sdk-content-sha256"


class SignatureError(Exception):
    """The request is not signed with the expected credentials; the message says why, never the secret."""


@dataclass(frozen=True)
class AuthHeader:
    access: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> AuthHeader:
    """Split ``SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex``."""
    if not value:
        raise SignatureError("missing Authorization header")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(f"unsupported signing algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    missing = [k for k in ("Access", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise SignatureError(f"Authorization header lacks {', '.join(missing)}")
    signed = tuple(h for h in fields["SignedHeaders"].split(";") if h)
    return AuthHeader(fields["Access"], signed, fields["Signature"])


def canonical_uri(raw_path: str) -> str:
    """Each segment percent-quoted with only ``~`` safe, and a trailing ``/``, as the SDK signs it."""
    path = "/".join(quote(segment, safe="~") for segment in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


def canonical_query(raw_query: str) -> str:
    """Sorted ``k=v`` pairs, both sides quoted with only ``~`` safe."""
    pairs = sorted(parse_qsl(raw_query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body: bytes,
) -> str:
    """The six-line canonical request; ``headers`` must be keyed in lower case."""
    lines = []
    for name in signed_headers:
        if name not in headers:
            raise SignatureError(f"signed header {name!r} is missing from the request")
        lines.append(f"{name}:{headers[name].strip()}")
    payload_hash = (headers.get(CONTENT_HASH_HEADER) or hashlib.sha256(body).hexdigest()) if body else EMPTY_BODY_HASH
    return "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            "\n".join(lines) + "\n",
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(sdk_date: str, canonical: str) -> str:
    return f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def sign(secret_key: str, text: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str],
    now: datetime | None = None,
    max_skew: float = 900.0,
) -> str:
    """Check the request's signature against ``credentials`` (AK -> SK); return the AK used.

    ``headers`` must be keyed in lower case with values already decoded as UTF-8. ``max_skew`` mirrors API
    Gateway's 15-minute tolerance on ``X-Sdk-Date``; a negative value disables the check.
    """
    auth = parse_authorization(headers.get("authorization"))
    secret = credentials.get(auth.access)
    if secret is None:
        raise SignatureError(f"unknown access key {auth.access!r}")
    sdk_date = headers.get("x-sdk-date")
    if not sdk_date:
        raise SignatureError("missing X-Sdk-Date header")
    try:
        signed_at = datetime.strptime(sdk_date.strip(), DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise SignatureError(f"X-Sdk-Date {sdk_date!r} is not in {DATE_FORMAT} format") from None
    if max_skew >= 0:
        current = now or datetime.now(timezone.utc)
        if abs(current - signed_at) > timedelta(seconds=max_skew):
            raise SignatureError("X-Sdk-Date is too far from the server's clock (request expired)")
    if "x-sdk-date" not in auth.signed_headers:
        raise SignatureError("X-Sdk-Date is not among the signed headers")
    canonical = canonical_request(method, raw_path, raw_query, headers, auth.signed_headers, body)
    expected = sign(secret, string_to_sign(sdk_date.strip(), canonical))
    if not hmac.compare_digest(expected, auth.signature.lower()):
        raise SignatureError("signature does not match")
    return auth.access
