"""The trace filters over an index snapshot, without pydantic: index filters, regex candidates, counts.

`TraceStore` (answers as models) and `halo tool`'s lite lane
(`halo_live.engine.lite`, plain dicts) both query through these, so a filter
means the same whichever surface asks. A filter set here is the dict of
`TraceFilters`' fields, as `TraceFilters.model_dump()` gives it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from halo_live.indexer.models import IndexFilters

if TYPE_CHECKING:  # the regex package (~5 ms to import) only for a call that has a regex
    from halo_live.engine.bounded_regex import BoundedRegex


class ToolError(ValueError):
    """An answer the model should read: unknown id, bad regex. Never a crash."""


def compile_regex(pattern: str) -> BoundedRegex:
    """Compile a user's regex (Python syntax) whose searches are time-limited; a bad
    pattern, or a search that runs too long, raises `ToolError` naming the pattern."""
    from halo_live.engine.bounded_regex import BoundedRegex

    return BoundedRegex(pattern, error=ToolError)


# A date, or a date-time with optional seconds, fraction and Z/offset: the values the
# reference's plain string comparison against canonical span times answers sensibly.
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")


def check_time_filter(field: str, value: str | None) -> None:
    """Raise `ToolError` unless `value` is None or an ISO-8601 date / date-time.

    Only checked, never rewritten: a valid value is compared as a string, as the
    reference does, so its answers stay equal; a word like "yesterday" would
    silently match nothing there.
    """
    if value is None:
        return
    ok = _ISO_TIME.fullmatch(value) is not None
    if ok:
        try:  # reject impossible dates and times such as 2026-13-45
            datetime.fromisoformat(value.replace(",", ".").replace("Z", "+00:00"))
        except ValueError:
            ok = False
    if not ok:
        raise ToolError(f"{field} must be an ISO-8601 time such as 2026-01-01T00:00:00Z, "
                        f"got {value!r}")


# answered elsewhere: a regex reads the spans; a task state needs the open-span sidecars
_NOT_INDEXED = ("regex_pattern", "state")


def open_index(path: str | Path, index_dir: str | Path | None = None) -> Any:
    """Open (or create) the index of `path` (a `TraceIndex`, not caught up); `ToolError` if it cannot be."""
    from halo_live.indexer import TraceIndex  # the package root pulls in LMDB; not needed for the filters

    try:
        return TraceIndex.open(path, index_dir)
    except (OSError, ValueError) as exc:
        raise ToolError(f"cannot open traces at {str(path)!r}: {exc}") from exc


def index_filters(filters: Mapping[str, Any]) -> IndexFilters:
    """The indexed part of `filters` (all but `regex_pattern` and the live `state`); raises `ToolError`."""
    check_time_filter("start_time_gte", filters.get("start_time_gte"))
    check_time_filter("end_time_lte", filters.get("end_time_lte"))
    return IndexFilters(**{key: value for key, value in filters.items() if key not in _NOT_INDEXED})


def matching_ids(snap: Any, filters: Mapping[str, Any]) -> list[str]:
    """Ids of the traces matching `filters`, in dataset order; a regex reads the candidates' spans.
    A `state` filter is not applied here: `TraceStore` applies it from the live task states."""
    ids = snap.trace_ids(index_filters(filters))
    if filters.get("regex_pattern") is None:
        return ids
    pattern = compile_regex(filters["regex_pattern"])
    return [tid for tid in ids if trace_matches(snap, tid, pattern)]


def trace_matches(snap: Any, trace_id: str, pattern: BoundedRegex) -> bool:
    """True if any raw span line of the trace matches `pattern`."""
    search = pattern.search
    return any(search(line.decode("utf-8", errors="replace")) for line in snap.span_lines(trace_id))


def count(snap: Any, filters: Mapping[str, Any]) -> int:
    """How many traces match `filters`: from the index alone unless a regex is given."""
    if filters.get("regex_pattern") is None:
        return snap.count(index_filters(filters))
    return len(matching_ids(snap, filters))
