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

Ours on top, for every tool: a whole answer is bounded in characters of compact
JSON (150,000 by default, which the searches lacked; `halo mcp` asks for
40,000, what a coding agent's client accepts). An answer within the bound is
the reference's; one beyond it is cut, never as text: a paged tool returns
fewer items and a `next_offset` (`halo_live.engine.pages`), any other loses
list tails and value tails (`fit_tree`), and `budget_note` says what is missing.
"""

from __future__ import annotations

import copy
import json
import re
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from halo_live.exporter.canonical import STATUS_ERROR

if TYPE_CHECKING:  # pydantic only where spans are parsed: `halo tool`'s lite lane imports no pydantic
    from pydantic import BaseModel

    from halo_live.engine.models import OversizedTraceSummary, SpanRecord

DISCOVERY_ATTR_CAP_CHARS = 4096
SURGICAL_ATTR_CAP_CHARS = 16384
VIEW_TRACE_BUDGET_BYTES = 150_000
VIEW_SPANS_BUDGET_BYTES = 150_000
OVERSIZED_TOP_SPAN_NAMES = 10

# whole answers, in characters of compact JSON
DEFAULT_BUDGET_CHARS = 150_000  # the tools' own bound: the views' per-call budget, for every tool
MIN_BUDGET_CHARS = 4_000  # an oversized summary, or one match cut to heads, must fit
MIN_HEAD_CHARS = 64  # the shortest head a value is cut to
NOTE_RESERVE_CHARS = 400  # kept free for `budget_note` while a tree is cut
_NOTE_CHARS = 360
_FIT_ROUNDS = 500
_MARKER_RE = re.compile(r"\.\.\. \[HALO truncated: original (\d+) chars[^\]]*\]$")

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
    from halo_live.engine.models import SpanRecord

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


class ViewTally:
    """What the oversized summary says of a view's spans, added one span at a time.

    A view reads its spans as a stream and keeps only those within its budget;
    this holds the rest of what the summary needs: every span's size (8 bytes
    a span, for the exact median), the count of each span name and the errors.
    """

    def __init__(self) -> None:
        self.sizes = array("q")
        self.total = 0
        self.names: Counter[str] = Counter()  # first-seen order: how `most_common` breaks ties
        self.errors = 0

    def add(self, span: SpanRecord, size: int | None = None) -> int:
        """Count `span` (of serialized `size`, computed when None) and return its size."""
        size = span_response_bytes(span) if size is None else size
        self.sizes.append(size)
        self.total += size
        self.names[span.name] += 1
        self.errors += span.status.code == STATUS_ERROR
        return size

    def summary(self, trace_id: str, *, budget: int, for_view_spans: bool) -> OversizedTraceSummary | None:
        """The summary that replaces the spans when they exceed `budget`; None when they fit."""
        from halo_live.engine.models import OversizedTraceSummary

        if self.total <= budget:
            return None
        ordered = sorted(self.sizes)
        recommend = _spans_recommendation if for_view_spans else _trace_recommendation
        return OversizedTraceSummary(
            trace_id=trace_id,
            span_count=len(ordered),
            truncated_response_bytes=self.total,
            response_bytes_budget=budget,
            span_response_bytes_min=ordered[0] if ordered else 0,
            span_response_bytes_median=ordered[len(ordered) // 2] if ordered else 0,
            span_response_bytes_max=ordered[-1] if ordered else 0,
            top_span_names=self.names.most_common(OVERSIZED_TOP_SPAN_NAMES),
            error_span_count=self.errors,
            recommendation=recommend(self.total, budget),
        )


def oversized_summary(
    trace_id: str, spans: Sequence[SpanRecord], sizes: Sequence[int], *, budget: int, for_view_spans: bool
) -> OversizedTraceSummary | None:
    """The summary that replaces `spans` when their `sizes` exceed `budget`; None when they fit."""
    tally = ViewTally()
    for span, size in zip(spans, sizes):
        tally.add(span, size)
    return tally.summary(trace_id, budget=budget, for_view_spans=for_view_spans)


# --- whole answers within a character budget ----------------------------------------------

T = TypeVar("T")


def compact(value: Any) -> str:
    """`value` as compact JSON (no spaces, UTF-8 text): the form a budget counts."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def chars(value: Any) -> int:
    """Length of `value` (a model or JSON-ready data) as compact JSON."""
    dump = getattr(value, "model_dump", None)  # a pydantic model
    if dump is not None:
        value = dump(mode="json")
    return len(compact(value))


def check_budget(limit: int) -> int:
    """`limit` if it is a usable budget; `ValueError` naming it otherwise."""
    if limit < MIN_BUDGET_CHARS:
        raise ValueError(f"a budget must be at least {MIN_BUDGET_CHARS:,} characters, not {limit:,}")
    return limit


def leading_fit(sizes: Iterable[int], room: int) -> int:
    """How many leading items, of these JSON sizes, fit in `room` characters as array members.

    `sizes` may be lazy: it is read only as far as the room lasts.
    """
    used, count = -1, 0  # n members take n - 1 commas
    for size in sizes:
        used += size + 1
        if used > room:
            break
        count += 1
    return count


def fit_page(build: Callable[[int], BaseModel], sizes: Iterable[int], limit: int) -> tuple[BaseModel, int]:
    """`build(n)` for the largest `n` whose JSON fits in `limit`, and `n` (0: not even one item fits).

    `build(n)` is the answer holding the first `n` of the items whose sizes are
    `sizes`, with its paging fields; the estimate from the sizes is checked on
    the built answer, since the note and the cursor change its length a little.
    """
    n = leading_fit(sizes, limit - chars(build(0)))
    while n > 0:
        page = build(n)
        if chars(page) <= limit:
            return page, n
        n -= 1
    return build(0), 0


def shrink_to_fit(make: Callable[[int], T], fits: Callable[[T], bool], cap: int) -> tuple[T, int] | None:
    """`make(c)` for the largest halving `c` of `cap` (down to `MIN_HEAD_CHARS`) whose result `fits`,
    and `c`; None if none does."""
    while cap > MIN_HEAD_CHARS:
        cap = max(MIN_HEAD_CHARS, cap // 2)
        item = make(cap)
        if fits(item):
            return item, cap
    return None


def join_notes(*notes: str | None) -> str | None:
    """One `budget_note` from several, cut to a few hundred characters."""
    text = "; ".join(n for n in notes if n)
    if len(text) > _NOTE_CHARS:
        text = text[:_NOTE_CHARS - 5] + " ..."
    return text or None


def fit_tree(answer: dict[str, Any], limit: int, keep: Collection[str] = ()) -> dict[str, Any] | None:
    """`answer` cut down to `limit` characters of compact JSON, or None if it cannot be.

    For answers with no cursor (the overview, the report, a comparison) and as
    the last guard of the paged ones: the biggest list loses its tail (ranked
    lists keep their best), else the biggest string is cut to a head with the
    reference's marker, until it fits; `budget_note` (in the `result` envelope
    when there is one) names each cut. Lists under a key in `keep`, the pages
    a cursor walks, are never shortened.
    """
    if chars(answer) <= limit:
        return answer
    answer = copy.deepcopy(answer)
    holder = answer["result"] if isinstance(answer.get("result"), dict) else answer
    earlier = holder.pop("budget_note", None)
    cuts: dict[str, str] = {}
    for _ in range(_FIT_ROUNDS):
        excess = chars(answer) - limit + NOTE_RESERVE_CHARS
        if excess <= 0:
            break
        target = _biggest_cuttable(answer, keep)
        if target is None:
            break
        path, parent, key = target
        _cut(parent, key, excess, path, cuts)
    if cuts:
        holder["budget_note"] = join_notes(earlier, f"cut to fit {limit:,} characters: " + "; ".join(cuts.values()))
    elif earlier:
        holder["budget_note"] = earlier
    return answer if chars(answer) <= limit else None


def _biggest_cuttable(root: Any, keep: Collection[str]) -> tuple[str, Any, Any] | None:
    """(path, parent, key) of the biggest list (2+ items) or long string in `root`."""
    best: tuple[int, str, Any, Any] | None = None

    def walk(node: Any, path: str, parent: Any, key: Any) -> int:
        nonlocal best
        if isinstance(node, dict):
            size = 1 + sum(len(compact(k)) + 2 + walk(v, f"{path}.{k}" if path else str(k), node, k)
                           for k, v in node.items())
            return size
        if isinstance(node, list):
            size = 1 + sum(walk(v, f"{path}[{i}]", node, i) + 1 for i, v in enumerate(node))
            if len(node) >= 2 and key not in keep and parent is not None and (best is None or size > best[0]):
                best = (size, path, parent, key)
            return size
        size = len(compact(node))
        if isinstance(node, str) and size > 2 * MIN_HEAD_CHARS + 60 and parent is not None \
                and (best is None or size > best[0]):
            best = (size, path, parent, key)
        return size

    walk(root, "", None, None)
    return None if best is None else best[1:]


def _cut(parent: Any, key: Any, excess: int, path: str, cuts: dict[str, str]) -> None:
    value = parent[key]
    if isinstance(value, list):
        total = len(value)
        removed = 0
        while len(value) > 1 and removed < excess:
            removed += len(compact(value.pop())) + 1
        first = cuts.get(path, "").rsplit(" of ", 1)
        was = first[1] if len(first) == 2 else f"{total:,}"
        cuts[path] = f"{path}: the first {len(value):,} of {was}"
        return
    marker = _MARKER_RE.search(value)  # cut before (here or by a head cap): keep the first length
    body, original = (value[:marker.start()], int(marker.group(1))) if marker else (value, len(value))
    head = max(MIN_HEAD_CHARS, min(len(body), len(value) - excess - 60))
    parent[key] = f"{body[:head]}... [HALO truncated: original {original} chars]"
    cuts[path] = f"{path}: a {head:,}-character head"
