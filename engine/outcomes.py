"""Outcomes in the engine's answers: pass rates, the lift of an error signature, the one
ranking rule for signatures, and the statistics `halo compare` reports.

The ranking rule, used by the report, the overview's `failure_signatures`, the
demo's live view and compare: a signature ranks by the failures it explains, its
*excess failures* (failed traces among those it hits, minus what the failure rate
of the traces without it predicts for that many traces), then by traces hit, error
spans and name. Where no outcome is known the excess is 0 for every signature, so
the order is the one by traces hit. A harmless signature that many traces hit fails
as often as the rest (excess ~0); one that explains failures fails more (excess > 0),
so it ranks above the harmless one however frequent that is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from halo_live.engine.models import OutcomeCounts, SignatureOutcomes
from halo_live.engine.signatures import rank_key

Z95 = 1.959964  # the normal quantile of a two-sided 95% interval


@dataclass(frozen=True, slots=True)
class Lift:
    """How a signature relates to failures, over the traces whose outcome is known."""

    traces: int  # traces hit that have a known outcome
    failed: int  # ... and failed
    rate_with: float | None  # failure rate of the traces hit
    rate_without: float | None  # failure rate of the known-outcome traces not hit
    lift: float | None  # rate_with / rate_without (None when that is 0 or unknown)
    excess: float  # failed - traces * rate_without: the failures the signature explains

    def as_dict(self) -> dict:
        """The JSON fields every view prints for a signature's outcomes."""
        return {"outcome_traces": self.traces, "failed_traces": self.failed,
                "failure_rate_with": _round(self.rate_with), "failure_rate_without": _round(self.rate_without),
                "lift": _round(self.lift), "excess_failures": round(self.excess, 2)}


def signature_lift(hit_known: int, hit_failed: int, known: int, failed: int) -> Lift:
    """The lift of a signature hitting `hit_known` known-outcome traces (`hit_failed` of them
    failed) in a set of `known` known-outcome traces of which `failed` failed."""
    rest_known, rest_failed = known - hit_known, failed - hit_failed
    rate_with = hit_failed / hit_known if hit_known else None
    rate_without = rest_failed / rest_known if rest_known else None
    lift = rate_with / rate_without if rate_with is not None and rate_without else None
    # Without a contrast (every known trace is hit) nothing is explained: excess 0.
    excess = hit_failed - hit_known * rate_without if rate_without is not None else 0.0
    return Lift(hit_known, hit_failed, rate_with, rate_without, lift, excess)


def pass_rate(passed: int, failed: int) -> float | None:
    """passed / (passed + failed), None when nothing is known."""
    n = passed + failed
    return round(passed / n, 4) if n else None


def wilson(passed: int, n: int, z: float = Z95) -> list[float] | None:
    """The Wilson score interval [low, high] of a pass rate (95% by default); None for n = 0."""
    if n <= 0:
        return None
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def mcnemar_exact(pass_to_fail: int, fail_to_pass: int) -> float:
    """Two-sided exact McNemar p-value of paired flips: how likely this many flips one
    way or more lopsided are if the change did nothing (each flip a coin toss)."""
    n = pass_to_fail + fail_to_pass
    if n == 0:
        return 1.0
    k = min(pass_to_fail, fail_to_pass)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return round(min(1.0, 2 * tail), 4)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --- the views' shapes --------------------------------------------------------------------


def outcome_counts(total: int, passed: int, failed: int, silent: int) -> OutcomeCounts:
    """The `outcomes` of an overview over `total` traces."""
    return OutcomeCounts(passed=passed, failed=failed, unknown=total - passed - failed,
                         pass_rate=pass_rate(passed, failed), silent_failure_count=silent)


def ranked_signatures(entries: list[tuple[str, str, int, int, Lift, list[str]]],
                      top: int) -> list[SignatureOutcomes]:
    """(span name, message, traces hit, error spans, lift, examples) by the one ranking rule."""
    entries = sorted(entries, key=lambda e: rank_key(e[2], e[3], e[0], e[1], e[4].excess))
    return [SignatureOutcomes(span_name=name, status_message=message, trace_count=traces,
                              error_span_count=spans, example_trace_ids=examples, **lift.as_dict())
            for name, message, traces, spans, lift, examples in entries[:top]]


def rank_index_signatures(signatures: list, passed: int, failed: int) -> list[tuple[Any, Lift]]:
    """The index's error signatures (`Snapshot.error_signatures()`, whose outcome counts the
    index keeps) with their lifts, by the one ranking rule; `passed`/`failed` are the
    dataset's traces that passed/failed."""
    known = passed + failed
    pairs = [(g, signature_lift(g.outcome_trace_count, g.failed_trace_count, known, failed))
             for g in signatures]
    pairs.sort(key=lambda p: rank_key(p[0].trace_count, p[0].error_span_count,
                                      p[0].span_name, p[0].status_message, p[1].excess))
    return pairs
