"""The offline diagnosis: the real diagnostic agent, driven by `halo_live.demo.diagnostic_policy`, on a real
benchmark run's traces, with no API key."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from halo_live.demo.diagnostic_policy import LABEL, MODEL_NAME, DiagnosticPolicy
from halo_live.demo.diagnostic_policy import main as diagnose_main
from halo_live.demo.model_server import ModelServer
from halo_live.cli import main as halo
from halo_live.engine.outcomes import rank_index_signatures
from halo_live.exporter.canonical import ATTRIBUTES, NAME, OI_OUTPUT_VALUE, STATUS, STATUS_CODE_FIELD, STATUS_ERROR
from halo_live.indexer import TraceIndex

TASKS = 12
TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")


def no_key(env: pytest.MonkeyPatch) -> None:
    env.delenv("OPENAI_API_KEY", raising=False)
    env.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`halo demo` as a new user without an API key runs it: (folder, what it printed, exit code)."""
    out = tmp_path_factory.mktemp("diagnose") / "baseline"
    argv = ["demo", "--out", str(out), "--tasks", str(TASKS), "--workers", "2", "--latency", "0",
            "--no-live"]
    with contextlib.redirect_stdout(io.StringIO()) as printed, pytest.MonkeyPatch.context() as env:
        no_key(env)
        code = halo(argv)
    return out, printed.getvalue(), code


def index_facts(out: Path, n: int = 3):
    """(the top n error signatures by the failures they explain, every trace id) as the index holds them."""
    index = TraceIndex.open(out)
    try:
        index.catch_up()
        with index.snapshot() as snap:
            totals = snap.totals()
            ranked = rank_index_signatures(snap.error_signatures(), totals.passed_traces, totals.failed_traces)
            return [sig for sig, _ in ranked[:n]], set(snap.trace_ids())
    finally:
        index.close()


def error_outputs(out: Path, trace_id: str, span_name: str) -> set[str]:
    """What the error spans of `span_name` in `trace_id` returned, read straight from the shards."""
    found = set()
    for shard in out.glob("*.jsonl"):
        for line in shard.read_text().splitlines():
            span = json.loads(line)
            if (span["trace_id"] == trace_id and span[NAME] == span_name
                    and span[STATUS][STATUS_CODE_FIELD] == STATUS_ERROR):
                found.add(span[ATTRIBUTES].get(OI_OUTPUT_VALUE, ""))
    return found - {""}


def ask_offline(out: Path, api: str):
    from halo_live.engine.agent.ask import AgentSettings, ask
    from halo_live.engine.agent.display import StepPrinter

    with ModelServer(DiagnosticPolicy()) as server:
        settings = AgentSettings(model=MODEL_NAME, api=api, base_url=server.base_url, api_key="test")
        result = asyncio.run(ask(out, "What fails and why?", settings, printer=StepPrinter(quiet=True)))
    return result, server.turns


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_the_agent_finds_the_real_top_signatures_and_cites_real_trace_ids(demo_run, api):
    out, _, _ = demo_run
    result, turns = ask_offline(out, api)
    answer = result.answer
    assert answer.startswith(LABEL)  # labelled: not an LLM
    signatures, trace_ids = index_facts(out)
    assert len(signatures) >= 2
    cited = set(TRACE_ID.findall(answer))
    assert cited and cited <= trace_ids  # never an invented id
    assert re.search(r"\*\*\d+ of 12 tasks passed\*\* \(pass rate \d+%\)", answer)  # the outcomes
    for sig in signatures:
        section = answer.split(f"`{sig.span_name}`: ", 1)[1].split("###", 1)[0]
        assert f"**traces hit**: {sig.trace_count} " in section
        assert sig.example_trace_ids[0] in section
        # failed traces contrasted with passed ones
        assert f"**outcomes**: {sig.failed_trace_count} of the {sig.outcome_trace_count} traces it hits failed" \
            in section
    # the top signature's cause is the error text its spans really returned
    top = signatures[0]
    outputs = error_outputs(out, top.example_trace_ids[0], top.span_name)
    assert outputs and any(text in answer for text in outputs)


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_the_investigation_uses_the_tools_a_model_would_and_ends_with_final_answer(demo_run, api):
    out, _, _ = demo_run
    result, turns = ask_offline(out, api)
    called = [c["function"]["name"] for m in turns[-1].messages for c in m.get("tool_calls") or []]
    assert called[0] == "get_dataset_overview"
    assert {"query_traces", "search_trace", "view_spans", "run_code"} <= set(called)
    assert result.stats.llm_calls == len(turns) == 4  # overview, query+search+run_code, view, final_answer
    assert result.stats.tool_errors == 0 and not result.salvaged
    query = next(json.loads(c["function"]["arguments"]) for m in turns[-1].messages
                 for c in m.get("tool_calls") or [] if c["function"]["name"] == "query_traces")
    assert query["filters"] == {"has_errors": True}


def test_the_stand_in_computes_per_model_figures_with_run_code(demo_run):
    from halo_live.engine.tools import open_store, run_tool

    out, _, _ = demo_run
    result, _ = ask_offline(out, "chat")
    table = re.findall(r"^\| `([^`]+)` \| (\d+) \| (\d+)", result.answer, re.M)
    assert table, result.answer
    with open_store(out) as store:
        for model, traces, failed in table:
            count = {"model_names": [model]}
            assert int(traces) == run_tool(store, "count_traces", {"filters": count})["result"]["total"]
            assert int(failed) == run_tool(store, "count_traces", {"filters": {**count, "has_errors": True}}
                                           )["result"]["total"]
    assert "computed across every trace in the sandbox with `run_code`" in result.answer


def test_halo_demo_without_a_key_ends_with_the_offline_diagnosis(demo_run):
    out, printed, code = demo_run
    assert code == 0
    report = printed.split("asking the diagnostic agent", 1)[1]
    assert "offline stand-in model" in report and "not an LLM" in report
    assert "suggested harness change" in report
    assert set(TRACE_ID.findall(report)) <= index_facts(out)[1]


def test_halo_demo_no_ask_skips_the_diagnosis(tmp_path, monkeypatch, capsys):
    no_key(monkeypatch)
    assert halo(["demo", "--out", str(tmp_path / "run"), "--tasks", "2", "--workers", "1",
                 "--latency", "0", "--no-live", "--no-ask"]) == 0
    assert "asking the diagnostic agent" not in capsys.readouterr().out


def test_one_command_asks_offline_about_any_trace_path(demo_run, monkeypatch, capsys):
    out, _, _ = demo_run
    no_key(monkeypatch)
    assert diagnose_main([str(out), "-p", "Which tool fails most?", "--quiet"]) == 0
    answer = capsys.readouterr().out
    assert answer.startswith(LABEL) and "suggested harness change" in answer


def write_spans(path: Path, spans: list[tuple]) -> Path:
    """Canonical lines from (trace n, span n, name, status, message, attributes)."""
    from halo_live.exporter.canonical import SPAN_KIND_INTERNAL, canonical_line, encode_line

    path.write_bytes(b"".join(encode_line(canonical_line(
        trace_id=f"{t:032x}", span_id=f"{n:016x}", parent_span_id="", name=name,
        kind=SPAN_KIND_INTERNAL, start_time="2026-01-01T00:00:00Z", end_time="2026-01-01T00:00:01Z",
        status_code=status, status_message=message, resource_attributes={"service.name": "s"},
        scope_name="t", scope_version="1", attributes=attrs)) for t, n, name, status, message, attrs in spans))
    return path


def test_a_tight_turn_budget_still_gets_the_signatures_it_found(demo_run, monkeypatch, capsys):
    out, _, _ = demo_run
    no_key(monkeypatch)
    assert diagnose_main([str(out), "--quiet", "--max-turns", "2"]) == 0  # the agent's wrap-up turn
    answer = capsys.readouterr().out
    signatures, trace_ids = index_facts(out)
    assert answer.startswith(LABEL) and "not established" in answer
    assert all(f"`{sig.span_name}`: " in answer for sig in signatures)
    assert set(TRACE_ID.findall(answer)) <= trace_ids


def test_a_dataset_without_errors_gets_a_plain_answer(tmp_path, monkeypatch, capsys):
    from halo_live.exporter.canonical import STATUS_OK

    shard = write_spans(tmp_path / "ok.jsonl", [(t, t, "task", STATUS_OK, "", {}) for t in (1, 2)])
    no_key(monkeypatch)
    assert diagnose_main([str(shard), "--quiet"]) == 0
    assert "No error signatures" in capsys.readouterr().out


def test_a_signature_buried_under_other_errors_is_found_by_a_narrower_search(tmp_path, monkeypatch, capsys):
    from halo_live.exporter.canonical import INF_OBSERVATION_KIND, OBS_TOOL, OI_INPUT_VALUE, OI_TOOL_NAME

    noise = [(1, n, "step.retry", STATUS_ERROR, "flaky", {}) for n in range(1, 61)]
    tool = {INF_OBSERVATION_KIND: OBS_TOOL, OI_TOOL_NAME: "fetch", OI_INPUT_VALUE: '{"url": "http://x"}',
            OI_OUTPUT_VALUE: "error: TimeoutError: timed out after 30s"}
    shard = write_spans(tmp_path / "t.jsonl", noise + [(1, 99, "function.fetch", STATUS_ERROR, "tool failed", tool)])
    no_key(monkeypatch)
    assert diagnose_main([str(shard), "--quiet"]) == 0
    answer = capsys.readouterr().out
    section = answer.split("`function.fetch`: ", 1)[1]
    assert "TimeoutError: timed out after 30s" in section and f"{99:016x}" in section
    assert "longer timeout" in section



def test_halo_ask_offline_against_a_model_server_process(demo_run, monkeypatch, capsys):
    """The documented two-command path: the policy in `python -m halo_live.demo.model_server`, then `halo -p`."""
    from halo_live.demo.model_process import ModelServerProcess

    out, _, _ = demo_run
    no_key(monkeypatch)
    with ModelServerProcess("halo_live.demo.diagnostic_policy:policy") as server:
        assert halo([str(out), "-p", "What fails and why?", "--base-url", server.base_url, "--quiet"]) == 0
    answer = capsys.readouterr().out
    assert answer.startswith(LABEL) and set(TRACE_ID.findall(answer)) <= index_facts(out)[1]
