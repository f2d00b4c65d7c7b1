"""Outcomes in the index: the latest outcome of a trace wins everywhere (row, postings,
signatures, totals), the filters read the index only, and an outcome appended after its
trace shows up like any span."""

from __future__ import annotations

import lmdb
import pytest

from halo_live.engine.tools import open_store, run_tool
from halo_live.indexer import IndexFilters, Snapshot, TraceIndex
from halo_live.indexer import layout as L
from tests._index_helpers import build, dump
from tests._outcome_helpers import outcome, span, task_trace


def tid(n: int) -> str:
    return f"{n:032x}"


def counts(snap) -> dict[str, int]:
    return {o: snap.count(IndexFilters(outcome=o)) for o in ("passed", "failed", "unknown")}


def test_the_latest_outcome_of_a_trace_wins_in_every_rollup(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(task_trace(tid(1), errors=[("tool.read", "boom")], passed=True, task="t1")
                     + task_trace(tid(2), passed=False, task="t2"))
    with build(path, tmp_path / "idx") as idx:
        with idx.snapshot() as snap:
            assert counts(snap) == {"passed": 1, "failed": 1, "unknown": 0}
            [sig] = snap.error_signatures()
            assert (sig.trace_count, sig.outcome_trace_count, sig.failed_trace_count) == (1, 1, 0)
            row = snap.trace(tid(1))
            assert (row.outcome.passed, row.outcome.task_id, row.outcome.score) == (True, "t1", 1.0)

        # a re-grade, later: trace 1 failed after all; its signature now explains a failure
        with path.open("ab") as fh:
            fh.write(outcome(tid(1), "regrade", passed=False, end=20.0, task="t1", label="wrong"))
        idx.catch_up()
        with idx.snapshot() as snap:
            assert counts(snap) == {"passed": 0, "failed": 2, "unknown": 0}
            [sig] = snap.error_signatures()
            assert (sig.outcome_trace_count, sig.failed_trace_count) == (1, 1)
            totals = snap.totals()
            assert (totals.outcome_traces, totals.passed_traces, totals.failed_traces) == (2, 0, 2)
            assert snap.trace(tid(1)).outcome.label == "wrong"

        # an outcome that ended earlier loses, wherever it sits in the file
        with path.open("ab") as fh:
            fh.write(outcome(tid(1), "stale", passed=True, end=3.0, task="t-other"))
        idx.catch_up()
        with idx.snapshot() as snap:
            assert counts(snap)["failed"] == 2 and snap.trace(tid(1)).outcome.label == "wrong"
            assert snap.count(IndexFilters(task_ids=["t-other"])) == 0
            incremental = dump(idx)
    with build(path, tmp_path / "cold") as cold:  # the same index, built at once
        assert dump(cold) == incremental


def test_a_trace_without_a_pass_or_fail_is_unknown_and_labels_decide_when_no_boolean_does(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(task_trace(tid(1)) + span(tid(2), "root")
                     + outcome(tid(2), "o", passed=None, score=0.3, label="partially relevant")
                     + span(tid(3), "root") + outcome(tid(3), "o", passed=None, label="FAIL"))
    with build(path, tmp_path / "idx") as idx, idx.snapshot() as snap:
        assert counts(snap) == {"passed": 0, "failed": 1, "unknown": 2}
        assert snap.trace(tid(2)).outcome_status == "unknown" and snap.trace(tid(2)).outcome.score == 0.3
        assert snap.trace(tid(1)).outcome is None
        assert snap.count(IndexFilters(min_score=0.2, max_score=0.5)) == 1


def test_filters_are_answered_from_the_index_without_reading_a_span(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(task_trace(tid(n), passed=None if n % 5 == 0 else n % 3 != 0, task=f"task-{n}",
                                         errors=[("tool.x", "e")] if n % 2 else [])
                              for n in range(1, 31)))
    with open_store(path) as store:
        def no_reading(*args, **kwargs):
            raise AssertionError("a filter read span bytes")
        monkeypatch.setattr(Snapshot, "span_lines", no_reading)
        monkeypatch.setattr(Snapshot, "read_span", no_reading)

        def total(filters):
            return run_tool(store, "count_traces", {"filters": filters})["result"]["total"]

        passed = [n for n in range(1, 31) if n % 5 and n % 3]
        failed = [n for n in range(1, 31) if n % 5 and not n % 3]
        assert total({"outcome": "passed"}) == len(passed)
        assert total({"outcome": "failed"}) == len(failed)
        assert total({"outcome": "unknown"}) == 30 - len(passed) - len(failed)
        assert total({"outcome": "failed", "has_errors": False}) == sum(1 for n in failed if n % 2 == 0)
        assert total({"task_ids": ["task-3", "task-4", "nope"]}) == 2
        assert total({"min_score": 0.5}) == len(passed) and total({"max_score": 0.5}) == len(failed)
        page = run_tool(store, "query_traces", {"filters": {"outcome": "failed"}, "limit": 3})["result"]
        assert page["total"] == len(failed)
        assert [t["trace_id"] for t in page["traces"]] == [tid(n) for n in failed[:3]]
        assert page["traces"][0]["outcome"] == {"passed": False, "score": 0.0, "task_id": "task-3",
                                                "label": "wrong answer"}
        # the overview's outcome facts and the failure ranking: from the index too
        overview = run_tool(store, "get_dataset_overview", {})["result"]
        assert overview["outcomes"]["passed"] == len(passed) and overview["outcomes"]["failed"] == len(failed)
        assert overview["outcomes"]["silent_failure_count"] == total({"outcome": "failed", "has_errors": False})
        bad = run_tool(store, "count_traces", {"filters": {"outcome": "maybe"}})
        assert "error" in bad and "outcome" in bad["error"]


def test_an_outcome_appended_after_its_trace_is_visible_on_the_next_question(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(task_trace(tid(1)))
    with open_store(path) as store:
        assert run_tool(store, "count_traces", {"filters": {"outcome": "unknown"}})["result"]["total"] == 1
        with path.open("ab") as fh:
            fh.write(outcome(tid(1), "late", passed=False, end=100.0))
        assert run_tool(store, "count_traces", {"filters": {"outcome": "failed"}})["result"]["total"] == 1


def test_an_index_of_the_previous_layout_is_rebuilt_with_outcomes(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(task_trace(tid(1), passed=True))
    with build(path, tmp_path / "idx"):
        pass
    env = lmdb.open(str(tmp_path / "idx"), max_dbs=len(L.DB_NAMES) + 1)
    with env.begin(write=True) as txn:  # what an index of the first layout says of itself
        txn.put(b"schema", b"halo-live-index/1", db=env.open_db(b"meta", txn=txn))
        txn.drop(env.open_db(b"idx", txn=txn), delete=False)
    env.close()
    with build(path, tmp_path / "idx") as idx, idx.snapshot() as snap:
        assert snap.count(IndexFilters(outcome="passed")) == 1


@pytest.mark.parametrize("workers", [None, 2])
def test_many_traces_across_batches_and_a_process_pool(tmp_path, workers):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(task_trace(tid(n), passed=n % 4 != 0, task=f"t{n}") for n in range(400)))
    with TraceIndex.open(path, tmp_path / "idx", chunk_bytes=20_000, workers=workers, pool_min_bytes=1) as idx:
        idx.catch_up()
        with idx.snapshot() as snap:
            assert counts(snap) == {"passed": 300, "failed": 100, "unknown": 0}
            assert snap.trace_ids(IndexFilters(task_ids=["t8"])) == [tid(8)]


def test_flips_within_one_transaction_and_across_many_give_the_same_index(tmp_path):
    """Re-grades (state, task id, score) at every distance from the first outcome: a build at
    once (one transaction) equals one caught up line by line (a transaction per line)."""
    lines = []
    for n in range(6):
        lines.append(task_trace(tid(n), errors=[("tool.x", "e")] if n % 2 else [], passed=n % 3 == 0,
                                task=f"t{n}"))
    grades = [(1, False, "t1", 0.5), (1, True, "t1-renamed", None), (2, True, "t2", 0.9), (1, False, "t1", 0.1),
              (4, True, None, 1.0), (4, None, "t4", None), (5, False, "t5", 0.0), (5, False, "t5", 0.0)]
    for i, (n, passed, task, score) in enumerate(grades):
        lines.append(outcome(tid(n), f"g{i}", passed=passed, task=task, score=score, end=20.0 + i))
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"".join(lines))
    stepwise = tmp_path / "step.jsonl"
    stepwise.write_bytes(b"")

    def answers(idx):
        with idx.snapshot() as snap:
            tasks = {task: snap.trace_ids(IndexFilters(task_ids=[task]))
                     for task in ("t0", "t1", "t1-renamed", "t2", "t4", "t5")}
            return (counts(snap), tasks, snap.trace_ids(IndexFilters(min_score=0.0)),
                    [(s.outcome_trace_count, s.failed_trace_count) for s in snap.error_signatures()])

    with build(whole, tmp_path / "i1") as at_once, TraceIndex.open(stepwise, tmp_path / "i2") as step:
        for line in b"".join(lines).splitlines(keepends=True):
            with stepwise.open("ab") as fh:
                fh.write(line)
            step.catch_up()
        assert answers(at_once) == answers(step)
        assert {k: v for k, v in dump(at_once).items() if k != "traces"} == \
            {k: v for k, v in dump(step).items() if k != "traces"}
        counted, tasks, scored, sigs = answers(at_once)
        assert counted == {"passed": 3, "failed": 2, "unknown": 1}  # 0, 2, 3 passed; 1, 5 failed; 4 neither
        assert tasks["t1"] == [tid(1)] and tasks["t1-renamed"] == [] and tasks["t4"] == [tid(4)]
        assert scored == [tid(n) for n in (0, 1, 2, 3, 5)]
        assert sigs == [(3, 2)]  # the error traces 1, 3, 5: 1 and 5 failed in the end
