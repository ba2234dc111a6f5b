"""What several routes need: the settings, the schedules and the invocation's runtime, as HTTP errors."""

from __future__ import annotations

from dcs_maintenance import invocation
from dcs_maintenance.http_api import LEDGER_DOWN, MISCONFIGURED, HttpError, Request
from dcs_maintenance.ledger.base import LedgerError
from dcs_maintenance.loader import Catalog, load_catalog
from dcs_maintenance.runner import Runtime
from dcs_maintenance.settings import Settings, SettingsError, load_settings


def settings() -> Settings:
    """The function's settings; invalid ones are the operator's problem: 500 naming each."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise HttpError(500, MISCONFIGURED, str(exc)) from None


def catalog(current: Settings) -> Catalog:
    return load_catalog(current.schedules_dir)


def runtime(current: Settings, request: Request) -> Runtime:
    """The invocation's runtime for this request: the shared ledger, gateways made on first use, and a time
    budget that ends with the API Gateway's backend timeout (APIG_TIMEOUT from the request's arrival) or the
    function's, whichever comes first: a call that could not finish before APIG gives up is not started."""
    try:
        return invocation.runtime(current, request.context, deadline=request.received + current.apig_timeout)
    except LedgerError as exc:
        raise HttpError(503, LEDGER_DOWN, f"the ledger is unavailable: {exc}") from None
    except ValueError as exc:  # a malformed LEDGER_URL
        raise HttpError(500, MISCONFIGURED, str(exc)) from None
