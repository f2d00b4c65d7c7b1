"""Context budgets: head caps, flat-projection drops and the oversized summary."""

from __future__ import annotations

import json

from agents.strict_schema import ensure_strict_json_schema

from halo_live.engine import budget
from halo_live.engine.models import SpanRecord
from halo_live.engine.tools import TOOLS
from halo_live.exporter.canonical import canonical_line, encode_line


def _span(attrs, name="s", status="STATUS_CODE_UNSET") -> SpanRecord:
    line = canonical_line(trace_id="t", span_id="s1", parent_span_id="", name=name,
                          kind="SPAN_KIND_INTERNAL", start_time="a", end_time="b",
                          status_code=status, status_message="", resource_attributes={},
                          scope_name="x", scope_version="", attributes=attrs)
    return SpanRecord.model_validate_json(encode_line(line))


def test_short_values_pass_through_untouched():
    assert budget.truncate_value("abc", 3) == "abc"
    assert budget.truncate_value([1, 2], 6) == [1, 2]
    assert budget.truncate_value(12345, 3) == "123... [HALO truncated: original 5 chars; " \
        "non-string attribute serialized for truncation]"


def test_long_strings_keep_their_head_and_say_how_long_they_were():
    out = budget.truncate_value("é" * 5000, budget.DISCOVERY_ATTR_CAP_CHARS)
    assert out == "é" * 4096 + "... [HALO truncated: original 5000 chars]"


def test_non_strings_are_measured_as_python_json_with_spaces():
    value = {"k": ["v"] * 2000}
    serialized = json.dumps(value, ensure_ascii=False)
    out = budget.truncate_value(value, 4096)
    assert out.startswith(serialized[:4096] + "... [HALO truncated: original ")
    assert f"original {len(serialized)} chars; non-string" in out


def test_flat_openinference_keys_are_dropped_with_one_marker():
    attrs = {"llm.input_messages.0.message.role": "user", "llm.output_messages.3.x": "y",
             "mcp.tools.1.name": "n", "llm.input_messages": "[...]", "llm.input_messagesX.0.a": 1}
    out = budget.cap_attributes(attrs, budget.SURGICAL_ATTR_CAP_CHARS)
    assert list(out) == ["llm.input_messages", "llm.input_messagesX.0.a", budget.DROPPED_FLAT_KEY]
    assert out[budget.DROPPED_FLAT_KEY].startswith("3 llm.input_messages.<i>.*")
    assert out[budget.DROPPED_FLAT_KEY].endswith("(head-capped at ~16KB) carry the same content.")


def test_oversized_summary_only_above_the_budget():
    spans = [_span({"a": "x" * 100}, name="llm"), _span({}, name="tool", status="STATUS_CODE_ERROR"),
             _span({}, name="llm")]
    sizes = [budget.span_response_bytes(s) for s in spans]
    assert budget.oversized_summary("t", spans, sizes, budget=sum(sizes), for_view_spans=False) is None
    summary = budget.oversized_summary("t", spans, sizes, budget=10, for_view_spans=True)
    assert summary.span_count == 3 and summary.error_span_count == 1
    assert summary.top_span_names == [("llm", 2), ("tool", 1)]
    assert summary.span_response_bytes_max == max(sizes)
    assert summary.recommendation.startswith("The selected spans exceed the per-call view budget")


def test_every_argument_schema_is_usable_strict_and_not():
    for spec in TOOLS.values():
        schema = spec.json_schema()
        assert schema["type"] == "object"
        strict = ensure_strict_json_schema(json.loads(json.dumps(schema)))
        assert strict["additionalProperties"] is False
