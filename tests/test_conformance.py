"""Conformance: four real instrumentors, one harness run each, through both paths at once.

Each run (`tests._instrumented_run`, a subprocess: instrumentors patch process-wide
state) sends its spans to `HaloSpanExporter` (one span per export), to `halo serve`
over OTLP/HTTP (batched) and over OTLP/gRPC (one span per request). The three
files must hold the same spans with the same facts, and per span kind the facts
the tools and the report read: kind, model, tokens, agent, tool, input/output
text, error status and message. What an instrumentor does not emit at all is
its gap, listed in `GAPS` (and in the README's table).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from halo_live.exporter import canonical
from tests._exporter_helpers import check_line
from tests._otlp_helpers import read_lines, servers

ROOT = Path(__file__).resolve().parents[1]
# (instrumentor, the model API its agents use); util-genai's loop is Chat Completions only.
RUNS = [("openinference", "chat"), ("genai", "chat"), ("openllmetry", "chat"), ("logfire", "chat"),
        ("openinference", "responses"), ("openllmetry", "responses"), ("logfire", "responses")]
PATHS = ("exporter", "http", "grpc")
# Facts an instrumentor never emits on this harness (its gap, not ours).
GAPS = {
    "openinference": set(),
    "genai": {"guardrail", "handoff", "triage"},  # util-genai spans only what the loop opens
    "openllmetry": {"guardrail", "tokens", "llm_output"},  # tokens and output: on Chat Completions
    "logfire": set(),
}


class Run(NamedTuple):
    name: str  # the instrumentor
    api: str  # "chat" | "responses"
    by_path: dict[str, list[dict]]  # "exporter" | "http" | "grpc" -> lines
    folder: Path

    @property
    def gaps(self) -> set[str]:
        return GAPS[self.name] - ({"tokens", "llm_output"} if self.api == "responses" else set())
TOOLS = ["explode", "lookup", "lookup"]
ERROR_MESSAGE = {"genai": "cannot break beta"}  # the others: the Agents SDK's tool error
FACT_KEYS = (canonical.OI_TOOL_NAME, canonical.OI_INPUT_VALUE, canonical.OI_OUTPUT_VALUE,
             canonical.SDK_ERROR_DATA)


@pytest.fixture(scope="module", params=RUNS, ids=[f"{n}-{api}" for n, api in RUNS])
def run(request, tmp_path_factory) -> Run:
    """One harness run's lines on each path."""
    name, api = request.param
    folder = tmp_path_factory.mktemp(f"{name}-{api}")
    env = {**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
           "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
           "PYTHONPATH": str(ROOT), "HARNESS_API": api}
    with servers(folder / "http.jsonl", project_id="conformance") as http, \
            servers(folder / "grpc.jsonl", project_id="conformance") as grpc:
        done = subprocess.run(
            [sys.executable, "-m", "tests._instrumented_run", name, str(folder / "exporter.jsonl"),
             "--http", http.http_url, "--grpc", grpc.grpc_target],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    return Run(name, api, {path: read_lines(folder / f"{path}.jsonl") for path in PATHS}, folder)


def _facts(line: dict) -> dict:
    attrs = line[canonical.ATTRIBUTES]
    facts = {k: v for k, v in attrs.items() if k.startswith("inference.") or k in FACT_KEYS}
    facts["status"] = line[canonical.STATUS]
    return facts


def _of_kind(lines: list[dict], kind: str) -> list[dict]:
    return [line for line in lines if line[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == kind]


def test_every_path_writes_the_same_spans_with_the_same_facts(run):
    by_path = run.by_path
    exporter = {line[canonical.SPAN_ID]: line for line in by_path["exporter"]}
    assert len(exporter) == len(by_path["exporter"]) > 10
    for path in ("http", "grpc"):
        received = {line[canonical.SPAN_ID]: line for line in by_path[path]}
        assert received.keys() == exporter.keys(), path
        for span_id, line in exporter.items():
            assert _facts(received[span_id]) == _facts(line), (path, line[canonical.NAME])
    for line in by_path["exporter"]:
        check_line(line)


def test_llm_spans_carry_model_tokens_agent_and_text(run):
    by_path, gaps = run.by_path, run.gaps
    llms = _of_kind(by_path["exporter"], canonical.OBS_LLM)
    assert len(llms) == (6 if "triage" in gaps else 9)  # per task: triage 1, worker 2
    for line in llms:
        attrs = line[canonical.ATTRIBUTES]
        assert attrs[canonical.INF_LLM_MODEL_NAME] == "stub-model"
        assert attrs[canonical.INF_LLM_PROVIDER] == "openai"
        assert attrs[canonical.INF_AGENT_NAME] in ("triage", "worker")
        assert attrs[canonical.OI_INPUT_VALUE]
        if "tokens" not in gaps:
            assert attrs[canonical.INF_LLM_INPUT_TOKENS] > 0 and attrs[canonical.INF_LLM_OUTPUT_TOKENS] > 0
        if "llm_output" not in gaps:
            assert attrs[canonical.OI_OUTPUT_VALUE]


def test_tool_spans_carry_tool_agent_arguments_result_and_error(run):
    name, by_path = run.name, run.by_path
    tools = _of_kind(by_path["exporter"], canonical.OBS_TOOL)
    assert sorted(line[canonical.ATTRIBUTES][canonical.OI_TOOL_NAME] for line in tools) == TOOLS
    for line in tools:
        attrs = line[canonical.ATTRIBUTES]
        assert attrs[canonical.INF_AGENT_NAME] == "worker"
        assert json.loads(attrs[canonical.OI_INPUT_VALUE])["key"] in ("alpha", "beta", "gamma")
        assert canonical.INF_LLM_PROVIDER not in attrs
        status = line[canonical.STATUS]
        if attrs[canonical.OI_TOOL_NAME] == "lookup":
            assert attrs[canonical.OI_OUTPUT_VALUE].startswith("value of ")
            assert status["code"] != canonical.STATUS_ERROR
        else:
            assert status == {"code": canonical.STATUS_ERROR,
                              "message": ERROR_MESSAGE.get(name, "Error running tool (non-fatal)")}


def test_agents_guardrails_and_handoffs_keep_their_kinds(run):
    by_path, gaps = run.by_path, run.gaps
    lines = by_path["exporter"]
    agents = [line[canonical.ATTRIBUTES].get(canonical.INF_AGENT_NAME)
              for line in _of_kind(lines, canonical.OBS_AGENT)]
    expected = ["worker"] * 3 + ([] if "triage" in gaps else ["triage"] * 3)
    assert sorted(a for a in agents if a) == sorted(expected)
    assert len(_of_kind(lines, canonical.OBS_GUARDRAIL)) == (0 if "guardrail" in gaps else 3)
    handoffs = [line for line in _of_kind(lines, canonical.OBS_CHAIN)
                if "handoff" in line[canonical.NAME].lower()]
    assert len(handoffs) == (0 if "handoff" in gaps else 3)
    for line in lines:  # a blanket provider attribute names no provider on a non-model span
        attrs = line[canonical.ATTRIBUTES]
        if attrs[canonical.INF_OBSERVATION_KIND] != canonical.OBS_LLM:
            assert canonical.INF_LLM_PROVIDER not in attrs or attrs.get(canonical.INF_LLM_MODEL_NAME)


@pytest.mark.reference
def test_reference_loads_every_path_and_counts_the_tool_error(run, halo_reference, tmp_path):
    by_path, folder = run.by_path, run.folder
    for path, lines in by_path.items():
        file = folder / f"{path}.jsonl"
        overview = halo_reference.load_counts([file], tmp_path / f"ref-{path}")
        assert overview["total_spans"] == len(lines) and overview["total_traces"] == 3, path
        assert overview["tool_error_span_count"] == 1, path
        assert set(overview["agent_names"]) == ({"worker"} if "triage" in run.gaps else {"triage", "worker"})
