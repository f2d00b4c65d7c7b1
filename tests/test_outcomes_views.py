"""Outcomes as a user meets them: `halo annotate`, the report (pass rate, lift, silent
failures), the overview's ranking, and `halo compare` joining two runs by task."""

from __future__ import annotations

import json

import pytest

from halo_live.cli import main as halo
from halo_live.engine.compare import compare, summarize
from halo_live.engine.outcomes import mcnemar_exact, signature_lift, wilson
from halo_live.engine.tools import open_store, run_tool
from halo_live.indexer import IndexFilters, TraceIndex
from tests._outcome_helpers import task_trace


def tid(n: int) -> str:
    return f"{n:032x}"


def status(path, trace_id):
    with TraceIndex.open(path) as idx:
        idx.catch_up()
        with idx.snapshot() as snap:
            row = snap.trace(trace_id)
            return row.outcome_status, row.outcome


# --- halo annotate ----------------------------------------------------------------------------


@pytest.fixture
def ungraded(tmp_path):
    """Six traces; 1-3 carry a task id from an outcome recorded in the harness, 4-6 none."""
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"".join(task_trace(tid(n), passed=True, task=f"task-{n}") for n in (1, 2, 3))
                     + b"".join(task_trace(tid(n)) for n in (4, 5, 6)))
    return path


def test_annotate_by_trace_and_task_id_lists_unknown_ids_and_never_double_counts(ungraded, tmp_path, capsys):
    grades = tmp_path / "grades.jsonl"
    grades.write_text("\n".join(json.dumps(row) for row in [
        {"task_id": "task-1", "passed": False, "score": 0.1, "label": "wrong answer", "explanation": "said 41"},
        {"trace_id": tid(4), "passed": "true", "score": "1"},
        {"trace_id": "trace_" + tid(5), "label": "fail"},  # an Agents SDK trace id; the label decides
        {"trace_id": "f" * 32, "passed": True},
        {"task_id": "task-99", "passed": False},
    ]) + "\n")
    before = ungraded.read_bytes()
    for _ in range(2):  # twice: the second run's outcomes replace the first's
        assert halo(["annotate", str(ungraded), str(grades), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["traces_graded"] == 3 and summary["lines_written"] == 3
        assert summary["unknown_ids"] == ["f" * 32, "task-99"]
    assert ungraded.read_bytes().startswith(before)  # appended, nothing rewritten
    assert status(ungraded, tid(1))[0] == "failed" and status(ungraded, tid(1))[1].task_id == "task-1"
    assert status(ungraded, tid(4))[0] == "passed" and status(ungraded, tid(5))[0] == "failed"
    with open_store(ungraded) as store:
        outcomes = run_tool(store, "get_dataset_overview", {})["result"]["outcomes"]
        assert (outcomes["passed"], outcomes["failed"], outcomes["unknown"]) == (3, 2, 1)
        row = run_tool(store, "query_traces", {"filters": {"task_ids": ["task-1"]}})["result"]["traces"][0]
        assert row["span_count"] == 5  # root, answer, the harness's outcome and two annotations
    assert halo(["annotate", str(ungraded), str(grades), "--run", "r9", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)  # task ids within another run match nothing
    assert dry["lines_written"] == 0 and dry["unknown_ids"] == ["task-1", "f" * 32, "task-99"]
    assert halo(["annotate", str(ungraded), str(grades)]) == 0
    text = capsys.readouterr().out
    assert "3 outcome span(s)" in text and "unknown (no trace carries them, not written): " + "f" * 32 in text


def test_annotate_a_csv_and_keep_the_trace_as_it_was(ungraded, tmp_path, capsys):
    grades = tmp_path / "grades.csv"
    grades.write_text("trace_id,passed,score,label,explanation\n"
                      f"{tid(6)},no,0,wrong answer,\"said 41, not 42\"\n")
    with open_store(ungraded) as store:
        before = run_tool(store, "query_traces", {"filters": {"outcome": "unknown"}})["result"]["traces"]
    assert halo(["annotate", str(ungraded), str(grades)]) == 0
    with open_store(ungraded) as store:
        [after] = run_tool(store, "query_traces", {"filters": {"outcome": "failed"}})["result"]["traces"]
    was = next(t for t in before if t["trace_id"] == tid(6))
    for key in ("start_time", "end_time", "service_names", "agent_names", "complete", "has_errors"):
        assert after[key] == was[key], key  # one more span, nothing else moved
    assert after["span_count"] == was["span_count"] + 1
    assert after["outcome"] == {"passed": False, "score": 0.0, "task_id": None, "label": "wrong answer"}


def test_malformed_grades_are_reported_by_line_and_nothing_is_written(ungraded, tmp_path, capsys):
    grades = tmp_path / "grades.jsonl"
    grades.write_text(json.dumps({"trace_id": tid(4), "passed": True}) + "\n"
                      "{not json\n"
                      + json.dumps({"passed": True}) + "\n"
                      + json.dumps({"trace_id": tid(5), "passed": "maybe"}) + "\n"
                      + json.dumps({"trace_id": tid(5), "score": "high"}) + "\n"
                      + json.dumps({"trace_id": tid(5)}) + "\n"
                      "\n" + json.dumps([1, 2]) + "\n")
    before = ungraded.read_bytes()
    assert halo(["annotate", str(ungraded), str(grades)]) == 1
    err = capsys.readouterr().err
    for number, words in ((2, "not JSON"), (3, "no trace_id or task_id"), (4, "passed 'maybe' is not true or false"),
                          (5, "score 'high' is not a number"), (6, "no passed, score or label"),
                          (8, "not a JSON object")):
        assert f"line {number}: {words}" in err, (number, err)
    assert "6 malformed row(s)" in err and "nothing written" in err
    assert ungraded.read_bytes() == before
    bad_csv = tmp_path / "g.csv"
    bad_csv.write_text("id,passed\nx,true\n")
    assert halo(["annotate", str(ungraded), str(bad_csv)]) == 1
    assert "neither trace_id nor task_id" in capsys.readouterr().err


# --- the report and the overview ----------------------------------------------------------------


@pytest.fixture
def graded_run(tmp_path):
    """20 tasks. A harmless signature hits 16 of them, passing or failing alike (4 and 8 fail with
    it alone); the one that explains failures hits 4, all failed; task 19 fails without any error
    span: silently."""
    path = tmp_path / "traces.jsonl"
    lines = []
    for n in range(20):
        errors = [("tool.lint", "style warning")] if n < 16 else []
        if n in (2, 6, 11, 17):
            errors.append(("tool.read_file", "limit exceeded"))
        passed = n not in (2, 6, 11, 17, 19, 4, 8)
        tools = [("read_file", '{"path": "a.py"}', "def f(): ..."), ("grep", '{"q": "x"}', "no match")]
        lines.append(task_trace(tid(n), errors=errors, passed=passed, task=f"t{n:02d}", tools=tools,
                                answer="The value is 41." if n == 19 else "The value is 42."))
    path.write_bytes(b"".join(lines))
    return path


def test_the_report_ranks_the_signature_that_explains_failures_above_frequent_noise(graded_run, capsys,
                                                                                   monkeypatch):
    assert halo(["report", str(graded_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outcomes"] | {"pass_rate_95ci": None} == {
        "passed": 13, "failed": 7, "unknown": 0, "pass_rate": 0.65, "silent_failure_count": 1,
        "pass_rate_95ci": None}
    low, high = report["outcomes"]["pass_rate_95ci"]
    assert low < 0.65 < high
    first, second = report["error_signatures"][:2]
    assert first["status_message"] == "limit exceeded" and second["status_message"] == "style warning"
    assert first["trace_count"] < second["trace_count"]  # less frequent, ranked first
    assert (first["failed_traces"], first["failure_rate_with"], first["failure_rate_without"]) == (4, 1.0, 0.1875)
    assert first["excess_failures"] > 3 > second["excess_failures"]

    silent = report["silent_failures"]
    assert silent["count"] == 1
    [example] = silent["examples"]
    assert example["trace_id"] == tid(19)
    assert example["task_id"] == "t19" and example["label"] == "wrong answer"
    assert [c["tool"] for c in example["last_tool_calls"]] == ["read_file", "grep"]
    assert example["final_output"] == "The value is 41."

    monkeypatch.setenv("COLUMNS", "160")
    assert halo(["report", str(graded_run)]) == 0
    text = capsys.readouterr().out
    assert "pass rate 65%" in text and "Silent failures: 1" in text
    assert text.index("limit exceeded") < text.index("style warning")


def test_the_overview_keeps_the_reference_taxonomy_and_adds_the_ranking(graded_run):
    with open_store(graded_run) as store:
        overview = run_tool(store, "get_dataset_overview", {})["result"]
        filtered = run_tool(store, "get_dataset_overview", {"filters": {"has_errors": True}})["result"]
    # the reference's field, its order: by error spans
    assert [g["status_message"] for g in overview["error_taxonomy"]] == ["style warning", "limit exceeded"]
    for view in (overview, filtered):  # ours: by the failures explained, in both overview paths
        ranked = view["failure_signatures"]
        assert [g["status_message"] for g in ranked] == ["limit exceeded", "style warning"]
        assert ranked[0]["failed_traces"] == 4 and ranked[0]["lift"] > 1
    assert filtered["outcomes"]["passed"] + filtered["outcomes"]["failed"] == 17


def test_the_one_ranking_rule_in_numbers():
    noise = signature_lift(hit_known=16, hit_failed=5, known=20, failed=7)
    cause = signature_lift(hit_known=4, hit_failed=4, known=20, failed=7)
    assert cause.excess > noise.excess and cause.lift > noise.lift
    assert signature_lift(hit_known=20, hit_failed=7, known=20, failed=7).excess == 0  # no contrast
    assert wilson(0, 0) is None and wilson(10, 10)[1] == 1.0
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(0, 8) == pytest.approx(2 / 256, abs=1e-4)


# --- halo compare by task -------------------------------------------------------------------------


def test_compare_joins_two_runs_by_task_and_lists_the_flips(tmp_path, capsys):
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    # 12 tasks; t03 and t07 get fixed, t05 breaks; t11 only runs before, t12 only after
    before.write_bytes(b"".join(task_trace(tid(n), passed=n not in (3, 7), task=f"t{n:02d}", run="r1")
                                for n in range(12)))
    after.write_bytes(b"".join(task_trace(tid(100 + n), passed=n != 5, task=f"t{n:02d}", run="r2")
                               for n in list(range(11)) + [12]))
    result = compare(summarize(before), summarize(after))
    tasks = result["tasks"]
    assert (tasks["joined"], tasks["only_before"], tasks["only_after"]) == (11, 1, 1)
    assert tasks["fail_to_pass"] == [
        {"task_id": "t03", "before_trace_id": tid(3), "after_trace_id": tid(103)},
        {"task_id": "t07", "before_trace_id": tid(7), "after_trace_id": tid(107)}]
    assert tasks["pass_to_fail"] == [{"task_id": "t05", "before_trace_id": tid(5), "after_trace_id": tid(105)}]
    assert tasks["mcnemar_p"] == 1.0 and tasks["verdict"] == "within noise"
    assert result["before"]["outcomes"]["tasks"] == 12 and result["before"]["score"]["source"] == "traces"
    assert result["before"]["score"]["score"] == pytest.approx(10 / 12, abs=1e-4)
    assert result["delta"]["score"] == pytest.approx(11 / 12 - 10 / 12, abs=1e-3)
    low, high = result["after"]["outcomes"]["pass_rate_95ci"]
    assert low < 11 / 12 < high

    assert halo(["compare", str(before), str(after)]) == 0
    text = capsys.readouterr().out
    assert "fail -> pass" in text and "t05" in text and tid(105) in text and "within noise" in text
    assert halo(["compare", str(before), str(after), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tasks"]["fail_to_pass"]) == 2


def test_compare_calls_a_change_of_many_flips_real(tmp_path):
    before, after = tmp_path / "b.jsonl", tmp_path / "a.jsonl"
    before.write_bytes(b"".join(task_trace(tid(n), passed=n < 4, task=f"t{n}", run="r1") for n in range(20)))
    after.write_bytes(b"".join(task_trace(tid(50 + n), passed=True, task=f"t{n}", run="r2") for n in range(20)))
    tasks = compare(summarize(before), summarize(after))["tasks"]
    assert len(tasks["fail_to_pass"]) == 16 and tasks["verdict"] == "a real change" and tasks["mcnemar_p"] < 0.001


def test_the_offline_stand_in_contrasts_failed_with_passed_traces(graded_run, monkeypatch, capsys):
    from halo_live.demo.diagnostic_policy import LABEL
    from halo_live.demo.diagnostic_policy import main as diagnose

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert diagnose([str(graded_run), "--quiet"]) == 0
    answer = capsys.readouterr().out
    assert answer.startswith(LABEL)
    assert "**13 of 20 tasks passed** (pass rate 65%); 7 failed, 1 of them silently" in answer
    assert f"`{tid(19)}`" in answer  # the silent failure, to read
    # the signature that explains failures comes first, the frequent harmless one is called that
    assert answer.index("limit exceeded") < answer.index("style warning")
    assert "4 of the 4 traces it hits failed (100%), against 19% of the traces without it" in answer
    noise = answer.split("style warning", 1)[1]
    assert "passing traces hit it as often, so it does not explain the failures" in noise
