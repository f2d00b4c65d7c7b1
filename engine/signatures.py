"""The one ranking of error signatures that every halo view uses (report, compare, the live
panel, `halo ui`, the overview's `failure_signatures`).

Where task outcomes exist, a signature first ranks by the failures it explains
(its excess: failed traces it hits beyond what the failure rate without it
predicts, `halo_live.engine.outcomes.signature_lift`); then by the distinct
traces it hits, then by its error spans: a failure that every other run meets
matters more than one trace retrying a tool fifty times. Ties go by name, so
the order is stable. The overview tool's `error_taxonomy` keeps halo-engine
0.3.5's own order (error spans, first seen), since its answers must equal the
reference's.
"""

from __future__ import annotations

from typing import Any

# in words, for the views that show it
RULE = "failures explained (with task outcomes), then traces hit, then error spans"


def rank_key(trace_count: int, error_span_count: int, span_name: str, status_message: str,
             excess: float = 0.0) -> tuple:
    """The sort key of one signature under the rule (ascending sorts best first)."""
    return (-round(excess, 9), -trace_count, -error_span_count, span_name, status_message)


def direction(before: float, after: float) -> int:
    """-1, 0 or 1: how a count moved."""
    return (after > before) - (after < before)


def change(before: dict[str, Any], after: dict[str, Any], traces_before: int, traces_after: int) -> dict[str, Any]:
    """How one signature moved between two runs, judged on both counts.

    `before` / `after` hold `traces` and `error_spans`; shares of traces and error
    spans per trace make runs of different sizes comparable. Returns `change`
    (new, vanished, down, up, mixed, same) and `changed_in` (which counts moved).
    """
    if not before["traces"]:
        return {"change": "new", "changed_in": ["traces", "error_spans"]}
    if not after["traces"]:
        return {"change": "vanished", "changed_in": ["traces", "error_spans"]}
    moved = {
        "traces": direction(before["traces"] / max(traces_before, 1), after["traces"] / max(traces_after, 1)),
        "error_spans": direction(before["error_spans"] / max(traces_before, 1),
                                 after["error_spans"] / max(traces_after, 1)),
    }
    changed_in = [name for name, way in moved.items() if way]
    ways = {moved[name] for name in changed_in}
    verdict = "same" if not ways else "mixed" if len(ways) > 1 else ("down" if ways == {-1} else "up")
    return {"change": verdict, "changed_in": changed_in}
