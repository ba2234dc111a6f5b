"""The SQLite ledger keeps the watermarks it read and re-reads them only when another connection committed since
(PRAGMA data_version): what it returns is always what the file holds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dcs_maintenance.ledger.sqlite import SqliteLedger

T = datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc)


def test_cached_watermarks_follow_other_connections_and_our_own_writes(tmp_path):
    path = str(tmp_path / "ledger.sqlite3")
    with SqliteLedger(path) as a, SqliteLedger(path) as b:
        a.advance_watermarks({"s1": T, "s2": T})
        assert a.watermarks() == {"s1": T, "s2": T}
        b.advance_watermarks({"s1": T + timedelta(minutes=5), "s3": T})  # another instance moves on
        assert a.watermarks() == {"s1": T + timedelta(minutes=5), "s2": T, "s3": T}
        a.advance_watermarks({"s2": T + timedelta(minutes=10), "s1": T})  # ours, never backwards
        assert a.watermarks() == {"s1": T + timedelta(minutes=5), "s2": T + timedelta(minutes=10), "s3": T}
        assert a.watermarks() == b.watermarks()
        returned = a.watermarks()
        returned["s1"] = T - timedelta(days=1)  # a caller's copy: the cache is not theirs to change
        assert a.watermarks()["s1"] == T + timedelta(minutes=5)
