"""The text form of a tick summary, shared by `run`, `plan`, `invoke` and the demo."""

from __future__ import annotations

from typing import Any


def summary_text(summary: dict[str, Any]) -> str:
    """A tick summary as a few lines of text: each schedule's decision, its occurrences and instances."""
    lines = [f"tick {summary.get('tick')}  ok={summary.get('ok')}  counts={summary.get('counts')}"]
    for sched in summary.get("schedules", []):
        lines.append(f"  {sched['name']}: {sched['decision']} - {sched['reason']}")
        for occ in sched.get("occurrences", []):
            lines.append(f"      occurrence {occ['occurrence']}: {occ['result']} ({occ['reason']})")
        for inst in sched.get("instances", []):
            marks = [m for m in (inst.get("data_loss"), inst.get("note")) if m and m not in inst["reason"]]
            lines.append(f"      {inst['result']:<8} {inst.get('action') or '-':<12} {inst['instance_id']} "
                         f"{inst.get('name') or ''}: {inst['reason']}" + "".join(f" [{m}]" for m in marks))
    lines += [f"  INVALID {p['file']} {p['path']}: {p['message']}" for p in summary.get("problems", [])]
    lines += [f"  ERROR {e}" for e in summary.get("errors", [])]
    return "\n".join(lines)
