"""Budget-cut pages of the paged tools: `query_traces`, the two views and the two searches.

Each function takes the tool's full answer, already within the reference's own
budgets, and a bound in characters of compact JSON. An answer within the bound
is returned untouched, so it stays equal to halo-engine 0.3.5's. Beyond it the
page holds the leading items that fit, `next_offset` and `remaining_count` say
where to go on, and `budget_note` says it in words. An item too big on its own
(a span, a match) is cut to shorter value heads rather than skipped, so every
page moves the cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from halo_live.engine import budget
from halo_live.engine.budget import chars, fit_page, shrink_to_fit, truncate_value
from halo_live.engine.models import (
    SpanMatchRecord,
    SpanRecord,
    SpanSearchResult,
    TraceQueryResult,
    TraceSearchResult,
    TraceView,
)

SearchResult = TypeVar("SearchResult", TraceSearchResult, SpanSearchResult)
DROPPED_ATTRIBUTES_KEY = "__halo_dropped_attributes"


def query_page(result: TraceQueryResult, offset: int, max_chars: int) -> TraceQueryResult:
    """`query_traces`'s page, or its leading summaries that fit in `max_chars`."""
    if chars(result) <= max_chars:
        return result
    traces = result.traces

    def build(n: int) -> TraceQueryResult:
        end = offset + n
        remaining = max(0, result.total - end)
        return result.model_copy(update={
            "traces": traces[:n], "next_offset": end, "remaining_count": remaining,
            "budget_note": (f"{n} of the {len(traces)} traces asked for fit this call's budget; call "
                            f"query_traces again with offset={end} for the next page ({remaining:,} traces "
                            "remain)"),
        })

    page, n = fit_page(build, (chars(t) for t in traces), max_chars)
    return page if n else build(1)  # one summary over the budget: the caller's fit_tree cuts inside it


def view_page(view: TraceView, offset: int, max_chars: int, *, recap: Callable[[int], SpanRecord],
              cap: int, tool: str) -> TraceView:
    """The spans from `offset` on, as many as fit in `max_chars`.

    `view` holds every span of the view (or the reference's oversized summary,
    returned as it is); `recap(cap)` re-reads the span at `offset` with its
    attribute values cut to `cap`-character heads, for a span too big to fit whole.
    """
    if view.oversized is not None:
        return view
    spans = view.spans
    rest = spans[offset:]
    whole = view.model_copy(update={"spans": rest})
    if chars(whole) <= max_chars:
        return whole

    def build(n: int, page: list[SpanRecord] | None = None, note: str | None = None) -> TraceView:
        page = rest[:n] if page is None else page
        end = offset + len(page)
        remaining = len(spans) - end
        said = (f"spans {offset}-{end - 1} of {len(spans)} fit this call's budget; call {tool} again "
                f"with offset={end} for the next page ({remaining} spans remain)") if remaining else None
        return view.model_copy(update={
            "spans": page, "next_offset": end if remaining else None,
            "remaining_count": remaining if remaining else None,
            "budget_note": budget.join_notes(said, note)})

    page, n = fit_page(build, (chars(s) for s in rest), max_chars)
    if n:
        return page
    # the span at `offset` does not fit on its own: shorter heads, else fewer attributes
    span_id = rest[0].span_id
    shrunk = shrink_to_fit(
        lambda c: build(1, [recap(c)], f"span {span_id}: attribute values cut to {c}-character "
                                               "heads (search_span reads it whole)"),
        lambda page: chars(page) <= max_chars, cap)
    if shrunk is not None:
        return shrunk[0]
    note = f"span {span_id}: attributes left out to fit (search_span reads it whole)"
    return _drop_attributes(recap(budget.MIN_HEAD_CHARS), lambda s: build(1, [s], note), max_chars)


def _drop_attributes(span: SpanRecord, build: Callable[[SpanRecord], TraceView], max_chars: int) -> TraceView:
    """The page of `span` keeping only its leading attributes that fit, with a marker saying how
    many went."""
    attributes = dict(span.attributes)
    kept = list(attributes)
    while True:
        trial = {key: attributes[key] for key in kept}
        trial[DROPPED_ATTRIBUTES_KEY] = f"{len(attributes) - len(kept)} attributes left out to fit the budget"
        page = build(span.model_copy(update={"attributes": trial}))
        if not kept or chars(page) <= max_chars:
            return page
        kept.pop()


def search_page(result: SearchResult, offset: int, max_chars: int, *, tool: str) -> SearchResult:
    """A search's matches from `offset` on, as many as fit in `max_chars`.

    Over the bound, long `match_text` / `matched_context` values are first cut
    to the discovery tools' 4 KB heads (a regex such as `.*` can match a whole
    span), then the page is cut.
    """
    if chars(result) <= max_chars:
        return result
    cap = budget.DISCOVERY_ATTR_CAP_CHARS
    records = [_cap_match(r, cap) for r in result.matches]
    capped = any(a is not b for a, b in zip(records, result.matches))
    total = result.match_count

    def build(n: int, page: list[SpanMatchRecord] | None = None, head: int | None = None) -> SearchResult:
        page = records[:n] if page is None else page
        end = offset + len(page)
        remaining = max(0, total - end)
        said = (f"matches {offset}-{end - 1} of {total} fit this call's budget; call {tool} again "
                f"with offset={end} ({remaining} matches remain)") if remaining else None
        cut = f"match_text and matched_context cut to {head}-character heads" if head else None
        return result.model_copy(update={
            "matches": page, "returned_match_count": len(page), "has_more": remaining > 0,
            "next_offset": end if remaining else None, "remaining_count": remaining if remaining else None,
            "budget_note": budget.join_notes(said, cut)})

    page, n = fit_page(lambda k: build(k, head=cap if capped else None), (chars(r) for r in records),
                       max_chars)
    if n or not records:
        return page
    # the first match does not fit on its own even at 4 KB heads: shorter ones
    first = result.matches[0]
    shrunk = shrink_to_fit(lambda c: build(1, [_cap_match(first, c)], head=c),
                           lambda page: chars(page) <= max_chars, cap)
    return shrunk[0] if shrunk is not None else build(1, [_cap_match(first, budget.MIN_HEAD_CHARS)],
                                                      head=budget.MIN_HEAD_CHARS)


def _cap_match(record: SpanMatchRecord, cap: int) -> SpanMatchRecord:
    text = truncate_value(record.match_text, cap)
    context = truncate_value(record.matched_context, cap)
    if text is record.match_text and context is record.matched_context:
        return record
    return record.model_copy(update={"match_text": text, "matched_context": context})
