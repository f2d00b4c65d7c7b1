"""The index answers overview, count and query exactly as halo-engine 0.3.5 does."""

from __future__ import annotations

import pytest

from tests._index_helpers import (
    build, index_filters, odd_lines, overview, summary, totals_overview, write_dataset,
)

pytestmark = pytest.mark.reference

FILTERS = [
    {},
    {"has_errors": True},
    {"has_errors": False},
    {"model_names": ["gpt-4.1"]},
    {"model_names": ["gpt-4.1", "o4-mini"]},
    {"model_names": []},
    {"model_names": ["m-oi"]},
    {"service_names": ["web-agent"]},
    {"service_names": [""]},
    {"agent_names": ["coder", "solo"]},
    {"project_id": "proj-alpha"},
    {"project_id": "p1"},
    {"start_time_gte": "2026-01-01T00:01:00"},
    {"end_time_lte": "2026-01-01T00:01:30"},
    {"start_time_gte": "2026-01-01T00:00:30", "end_time_lte": "2026-01-01T00:01:50.5",
     "has_errors": True, "model_names": ["gpt-4.1", "claude-sonnet-4", "o4-mini"]},
]


def _calls(traces: int) -> list[dict]:
    calls = []
    for flt in FILTERS:
        calls.append({"tool": "get_dataset_overview", "args": {"filters": flt}})
        calls.append({"tool": "count_traces", "args": {"filters": flt}})
        for offset in range(0, traces + 1, 500):
            calls.append({"tool": "query_traces", "args": {"filters": flt, "limit": 500, "offset": offset}})
    return calls


def _compare(snap, ref: dict, traces: int) -> None:
    answers = iter(ref["answers"])
    for flt in FILTERS:
        ref_overview = next(answers)["ok"]["result"]
        assert overview(snap, flt) == ref_overview, flt
        assert snap.count(index_filters(flt)) == next(answers)["ok"]["result"]["total"], flt
        rows = []
        for _ in range(0, traces + 1, 500):
            page = next(answers)["ok"]["result"]
            rows.extend(page["traces"])
        ids = snap.trace_ids(index_filters(flt))
        assert [summary(r) for r in snap.rows(ids)] == rows, flt
        assert len(ids) == page["total"]


def _compare_totals(snap, ref_overview: dict) -> None:
    mine = totals_overview(snap)
    assert mine == {k: ref_overview[k] for k in mine}
    # Under 2000 error traces the reference's taxonomy is the whole-dataset aggregate.
    top = snap.error_signatures()[:20]
    assert [vars_(s) for s in top] == ref_overview["error_taxonomy"]


OURS_ONLY_SIGNATURE = ("outcome_trace_count", "failed_trace_count")


def vars_(sig) -> dict:
    return {k: getattr(sig, k) for k in sig.__slots__ if k not in OURS_ONLY_SIGNATURE}


def test_one_file_matches_reference(tmp_path, halo_reference):
    path = write_dataset(tmp_path / "traces.jsonl", traces=60, extra=odd_lines())
    idx = build(path, tmp_path / "idx")
    with idx.snapshot() as snap:
        traces = snap.count()
        ref = halo_reference.run([path], _calls(traces), tmp_path / "ref")
        assert ref["trace_count"] == traces
        _compare(snap, ref, traces)
        _compare_totals(snap, ref["answers"][0]["ok"]["result"])
    idx.close()


def test_folder_of_shards_matches_reference(tmp_path, halo_reference):
    from bench.gen_traces import generate

    folder = tmp_path / "run"
    generate(folder, 45, shards=3, seed=11, error_rate=0.1)
    with open(folder / "traces-p1.jsonl", "ab") as fh:
        fh.write(b"".join(odd_lines()))
    idx = build(folder, None)
    with idx.snapshot() as snap:
        traces = snap.count()
        shards = sorted(folder.glob("*.jsonl"))
        ref = halo_reference.run(shards, _calls(traces), tmp_path / "ref")
        assert ref["trace_count"] == traces
        _compare(snap, ref, traces)
        _compare_totals(snap, ref["answers"][0]["ok"]["result"])
    idx.close()


def test_incremental_index_matches_reference(tmp_path, halo_reference):
    """Built in many small catch-ups (cut mid-line), the index still answers as the reference."""
    src = write_dataset(tmp_path / "src.jsonl", traces=40, extra=odd_lines()).read_bytes()
    path = tmp_path / "live.jsonl"
    path.write_bytes(b"")
    from halo_live.indexer import TraceIndex

    idx = TraceIndex.open(path, tmp_path / "idx", chunk_bytes=50_000, commit_bytes=50_000)
    step = len(src) // 7 + 13
    for at in range(0, len(src), step):
        with open(path, "ab") as fh:
            fh.write(src[at:at + step])
        idx.catch_up()
    with idx.snapshot() as snap:
        traces = snap.count()
        ref = halo_reference.run([path], _calls(traces), tmp_path / "ref")
        _compare(snap, ref, traces)
    idx.close()
