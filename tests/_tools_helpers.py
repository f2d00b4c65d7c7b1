"""A deterministic generator of canonical trace files for the trace-tool tests.

It writes the shapes that exercise every corner of the tools: OpenInference
flat per-message keys, huge string and non-string attributes, ERROR spans
(tool errors, LLM errors, long messages), several models/agents/services/
projects, unicode, top-level extras, spans of several traces interleaved,
children before their root (as the SDK writes them), missing parents, and
traces whose root has not arrived yet.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from halo_live.exporter.canonical import (
    INF_AGENT_ID,
    INF_AGENT_NAME,
    INF_LLM_INPUT_TOKENS,
    INF_LLM_MODEL_NAME,
    INF_LLM_OUTPUT_TOKENS,
    INF_LLM_PROVIDER,
    INF_OBSERVATION_KIND,
    INF_PROJECT_ID,
    INF_RUN_ID,
    INF_SCHEMA_VERSION,
    OI_INPUT_MESSAGES,
    OI_INPUT_VALUE,
    OI_LLM_MODEL_NAME,
    OI_OUTPUT_VALUE,
    OI_SPAN_KIND,
    OI_TOOL_NAME,
    SERVICE_NAME,
    SPAN_KIND_CLIENT,
    SPAN_KIND_INTERNAL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    canonical_line,
    encode_line,
    iso_from_ns,
)

BASE_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
MODELS = ["gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4", "o3"]
AGENTS = ["planner", "researcher", "coder", "Ünïcode-agent"]
SERVICES = ["bench-harness", "web-agent", "sdk-app"]
TOOLS = ["web_search", "run_python", "read_file", "submit"]
TOOL_ERRORS = [
    "TimeoutError: tool call exceeded 30s",
    "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/x'",
    "ValueError: " + "bad input " * 40,  # longer than the taxonomy's 200-char cut
]


def _span(
    rng: random.Random,
    *,
    trace_id: str,
    span_id: str,
    parent: str,
    name: str,
    start_ns: int,
    dur_ns: int,
    service: str,
    project: str,
    attrs: dict[str, Any],
    status: str = STATUS_UNSET,
    message: str = "",
    run_id: str | None = None,
) -> dict[str, Any]:
    attributes = {INF_SCHEMA_VERSION: 1, INF_PROJECT_ID: project, **attrs}
    resource = {SERVICE_NAME: service, "telemetry.sdk.language": "python"}
    if run_id:
        attributes[INF_RUN_ID] = run_id
    extra = {"events": [{"name": "log", "attributes": {"n": rng.randint(0, 9)}}]} if rng.random() < 0.2 else None
    return canonical_line(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
        kind=SPAN_KIND_CLIENT if "llm" in name else SPAN_KIND_INTERNAL,
        start_time=iso_from_ns(start_ns), end_time=iso_from_ns(start_ns + dur_ns),
        status_code=status, status_message=message, resource_attributes=resource,
        scope_name="halo-test", scope_version="1.0", attributes=attributes, extra=extra,
    )


def trace_spans(rng: random.Random, t: int, *, complete: bool = True, big: bool = False,
                run_id: str | None = None) -> list[dict[str, Any]]:
    """The spans of trace number `t`, children first and the root last (SDK order)."""
    trace_id = f"{rng.getrandbits(128):032x}"
    root_id = f"{rng.getrandbits(64):016x}"
    start = BASE_NS + t * 7_000_000_000 + rng.randint(0, 999_999_999)
    service = SERVICES[t % len(SERVICES)]
    project = "proj-a" if t % 5 else "proj-b"
    agent = AGENTS[t % len(AGENTS)]
    common = {"trace_id": trace_id, "service": service, "project": project, "run_id": run_id}
    spans: list[dict[str, Any]] = []
    cursor = start + 1_000_000
    # a big trace with 6 such spans is oversized; with 1 it is only capped
    for step in range((6 if t % 2 else 1) if big else rng.randint(1, 5)):
        model = MODELS[(t + step) % len(MODELS)]
        llm_id = f"{rng.getrandbits(64):016x}"
        attrs: dict[str, Any] = {
            INF_OBSERVATION_KIND: "LLM", OI_SPAN_KIND: "LLM",
            INF_LLM_MODEL_NAME if step % 2 else OI_LLM_MODEL_NAME: model,
            INF_LLM_PROVIDER: "openai", INF_AGENT_NAME: agent,
            INF_LLM_INPUT_TOKENS: rng.randint(10, 5000), INF_LLM_OUTPUT_TOKENS: rng.randint(1, 900),
            OI_INPUT_MESSAGES: json.dumps([{"role": "user", "content": "héllo " * rng.randint(1, 50)}],
                                          ensure_ascii=bool(step % 2)),
        }
        if t % 3 == 0:  # OpenInference flat per-message keys
            for i in range(rng.randint(2, 12)):
                attrs[f"llm.input_messages.{i}.message.role"] = "user"
                attrs[f"llm.input_messages.{i}.message.content"] = f"message {i} of step {step}"
            attrs["llm.output_messages.0.message.content"] = "ok"
            attrs["mcp.tools.0.name"] = "web_search"
        if big:  # every attribute past the caps; together past the 150 KB budget
            attrs[OI_OUTPUT_VALUE] = "x" * 20_000 + " the needle " + "y" * 30_000
            attrs["llm.tools"] = [{"name": f"tool_{i}", "schema": "s" * 50} for i in range(120)]
            for k in range(6):
                attrs[f"payload.{k}"] = f"<{k}>" + "é" * 17_000
        if t % 4 == 1:
            attrs[INF_AGENT_ID] = f"agent-{t % 2}"
        dur = rng.randint(50_000_000, 2_000_000_000)
        failed = t % 7 == 3 and step == 0
        spans.append(_span(rng, parent=root_id, span_id=llm_id, name="llm.response",
                           start_ns=cursor, dur_ns=dur, attrs=attrs,
                           status=STATUS_ERROR if failed else STATUS_OK,
                           message="RateLimitError: 429 Too Many Requests" if failed else "", **common))
        cursor += dur
        tool = TOOLS[(t + step) % len(TOOLS)]
        tool_attrs = {INF_OBSERVATION_KIND: "TOOL", OI_SPAN_KIND: "TOOL", OI_TOOL_NAME: tool,
                      INF_AGENT_NAME: agent, OI_INPUT_VALUE: json.dumps({"q": f"query {t}.{step}"})}
        tool_failed = (3 * t + step) % 8 == 2
        dur = rng.randint(1_000_000, 900_000_000)
        spans.append(_span(rng, parent=root_id, span_id=f"{rng.getrandbits(64):016x}",
                           name=f"tool.{tool}", start_ns=cursor, dur_ns=dur, attrs=tool_attrs,
                           status=STATUS_ERROR if tool_failed else STATUS_UNSET,
                           message=TOOL_ERRORS[(t + step) % len(TOOL_ERRORS)] if tool_failed else "",
                           **common))
        cursor += dur
    if t % 6 == 5:  # a span whose parent never arrives
        spans.append(_span(rng, parent="deadbeefdeadbeef", span_id=f"{rng.getrandbits(64):016x}",
                           name="orphan", start_ns=cursor, dur_ns=1000,
                           attrs={INF_OBSERVATION_KIND: "SPAN"}, **common))
    if complete:
        spans.append(_span(rng, parent="", span_id=root_id, name=f"agent.{agent}",
                           start_ns=start, dur_ns=cursor - start + 1_000_000,
                           attrs={INF_OBSERVATION_KIND: "AGENT", INF_AGENT_NAME: agent}, **common))
    return spans


def generate(n_traces: int, *, seed: int = 7, big_every: int = 0, incomplete_every: int = 0,
             interleave: bool = True, first: int = 0, run_id: str | None = None) -> list[bytes]:
    """Encoded lines of `n_traces` traces; spans of neighbouring traces interleave."""
    rng = random.Random(seed)
    traces = [
        trace_spans(rng, first + t, big=bool(big_every) and t % big_every == 0,
                    complete=not (incomplete_every and t % incomplete_every == incomplete_every - 1),
                    run_id=run_id)
        for t in range(n_traces)
    ]
    lines: list[bytes] = []
    if not interleave:
        for spans in traces:
            lines.extend(encode_line(s) for s in spans)
        return lines
    # round-robin over groups of three traces, like concurrent tasks writing one file
    for g in range(0, len(traces), 3):
        group = [list(s) for s in traces[g:g + 3]]
        while any(group):
            for spans in group:
                if spans:
                    lines.append(encode_line(spans.pop(0)))
    return lines


def write(path: Path, lines: list[bytes], *, append: bool = False) -> Path:
    """Write (or append) encoded lines to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab" if append else "wb") as fh:
        fh.write(b"".join(lines))
    return path


def root_lines_of(lines: list[bytes]) -> list[bytes]:
    """The root spans among `lines` (to finish in-progress traces later)."""
    return [line for line in lines if json.loads(line)["parent_span_id"] == ""]


def error_trace(n_errors: int = 500, *, seed: int = 3, t: int = 90_000) -> list[bytes]:
    """Encoded lines of one finished trace whose `n_errors` tool spans all failed.

    What a retry loop leaves behind: a search for the error string matches
    `n_errors` times in one trace (a page-through-the-cursor case).
    """
    rng = random.Random(seed)
    trace_id = f"{rng.getrandbits(128):032x}"
    root_id = f"{rng.getrandbits(64):016x}"
    start = BASE_NS + t * 7_000_000_000
    common = {"trace_id": trace_id, "service": SERVICES[0], "project": "proj-a"}
    spans = []
    for i in range(n_errors):
        tool = TOOLS[i % len(TOOLS)]
        attrs = {INF_OBSERVATION_KIND: "TOOL", OI_SPAN_KIND: "TOOL", OI_TOOL_NAME: tool,
                 INF_AGENT_NAME: AGENTS[0], OI_INPUT_VALUE: json.dumps({"q": f"retry {i}", "pad": "p" * 300})}
        spans.append(_span(rng, parent=root_id, span_id=f"{rng.getrandbits(64):016x}", name=f"tool.{tool}",
                           start_ns=start + (i + 1) * 1_000_000, dur_ns=500_000, attrs=attrs,
                           status=STATUS_ERROR, message=TOOL_ERRORS[i % len(TOOL_ERRORS)], **common))
    spans.append(_span(rng, parent="", span_id=root_id, name=f"agent.{AGENTS[0]}", start_ns=start,
                       dur_ns=(n_errors + 2) * 1_000_000,
                       attrs={INF_OBSERVATION_KIND: "AGENT", INF_AGENT_NAME: AGENTS[0]}, **common))
    return [encode_line(s) for s in spans]
