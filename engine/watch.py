"""`Watcher`: the facts of a run as it goes, one frame at a time (`halo watch`, `halo demo`).

Each `frame()` catches the index up and reads one snapshot: traces by state
(complete / running / stuck / abandoned, which never overlap and add up to
every trace, the unwritten open ones included), spans, errors, tokens, cost
(reported by the spans, else estimated from tokens at list prices: `pricing`), pass
rate, the top error signatures by the one ranking rule, the newest failing
traces, and the open tasks worst first with what each is doing. Rates and the
ETA come from the frames seen in the last `RATE_WINDOW` seconds. A path that
does not exist yet, or names no trace file yet, is "waiting" (`waiting_for` says
which); a run whose files stopped growing is "idle", or
"stalled" while tasks are stuck in it and none runs.
The frame is a JSON-ready dict: `--json` prints it, the view renders it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

from halo_live.engine import live, render
from halo_live.engine.pricing import Prices, estimate
from halo_live.engine.outcomes import pass_rate, rank_index_signatures
from halo_live.engine.signatures import RULE
from halo_live.indexer.live import DEFAULT_STUCK_AFTER
from halo_live.indexer.models import IndexFilters

RATE_WINDOW = 30.0  # seconds of frames the rates are measured over
IDLE_AFTER = 10.0  # seconds without a byte written (and nothing running) before a run is idle
TOP_SIGNATURES = 5
NEWEST_FAILING = 5
OPEN_TASKS = 10


class Watcher:
    """Frames of one dataset (file, folder of shards or glob), which may not exist yet."""

    def __init__(self, path: str | os.PathLike[str], *, index_dir: str | None = None,
                 stuck_after: float | None = None, expect: int | None = None,
                 prices: Prices | None = None) -> None:
        stuck_after = DEFAULT_STUCK_AFTER if stuck_after is None else stuck_after
        if not stuck_after > 0:
            raise ValueError(f"stuck_after must be > 0 seconds, not {stuck_after!r}")
        if expect is not None and expect < 1:
            raise ValueError(f"expect must be at least 1 task, not {expect!r}")
        self.path = os.fspath(path)
        self.index_dir = index_dir
        self.stuck_after = stuck_after
        self.expect = expect
        self.prices = Prices() if prices is None else prices
        self.store: Any = None
        self._history: deque[tuple[float, int, int, int]] = deque()  # (monotonic, spans, traces, done)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> bool:
        """Open the store once the path exists; False while it does not."""
        if self.store is not None:
            return True
        from halo_live.engine.store import ToolError, TraceStore
        from halo_live.indexer.dataset import DatasetError, resolve

        try:
            resolve(self.path)
        except DatasetError:
            return False
        try:
            self.store = TraceStore.open(self.path, self.index_dir, stuck_after=self.stuck_after)
        except ToolError:
            return False  # removed again between the check and the open: still waiting
        return True

    def frame(self, now: float | None = None) -> dict[str, Any]:
        """The run's facts now (see the module doc); catches the index up first."""
        now = time.time() if now is None else now
        base: dict[str, Any] = {"path": self.path, "at": render.iso_from_epoch(now),
                                "stuck_after_seconds": self.stuck_after}
        if not self._open():
            return {**base, "status": "waiting", "waiting_for": "path", **_empty(self.expect)}
        store = self.store
        with store.snapshot() as snap:
            totals = snap.totals()
            states = store.task_states(snap, now)
            signatures = rank_index_signatures(snap.error_signatures(), totals.passed_traces,
                                               totals.failed_traces)[:TOP_SIGNATURES]
            failing = _newest_failing(snap)
        open_traces = list(states.traces.values())
        counts = {s: states.count(s) for s in live.OPEN_STATES}
        unwritten = sum(1 for t in open_traces if not t.indexed)
        complete = totals.total_traces - (len(open_traces) - unwritten)
        traces = {"total": totals.total_traces + unwritten, "complete": complete, **counts,
                  "unwritten": unwritten}
        idle = _idle_seconds(store.dataset, now)
        quiet = idle is not None and idle >= IDLE_AFTER and not counts["running"]
        status = ("stalled" if counts["stuck"] else "idle") if quiet else "live"
        if idle is None and not open_traces:  # a folder or glob with no trace file yet
            return {**base, "status": "waiting", "waiting_for": "files", **_empty(self.expect)}
        frame = {
            **base, "status": status, "idle_seconds": None if idle is None else round(idle, 1),
            "traces": traces, "spans": totals.total_spans,
            "errors": {"traces": totals.error_trace_count,
                       "share": round(totals.error_trace_count / totals.total_traces, 4)
                       if totals.total_traces else None},
            "tokens": {"input": totals.total_input_tokens, "output": totals.total_output_tokens,
                       "total": totals.total_input_tokens + totals.total_output_tokens},
            "cost": _cost(totals, self.prices),
            "outcomes": {"recorded": totals.outcome_traces, "passed": totals.passed_traces,
                         "failed": totals.failed_traces, "pass_rate": pass_rate(totals.passed_traces,
                                                                                 totals.failed_traces)}
            if totals.outcome_traces else None,
            "signatures_rule": RULE,
            "signatures": [{"span_name": g.span_name, "status_message": g.status_message,
                            "traces": g.trace_count, "error_spans": g.error_span_count,
                            "failed_traces": g.failed_trace_count} for g, _ in signatures],
            "failing": failing,
            "open_tasks": [_open_task(t, now) for t in live.worst_first(open_traces)[:OPEN_TASKS]],
            "index_lag_bytes": store.pending_bytes,
        }
        frame["rates"], frame["expect"] = self._rates(totals.total_spans, traces["total"],
                                                      complete, totals.earliest_start_time, now)
        return frame

    def _rates(self, spans: int, traces: int, complete: int, first_start: str,
               now: float) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """spans/s and traces/min over the recent frames; the ETA of `expect` tasks."""
        mono = time.monotonic()
        done = complete
        history = self._history
        history.append((mono, spans, traces, done))
        while len(history) > 2 and mono - history[0][0] > RATE_WINDOW:
            history.popleft()
        rates = None
        done_rate = None
        if len(history) >= 2 and mono - history[0][0] > 0:
            span0, trace0, done0 = history[0][1:]
            dt = mono - history[0][0]
            rates = {"spans_per_s": round((spans - span0) / dt, 2),
                     "traces_per_min": round((traces - trace0) * 60 / dt, 2), "window_seconds": round(dt, 1)}
            done_rate = (done - done0) / dt
        if self.expect is None:
            return rates, None
        if not done_rate:  # no recent progress measured: the average since the run's first span
            from halo_live.exporter.canonical import ns_from_iso

            start = ns_from_iso(first_start) if first_start else None
            done_rate = done / (now - start / 1e9) if start and now > start / 1e9 and done else None
        left = max(0, self.expect - done)
        eta = 0.0 if not left else (left / done_rate if done_rate else None)
        return rates, {"tasks": self.expect, "done": min(done, self.expect),
                       "eta_seconds": None if eta is None else round(eta, 1)}


NO_MODEL = "(no model)"  # the unpriced tokens of spans that name no model


def _cost(totals: Any, prices: Prices) -> dict[str, Any]:
    """The run's cost in USD: reported, estimated at list prices, and the tokens left unpriced."""
    cost = estimate(totals.reported_cost_usd, totals.model_tokens, prices)
    unpriced = sorted(cost.unpriced.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"reported_usd": round(cost.reported_usd, 6), "estimated_usd": round(cost.estimated_usd, 6),
            "total_usd": round(cost.total_usd, 6), "unpriced": {m or NO_MODEL: n for m, n in unpriced}}


def _open_task(trace: Any, now: float) -> dict[str, Any]:
    """The tools' open task plus how long, for the view: `silent_seconds`, `for_seconds`."""
    _, since = live.doing(trace)
    return {**live.open_task(trace).model_dump(), "silent_seconds": round(trace.silent_for, 1),
            "for_seconds": None if since is None else round(max(0.0, now - since), 1)}


def _empty(expect: int | None) -> dict[str, Any]:
    return {"idle_seconds": None,
            "traces": {"total": 0, "complete": 0, "running": 0, "stuck": 0, "abandoned": 0, "unwritten": 0},
            "spans": 0, "errors": {"traces": 0, "share": None},
            "tokens": {"input": 0, "output": 0, "total": 0},
            "cost": {"reported_usd": 0.0, "estimated_usd": 0.0, "total_usd": 0.0, "unpriced": {}}, "outcomes": None, "signatures_rule": RULE,
            "signatures": [], "failing": [], "open_tasks": [], "index_lag_bytes": 0, "rates": None,
            "expect": None if expect is None else {"tasks": expect, "done": 0, "eta_seconds": None}}


def _newest_failing(snap: Any) -> list[dict[str, Any]]:
    """The newest traces with an error span or a failed outcome: id, start, what failed."""
    ids = snap.trace_ids_by_start(IndexFilters(has_errors=True), 0, NEWEST_FAILING)
    ids += [t for t in snap.trace_ids_by_start(IndexFilters(outcome="failed"), 0, NEWEST_FAILING)
            if t not in ids]
    rows = sorted(snap.rows(ids), key=lambda r: (r.start_time, r.trace_id), reverse=True)[:NEWEST_FAILING]
    out = []
    for row in rows:
        errors = snap.error_spans(row.trace_id) if row.has_errors else []
        if errors:
            name, message = errors[0]
            what = f"{name}: {render.cut(message, 120)}" if message else name
        else:
            what = "outcome: failed"
        out.append({"trace_id": row.trace_id, "start_time": row.start_time, "what": what,
                    "outcome": row.outcome_status})
    return out


def _idle_seconds(dataset: Any, now: float) -> float | None:
    """Seconds since any file of the dataset last changed (None: no file yet)."""
    latest = None
    for rel in dataset.files():
        try:
            mtime = os.stat(dataset.path_of(rel)).st_mtime
        except OSError:
            continue
        latest = mtime if latest is None else max(latest, mtime)
    return None if latest is None else max(0.0, now - latest)
