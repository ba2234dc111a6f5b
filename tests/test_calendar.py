"""The calendar feed (issue 14): GET /calendar.ics and `calendar`, parsed back with icalendar and with an
independent parser (ics), every event compared with `next` across DST changes; stable UIDs; the ?token=."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import icalendar
import pytest
from conftest import API_TOKEN, NIGHTLY, OTHER_PROJECT, PROJECT, add_staging_and_prod

from dcs_maintenance import calendar_feed
from dcs_maintenance.loader import load_catalog
from dcs_maintenance.schedule_info import upcoming

ROOT = Path(__file__).resolve().parent.parent
CALENDAR_TOKEN = "calendar-read-only-0123456789"

DST_SCHEDULES = """
schedules:
  - name: berlin-nightly
    description: Nightly restart of the Berlin cache.
    action: restart
    cron: "0 2 * * *"           # 2026-03-29: 03:00+02:00 (after the jump); 2026-10-25: once, first pass
    timezone: Europe/Berlin
    instances: {tags: {env: staging}}
  - name: berlin-half-hourly
    action: soft_restart
    cron: "*/30 2 * * *"        # follows real time: nothing on 03-29, four runs on 10-25 (two per pass)
    timezone: Europe/Berlin
    instances: {names: ["staging-*"]}
  - name: new-york-early
    action: restart
    cron: "30 2 * * *"          # 2026-03-08: 03:00-04:00
    timezone: America/New_York
    instances: {ids: [i-stg-1]}
  - name: new-york-window
    window: {stop: "0 1 * * *", start: "30 1 * * sun"}
    timezone: America/New_York
    skip_dates: ["2026-11-03"]
    instances: {tags: {env: dev}}
  - name: switched-off
    enabled: false
    action: restart
    cron: "0 4 * * *"
    instances: {tags: {env: staging}}
"""


def sh(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcs_maintenance", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def events_of(text: str | bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(text).walk("VEVENT"))


def utc_start(event: icalendar.Event) -> datetime:
    start = event.decoded("dtstart")
    assert start.tzinfo is not None, event["summary"]
    return start.astimezone(timezone.utc)


def name_of(event: icalendar.Event) -> str:
    return str(event["summary"]).removeprefix("frozen: ").split(": ", 1)[1].removesuffix(" (dry run)")


def assert_feed_matches_next(text: str | bytes, schedules_dir: Path, after: datetime, days: int) -> int:
    """Every event of the feed is an occurrence `next` lists, and every occurrence `next` lists in the range is
    an event: per schedule, in order, to the second. Returns how many events there were."""
    catalog = load_catalog(schedules_dir)
    assert not catalog.problems
    events = events_of(text)
    until = after + timedelta(days=days)
    for schedule in catalog.schedules:
        mine = sorted((utc_start(e), str(e["categories"].cats[0])) for e in events if name_of(e) == schedule.name)
        if not schedule.enabled:
            assert mine == []
            continue
        expected = [n for n in upcoming(schedule, after, len(mine) + 1)
                    if datetime.fromisoformat(n["utc"].replace("Z", "+00:00")) <= until]
        assert [(datetime.fromisoformat(n["utc"].replace("Z", "+00:00")), n["action"]) for n in expected] == mine, \
            schedule.name
    return len(events)


@pytest.mark.parametrize(("after", "days"), [
    (datetime(2026, 3, 5, tzinfo=timezone.utc), 26),  # New York springs forward 03-08, Berlin 03-29
    (datetime(2026, 10, 20, tzinfo=timezone.utc), 14),  # Berlin falls back 10-25, New York 11-01
], ids=["spring", "autumn"])
def test_every_event_is_an_occurrence_next_lists_across_dst(schedules_dir, write_schedules, after, days):
    write_schedules(DST_SCHEDULES)
    feed = sh("calendar", "--schedules", str(schedules_dir), "--after", after.isoformat(), "--days", str(days))
    assert feed.returncode == 0, feed.stderr
    assert assert_feed_matches_next(feed.stdout, schedules_dir, after, days) > 40
    cal = icalendar.Calendar.from_ical(feed.stdout)
    assert {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")} == {"Europe/Berlin", "America/New_York"}
    assert cal.get_missing_tzids() == set()
    assert cal["VERSION"] == "2.0" and "dcs-maintenance" in str(cal["PRODID"])


def test_dst_days_read_as_cron_reads_them(schedules_dir, write_schedules):
    write_schedules(DST_SCHEDULES)
    feed = sh("calendar", "--schedules", str(schedules_dir), "--after", "2026-03-01T00:00:00Z", "--days", "250")
    events = events_of(feed.stdout)

    def starts(name: str, day: str) -> list[str]:
        return sorted(utc_start(e).isoformat() for e in events if name_of(e) == name
                      and utc_start(e).astimezone(e.decoded("dtstart").tzinfo).date().isoformat() == day)

    assert starts("berlin-nightly", "2026-03-29") == ["2026-03-29T01:00:00+00:00"]  # 03:00+02:00
    assert starts("berlin-nightly", "2026-10-25") == ["2026-10-25T00:00:00+00:00"]  # once, on the first pass
    assert starts("berlin-half-hourly", "2026-03-29") == []
    assert starts("new-york-early", "2026-03-08") == ["2026-03-08T07:00:00+00:00"]  # 03:00-04:00
    half = [e for e in events if name_of(e) == "berlin-half-hourly"
            and utc_start(e).date() == date(2026, 10, 25)]
    assert sorted(utc_start(e).strftime("%H:%M") for e in half) == ["00:00", "00:30", "01:00", "01:30"]
    second_pass = [e for e in half if utc_start(e).hour == 1]
    assert all(e["dtstart"].to_ical().endswith(b"Z") and "TZID" not in e["dtstart"].params
               for e in second_pass)  # a repeated wall time's second pass: written in UTC
    assert all("TZID" in e["dtstart"].params for e in half if e not in second_pass)
    assert not [e for e in events if name_of(e) == "new-york-window" and "20261103" in str(e["uid"])]  # skip date


def test_an_independent_parser_reads_the_same_events(schedules_dir, write_schedules):
    ics = pytest.importorskip("ics")  # requirements-dev.txt: a parser that shares no code with icalendar
    write_schedules(DST_SCHEDULES)
    text = sh("calendar", "--schedules", str(schedules_dir), "--after", "2026-10-20T00:00:00Z", "--days", "14").stdout
    theirs = sorted((e.uid, e.begin.datetime.astimezone(timezone.utc), e.name, e.duration)
                    for e in ics.Calendar(text).events)
    ours = sorted((str(e["uid"]), utc_start(e), str(e["summary"]), e.decoded("duration")) for e in events_of(text))
    assert theirs == ours and len(ours) > 40


def test_uids_are_stable_across_generations_and_unique(schedules_dir, write_schedules):
    write_schedules(DST_SCHEDULES)
    first = events_of(sh("calendar", "--schedules", str(schedules_dir), "--after", "2026-10-20T00:00:00Z",
                         "--days", "14").stdout)
    second = events_of(sh("calendar", "--schedules", str(schedules_dir), "--after", "2026-10-22T06:00:00Z",
                          "--days", "10").stdout)
    uid = {str(e["uid"]): (utc_start(e), str(e["summary"])) for e in first}
    again = {str(e["uid"]): (utc_start(e), str(e["summary"])) for e in second}
    assert len(uid) == len(first) and len(again) == len(second)  # unique within a feed
    both = (datetime(2026, 10, 22, 6, tzinfo=timezone.utc), datetime(2026, 11, 1, 6, tzinfo=timezone.utc))
    overlap = {u for u, (start, _) in uid.items() if both[0] < start <= both[1]}
    assert overlap and overlap <= set(again)  # the same occurrence keeps its UID
    assert all(uid[u] == again[u] for u in overlap)
    assert all(str(e["uid"]).endswith("@dcs-maintenance") for e in second)
    assert "new-york-window-20261101T050000Z-stop@dcs-maintenance" in uid  # 01:00-04:00 on the fall-back day


# -- GET /calendar.ics --------------------------------------------------------------------------------------
@pytest.fixture
def feed_env(monkeypatch, function_env, write_schedules, at_time):
    monkeypatch.setenv("CALENDAR_TOKEN", CALENDAR_TOKEN)
    write_schedules(NIGHTLY.replace("    action: restart",
                                    "    description: Restart staging at 03:00 Beijing time.\n    action: restart"))
    at_time(datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc))
    return function_env


def test_the_route_serves_the_feed_with_the_calendar_token(feed_env, http, capsys):
    answer = http("GET", "/calendar.ics", headers={}, query={"token": CALENDAR_TOKEN, "days": "7"})
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/calendar; charset=utf-8"
    assert answer["isBase64Encoded"] is False
    events = events_of(answer["body"])
    assert [str(e["summary"]) for e in events] == ["restart: nightly"] * 7
    first = events[0]
    assert first.decoded("dtstart") == datetime(2026, 12, 2, 3, 0, tzinfo=first.decoded("dtstart").tzinfo)
    assert str(first["dtstart"].params["TZID"]) == "Asia/Shanghai"
    assert str(first["uid"]) == "nightly-20261201T190000Z@dcs-maintenance"
    description = str(first["description"])
    assert "Restart staging at 03:00 Beijing time." in description
    assert "Instances: tags env=staging" in description and "Restart at 03:00 every day" in description
    logged = capsys.readouterr().out
    assert CALENDAR_TOKEN not in logged and CALENDAR_TOKEN not in answer["body"]
    assert '"route": "/calendar.ics"' in logged and '"status": 200' in logged


@pytest.mark.parametrize(("path", "query", "headers", "status"), [
    ("/calendar.ics", {"token": "calendar-read-only-wrong-token"}, {}, 401),
    ("/calendar.ics", {}, {}, 401),
    ("/calendar.ics", {"token": ""}, {}, 401),
    ("/calendar.ics", {}, {"Authorization": f"Bearer {API_TOKEN}"}, 200),  # the bearer token works too
    ("/calendar.ics", {"token": CALENDAR_TOKEN, "days": "400"}, {}, 400),
    ("/calendar.ics", {"token": CALENDAR_TOKEN, "resolve": "maybe"}, {}, 400),
    ("/calendar.ics", {"token": CALENDAR_TOKEN, "tz": "UTC"}, {}, 400),
    ("/schedules", {"token": CALENDAR_TOKEN}, {}, 401),  # the calendar token opens this route only
    ("/history", {"token": CALENDAR_TOKEN}, {}, 401),
    ("/plan", {"token": CALENDAR_TOKEN}, {}, 401),
    ("/nowhere", {"token": CALENDAR_TOKEN}, {}, 401),
], ids=["wrong-token", "no-token", "empty-token", "bearer", "too-many-days", "bad-resolve", "unknown-parameter",
        "schedules", "history", "plan", "unknown-path"])
def test_the_token_opens_the_calendar_and_nothing_else(feed_env, http, path, query, headers, status):
    assert http("GET", path, headers=headers, query=query)["statusCode"] == status


def test_without_a_calendar_token_the_route_needs_the_bearer_token(feed_env, http, monkeypatch):
    monkeypatch.delenv("CALENDAR_TOKEN")
    assert http("GET", "/calendar.ics", headers={}, query={"token": CALENDAR_TOKEN})["statusCode"] == 401
    assert http("GET", "/calendar.ics")["statusCode"] == 200
    monkeypatch.setenv("CALENDAR_TOKEN", "short-token")  # under 16 characters: never accepted
    assert http("GET", "/calendar.ics", headers={}, query={"token": "short-token"})["statusCode"] == 401


def test_resolve_names_the_targets_with_one_list_call_per_project(feed_env, emulator, http, write_schedules):
    add_staging_and_prod(emulator)
    emulator.add_instance(OTHER_PROJECT, instance_id="i-o-1", name="other-staging", tags={"env": "staging"})
    emulator.add_instance(OTHER_PROJECT, instance_id="i-o-2", name="other-legacy", tags={"env": "staging"},
                          engine_version="3.0")
    write_schedules(f"""
schedules:
  - name: other-project
    action: flush
    allow_flush: true
    cron: "0 5 * * *"
    project_id: {OTHER_PROJECT}
    instances: {{tags: {{env: staging}}}}
  - name: other-project-too
    action: restart
    cron: "0 6 * * *"
    project_id: {OTHER_PROJECT}
    instances: {{names: ["other-*"]}}
""", "other.yaml")
    emulator.clear_log()
    answer = http("GET", "/calendar.ics", headers={}, query={"token": CALENDAR_TOKEN, "days": "2", "resolve": "true"})
    assert answer["statusCode"] == 200
    lists = [r["project_id"] for r in emulator.requests if r["endpoint"] == "list"]
    assert sorted(lists) == sorted([PROJECT, OTHER_PROJECT])
    by_name = {name_of(e): str(e["description"]) for e in events_of(answer["body"])}
    assert "Targets as listed at 2026-12-01T12:00:0" in by_name["nightly"]
    assert "(2): staging-api (i-stg-1), staging-jobs (i-stg-2)" in by_name["nightly"]
    assert "staging-keep (i-stg-3): protected by tag maintenance-protect=true" in by_name["nightly"]
    # a target the action would skip as listed now says so: the calendar must not promise a flush DCS refuses
    assert ("(2): other-staging (i-o-1), other-legacy (i-o-2) [not eligible as listed: flush needs Redis 4.0 or "
            "later, is 3.0]") in by_name["other-project"]
    assert "other-legacy (i-o-2)" in by_name["other-project-too"]  # a restart takes Redis 3.0
    assert "not eligible" not in by_name["other-project-too"] + by_name["nightly"]
    assert [r for r in emulator.requests if r["endpoint"] == "status"] == []  # a read, nothing else


def test_a_listing_error_is_shown_in_the_events_not_fatal(feed_env, emulator, http):
    from dcs_emulator import Fault

    add_staging_and_prod(emulator)
    emulator.inject(Fault(endpoint="list", kind="dcs_error", times=None, status=403, error_code="DCS.4030",
                          error_msg="forbidden"))
    answer = http("GET", "/calendar.ics", headers={}, query={"token": CALENDAR_TOKEN, "resolve": "true"})
    assert answer["statusCode"] == 200
    assert "Targets: could not list the instances of project" in str(events_of(answer["body"])[0]["description"])


def test_the_feed_route_imports_icalendar_and_nothing_else_does(feed_env, schedules_dir):
    code = """
import json, sys
import handler
from dcs_maintenance.tools.local import LocalContext, apig_event
auth = {"Authorization": "Bearer " + sys.argv[1]}
before = handler.handler(apig_event("GET", "/schedules", None, auth), LocalContext())["statusCode"]
seen = "icalendar" in sys.modules
after = handler.handler(apig_event("GET", "/calendar.ics", None, auth), LocalContext())["statusCode"]
print(json.dumps([before, seen, after, "icalendar" in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", code, API_TOKEN], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=os.environ)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [200, False, 200, True], done.stderr


# -- freezes, the command line ----------------------------------------------------------------------------
FROZEN_SCHEDULES = """
defaults: {timezone: Europe/Berlin}
schedules:
  - name: berlin-nightly
    action: restart
    cron: "0 2 * * *"
    instances: {tags: {env: staging}}
  - name: berlin-noon
    action: soft_restart
    cron: "0 12 * * *"
    instances: {tags: {env: staging}}
  - name: dev-nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {tags: {env: dev}}
freezes:
  - name: year-end
    from: "2026-12-20T00:00"
    until: "2027-01-04T00:00"
    reason: year-end change freeze
    actions: [restart, stop, start]
  - name: release-night
    from: "2026-12-10T18:00"
    until: "2026-12-11T06:00"
    timezone: Asia/Shanghai
    reason: release night
  - name: autumn-weekend
    from: "2026-10-24T12:00"
    until: "2026-10-25T02:30"      # Berlin falls back at 03:00: 02:30 twice; a freeze ends on the second pass
    reason: data centre move
    actions: [soft_restart]
"""
# What the freezes above cover, in UTC, written out by hand: (from, until, actions).
FROZEN_SPANS = [
    (datetime(2026, 12, 19, 23, tzinfo=timezone.utc), datetime(2027, 1, 3, 23, tzinfo=timezone.utc),
     {"restart", "stop", "start"}),
    (datetime(2026, 12, 10, 10, tzinfo=timezone.utc), datetime(2026, 12, 10, 22, tzinfo=timezone.utc),
     {"restart", "soft_restart", "flush", "stop", "start"}),
    (datetime(2026, 10, 24, 10, tzinfo=timezone.utc), datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc),
     {"soft_restart"}),
]


def test_freezes_are_on_their_zone_and_the_occurrences_they_hold_back_are_marked(schedules_dir, write_schedules):
    """A real schedules folder, loaded by the loader, through the `calendar` command: each freeze is an event on
    its own zone (with its VTIMEZONE), and every occurrence inside a freeze for its action is still listed, its
    summary prefixed `frozen: `; a window's starts never are (they always go through)."""
    write_schedules(FROZEN_SCHEDULES)
    catalog = load_catalog(schedules_dir)
    assert not catalog.problems and sorted(f.name for f in catalog.freezes) == [
        "autumn-weekend", "release-night", "year-end"]
    feed = sh("calendar", "--schedules", str(schedules_dir), "--after", "2026-10-20T00:00:00Z", "--days", "90")
    assert feed.returncode == 0, feed.stderr
    cal = icalendar.Calendar.from_ical(feed.stdout)
    events = list(cal.walk("VEVENT"))
    assert {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")} == {"Europe/Berlin", "Asia/Shanghai"}
    assert cal.get_missing_tzids() == set()

    freezes = {str(e["summary"]): e for e in events if "freeze" in e["categories"].cats}
    assert list(freezes) == ["freeze: autumn-weekend", "freeze: release-night", "freeze: year-end"]
    year_end, release, autumn = (freezes[f"freeze: {n}"] for n in ("year-end", "release-night", "autumn-weekend"))
    assert year_end["dtstart"].to_ical() == b"20261220T000000" and year_end["dtend"].to_ical() == b"20270104T000000"
    assert str(year_end["dtstart"].params["TZID"]) == str(year_end["dtend"].params["TZID"]) == "Europe/Berlin"
    assert release["dtstart"].to_ical() == b"20261210T180000" and release["dtend"].to_ical() == b"20261211T060000"
    assert str(release["dtstart"].params["TZID"]) == "Asia/Shanghai"
    assert str(autumn["dtstart"].params["TZID"]) == "Europe/Berlin"
    assert autumn["dtstart"].to_ical() == b"20261024T120000"
    assert autumn["dtend"].to_ical() == b"20261025T013000Z"  # the repeated 02:30's second pass: in UTC
    for freeze in catalog.freezes:  # the same instants as the loader's
        event = freezes[f"freeze: {freeze.name}"]
        assert (event.decoded("dtstart"), event.decoded("dtend")) == (freeze.start, freeze.end)
    assert "release night" in str(release["description"]) and "No maintenance action is sent" in str(
        release["description"])
    assert "Frozen actions: restart, stop, start (window starts still go through)." in str(year_end["description"])

    occurrences = [e for e in events if "freeze" not in e["categories"].cats]
    # frozen ones included: the feed still lists every occurrence `next` lists
    assert_feed_matches_next(feed.stdout, schedules_dir, datetime(2026, 10, 20, tzinfo=timezone.utc), 90)
    frozen: dict[str, int] = {}
    for event in occurrences:
        action, when = str(event["categories"].cats[0]), utc_start(event)
        window_start = name_of(event) == "dev-nights" and action == "start"
        expected = not window_start and any(a <= when < b and action in acts for a, b, acts in FROZEN_SPANS)
        summary = str(event["summary"])
        assert summary.startswith("frozen: ") == expected, (summary, when)
        if expected:
            assert summary == f"frozen: {action}: {name_of(event)}"
            frozen[action] = frozen.get(action, 0) + 1
    # year-end: 15 nightly restarts and 15 evening stops; release night (Shanghai 18:00-06:00): Berlin's noon soft
    # restart and 20:00 stop of 12-10; autumn-weekend: the noon soft restart of 10-24, at its very `from`
    assert frozen == {"restart": 15, "stop": 16, "soft_restart": 2}
    starts = [e for e in occurrences if name_of(e) == "dev-nights" and str(e["categories"].cats[0]) == "start"
              and FROZEN_SPANS[0][0] <= utc_start(e) < FROZEN_SPANS[0][1]]
    assert len(starts) == 15 and not any(str(e["summary"]).startswith("frozen") for e in starts)


def test_freeze_events_overlap_the_range_and_keep_their_uid(schedules_dir, write_schedules):
    write_schedules(FROZEN_SCHEDULES)
    catalog = load_catalog(schedules_dir)
    after = datetime(2026, 12, 1, tzinfo=timezone.utc)
    events = calendar_feed.freeze_events(catalog.freezes, after, after + timedelta(days=30))
    assert [e.summary for e in events] == ["freeze: release-night", "freeze: year-end"]  # autumn is over
    release, year_end = events
    assert release.start.isoformat() == "2026-12-10T18:00:00+08:00" and release.end.isoformat() == (
        "2026-12-11T06:00:00+08:00")
    assert release.uid == "freeze-release-night-20261210T100000Z@dcs-maintenance"
    inside = calendar_feed.freeze_events(catalog.freezes, datetime(2026, 12, 25, tzinfo=timezone.utc),
                                         datetime(2026, 12, 26, tzinfo=timezone.utc))
    assert [(e.uid, e.start) for e in inside] == [(year_end.uid, year_end.start)]  # begun before: still listed
    data = release.to_dict()
    assert data["start_utc"] == "2026-12-10T10:00:00Z" and data["end_utc"] == "2026-12-10T22:00:00Z"
    assert "Schedule file: " in release.description and "Asia/Shanghai" in release.description


def test_the_calendar_command_writes_a_file_or_json(schedules_dir, write_schedules, tmp_path):
    write_schedules(DST_SCHEDULES.replace("  action: soft_restart\n", "  action: soft_restart\n    dry_run: true\n"))
    out = tmp_path / "feed.ics"
    done = sh("calendar", "--schedules", str(schedules_dir), "--after", "2026-10-20T00:00:00Z", "--days", "3",
              "--output", str(out))
    assert done.returncode == 0 and done.stdout == ""
    assert "event(s) from 2026-10-20T00:00:00+00:00 for 3 day(s) written to" in done.stderr
    data = out.read_bytes()
    assert data.startswith(b"BEGIN:VCALENDAR\r\n") and data.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))  # folded as RFC 5545 3.1 requires
    summaries = {str(e["summary"]) for e in events_of(data)}
    assert "soft_restart: berlin-half-hourly (dry run)" in summaries and "restart: berlin-nightly" in summaries
    as_json = json.loads(sh("calendar", "--schedules", str(schedules_dir), "--after", "2026-10-20T00:00:00Z",
                            "--days", "3", "--json").stdout)
    assert {e["uid"] for e in as_json} == {str(e["uid"]) for e in events_of(data)}
    assert sh("calendar", "--days", "0", "--schedules", str(schedules_dir)).returncode == 2


def test_the_calendar_command_resolves_targets_through_the_function_settings(feed_env, emulator, capsys):
    from dcs_maintenance.tools import cli

    add_staging_and_prod(emulator)
    code = cli.main(["calendar", "--resolve", "--days", "1", "--after", "2026-12-01T12:00:00Z"])
    out, err = capsys.readouterr()
    assert code == 0
    [event] = events_of(out)
    assert "(2): staging-api (i-stg-1), staging-jobs (i-stg-2)" in str(event["description"])
    assert [r["endpoint"] for r in emulator.requests] == ["list"]
