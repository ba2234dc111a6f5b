"""The ledger: watermarks, exactly-once claims and window states, kept between invocations.

`open_ledger(LEDGER_URL)` picks the backend:
- `sqlite:///abs/path` (`sqlite:////tmp/x.sqlite3` works too) or `sqlite:///:memory:`;
- `redis://[[user]:password@]host[:port][/db][?prefix=dcsm:&socket_timeout=5&socket_connect_timeout=5]`,
  and `rediss://...` for TLS (also `ssl_cert_reqs=none|optional|required`, `ssl_ca_certs=/path`).

Importing this package is cheap: neither sqlite3 nor redis is imported until a ledger is opened.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .base import (
    CLAIM_TTL,
    CLAIMED,
    ClaimRecord,
    Ledger,
    LedgerError,
    WindowState,
    claim_key,
)

if TYPE_CHECKING:  # pragma: no cover
    from .redis import RedisLedger
    from .sqlite import SqliteLedger

__all__ = [
    "CLAIMED",
    "CLAIM_TTL",
    "ClaimRecord",
    "Ledger",
    "LedgerError",
    "RedisLedger",
    "SqliteLedger",
    "WindowState",
    "claim_key",
    "default_ledger_url",
    "open_ledger",
    "redact_url",
]

DEFAULT_LEDGER_FILE = "dcs-maintenance.sqlite3"

_REDIS_OPTIONS = ("prefix", "socket_timeout", "socket_connect_timeout")
_REDISS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs")
_CERT_REQS = ("none", "optional", "required")
_SECRET_PARAM = re.compile(r"((?:password|passwd|pass|pwd|auth|token|secret)[^=&#]*=)[^&#]*", re.IGNORECASE)


def default_ledger_url() -> str:
    """`sqlite:///<tempdir>/dcs-maintenance.sqlite3` (FunctionGraph's writable /tmp)."""
    import tempfile

    return f"sqlite:///{tempfile.gettempdir()}/{DEFAULT_LEDGER_FILE}"


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***`, safe for logs and error messages.

    Errs towards hiding: everything between `scheme://` and the last `@` is userinfo, so a
    password with an unescaped `@` or `/` is hidden too; secret-looking query values are hidden.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        user, colon, _ = userinfo.partition(":")
        shown = f"{user}:***" if colon and "/" not in user else "***"
        rest = f"{shown}@{rest[at + 1 :]}"
    rest = _SECRET_PARAM.sub(r"\1***", rest)
    return f"{scheme}{sep}{rest}"


def open_ledger(url: str) -> Ledger:
    """The ledger LEDGER_URL names. A malformed URL or unknown scheme raises ValueError."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("LEDGER_URL is empty: use sqlite:///path or redis://host:port/db")
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or not scheme:
        raise ValueError(
            f"LEDGER_URL {redact_url(url)!r} is not a URL: use sqlite:///path, redis://host:port/db or rediss://..."
        )
    if scheme == "sqlite":
        from .sqlite import SqliteLedger

        return SqliteLedger(_sqlite_path(url))
    if scheme in ("redis", "rediss"):
        from .redis import RedisLedger

        return RedisLedger(**_redis_options(url, scheme))
    raise ValueError(f"LEDGER_URL {redact_url(url)!r}: unknown scheme {scheme!r} (expected sqlite, redis or rediss)")


def _sqlite_path(url: str) -> str:
    rest = url[len("sqlite://") :]
    if not rest.startswith("/"):
        raise ValueError(
            f"LEDGER_URL {redact_url(url)!r}: an SQLite ledger URL is sqlite:///absolute/path (three slashes, no host)"
        )
    if "?" in rest or "#" in rest:
        raise ValueError(f"LEDGER_URL {redact_url(url)!r}: an SQLite ledger URL takes no query or fragment")
    if rest == "/:memory:":
        return ":memory:"
    path = "/" + rest.lstrip("/")
    if path == "/" or path.endswith("/"):
        raise ValueError(f"LEDGER_URL {redact_url(url)!r}: the SQLite ledger path names no file")
    return path


def _redis_options(url: str, scheme: str) -> dict[str, Any]:
    from urllib.parse import parse_qsl, unquote, urlsplit

    shown = redact_url(url)

    def bad(why: str) -> ValueError:
        return ValueError(f"LEDGER_URL {shown!r}: {why}")

    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise bad("malformed Redis URL (a password with special characters must be %-encoded)") from None
    if port == 0:
        raise bad("port 0 is not a Redis port")
    if not host:
        raise bad("no host (expected redis://[:password@]host[:port][/db])")
    if parts.fragment:
        raise bad("a Redis ledger URL takes no fragment")
    path = parts.path.strip("/")
    if not path:
        db = 0
    elif path.isdigit() and path.isascii():
        db = int(path)
    else:
        raise bad("the path must be a database number, e.g. /0")
    options: dict[str, Any] = {
        "host": host,
        "port": 6379 if port is None else port,
        "db": db,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "ssl": scheme == "rediss",
        "display_url": shown,
    }
    allowed = _REDIS_OPTIONS + (_REDISS_OPTIONS if scheme == "rediss" else ())
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise bad("malformed query string") from None
    for name, value in query:
        if name not in allowed:
            raise bad(f"unknown option {name!r} (allowed: {', '.join(allowed)})")
        if name in ("socket_timeout", "socket_connect_timeout"):
            try:
                seconds = float(value)
            except ValueError:
                seconds = -1.0
            if not 0 < seconds <= 300:
                raise bad(f"{name} must be a number of seconds in (0, 300]")
            options[name] = seconds
        elif name == "ssl_cert_reqs":
            if value.lower() not in _CERT_REQS:
                raise bad(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
            options[name] = value.lower()
        else:
            options[name] = value
    return options


def __getattr__(name: str) -> Any:
    # The backend classes, imported on first use so that `import dcs_maintenance.ledger` stays cheap.
    if name == "SqliteLedger":
        from .sqlite import SqliteLedger

        return SqliteLedger
    if name == "RedisLedger":
        from .redis import RedisLedger

        return RedisLedger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
