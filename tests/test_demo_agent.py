"""The codebase-helper demo and `halo demo`, offline, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from halo_live.cli import main as halo


def test_codebase_helper_answers_offline_and_traces_every_span(tmp_path):
    traces = tmp_path / "traces.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "HALO_TRACES_PATH")}
    env["HALO_TRACES_PATH"] = str(traces)
    done = subprocess.run([sys.executable, "-m", "halo_live.demo.openai_agents_sdk", "--fixed",
                           "What is `DEFAULT_PORT` set to?"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "8080" in done.stdout
    spans = [json.loads(line) for line in traces.read_text().splitlines()]
    kinds = {s["attributes"]["inference.observation_kind"] for s in spans}
    assert {"AGENT", "LLM", "TOOL"} <= kinds
    tools = [s for s in spans if s["attributes"]["inference.observation_kind"] == "TOOL"]
    assert {s["attributes"]["tool.name"] for s in tools} == {"grep", "read_file"}
    assert {s["attributes"]["inference.agent_name"] for s in tools} == {"codebase-helper"}
    assert {s["resource"]["attributes"]["service.name"] for s in spans} == {"codebase-helper"}
    assert len({s["trace_id"] for s in spans}) == 1


def test_halo_demo_rejects_bad_flags_in_one_line(capsys):
    assert halo(["demo", "--workers", "0"]) == 2
    assert halo(["demo", "--tasks", "999"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--tasks must be between 1 and" in err[1]


def test_halo_demo_refuses_a_stranger_in_a_benchmark_folder_before_starting(tmp_path, capsys):
    # a benchmark's folder (its score file) to which someone later added their own traces
    out = tmp_path / "run"
    out.mkdir()
    (out / "score.json").write_text(json.dumps({"run_id": "old", "score": 0.5}))
    (out / "traces-w0.jsonl").write_text("{}\n")
    (out / "mine.jsonl").write_text('{"mine": 1}\n')
    assert halo(["demo", "--out", str(out), "--tasks", "1", "--no-ask"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the banner: nothing started
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "did not write (mine.jsonl)" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["mine.jsonl", "score.json", "traces-w0.jsonl"]


# -- the offline model's failure modes, each switched off by one harness change --------------

def ask_offline(task_id: str, settings, tmp_path):
    """Run one benchmark task in-process against the offline model; (passed, reason, tool names)."""
    import asyncio

    from agents import RunConfig, Runner

    from halo_live.demo.benchmark.checker import check
    from halo_live.demo.benchmark.tasks import TASKS
    from halo_live.demo.model_server import ModelServer
    from halo_live.demo.offline_policy import OfflinePolicy
    from halo_live.demo.openai_agents_sdk.agent import build_agent, open_model
    from halo_live.demo.openai_agents_sdk.fake_repo import materialize

    task = next(t for t in TASKS if t.id == task_id)
    repo = materialize(tmp_path / "repo")
    with ModelServer(OfflinePolicy(seed=0, latency=0)) as server:
        async def go():
            async with open_model(settings, server.base_url) as model:
                try:
                    result = await Runner.run(build_agent(settings, model, repo), task.question,
                                              max_turns=settings.max_turns,
                                              run_config=RunConfig(tracing_disabled=True))
                    return check(task, str(result.final_output))
                except Exception as exc:
                    return check(task, None, exc)

        passed, reason = asyncio.run(go())
    # the last request holds the whole conversation: every tool the model called, in order
    tools = [c["function"]["name"] for m in server.turns[-1].messages for c in m.get("tool_calls") or []]
    return passed, reason, tools


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_oversized_reads_fail_until_the_limit_is_known(api, tmp_path):
    from halo_live.demo.openai_agents_sdk.agent import settings_from

    # t04: the seeded model asks read_file for 200 lines on this task
    assert ask_offline("t04-max_retries", settings_from(api=api), tmp_path)[:2] == (False, "gave up")
    for fixed in (settings_from(fixes=["limits"], api=api), settings_from(fixes=["describe-limits"], api=api),
                  settings_from(read_limit=200, api=api)):
        assert ask_offline("t04-max_retries", fixed, tmp_path)[:2] == (True, "correct")


def test_a_missing_path_loops_until_recovery_is_explained(tmp_path):
    from halo_live.demo.openai_agents_sdk.agent import settings_from

    # t10: the seeded model greps a directory that does not exist
    passed, reason, _ = ask_offline("t10-page_size", settings_from(max_turns=5), tmp_path)
    assert (passed, reason) == (False, "error: MaxTurnsExceeded")
    passed, reason, tools = ask_offline("t10-page_size", settings_from(fixes=["recovery"]), tmp_path)
    assert (passed, reason) == (True, "correct")
    assert tools == ["grep", "list_files", "grep", "read_file"]
