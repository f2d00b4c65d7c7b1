"""Datasets and a real `halo ui` process for the web view's tests.

`write_dataset` writes the synthetic benchmark traces (bench/gen_traces.py)
plus three hand-made ones: a chat with tool calls and a failing tool, a
hostile one whose name, status, attributes and messages carry HTML and
script, and (optionally) one of 2,000 spans; `write_outcome_dataset` adds task
traces with recorded outcomes (as `record_outcome` writes them). `UiProcess` runs
`python -m halo_live ui PATH --port 0` and reads the URL it prints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.gen_traces import generate, write_shard
from halo_live.exporter import canonical as c

CHAT_TRACE = "c0ffee00" * 4
CHAT_LLM_SPAN = "11110000aaaa0001"
CHAT_TOOL_SPAN = "11110000aaaa0002"
HOSTILE_TRACE = "bad0bad0" * 4
HOSTILE_SPAN = "22220000bbbb0001"
BIG_TRACE = "b1b1b1b1" * 4
XSS_IMG = '<img src=x onerror="window.__pwned=1">'
XSS_SCRIPT = "<script>window.__pwned=2</script>"
TOOL_ERROR = "TimeoutError: the weather service did not answer in 30s"


def _span(trace_id: str, span_id: str, parent: str, name: str, start_s: float, end_s: float, *,
          attrs: dict, error: str | None = None) -> bytes:
    base = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
    line = c.canonical_line(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name, kind=c.SPAN_KIND_INTERNAL,
        start_time=c.iso_from_ns(base + int(start_s * 1e9)), end_time=c.iso_from_ns(base + int(end_s * 1e9)),
        status_code=c.STATUS_ERROR if error else c.STATUS_OK, status_message=error or "",
        resource_attributes={c.SERVICE_NAME: "ui-test"}, scope_name="t", scope_version="",
        attributes={c.INF_SCHEMA_VERSION: 1, c.INF_PROJECT_ID: "ui", **attrs})
    return c.encode_line(line)


def chat_trace() -> list[bytes]:
    """An agent asks the model, the model calls a tool, the tool fails: children first, root last."""
    messages = [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "error: " + TOOL_ERROR},
    ]
    answer = [{"role": "assistant", "content": "Sorry, the weather service is down."}]
    root = "11110000aaaa0000"
    return [
        _span(CHAT_TRACE, CHAT_TOOL_SPAN, root, "function get_weather", 1.0, 31.0, error=TOOL_ERROR, attrs={
            c.INF_OBSERVATION_KIND: "TOOL", c.OI_TOOL_NAME: "get_weather", c.INF_AGENT_NAME: "forecaster",
            c.OI_INPUT_VALUE: '{"city": "Paris"}'}),
        _span(CHAT_TRACE, CHAT_LLM_SPAN, root, "response", 31.0, 32.0, attrs={
            c.INF_OBSERVATION_KIND: "LLM", c.INF_LLM_MODEL_NAME: "gpt-4.1", c.INF_AGENT_NAME: "forecaster",
            c.INF_LLM_INPUT_TOKENS: 120, c.INF_LLM_OUTPUT_TOKENS: 12,
            c.OI_INPUT_MESSAGES: json.dumps(messages), c.OI_OUTPUT_MESSAGES: json.dumps(answer)}),
        _span(CHAT_TRACE, root, "", "agent_run forecaster", 0.0, 33.0, attrs={
            c.INF_OBSERVATION_KIND: "AGENT", c.INF_AGENT_NAME: "forecaster"}),
    ]


def hostile_trace() -> list[bytes]:
    """Prompt-injected content in every place the page shows text."""
    root = "22220000bbbb0000"
    messages = [{"role": "user", "content": f"summarise this page: {XSS_IMG} {XSS_SCRIPT}"}]
    return [
        _span(HOSTILE_TRACE, HOSTILE_SPAN, root, f"fetch {XSS_SCRIPT}", 1.0, 2.0, error=f"bad page {XSS_IMG}", attrs={
            c.INF_OBSERVATION_KIND: "LLM", c.INF_LLM_MODEL_NAME: "gpt-4.1",
            c.OI_INPUT_MESSAGES: json.dumps(messages), "page.html": XSS_IMG + XSS_SCRIPT}),
        _span(HOSTILE_TRACE, root, "", f"agent {XSS_IMG}", 0.0, 3.0, attrs={c.INF_OBSERVATION_KIND: "AGENT"}),
    ]


def big_trace(spans: int = 2000) -> list[bytes]:
    """One trace of `spans` spans: a root, 100 turns, each with its calls."""
    root = "3333000000000000"
    lines = []
    for i in range(spans - 1):
        turn = f"33330001{i // 20:08x}"
        if i % 20 == 0:
            lines.append(_span(BIG_TRACE, turn, root, f"turn {i // 20}", i * 0.05, i * 0.05 + 1.0,
                               attrs={c.INF_OBSERVATION_KIND: "CHAIN"}))
        else:
            lines.append(_span(BIG_TRACE, f"33330002{i:08x}", turn, f"call {i}", i * 0.05, i * 0.05 + 0.04,
                               error="ValueError: bad" if i % 97 == 0 else None,
                               attrs={c.INF_OBSERVATION_KIND: "TOOL", c.OI_TOOL_NAME: "bash"}))
    lines.append(_span(BIG_TRACE, root, "", "agent_run big", 0.0, spans * 0.05 + 1.0,
                       attrs={c.INF_OBSERVATION_KIND: "AGENT"}))
    return lines


def write_dataset(path: Path, traces: int = 60, *, big: bool = False) -> Path:
    """The benchmark's traces, then the hand-made ones, in one JSONL file."""
    generate(path, traces, seed=11, error_rate=0.2)
    extra = chat_trace() + hostile_trace() + (big_trace() if big else [])
    with path.open("ab") as fh:
        fh.write(b"".join(extra))
    return path


FAILED_TRACE = "fa11ed00" * 4
FAILED_EXPLANATION = f"expected 42, got 41 {XSS_IMG}"


def write_outcome_dataset(path: Path, traces: int = 30) -> Path:
    """`write_dataset`'s traces (no outcomes) plus 12 task traces that passed, failed or said
    neither, and one failed task whose outcome has a score, a label and a hostile explanation."""
    from tests._outcome_helpers import outcome, task_trace

    write_dataset(path, traces)
    tasks = [task_trace(f"{n:032x}", passed=None if n % 4 == 0 else n % 3 != 0, task=f"task-{n}")
             for n in range(1, 13)]
    failed = task_trace(FAILED_TRACE, errors=[("tool.read", "FileNotFoundError: answer.txt")]) + outcome(
        FAILED_TRACE, "verdict", passed=False, end=8.5, task="task-17", score=0.25, label="wrong answer",
        explanation=FAILED_EXPLANATION)
    with path.open("ab") as fh:
        fh.write(b"".join(tasks) + failed)
    return path


def append_traces(path: Path, first: int, count: int) -> None:
    """Append benchmark traces number `first`.. `first + count - 1` (they start later than
    lower numbers), written to a scratch file first, then appended at once."""
    scratch = path.with_name(f"more-{first}.jsonl")
    write_shard(scratch, list(range(first, first + count)), 1000 + first, 8, 0.2, f"run-{first}")
    with path.open("ab") as fh:
        fh.write(scratch.read_bytes())
    scratch.unlink()


class UiProcess:
    """`halo ui` in its own process; `url` is what it printed."""

    def __init__(self, trace_path: Path, *args: str, env: dict | None = None, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "halo_live", "ui", str(trace_path), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if " at http" in line or not line:
                break
        if " at http" not in line:
            self.close()
            raise RuntimeError(f"halo ui did not start: {line!r} {self.proc.stderr.read()!r}")
        self.url = line.rsplit(" at ", 1)[1].strip()
        self.base = self.url.split("?", 1)[0]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()

    def __enter__(self) -> "UiProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
