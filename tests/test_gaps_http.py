"""Issue 16's HTTP gaps and the harness's reset, each test killing a named mutant.

Authorization whitespace. RFC 6750 section 2.1 spells the credentials `"Bearer" 1*SP b64token`: one OR MORE spaces
between the scheme and the token, so `Bearer  <token>` is a valid header and must be accepted. RFC 9110 section 5.5
(formerly RFC 7230 section 3.2.4) makes the whitespace around a field value no part of the value: a parser strips
it, so ` Bearer <token>` (a leading space, as a proxy or a hand-written curl may send it) is the same header and
must be accepted too. A tab is not `SP`: `Bearer<TAB><token>` does not name the Bearer scheme and is refused, as
a strict reading of the grammar says. http_api.authenticate does exactly this (strip the value, split at the first
space, strip the token); these tests pin it.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timezone

import pytest
from conftest import API_TOKEN, PROJECT, reset_process_state

from dcs_maintenance import clock, fastpath, invocation, loader, logs, rollout_runner, runner
from dcs_maintenance.ledger.base import LedgerError


def body(response: dict) -> dict:
    return json.loads(response["body"])


# -- Authorization: Bearer with extra whitespace -------------------------------------------------------------
def test_bearer_with_two_spaces_before_the_token_is_accepted(http, emulator):
    """RFC 6750: `"Bearer" 1*SP b64token`. kills: http_api.py `given.strip().encode(...)` -> `given.encode(...)`
    (the token would be compared with its extra leading space: 401)."""
    response = http("GET", "/schedules", headers={"Authorization": f"Bearer  {API_TOKEN}"})
    assert response["statusCode"] == 200, response["body"]
    assert body(response)["count"] == 0


def test_bearer_after_a_leading_space_is_accepted(http, emulator):
    """RFC 9110 5.5: whitespace around a field value is not part of it. kills: http_api.py
    `request.header("authorization").strip().partition(" ")` -> `request.header("authorization").partition(" ")`
    (the scheme would be read as "": 401 "missing bearer token")."""
    for value in (f" Bearer {API_TOKEN}", f"\tBearer {API_TOKEN}", f"  Bearer   {API_TOKEN}  "):
        response = http("GET", "/schedules", headers={"Authorization": value})
        assert response["statusCode"] == 200, (value, response["body"])


def test_a_tab_between_scheme_and_token_is_not_the_bearer_scheme(http, emulator):
    """RFC 6750/7235 separate scheme and token by SP only. kills: http_api.py reading a tab as the separator
    (`.strip().partition(" ")` -> `.strip().replace("\\t", " ").partition(" ")`: 200 instead of 401)."""
    response = http("GET", "/schedules", headers={"Authorization": f"Bearer\t{API_TOKEN}"})
    assert response["statusCode"] == 401 and body(response)["error_code"] == "DCSM.4010"
    assert response["headers"]["WWW-Authenticate"].startswith("Bearer")


# -- the harness: every test starts as a cold function instance ------------------------------------------------
SCHEDULES = """
schedules:
  - name: nightly
    action: restart
    cron: "0 3 * * *"
    instances: {tags: {env: staging}}
  - name: dev-nights
    window: {stop: "0 20 * * *", start: "0 8 * * *"}
    instances: {tags: {env: dev}}
"""


def test_reset_process_state_forgets_everything_a_warm_instance_remembers(emulator, write_schedules, tick, http,
                                                                         function_env):
    """Fill every process-wide cache and lever the package has (a tick, GET /schedules, the clock levers, logs),
    then reset_process_state must put each back as a cold start has it.
    kills (each seen failing): dropping any line of conftest.reset_process_state (e.g. `runner._windows_of[:] = ...`,
    `invocation.close_ledgers()`, `logs.bind("")`, `logs.configure("INFO")`), and fastpath.clear without
    `_tick[:] = [None] * len(_tick)`."""
    emulator.add_instance(PROJECT, instance_id="i-stg-1", name="staging-api", tags={"env": "staging"})
    write_schedules(SCHEDULES)
    when = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    tick(when)
    assert http("GET", "/schedules")["statusCode"] == 200
    clock.set_as_of(lambda: when)
    clock.set_sleep(lambda _seconds: None)
    logs.configure("DEBUG", io.StringIO())

    from dcs_maintenance.routes import schedules as schedules_route

    handler = next(h for h in logs._logger.handlers if h.stream is not None)
    filled = {
        "fastpath next fires": fastpath._next_fire, "fastpath windows": fastpath._windows,
        "fastpath last tick": fastpath._tick[0], "loader files": loader._FILE_CACHE,
        "loader catalogs": loader._CATALOG_CACHE, "runner windows memo": runner._windows_of[0],
        "rollout keys memo": rollout_runner._keys_of[0], "schedules page order": schedules_route._order[0],
        "ledgers": invocation._ledgers,
    }
    assert all(filled.values()), [name for name, value in filled.items() if not value]
    assert clock.simulated() and clock._as_of is not None and clock._sleep is not clock.time.sleep
    assert logs.request_id() != "-" and logs.redact(API_TOKEN) == logs.MASK
    assert logs._logger.level == logging.DEBUG
    [ledger] = invocation._ledgers.values()

    reset_process_state()

    assert (fastpath._next_fire, fastpath._windows, fastpath._tick) == ({}, {}, [None] * 5)
    assert (loader._FILE_CACHE, loader._CATALOG_CACHE) == ({}, {})
    assert runner._windows_of == [None, ()] and rollout_runner._keys_of == [None, {}]
    assert schedules_route._order == [None, None, ()]
    assert invocation._ledgers == {}
    with pytest.raises(LedgerError, match="is closed"):  # closed, not merely forgotten: none outlives its test
        ledger.get_meta("x")
    assert not clock.simulated() and clock._as_of is None and clock._sleep is clock.time.sleep
    assert logs.request_id() == "-" and logs.redact(API_TOKEN) == API_TOKEN
    assert logs._logger.level == logging.INFO and handler.stream is None
