"""What changed between two runs: pass rate and flipped tasks, error signatures, tokens, latency.

    before = summarize("runs/baseline")                 # a file or folder of shards
    after = summarize("runs/fixed")
    result = compare(before, after)                      # a JSON-ready dict

Both sides are read through the live index (caught up first). A side may be
narrowed to one run id (the `inference.run_id` resource attribute), so one
file can hold several runs; a side holding several runs with none picked is
an error, since mixing runs silently is the trap this exists to avoid.

The score comes from the task outcomes recorded in the traces: each side's
latest outcome per task id (a trace without a task id is a task of its own).
The runs join by task id: the pass rate on each side with its 95% Wilson
interval, and the tasks that flipped (pass -> fail, fail -> pass) with an exact
McNemar test over them, so a change can be told from noise. A side without
outcomes (an old run) still gets its score from the benchmark's score file
(`score.json` in the folder, or `FILE.score.json` beside a file) when its run
id matches; a score file named explicitly gives the score in any case.
Signatures are ranked by the one rule of `halo_live.engine.signatures`, and a
signature counts as changed when either of its counts moved (and says which).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halo_live.engine import signatures as sigrank
from halo_live.engine.outcomes import mcnemar_exact, pass_rate, signature_lift, wilson
from halo_live.engine.store import group_error_spans
from halo_live.indexer import IndexFilters, TraceIndex

SCORE_FILE = "score.json"
SIGNIFICANCE = 0.05


class CompareError(ValueError):
    """A side can't be summarized (missing path, ambiguous or unknown run)."""


class SeveralRunsError(CompareError):
    """A side holds several runs and none was picked; `.runs` names them in dataset order."""

    def __init__(self, path: str | Path, runs: list[str]) -> None:
        self.path, self.runs = str(path), list(runs)
        super().__init__(f"{path} holds {len(runs)} runs ({_show(runs)}): pick one with --run")

    def on_both_sides(self, run_before: str | None = None, run_after: str | None = None) -> str:
        """The message when this file is BEFORE and AFTER: name two runs to compare."""
        first = run_before or next((r for r in self.runs if r != run_after), self.runs[0])
        second = run_after or next((r for r in self.runs if r != first), first)
        return (f"{self.path} holds {len(self.runs)} runs ({_show(self.runs)}) and is on both sides: "
                f"compare two of them with --run-before {first} --run-after {second}")


def _show(runs: list[str]) -> str:
    return ", ".join(runs[:5]) + (" ..." if len(runs) > 5 else "")


@dataclass
class RunSummary:
    """One side of a comparison."""

    path: str
    run_id: str | None
    traces: int = 0
    error_traces: int = 0
    spans: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    durations_ms: list[float] = field(default_factory=list)
    # (span name, status message) -> [error spans, distinct traces, known-outcome traces, failed traces]
    signatures: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    score: dict[str, Any] | None = None
    # task id (or "trace:<id>" for an outcome without one) -> (passed, trace id), the latest per task
    tasks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    passed_traces: int = 0  # traces whose latest outcome passed / failed
    failed_traces: int = 0


def score_file_for(path: str | Path) -> Path:
    p = Path(path)
    return p / SCORE_FILE if p.is_dir() else p.with_name(p.name + "." + SCORE_FILE)


def load_score(target: Path, run_id: str | None) -> dict[str, Any] | None:
    try:
        data = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "score" not in data:
        return None
    if run_id is not None and data.get("run_id") not in (None, run_id):
        return None  # the score of another run than the one compared
    return {k: data.get(k) for k in ("score", "passed", "tasks", "run_id", "settings")}


def summarize(path: str | Path, run_id: str | None = None, index_dir: str | Path | None = None,
              score_file: str | Path | None = None) -> RunSummary:
    """Summarize the traces at `path` (narrowed to `run_id` if given).

    The score is the pass rate of the recorded outcomes; `score_file`, which must
    exist, gives it instead. Without either, the benchmark's convention
    (`score_file_for(path)`) is read when present.
    """
    if not Path(path).exists():
        raise CompareError(f"no such file or folder: {path}")
    if score_file is not None and not Path(score_file).is_file():
        raise CompareError(f"no such score file: {score_file}")
    with TraceIndex.open(path, index_dir) as index:
        index.catch_up()
        with index.snapshot() as snap:
            summary = summarize_snapshot(snap, path, run_id)
    if not summary.tasks or score_file is not None:  # the score file named, or an old run's
        summary.score = load_score(Path(score_file) if score_file else score_file_for(path), summary.run_id)
    return summary


def summarize_snapshot(snap: Any, path: str | Path, run_id: str | None = None) -> RunSummary:
    """One side read from an open index snapshot (`path` names it in messages); its score is
    the pass rate of its recorded outcomes, if any."""
    summary = RunSummary(path=str(path), run_id=run_id)
    runs = list(snap.totals().run_ids)
    if run_id is None and len(runs) > 1:
        raise SeveralRunsError(path, runs)
    if run_id is not None and run_id not in runs:
        raise CompareError(f"run {run_id!r} is not in {path} (runs: {', '.join(runs) or 'none'})")
    if run_id is None and runs:
        summary.run_id = runs[0]  # the only run: name it, but read it unfiltered
    filters = IndexFilters(run_ids=[run_id]) if run_id else None
    rows = snap.rows(snap.trace_ids(filters))
    _rollup(summary, rows)
    if run_id is None:
        for sig in snap.error_signatures():
            key = (sig.span_name, sig.status_message)
            summary.signatures[key] = [sig.error_span_count, sig.trace_count,
                                       sig.outcome_trace_count, sig.failed_trace_count]
    else:  # per-run signatures: the index aggregates the whole dataset only
        known = {r.trace_id: r.outcome.passed for r in rows
                 if r.outcome is not None and r.outcome.passed is not None}
        span_counts, traces = group_error_spans(snap, (r.trace_id for r in rows if r.has_errors))
        for key, count in span_counts.items():
            hit = [known[t] for t in traces[key] if t in known]
            summary.signatures[key] = [count, len(traces[key]), len(hit), hit.count(False)]
    if summary.tasks:
        passed = sum(1 for ok, _ in summary.tasks.values() if ok)
        summary.score = {"score": pass_rate(passed, len(summary.tasks) - passed), "passed": passed,
                         "tasks": len(summary.tasks), "run_id": summary.run_id, "source": "traces"}
    return summary


def _rollup(summary: RunSummary, rows: list) -> None:
    latest: dict[str, tuple] = {}  # task -> the order key of its latest outcome
    for row in rows:
        o = row.outcome
        if o is not None and o.passed is not None:
            summary.passed_traces += o.passed
            summary.failed_traces += not o.passed
            task = o.task_id or f"trace:{row.trace_id}"
            order = (o.end_time, o.file, o.offset)
            if task not in latest or order >= latest[task]:
                latest[task] = order
                summary.tasks[task] = (o.passed, row.trace_id)
        summary.traces += 1
        summary.spans += row.span_count
        summary.error_traces += bool(row.has_errors)
        summary.input_tokens += row.total_input_tokens
        summary.output_tokens += row.total_output_tokens
        if row.duration_ms is not None:
            summary.durations_ms.append(row.duration_ms)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _side(s: RunSummary) -> dict[str, Any]:
    per = (lambda total: round(total / s.traces, 1) if s.traces else None)
    passed = sum(1 for ok, _ in s.tasks.values() if ok)
    return {
        "path": s.path, "run_id": s.run_id, "traces": s.traces, "spans": s.spans,
        "error_traces": s.error_traces,
        "error_trace_share": round(s.error_traces / s.traces, 4) if s.traces else None,
        "score": s.score,
        "outcomes": {"tasks": len(s.tasks), "passed": passed, "failed": len(s.tasks) - passed,
                     "pass_rate": pass_rate(passed, len(s.tasks) - passed),
                     "pass_rate_95ci": wilson(passed, len(s.tasks))} if s.tasks else None,
        "tokens": {"input": s.input_tokens, "output": s.output_tokens,
                   "input_per_trace": per(s.input_tokens), "output_per_trace": per(s.output_tokens)},
        "latency_ms": {"median": _round(statistics.median(s.durations_ms)) if s.durations_ms else None,
                       "p95": _round(_pct(s.durations_ms, 0.95)),
                       "mean": _round(statistics.fmean(s.durations_ms)) if s.durations_ms else None},
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _delta(a: Any, b: Any, digits: int = 4) -> float | None:
    if a is None or b is None:
        return None
    return round(b - a, digits)


def tasks_joined(before: RunSummary, after: RunSummary) -> dict[str, Any] | None:
    """The runs joined by task: flips each way (with trace ids) and the exact McNemar test."""
    if not before.tasks and not after.tasks:
        return None
    both = sorted(set(before.tasks) & set(after.tasks))
    flips: dict[str, list[dict[str, str]]] = {"pass_to_fail": [], "fail_to_pass": []}
    for task in both:
        (was, tb), (now, ta) = before.tasks[task], after.tasks[task]
        if was != now:
            flips["pass_to_fail" if was else "fail_to_pass"].append(
                {"task_id": task, "before_trace_id": tb, "after_trace_id": ta})
    p_value = mcnemar_exact(len(flips["pass_to_fail"]), len(flips["fail_to_pass"]))
    flipped = len(flips["pass_to_fail"]) + len(flips["fail_to_pass"])
    return {
        "joined": len(both), "only_before": len(set(before.tasks) - set(after.tasks)),
        "only_after": len(set(after.tasks) - set(before.tasks)),
        "pass_rate_before": pass_rate(*_counts(before, both)), "pass_rate_after": pass_rate(*_counts(after, both)),
        **flips, "mcnemar_p": p_value,
        "verdict": ("no joined tasks" if not both else "no task flipped" if not flipped
                    else "a real change" if p_value < SIGNIFICANCE else "within noise"),
    }


def _counts(side: RunSummary, tasks: list[str]) -> tuple[int, int]:
    passed = sum(1 for t in tasks if side.tasks[t][0])
    return passed, len(tasks) - passed


def _lift(side: RunSummary, sig: list[int]):
    return signature_lift(sig[2], sig[3], side.passed_traces + side.failed_traces, side.failed_traces)


def _outcome_cells(side: RunSummary, sig: list[int], lift) -> dict[str, Any]:
    """A signature's failed traces and lift on a side that has outcomes (nothing on one without)."""
    if not side.passed_traces + side.failed_traces:
        return {}
    return {"failed_traces": sig[3], "lift": lift.as_dict()["lift"]}


def compare(before: RunSummary, after: RunSummary) -> dict[str, Any]:
    """The comparison as a JSON-ready dict (what `halo compare --json` prints)."""
    b, a = _side(before), _side(after)
    ranked = []
    for key in sorted(set(before.signatures) | set(after.signatures)):
        sb = before.signatures.get(key, [0, 0, 0, 0])
        sa = after.signatures.get(key, [0, 0, 0, 0])
        share_b = sb[1] / before.traces if before.traces else 0.0
        share_a = sa[1] / after.traces if after.traces else 0.0
        lift_b, lift_a = _lift(before, sb), _lift(after, sa)
        side_b = {"error_spans": sb[0], "traces": sb[1], "share": round(share_b, 4),
                  **_outcome_cells(before, sb, lift_b)}
        side_a = {"error_spans": sa[0], "traces": sa[1], "share": round(share_a, 4),
                  **_outcome_cells(after, sa, lift_a)}
        # the one ranking rule, on whichever side the signature was bigger
        rank = sigrank.rank_key(max(sb[1], sa[1]), max(sb[0], sa[0]), *key,
                                excess=max(lift_b.excess, lift_a.excess))
        ranked.append((rank, {
            "span_name": key[0], "status_message": key[1],
            **sigrank.change(side_b, side_a, before.traces, after.traces),
            "before": side_b, "after": side_a,
            "delta_traces": sa[1] - sb[1], "delta_share": round(share_a - share_b, 4),
            "delta_error_spans": sa[0] - sb[0],
        }))
    signatures = [entry for _, entry in sorted(ranked, key=lambda r: r[0])]
    score_b = (before.score or {}).get("score")
    score_a = (after.score or {}).get("score")
    return {
        "before": b, "after": a,
        "delta": {
            "score": _delta(score_b, score_a),
            "error_trace_share": _delta(b["error_trace_share"], a["error_trace_share"]),
            "input_tokens_per_trace": _delta(b["tokens"]["input_per_trace"], a["tokens"]["input_per_trace"], 1),
            "output_tokens_per_trace": _delta(b["tokens"]["output_per_trace"], a["tokens"]["output_per_trace"], 1),
            "median_latency_ms": _delta(b["latency_ms"]["median"], a["latency_ms"]["median"], 1),
            "p95_latency_ms": _delta(b["latency_ms"]["p95"], a["latency_ms"]["p95"], 1),
        },
        "tasks": tasks_joined(before, after),
        "signatures": signatures,
        "new_signatures": [s for s in signatures if s["change"] == "new"],
        "vanished_signatures": [s for s in signatures if s["change"] == "vanished"],
    }


def compare_paths(before: str | Path, after: str | Path, *, run_before: str | None = None,
                  run_after: str | None = None) -> dict[str, Any]:
    """`compare(summarize(before), summarize(after))` with optional run ids per side."""
    return compare(summarize(before, run_before), summarize(after, run_after))


def compare_runs(store: Any, run_before: str, run_after: str, top: int = 15) -> dict[str, Any]:
    """Two runs of the store's live dataset compared (the `compare_runs` tool): `compare()`
    with each signature list cut to its `top` biggest, from one snapshot."""
    dataset = store.dataset
    with store.snapshot() as snap:
        before = summarize_snapshot(snap, dataset.pattern, run_before)
        after = summarize_snapshot(snap, dataset.pattern, run_after)
    if dataset.kind != "glob":  # the benchmark's score file beside a file, or in a folder
        for side in (before, after):  # one file, two runs: a score counts only for the run it names
            if side.tasks:
                continue  # scored from its outcomes
            score = load_score(score_file_for(dataset.pattern), side.run_id)
            side.score = score if score and score.get("run_id") == side.run_id else None
    result = compare(before, after)
    result["signature_count"] = len(result["signatures"])
    for key in ("signatures", "new_signatures", "vanished_signatures"):
        result[key] = result[key][:top]
    return result
