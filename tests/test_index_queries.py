"""Counts, pages and per-value rollups of the index equal what the rows say.

One-value filters are counted from maintained counts, paged by walking their
posting list's chunks, and overviewed from a rollup kept per value; combined
filters intersect roaring bitmaps. Each is checked here against a plain walk of
every row, on an index built in several catch-ups (traces that gain values and
outcomes that move between batches), on one file and on unordered shards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.gen_traces import generate
from halo_live.engine.models import TraceFilters
from halo_live.engine.store import TraceStore
from halo_live.exporter import canonical
from halo_live.indexer import IndexFilters, TraceIndex
from tests._index_helpers import span_line

LIST_FIELDS = ("model_names", "service_names", "agent_names", "tool_names", "run_ids")


def _grow_in_rounds(path: Path, idx: TraceIndex, data: bytes, rounds: int = 5) -> None:
    """Append `data` to `path` in `rounds` pieces cut at line ends, catching up after each."""
    lines = data.splitlines(keepends=True)
    step = max(1, len(lines) // rounds)
    for at in range(0, len(lines), step):
        with open(path, "ab") as fh:
            fh.write(b"".join(lines[at:at + step]))
        idx.catch_up()


def _late_lines(trace_ids: list[str]) -> list[bytes]:
    """Spans that reach earlier traces late: a new model, agent and tool (so those lists get a
    member out of order), an error, and outcomes that flip a trace's result."""
    out = []
    for i, tid in enumerate(trace_ids):
        attrs = {canonical.INF_LLM_MODEL_NAME: "late-model", canonical.INF_AGENT_NAME: f"late-{i % 2}",
                 canonical.OI_TOOL_NAME: "late_tool", canonical.INF_OUTCOME_PASSED: i % 3 == 0,
                 canonical.INF_OUTCOME_TASK_ID: f"task-{tid}"}
        out.append(span_line(tid, f"late-{i}", "nope", end="2099-01-01T00:00:00.000000000Z",
                             error="late failure" if i % 2 else None, attrs=attrs))
    return out


def _dataset(tmp_path: Path, shards: int) -> TraceIndex:
    src = tmp_path / "src"
    generate(src / "a.jsonl" if shards == 1 else src / "a", 90, shards=shards, seed=5, error_rate=0.1,
             outcomes=True)
    generate(src / "b.jsonl" if shards == 1 else src / "b", 40, shards=shards, seed=50, error_rate=0.1,
             run_id="run-0002")
    if shards == 1:
        target = tmp_path / "traces.jsonl"
        target.touch()
        idx = TraceIndex.open(target, tmp_path / "idx")
        _grow_in_rounds(target, idx, (src / "a.jsonl").read_bytes())
        with idx.snapshot() as snap:
            early = snap.trace_ids(None, 0, 12)
        _grow_in_rounds(target, idx, (src / "b.jsonl").read_bytes() + b"".join(_late_lines(early)), 3)
        return idx
    target = tmp_path / "shards"
    target.mkdir()
    for s in range(shards):  # later shards first: trace numbers stop following dataset order
        (target / f"z-{s}.jsonl").write_bytes((src / "b" / f"traces-p{s}.jsonl").read_bytes())
    idx = TraceIndex.open(target, tmp_path / "idx")
    idx.catch_up()
    for s in range(shards):
        (target / f"a-{s}.jsonl").write_bytes((src / "a" / f"traces-p{s}.jsonl").read_bytes())
    idx.catch_up()
    return idx


def _matches(row, flt: IndexFilters) -> bool:
    for name in LIST_FIELDS:
        values = getattr(flt, name)
        if values is not None and not set(values) & set(getattr(row, name)):
            return False
    if flt.project_id is not None and row.project_id != flt.project_id:
        return False
    if flt.has_errors is not None and row.has_errors != flt.has_errors:
        return False
    if flt.complete is not None and row.complete != flt.complete:
        return False
    return flt.outcome is None or row.outcome_status == flt.outcome


def _filters(rows) -> list[IndexFilters]:
    out = [IndexFilters(has_errors=True), IndexFilters(has_errors=False), IndexFilters(complete=True),
           IndexFilters(complete=False), IndexFilters(model_names=[]), IndexFilters(model_names=["nope"])]
    out += [IndexFilters(outcome=o) for o in ("passed", "failed", "unknown")]
    for name in LIST_FIELDS:
        values = sorted({v for r in rows for v in getattr(r, name)})
        out += [IndexFilters(**{name: [v]}) for v in values]
        out.append(IndexFilters(**{name: values[:2]}))
    out += [IndexFilters(project_id=p) for p in sorted({r.project_id for r in rows if r.project_id})]
    out += [IndexFilters(model_names=["late-model"], has_errors=True),
            IndexFilters(agent_names=["planner"], outcome="failed", complete=True),
            IndexFilters(run_ids=["run-0002"], has_errors=False)]
    return out


@pytest.mark.parametrize("shards", [1, 3])
def test_counts_pages_and_rollups_equal_a_walk_of_the_rows(tmp_path, shards):
    with _dataset(tmp_path, shards) as idx, idx.snapshot() as snap:
        rows = snap.rows(snap.trace_ids())
        assert len(rows) == snap.count() == 130
        assert snap.rollup(IndexFilters(has_errors=True)) is not None  # the rollups are what is checked
        for flt in _filters(rows):
            want = [r for r in rows if _matches(r, flt)]
            ids = [r.trace_id for r in want]
            assert snap.count(flt) == len(ids), flt
            assert snap.trace_ids(flt) == ids, flt
            assert snap.trace_ids(flt, 3, 5) == ids[3:8], flt
            assert snap.trace_ids(flt, len(ids), 5) == [], flt
            t = snap.rollup(flt)
            if t is None:
                continue
            assert t.total_traces == len(want), flt
            assert t.total_spans == sum(r.span_count for r in want)
            assert t.error_trace_count == sum(r.has_errors for r in want)
            assert t.complete_traces == sum(r.complete for r in want)
            for key in ("missing_parent_count", "missing_agent_identity_count", "project_id_mismatch_count",
                        "otel_error_span_count", "tool_error_span_count", "total_input_tokens",
                        "total_output_tokens", "raw_jsonl_bytes"):
                assert getattr(t, key) == sum(getattr(r, key) for r in want), (flt, key)
            for key in ("service_names", "model_names", "agent_names", "agent_ids", "tool_names"):
                assert getattr(t, key) == sorted({v for r in want for v in getattr(r, key)})
            assert t.run_ids == list(dict.fromkeys(run for r in want for run in r.run_ids))
            assert t.earliest_start_time == (min(r.start_time for r in want) if want else "")
            assert t.latest_end_time == (max(r.end_time for r in want) if want else "")
            assert t.passed_traces == sum(r.outcome_status == "passed" for r in want)
            assert t.failed_traces == sum(r.outcome_status == "failed" for r in want)
            assert t.outcome_traces == sum(r.outcome is not None for r in want)


def test_a_one_value_overview_equals_the_same_set_read_from_rows(tmp_path):
    """`get_dataset_overview` on one value reads its rollup; the same traces asked for with the
    value listed twice (no rollup: the rows are read) give the same answer."""
    _dataset(tmp_path, 1).close()
    with TraceStore.open(tmp_path / "traces.jsonl", tmp_path / "idx") as store:
        t = store.get_overview(TraceFilters())
        services = list(t.service_names)
        for name in ("model_names", "agent_names", "tool_names", "run_ids", "service_names"):
            for value in getattr(t, name):
                fast = store.get_overview(TraceFilters(**{name: [value]})).model_dump()
                slow = store.get_overview(TraceFilters(**{name: [value, value]})).model_dump()
                assert fast == slow, (name, value)
        for flag in ("has_errors", "complete"):
            fast = store.get_overview(TraceFilters(**{flag: True})).model_dump()
            slow = store.get_overview(TraceFilters(**{flag: True, "service_names": services})).model_dump()
            assert fast == slow, flag


def test_a_start_time_that_arrives_late_sends_the_overview_to_the_rows(tmp_path):
    """A trace whose first span has no start time gets one later: its rollups' earliest start
    can no longer be kept by a min(), so they say so and the overview reads the rows."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(span_line("t1", "a", "root", start="") + span_line("t2", "b", start="2026-01-01T00:00:03Z"))
    with TraceIndex.open(path, tmp_path / "idx") as idx:
        idx.catch_up()
        with idx.snapshot() as snap:
            assert snap.rollup(IndexFilters(service_names=["svc"])).earliest_start_time == ""
        with open(path, "ab") as fh:
            fh.write(span_line("t1", "root", start="2026-01-01T00:00:05Z"))
        idx.catch_up()
        with idx.snapshot() as snap:
            assert snap.rollup(IndexFilters(service_names=["svc"])) is None
            assert snap.rollup(IndexFilters(complete=True)) is not None  # t1 joined it whole
    with TraceStore.open(path, tmp_path / "idx") as store:
        overview = store.get_overview(TraceFilters(service_names=["svc"]))
        assert overview.earliest_start_time == "2026-01-01T00:00:03Z" and overview.total_spans == 3
