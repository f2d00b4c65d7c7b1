"""The codebase-helper demo and `halo demo`, offline, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from engine.cli import main as halo


def test_codebase_helper_answers_offline_and_traces_every_span(tmp_path):
    traces = tmp_path / "traces.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "HALO_TRACES_PATH")}
    env["HALO_TRACES_PATH"] = str(traces)
    done = subprocess.run([sys.executable, "-m", "demo.openai_agents_sdk", "--fixed",
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
