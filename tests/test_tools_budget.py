"""Context budgets: head caps, flat-projection drops, the oversized summary, and whole answers
within a character budget (cut lists, cut heads, pages with a cursor)."""

from __future__ import annotations

import json

import pytest
from agents.strict_schema import ensure_strict_json_schema

from halo_live.engine import budget
from halo_live.engine.models import SpanRecord
from halo_live.engine.tools import TOOLS, open_store, run_tool
from halo_live.exporter.canonical import canonical_line, encode_line
from tests import _tools_helpers as gen


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


# --- whole answers within a character budget ---------------------------------------------------


def test_fit_tree_cuts_the_biggest_list_tail_first_and_says_so():
    answer = {"result": {"names": [f"n{i:04d}" for i in range(2000)], "few": ["a", "b"], "n": 1}}
    cut = budget.fit_tree(answer, 5_000)
    assert budget.chars(cut) <= 5_000
    result = cut["result"]
    assert result["names"] == answer["result"]["names"][:len(result["names"])]  # the head is kept
    assert result["few"] == ["a", "b"] and result["n"] == 1
    assert result["budget_note"].startswith("cut to fit 5,000 characters: result.names: the first ")
    assert result["budget_note"].endswith(" of 2,000")
    assert budget.fit_tree(answer, 10**6) is answer  # within the budget: untouched


def test_fit_tree_keeps_a_paged_list_and_cuts_long_strings_to_heads():
    answer = {"result": {"spans": [{"v": "x" * 9_000}, {"v": "y" * 9_000}], "next_offset": 2}}
    cut = budget.fit_tree(answer, 6_000, keep=("spans",))
    spans = cut["result"]["spans"]
    assert len(spans) == 2  # the cursor's list is never shortened
    assert all("... [HALO truncated: original 9000 chars]" in s["v"] for s in spans)
    assert budget.chars(cut) <= 6_000
    twice = budget.fit_tree(cut, 4_500, keep=("spans",))  # cut again: the first length is kept
    assert twice["result"]["spans"][0]["v"].endswith("[HALO truncated: original 9000 chars]")
    assert budget.fit_tree({"result": {"k": list(range(5000))}}, 4_000) is not None
    assert budget.fit_tree({"result": {f"k{i}": i for i in range(2000)}}, 4_000) is None  # nothing to cut


def test_a_budget_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="at least 4,000"):
        budget.check_budget(3_999)
    assert budget.check_budget(4_000) == 4_000


def test_searches_have_a_budget_in_the_tools_themselves(tmp_path):
    """What the agent and `halo tool` get: 500 matches with wide contexts page at 150,000 characters."""
    lines = gen.generate(3, seed=5) + gen.error_trace(500)
    trace = json.loads(lines[-1])["trace_id"]
    args = {"trace_id": trace, "regex_pattern": "STATUS_CODE_ERROR", "max_matches": 500,
            "context_buffer_chars": 2000}
    with open_store(gen.write(tmp_path / "t.jsonl", lines)) as store:
        full = run_tool(store, "search_trace", args, 10**12)["result"]
        first = run_tool(store, "search_trace", args)["result"]
        assert len(budget.compact({"result": first})) <= budget.DEFAULT_BUDGET_CHARS
        assert first["match_count"] == 500 and first["has_more"] is True
        assert first["next_offset"] == first["returned_match_count"] < 500
        assert first["remaining_count"] == 500 - first["next_offset"]
        assert "call search_trace again with offset=" in first["budget_note"]
        matches, offset = first["matches"], first["next_offset"]
        while offset is not None:
            page = run_tool(store, "search_trace", {**args, "offset": offset})["result"]
            matches += page["matches"]
            offset = page.get("next_offset")
        assert matches == full["matches"]
        # a small answer is the reference's: no paging fields at all
        small = run_tool(store, "search_trace", {**args, "max_matches": 3})["result"]
        assert set(small) == {"trace_id", "match_count", "returned_match_count", "has_more", "matches"}
        assert small == {**full, "matches": full["matches"][:3], "returned_match_count": 3, "has_more": True}


def test_a_match_longer_than_the_budget_is_cut_to_heads(tmp_path):
    lines = gen.generate(4, seed=9, big_every=2)
    big = next(json.loads(line) for line in lines if b"the needle" in line)
    with open_store(gen.write(tmp_path / "t.jsonl", lines)) as store:
        got = run_tool(store, "search_span", {"trace_id": big["trace_id"], "span_id": big["span_id"],
                                              "regex_pattern": "x+ the needle y+"}, 4_000)["result"]
    assert got["match_count"] == 1 and got["returned_match_count"] == 1 and got["has_more"] is False
    text = got["matches"][0]["match_text"]
    assert text.startswith("xxx") and text.endswith("... [HALO truncated: original 50012 chars]")
    assert "match_text and matched_context cut to" in got["budget_note"]
    assert "next_offset" not in got


def test_offsets_past_the_end_are_empty_pages(tmp_path):
    lines = gen.generate(2, seed=4)
    span = json.loads(lines[0])
    with open_store(gen.write(tmp_path / "t.jsonl", lines)) as store:
        view = run_tool(store, "view_trace", {"trace_id": span["trace_id"], "offset": 999})["result"]
        found = run_tool(store, "search_trace", {"trace_id": span["trace_id"], "regex_pattern": "a",
                                                 "offset": 10**6})["result"]
    assert view["spans"] == [] and "next_offset" not in view
    assert found["matches"] == [] and found["has_more"] is False and found["match_count"] > 0
