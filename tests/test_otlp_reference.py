"""What the OTLP receiver writes is read by halo-engine 0.3.5, and our engine answers alike."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from halo_live.exporter import canonical
from halo_live.exporter.otlp_convert import from_protobuf
from halo_live.exporter.receiver_json import from_json
from tests._otlp_helpers import json_request, json_span, make_agent_spans

pytestmark = pytest.mark.reference

CALLS = [
    {"tool": "get_dataset_overview", "args": {}},
    {"tool": "count_traces", "args": {"filters": {"has_errors": True}}},
    {"tool": "query_traces", "args": {"filters": {"model_names": ["gpt-4o"]}}},
]


def _write_received(path) -> list[str]:
    """Two SDK agent runs over protobuf and one JSON span with every value type, as received."""
    lines = []
    for project in ("proj-a", "proj-b"):
        spans = make_agent_spans(resource_attrs={canonical.INF_PROJECT_ID: project})
        lines += from_protobuf(encode_spans(spans).SerializeToString()).lines
    lines += from_json(json_request([json_span(parentSpanId=None)]), project_id="proj-j").lines
    path.write_bytes(b"".join(lines))
    return sorted({orjson.loads(line)[canonical.TRACE_ID] for line in lines})


def _covers(ours, ref) -> bool:
    """`ours` equals `ref` where `ref` has a key; the live facts our engine adds are extra keys."""
    if isinstance(ref, dict):
        return isinstance(ours, dict) and all(k in ours and _covers(ours[k], v) for k, v in ref.items())
    if isinstance(ref, list):
        return isinstance(ours, list) and len(ours) == len(ref) and all(map(_covers, ours, ref))
    return ours == ref


def test_reference_reads_received_lines(tmp_path, halo_reference):
    out = tmp_path / "received.jsonl"
    trace_ids = _write_received(out)
    views = [{"tool": "view_trace", "args": {"trace_id": tid}} for tid in trace_ids]
    answer = halo_reference.run([out], CALLS + views, tmp_path / "ref-index")
    assert answer["trace_count"] == 3
    assert all("ok" in a for a in answer["answers"]), answer["answers"]
    overview = answer["answers"][0]["ok"]["result"]
    assert overview["total_traces"] == 3 and overview["total_spans"] == 7
    assert overview["tool_error_span_count"] == 2  # the GenAI execute_tool errors, one per run


def test_our_engine_answers_like_the_reference_on_received_lines(tmp_path, halo_reference):
    from halo_live.engine.tools import open_store, run_tool

    out = tmp_path / "received.jsonl"
    trace_ids = _write_received(out)
    calls = CALLS + [{"tool": "view_trace", "args": {"trace_id": tid}} for tid in trace_ids]
    expected = halo_reference.run([out], calls, tmp_path / "ref-index")["answers"]
    store = open_store(out)
    try:
        for call, want in zip(calls, expected):
            assert _covers(run_tool(store, call["tool"], call["args"]), want["ok"]), call
    finally:
        close = getattr(store, "close", None)
        if close:
            close()
