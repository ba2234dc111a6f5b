"""Query parameter parsing shared by the list endpoints (instances, backup records)."""

from __future__ import annotations

from collections.abc import Mapping

from . import errors


def int_param(query: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    """An integer query parameter within bounds; DCS.4800 "Invalid <name> in the request." otherwise."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid(name, f"An integer is expected, got {raw!r}.") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise errors.invalid(name, f"It must be {bounds}, got {value}.")
    return value
