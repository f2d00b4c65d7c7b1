"""The benchmark end to end, offline: worker processes, shard traces, score file, compare."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from halo_live.demo.benchmark import BenchmarkConfig, run_benchmark
from halo_live.demo.model_server import ModelServer, Reply, ScriptedPolicy
from halo_live.cli import main as halo
from halo_live.engine.compare import compare_paths
from halo_live.indexer import IndexFilters, TraceIndex

TASKS = 12
MAX_TURNS = "Max turns exceeded"  # the SDK's error on the agent span when the turn budget runs out


def find(signatures, match):
    return [s for s in signatures if match(s["span_name"], s["status_message"])]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`halo demo` twice, as a user runs it: the baseline harness, then the fixed one (same tasks, seed).

    The second run has an API key, so the diagnostic agent answers at the end (a scripted stub model).
    """
    root = tmp_path_factory.mktemp("bench")
    scores, printed = {}, {}
    diagnosis = ScriptedPolicy([Reply(text="DIAGNOSIS: read_file rejects oversized reads")])
    with ModelServer(diagnosis) as stub:
        for preset in ("baseline", "fixed"):
            argv = ["demo", "--out", str(root / preset), "--tasks", str(TASKS), "--workers", "2",
                    "--latency", "0", "--no-live", "--run-id", f"{preset}-run"]
            with contextlib.redirect_stdout(io.StringIO()) as out, pytest.MonkeyPatch.context() as env:
                env.delenv("OPENAI_API_KEY", raising=False)
                if preset == "fixed":
                    env.setenv("OPENAI_API_KEY", "test")
                    env.setenv("OPENAI_BASE_URL", stub.base_url)
                    argv.append("--fixed")
                assert halo(argv) == 0
            printed[preset] = out.getvalue()
            scores[preset] = json.loads((root / preset / "score.json").read_text())
        offered = {tool["name"] for turn in stub.turns for tool in turn.tools}
    assert {"read_file", "grep_files"} <= offered  # the online diagnosis reads the harness's code
    return root, scores, printed


def test_halo_demo_shows_live_progress_then_the_report_and_the_compare_command(runs):
    root, _, printed = runs
    lines = printed["baseline"].splitlines()
    progress = [line for line in lines if line.split(" ")[0].endswith(f"/{TASKS}")]
    assert len(progress) >= 2 and progress[-1].startswith(f"{TASKS}/{TASKS} tasks")
    assert "Error signatures" in printed["baseline"]  # the final report
    view = printed["baseline"].split("halo demo: live from", 1)[1]  # `halo watch`'s view, its last frame
    assert f"{TASKS}/{TASKS} tasks, ETA done" in view and "0 running" in view
    # the offline model's tokens priced as the online default's (gpt-4.1-mini): a cost, no unpriced model
    cost = next(line for line in view.splitlines() if line.strip("│ ").startswith("cost "))
    assert "$" in cost and "(estimated from tokens at list prices)" in cost and "unpriced" not in view
    header = view.split("top error signatures", 1)[1].split("\n")[1]
    assert header.strip("│ ").split()[:3] == ["traces", "spans", "failed"]  # both counts, as in the report
    assert "halo demo --fixed --out" in printed["baseline"]
    assert f"halo compare {root / 'baseline'} {root / 'fixed'}" in printed["fixed"]
    assert "DIAGNOSIS: read_file rejects oversized reads" in printed["fixed"]
    assert "DIAGNOSIS" not in printed["baseline"]  # no API key, no agent


def test_benchmark_writes_a_shard_per_worker_and_a_score_file(runs):
    root, scores, _ = runs
    out = root / "baseline"
    assert sorted(p.name for p in out.glob("traces-w*.jsonl")) == ["traces-w0.jsonl", "traces-w1.jsonl"]
    on_disk = json.loads((out / "score.json").read_text())
    assert on_disk["run_id"] == "baseline-run"
    assert on_disk["tasks"] == on_disk["done"] == TASKS
    assert on_disk["failed_workers"] == []
    assert 0 < on_disk["passed"] < TASKS  # the baseline harness fails some tasks, not all
    assert sum(on_disk["reasons"].values()) == TASKS
    # the score is the traces': the checker's outcomes, read back from the index
    assert on_disk["passed"] == sum(1 for r in on_disk["results"] if r["passed"])


def test_every_task_is_one_indexed_trace_tagged_with_the_run_id(runs):
    root, scores, _ = runs
    with TraceIndex.open(root / "baseline") as index:
        index.catch_up()
        with index.snapshot() as snap:
            assert snap.totals().run_ids == ["baseline-run"]
            ids = set(snap.trace_ids(IndexFilters(run_ids=["baseline-run"])))
            assert ids == {r["trace_id"] for r in scores["baseline"]["results"]}
            failed = {r["trace_id"] for r in scores["baseline"]["results"] if r["reason"] == "error: MaxTurnsExceeded"}
            assert failed and failed <= set(snap.trace_ids(IndexFilters(has_errors=True)))
            row = snap.trace(next(iter(ids)))
            assert row.agent_names == ["codebase-helper"] and row.complete
            for result in scores["baseline"]["results"]:  # each task's outcome is in its own trace
                outcome = snap.trace(result["trace_id"]).outcome
                assert (outcome.passed, outcome.task_id, outcome.label) == \
                    (result["passed"], result["task_id"], result["reason"])


def test_harness_fix_reduces_the_targeted_error_signatures(runs):
    root, scores, _ = runs
    assert scores["fixed"]["score"] > scores["baseline"]["score"]
    result = compare_paths(root / "baseline", root / "fixed")
    [loop] = find(result["signatures"], lambda name, msg: msg == MAX_TURNS)  # recovery hint ends the loop
    assert loop["before"]["traces"] > 0 and loop["after"]["traces"] == 0 and loop["change"] == "vanished"
    [read] = find(result["signatures"], lambda name, msg: "read_file" in name)  # the stated limit ends rejections
    assert read["before"]["traces"] > read["after"]["traces"] == 0
    assert result["delta"]["score"] == pytest.approx(scores["fixed"]["score"] - scores["baseline"]["score"], abs=1e-3)
    assert result["delta"]["error_trace_share"] < 0
    assert result["before"]["run_id"] == "baseline-run" and result["after"]["run_id"] == "fixed-run"


def test_halo_compare_json_on_the_two_runs(runs, capsys):
    root, _, _ = runs
    assert halo(["compare", str(root / "baseline"), str(root / "fixed"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert find(printed["vanished_signatures"], lambda name, msg: msg == MAX_TURNS)
    assert find(printed["vanished_signatures"], lambda name, msg: "read_file" in name)
    assert printed["before"]["score"]["run_id"] == "baseline-run"
    tasks = printed["tasks"]  # joined by task id, without the score files
    assert tasks["joined"] == TASKS and tasks["fail_to_pass"] and printed["before"]["score"]["source"] == "traces"


def test_two_runs_stacked_in_one_file_need_a_run_id(runs, tmp_path, capsys):
    root, _, _ = runs
    stacked = tmp_path / "both.jsonl"
    with stacked.open("wb") as out:
        for preset in ("baseline", "fixed"):
            for shard in sorted((root / preset).glob("traces-w*.jsonl")):
                out.write(shard.read_bytes())
    assert halo(["compare", str(stacked), str(stacked)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds 2 runs" in err[0] and "--run" in err[0]

    assert halo(["compare", str(stacked), str(stacked), "--run-before", "baseline-run",
                 "--run-after", "fixed-run", "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)
    folders = compare_paths(root / "baseline", root / "fixed")
    counts = (lambda r: {(s["span_name"], s["status_message"]): (s["before"]["traces"], s["after"]["traces"])
                         for s in r["signatures"]})
    assert counts(picked) == counts(folders)
    assert picked["before"]["traces"] == picked["after"]["traces"] == TASKS


def test_otlp_transport_through_a_halo_serve_child(tmp_path):
    """The other way in: OTel GenAI spans over OTLP/HTTP to `halo serve`, same tasks, same index."""
    out = tmp_path / "otlp"
    score = run_benchmark(BenchmarkConfig(out=out, workers=1, tasks=4, latency=0, run_id="otlp-run",
                                          transport="otlp"))
    assert [p.name for p in out.glob("traces-w*.jsonl")] == []
    [shard] = out.glob("traces-serve-*.jsonl")  # written by the server, not by the worker
    assert json.loads((out / ".halo-benchmark.json").read_text())["globs"] == ["traces-serve-*.jsonl"]
    assert score["done"] == 4 and score["transport"] == "otlp"
    assert "0 rejected" in (out / "logs" / "serve.log").read_text()
    with TraceIndex.open(out) as index:
        index.catch_up()
        with index.snapshot() as snap:
            assert snap.totals().run_ids == ["otlp-run"]
            assert set(snap.trace_ids()) == {r["trace_id"] for r in score["results"]}
            rows = snap.rows(snap.trace_ids())
            assert {name for row in rows for name in row.agent_names} == {"codebase-helper"}
            assert {name for row in rows for name in row.model_names} == {"halo-offline-1"}
            assert {row.project_id for row in rows} == {"halo-demo"}
            assert {name for row in rows for name in row.tool_names} == {"grep", "read_file"}
            # outcomes came as OTel GenAI evaluation events on each task's root span
            assert {row.trace_id: row.outcome.passed for row in rows} == \
                {r["trace_id"]: r["passed"] for r in score["results"]}


def test_a_run_deletes_only_the_files_a_benchmark_wrote(tmp_path):
    """The cleanup before a run checks ownership itself (the API, not only `halo demo`)."""
    from halo_live.demo.benchmark.layout import MARKER_FILE
    from halo_live.demo.benchmark.runner import BenchmarkRun, FolderNotOurs

    def config(out, run_id):
        return BenchmarkConfig(out=out, workers=1, tasks=2, latency=0, run_id=run_id)

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "traces-w0.jsonl").write_text('{"someone": "else"}\n')
    with pytest.raises(FolderNotOurs, match="traces-w0.jsonl"):
        BenchmarkRun(config(theirs, "x")).start()
    assert (theirs / "traces-w0.jsonl").read_text() == '{"someone": "else"}\n'
    assert not (theirs / MARKER_FILE).exists()

    ours = tmp_path / "ours"
    run_benchmark(config(ours, "first"))
    assert json.loads((ours / MARKER_FILE).read_text())["files"] == [
        "traces-w0.jsonl", "results-w0.ndjson", "score.json"]
    for stranger in ("mine.jsonl", "traces-w7.jsonl"):  # added later by someone else
        (ours / stranger).write_text("{}\n")
        with pytest.raises(FolderNotOurs, match=stranger):
            BenchmarkRun(config(ours, "second")).start()
        assert (ours / stranger).exists() and (ours / "traces-w0.jsonl").exists()
        (ours / stranger).unlink()
    run_benchmark(config(ours, "second"))  # replaces its own shard: one run in the folder
    with TraceIndex.open(ours) as index:
        index.catch_up()
        with index.snapshot() as snap:
            assert snap.totals().run_ids == ["second"]


def test_halo_demo_twice_keeps_the_first_run_unless_told_to_overwrite(tmp_path):
    out = tmp_path / "baseline"

    def demo(run_id, *extra):
        argv = ["demo", "--out", str(out), "--tasks", "1", "--workers", "1", "--latency", "0",
                "--no-live", "--no-ask", "--run-id", run_id, *extra]
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert halo(argv) == 0
        return printed.getvalue()

    def run_ids(folder):
        with TraceIndex.open(folder) as index:
            index.catch_up()
            with index.snapshot() as snap:
                return snap.totals().run_ids

    demo("first")
    said = demo("second")
    [kept] = [p for p in tmp_path.iterdir() if p.name.startswith("baseline-")]
    assert f"the previous run in {out}/ was kept as {kept}/" in " ".join(said.split())
    assert run_ids(kept) == ["first"] and run_ids(out) == ["second"]
    said = demo("third", "--overwrite")
    assert "replacing the previous run" in said
    assert run_ids(out) == ["third"] and len(list(tmp_path.iterdir())) == 2
