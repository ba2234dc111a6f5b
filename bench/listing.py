"""Benchmark 7: GET /schedules over 10,000 schedules, in pages (issue 15).

In one process, through `handler.handler` with API Gateway events (the catalog loaded by a first request, as
on a warm function instance):
- the full listing: every page at `limit=1000` (10 requests), each entry with its description and next 5
  occurrences;
- one page: the default `limit` (100), the first page and one from the middle (with its `cursor`)
  <= 0.05x the full listing.
The pages together must hold every schedule once, in order.

Usage: python bench/listing.py [--reps N] [--schedules N]
"""

from __future__ import annotations

import json
import os
import sys
import time

from common import AK, PROJECT, REGION, SK, Results, cleanup, harsh_schedules, median, ms, tempdir, write_schedules

TOKEN = "bench-listing-token-0123456789abcdef"


def main(argv: list[str]) -> int:
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 5
    n = int(argv[argv.index("--schedules") + 1]) if "--schedules" in argv else 10_000
    res = Results("listing")
    work = tempdir("listing")
    try:
        path = write_schedules(work / "schedules", harsh_schedules(n))
        os.environ.update({"HOME": str(work), "SCHEDULES_DIR": str(work / "schedules"), "DCS_REGION": REGION,
                           "DCS_ENDPOINT": "http://127.0.0.1:9", "RUNTIME_PROJECT_ID": PROJECT,
                           "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "API_TOKEN": TOKEN,
                           "LEDGER_URL": f"sqlite:///{work / 'ledger.sqlite3'}", "LOG_LEVEL": "WARNING"})
        import handler
        from dcs_maintenance.tools.local import LocalContext, apig_event

        def get(query: dict[str, str]) -> tuple[float, dict, int]:
            event = apig_event("GET", "/schedules", headers={"Authorization": f"Bearer {TOKEN}"}, query=query)
            start = time.perf_counter()
            response = handler.handler(event, LocalContext())
            elapsed = time.perf_counter() - start
            assert response["statusCode"] == 200, response["body"][:500]
            return elapsed, json.loads(response["body"]), len(response["body"])

        get({"limit": "1"})  # the first request loads and validates the file; later ones reuse the catalog

        def walk() -> tuple[float, list, int, list]:
            total, names, size, cursor, cursors = 0.0, [], 0, None, []
            while True:
                elapsed, data, length = get({"limit": "1000", **({"cursor": cursor} if cursor else {})})
                total, size = total + elapsed, size + length
                names += [e["name"] for e in data["schedules"]]
                cursor = data["next_cursor"]
                if cursor is None:
                    return total, names, size, cursors
                cursors.append(cursor)

        fulls, firsts, middles = [], [], []
        names, size, cursors = [], 0, []
        for _ in range(reps):
            elapsed, names, size, cursors = walk()
            fulls.append(elapsed)
            elapsed, first, first_size = get({})
            firsts.append(elapsed)
            elapsed, middle, _ = get({"cursor": cursors[len(cursors) // 2]})
            middles.append(elapsed)
        full, page_first, page_middle = median(fulls), median(firsts), median(middles)
        page = max(page_first, page_middle)
        res.info("schedules", f"{n:,} (the harsh mix, {path.stat().st_size / 1e6:.1f} MB JSON); {reps} runs, medians")
        res.info("full listing", f"{ms(full)} in {len(cursors) + 1} requests of 1000, {size / 1e6:.1f} MB")
        res.info("one page (default limit 100)", f"first {ms(page_first)}, middle {ms(page_middle)}, "
                                                f"{first_size / 1e3:.0f} kB")
        res.check("the pages hold every schedule once, in order", names == sorted(set(names)) and len(names) == n,
                  f"{len(names)} entries, {len(set(names))} distinct")
        res.check("a page holds 100 entries and a cursor", len(first["schedules"]) == 100 and bool(first["next_cursor"])
                  and len(middle["schedules"]) == 100, f"{len(first['schedules'])}, {len(middle['schedules'])}")
        res.ratio("one page / full listing", page / full, 0.05, f"{ms(page)} vs {ms(full)}")
    finally:
        cleanup(work)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
