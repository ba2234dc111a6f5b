"""GET /history: what the function did and decided, newest first, from the ledger, one page at a time."""

from __future__ import annotations

from dcs_maintenance import history as records
from dcs_maintenance.http_api import INVALID_PARAMETER, LEDGER_DOWN, HttpError, Request, Response
from dcs_maintenance.ledger.base import LedgerError
from dcs_maintenance.routes import common


def list_history(request: Request) -> Response:
    """`?since=&until=&schedule=&instance=&result=&limit=&cursor=`; 200 `{entries, count, next_cursor}`.

    since/until: ISO 8601 with an offset, or a duration back from now (`24h`, `7d`); result: one or several
    (comma-separated) of success, failed, unknown, missed, skipped, frozen, halted; instance: an id or a name;
    limit 1-1000 (default 50). Follow `next_cursor` (as `?cursor=`) until it is null.
    """
    try:
        query = records.parse_query(dict(request.query))
    except ValueError as exc:
        raise HttpError(400, INVALID_PARAMETER, f"query parameter {exc}") from None
    settings = common.settings()
    rt = common.runtime(settings, request)
    try:
        page = records.read(rt.ledger, query)
    except ValueError as exc:  # a cursor that is not ours
        raise HttpError(400, INVALID_PARAMETER, f"query parameter {exc}") from None
    except (LedgerError, RuntimeError) as exc:
        raise HttpError(503, LEDGER_DOWN, f"the history is unavailable: {exc}") from None
    return Response(200, records.page_dict(page, settings.history_retention))
