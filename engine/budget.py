"""Context budgets: what a tool may hand the model in one answer.

The numbers and marker texts are halo-engine 0.3.5's, so a capped span or an
oversized summary reads the same as the reference's:
- a per-attribute head cap, counted in characters of the value's string (or,
  for non-strings, of its `json.dumps`): 4 KB for the discovery tools
  (`view_trace`, `search_trace`), 16 KB for `view_spans`, where the model named
  the spans it wants;
- OpenInference flat per-message keys (`llm.input_messages.0.message...`) are
  dropped with one marker key: a long LLM span carries hundreds of them, each
  too small for the head cap, and the JSON blobs hold the same content;
- a per-call budget of 150 KB of serialized spans (~37K tokens, a comfortable
  fraction of modest context windows): above it the spans are replaced by a
  summary that tells the model how to ask for less.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from halo_live.exporter.canonical import STATUS_ERROR
from halo_live.engine.models import OversizedTraceSummary, SpanRecord

DISCOVERY_ATTR_CAP_CHARS = 4096
SURGICAL_ATTR_CAP_CHARS = 16384
VIEW_TRACE_BUDGET_BYTES = 150_000
VIEW_SPANS_BUDGET_BYTES = 150_000
OVERSIZED_TOP_SPAN_NAMES = 10

DROPPED_FLAT_KEY = "__halo_dropped_flat_projections"
_FLAT_PROJECTION_RE = re.compile(r"^(?:llm\.(?:input|output)_messages|mcp\.tools)\.\d+\.")


def truncate_value(value: Any, cap_chars: int) -> Any:
    """Head-cap one attribute value at `cap_chars` characters, with the reference's marker."""
    if isinstance(value, str):
        if len(value) <= cap_chars:
            return value
        return f"{value[:cap_chars]}... [HALO truncated: original {len(value)} chars]"
    try:
        serialized = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return value
    if len(serialized) <= cap_chars:
        return value
    return (
        f"{serialized[:cap_chars]}... [HALO truncated: original {len(serialized)} chars; "
        "non-string attribute serialized for truncation]"
    )


def is_flat_projection(key: str) -> bool:
    """True for OpenInference per-message / per-tool fan-out keys."""
    return _FLAT_PROJECTION_RE.match(key) is not None


def cap_attributes(attributes: dict[str, Any], cap_chars: int) -> dict[str, Any]:
    """A copy of `attributes` with big values head-capped and flat projections dropped."""
    out: dict[str, Any] = {}
    dropped = 0
    for key, value in attributes.items():
        if is_flat_projection(key):
            dropped += 1
            continue
        out[key] = truncate_value(value, cap_chars)
    if dropped:
        out[DROPPED_FLAT_KEY] = (
            f"{dropped} llm.input_messages.<i>.* / llm.output_messages.<i>.* / "
            "mcp.tools.<i>.* projection keys dropped to keep span size bounded. "
            "The JSON-blob attributes llm.input_messages / llm.output_messages / "
            f"mcp.tools.listed (head-capped at ~{cap_chars // 1024}KB) carry the same content."
        )
    return out


def capped_span(line: bytes, cap_chars: int) -> SpanRecord:
    """Parse one span line and cap its attributes (what view tools return per span)."""
    span = SpanRecord.model_validate_json(line)
    return span.model_copy(update={"attributes": cap_attributes(span.attributes, cap_chars)})


def span_response_bytes(span: SpanRecord) -> int:
    """UTF-8 size of one span as it will be serialized into the answer."""
    return len(span.model_dump_json().encode("utf-8"))


def _trace_recommendation(total: int, budget: int) -> str:
    return (
        f"This trace exceeds the per-call view budget ({total:,} bytes > {budget:,}). "
        "Do not retry view_trace. Instead: "
        "(1) call search_trace(trace_id, regex_pattern) with a specific regex "
        "(error string, tool name, attribute key) to surface the spans you "
        "actually need; or (2) call view_spans(trace_id, span_ids=[...]) with "
        "specific span ids you've already seen in search_trace results. If a "
        "single span surfaces as too large, use "
        "search_span(trace_id, span_id, regex_pattern) to extract matches "
        "from inside that span. The top_span_names below give a sense of "
        "what's in the trace."
    )


def _spans_recommendation(total: int, budget: int) -> str:
    return (
        f"The selected spans exceed the per-call view budget ({total:,} bytes > {budget:,}). "
        "Do not retry view_spans with the same set. Instead: "
        "(1) call search_span(trace_id, span_id, regex_pattern) on individual "
        "large spans (look at span_response_bytes_max below) to extract only "
        "the regex matches you need; or "
        "(2) call view_spans with a smaller subset of span_ids."
    )


def oversized_summary(
    trace_id: str, spans: Sequence[SpanRecord], sizes: Sequence[int], *, budget: int, for_view_spans: bool
) -> OversizedTraceSummary | None:
    """The summary that replaces `spans` when their `sizes` exceed `budget`; None when they fit."""
    total = sum(sizes)
    if total <= budget:
        return None
    ordered = sorted(sizes)
    recommend = _spans_recommendation if for_view_spans else _trace_recommendation
    return OversizedTraceSummary(
        trace_id=trace_id,
        span_count=len(spans),
        truncated_response_bytes=total,
        response_bytes_budget=budget,
        span_response_bytes_min=ordered[0] if ordered else 0,
        span_response_bytes_median=ordered[len(ordered) // 2] if ordered else 0,
        span_response_bytes_max=ordered[-1] if ordered else 0,
        top_span_names=Counter(s.name for s in spans).most_common(OVERSIZED_TOP_SPAN_NAMES),
        error_span_count=sum(1 for s in spans if s.status.code == STATUS_ERROR),
        recommendation=recommend(total, budget),
    )
