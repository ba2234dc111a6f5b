"""GET /schedules in pages (issue 15): `limit` (default 100, at most 1000) and `cursor` (the previous page's
`next_cursor`); the pages together are the whole listing, each entry once, in (name, file) order; `next` is as
it was; a bad limit or cursor is a 400 naming the parameter."""

from __future__ import annotations

import json

import pytest
from conftest import t

BROKEN = """
schedules:
  - {name: aaa-broken, action: restart, cron: "0 0 31 2 *", instances: {names: [x]}}
  - {name: zzz-broken, action: restart, cron: "61 * * * *", instances: {names: [x]}}
"""


def _many(n: int) -> str:
    items = [{"name": f"s-{(i * 7919) % n:04d}", "action": "restart", "cron": f"{i % 60} {i % 24} * * *",
              "timezone": ("UTC", "Europe/Berlin", "Asia/Shanghai")[i % 3], "instances": {"names": [f"x-{i}"]}}
             for i in range(n)]
    return json.dumps({"schedules": items})


def body(response: dict) -> dict:
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def _walk(http, **query) -> list[dict]:
    pages, cursor = [], None
    while True:
        params = dict(query, **({"cursor": cursor} if cursor else {}))
        data = body(http("GET", "/schedules", query=params or None))
        pages.append(data)
        cursor = data["next_cursor"]
        if cursor is None:
            return pages


def test_pages_together_are_the_whole_listing(http, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:00Z"))
    write_schedules(_many(250), "many.json")
    write_schedules(BROKEN, "broken.yaml")
    pages = _walk(http)
    assert [len(p["schedules"]) for p in pages] == [100, 100, 52]
    assert all(p["count"] == 252 and p["limit"] == 100 and p["valid"] is False for p in pages)
    entries = [e for p in pages for e in p["schedules"]]
    keys = [(e["name"], e["file"]) for e in entries]
    assert keys == sorted(keys) and len(set(keys)) == 252
    assert keys[0][0] == "aaa-broken" and keys[-1][0] == "zzz-broken"
    assert entries[0]["valid"] is False and entries[0]["problems"][0]["path"] == "$.schedules[0].cron"
    assert all(p["problems"] == pages[0]["problems"] and p["files"] == pages[0]["files"] for p in pages)
    # One page of 1000 holds the same entries, computed the same way (next occurrences included).
    whole = body(http("GET", "/schedules", query={"limit": "1000"}))
    assert whole["next_cursor"] is None and whole["schedules"] == entries


def test_next_is_unchanged(http, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:00Z"))
    write_schedules("""
schedules:
  - {name: nightly, action: restart, cron: "0 3 * * *", timezone: Asia/Shanghai, instances: {tags: {env: staging}}}
""")
    entry = body(http("GET", "/schedules", query={"limit": "1"}))["schedules"][0]
    assert entry["next"][0] == {"action": "restart", "utc": "2026-12-01T19:00:00Z",
                                "local": "2026-12-02T03:00:00+08:00"}
    assert len(entry["next"]) == 5


def test_a_schedule_added_between_pages_moves_no_other(http, write_schedules, at_time):
    at_time(t("2026-12-01T10:00:00Z"))
    write_schedules(_many(30), "many.json")
    first = body(http("GET", "/schedules", query={"limit": "10"}))
    write_schedules(_many(30).replace('"s-0000"', '"s-0000-new"'), "many.json")  # renamed before the cursor
    names, cursor = [e["name"] for e in first["schedules"]], first["next_cursor"]
    while cursor:
        data = body(http("GET", "/schedules", query={"limit": "10", "cursor": cursor}))
        names += [e["name"] for e in data["schedules"]]
        cursor = data["next_cursor"]
    assert names == [f"s-{i:04d}" for i in range(30)]  # s-0000-new sorts before the cursor: not repeated


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"limit": "-1"},
                                   {"limit": "1.5"}, {"cursor": "not-a-cursor!"}, {"cursor": "bm9wZQ"}])
def test_bad_paging_parameters_are_400(http, write_schedules, query):
    write_schedules(_many(3), "many.json")
    response = http("GET", "/schedules", query=query)
    assert response["statusCode"] == 400
    data = json.loads(response["body"])
    assert data["error_code"] == "DCSM.4004" and next(iter(query)) in data["error_msg"]
