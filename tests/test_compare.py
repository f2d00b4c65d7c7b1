"""`halo compare` on small hand-built trace files: shares, new/vanished, run ids, score files, errors."""

from __future__ import annotations

import json

import pytest

from halo_live.cli import main as halo
from halo_live.engine.compare import CompareError, SeveralRunsError, compare, summarize
from halo_live.exporter import canonical


def span(trace: int, sid: int, parent: int | None, name: str, *, run: str, error: str | None = None,
         start: int = 0, end: int = 1_000_000_000, tokens: tuple[int, int] | None = None) -> bytes:
    attrs = {canonical.INF_SCHEMA_VERSION: 1, canonical.INF_PROJECT_ID: "p", canonical.INF_OBSERVATION_KIND: canonical.OBS_SPAN,
             canonical.INF_RUN_ID: run}  # the projection copies the resource run id onto each span
    if tokens:
        attrs.update({canonical.INF_OBSERVATION_KIND: canonical.OBS_LLM, canonical.INF_LLM_INPUT_TOKENS: tokens[0],
                      canonical.INF_LLM_OUTPUT_TOKENS: tokens[1], canonical.INF_LLM_MODEL_NAME: "m"})
    base = 1_700_000_000 * 10**9 + trace * 10**10
    line = canonical.canonical_line(
        trace_id=f"{trace:032x}", span_id=f"{trace:08x}{sid:08x}",
        parent_span_id="" if parent is None else f"{trace:08x}{parent:08x}", name=name,
        kind=canonical.SPAN_KIND_INTERNAL, start_time=canonical.iso_from_ns(base + start), end_time=canonical.iso_from_ns(base + end),
        status_code=canonical.STATUS_ERROR if error else canonical.STATUS_OK, status_message=error or "",
        resource_attributes={canonical.SERVICE_NAME: "svc", canonical.INF_RUN_ID: run}, scope_name="t", scope_version="1",
        attributes=attrs)
    return canonical.encode_line(line)


def trace(n: int, run: str, errors: list[tuple[str, str]] = (), tokens=(100, 10), ms: int = 1000) -> bytes:
    lines = [span(n, 1, None, "agent", run=run, end=ms * 10**6),
             span(n, 2, 1, "llm", run=run, tokens=tokens, end=ms * 10**6 // 2)]
    lines += [span(n, 3 + i, 1, name, run=run, error=msg, end=ms * 10**6 // 2)
              for i, (name, msg) in enumerate(errors)]
    return b"".join(lines)


@pytest.fixture()
def two_runs(tmp_path):
    before = tmp_path / "before.jsonl"
    after = tmp_path / "after.jsonl"
    before.write_bytes(trace(1, "r1", [("read_file", "too many lines")]) +
                       trace(2, "r1", [("read_file", "too many lines"), ("agent", "Max turns exceeded")]) +
                       trace(3, "r1") + trace(4, "r1", [("grep", "no such dir")]))
    after.write_bytes(trace(11, "r2", [("grep", "no such dir")], tokens=(50, 5), ms=500) +
                      trace(12, "r2", [("search", "timeout")], tokens=(50, 5), ms=500) +
                      trace(13, "r2", tokens=(50, 5), ms=500) + trace(14, "r2", tokens=(50, 5), ms=500))
    return before, after


def by_key(result):
    return {(s["span_name"], s["status_message"]): s for s in result["signatures"]}


def test_signature_shares_and_new_vanished(two_runs):
    before, after = two_runs
    result = compare(summarize(before), summarize(after))
    sigs = by_key(result)
    assert sigs[("read_file", "too many lines")]["before"] == {"error_spans": 2, "traces": 2, "share": 0.5}
    assert sigs[("read_file", "too many lines")]["change"] == "vanished"
    assert sigs[("search", "timeout")]["change"] == "new"
    assert sigs[("grep", "no such dir")]["change"] == "same"
    assert [s["span_name"] for s in result["new_signatures"]] == ["search"]
    assert {s["span_name"] for s in result["vanished_signatures"]} == {"read_file", "agent"}
    assert result["before"]["error_trace_share"] == 0.75 and result["after"]["error_trace_share"] == 0.5
    assert result["delta"]["input_tokens_per_trace"] == -50.0
    assert result["delta"]["median_latency_ms"] == -500.0
    assert result["delta"]["score"] is None  # no score files


def test_score_files_give_the_score_delta(two_runs):
    before, after = two_runs
    before.with_name("before.jsonl.score.json").write_text(json.dumps({"score": 0.25, "passed": 1, "tasks": 4, "run_id": "r1"}))
    after.with_name("after.jsonl.score.json").write_text(json.dumps({"score": 0.75, "passed": 3, "tasks": 4, "run_id": "r2"}))
    result = compare(summarize(before), summarize(after))
    assert result["delta"]["score"] == 0.5
    assert result["after"]["score"]["passed"] == 3


def test_a_score_file_of_another_run_is_ignored(two_runs):
    before, _ = two_runs
    before.with_name("before.jsonl.score.json").write_text(json.dumps({"score": 0.9, "run_id": "other"}))
    assert summarize(before).score is None


def test_one_file_with_two_runs_is_picked_by_run_id(two_runs, tmp_path):
    before, after = two_runs
    both = tmp_path / "both.jsonl"
    both.write_bytes(before.read_bytes() + after.read_bytes())
    with pytest.raises(CompareError, match="holds 2 runs"):
        summarize(both)
    picked = compare(summarize(both, "r1"), summarize(both, "r2"))
    separate = compare(summarize(before), summarize(after))
    assert by_key(picked).keys() == by_key(separate).keys()
    for key, sig in by_key(separate).items():
        assert by_key(picked)[key]["before"] == sig["before"] and by_key(picked)[key]["after"] == sig["after"]
    with pytest.raises(CompareError, match="run 'r9' is not in"):
        summarize(both, "r9")


def test_cli_text_output_and_one_line_errors(two_runs, capsys, tmp_path):
    before, after = two_runs
    assert halo(["compare", str(before), str(after)]) == 0
    text = capsys.readouterr().out
    assert "vanished" in text and "new" in text and "read_file" in text
    assert halo(["compare", str(tmp_path / "missing.jsonl"), str(after)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file or folder" in err[0]
    assert halo(["compare", str(before), str(after), "--top", "0"]) == 2


def test_explicit_score_files(two_runs, tmp_path, capsys):
    before, after = two_runs
    (tmp_path / "b.json").write_text(json.dumps({"score": 0.5, "run_id": "r1"}))
    (tmp_path / "a.json").write_text(json.dumps({"score": 1.0}))
    assert halo(["compare", str(before), str(after), "--json", "--score-before", str(tmp_path / "b.json"),
                 "--score-after", str(tmp_path / "a.json")]) == 0
    assert json.loads(capsys.readouterr().out)["delta"]["score"] == 0.5
    assert halo(["compare", str(before), str(after), "--score-after", str(tmp_path / "nope.json")]) == 1
    assert "no such score file" in capsys.readouterr().err


def test_one_file_on_both_sides_names_its_runs_and_the_flags(two_runs, tmp_path, capsys):
    before, after = two_runs
    both = tmp_path / "both.jsonl"
    both.write_bytes(before.read_bytes() + after.read_bytes())
    with pytest.raises(SeveralRunsError) as caught:
        summarize(both)
    assert caught.value.runs == ["r1", "r2"]
    want = (f"{both} holds 2 runs (r1, r2) and is on both sides: "
            "compare two of them with --run-before r1 --run-after r2")
    assert halo(["compare", str(both), str(both)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(want), err
    assert halo(["compare", str(both), str(tmp_path / "." / "both.jsonl"), "--run-before", "r2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("--run-before r2 --run-after r1"), err
    assert halo(["compare", str(both), str(after)]) == 1  # different files: pick one side's run
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds 2 runs (r1, r2): pick one with --run" in err[0]
    assert halo(["compare", str(both), str(both), "--run-before", "r1", "--run-after", "r2"]) == 0
