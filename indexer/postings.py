"""Posting lists on the read side: counts, chunk walks, bitmaps, and which filters they answer.

A posting list holds the trace numbers of one filter value in chunks of 4,096
(`layout.POSTING_SHIFT`), with its length kept in `counts`. A filter on one
value is counted with one read and paged by walking its chunks from the first;
anything else becomes roaring bitmaps intersected in C.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

import lmdb
from pyroaring import BitMap

from halo_live.indexer import layout as L
from halo_live.indexer.models import IndexFilters

OUTCOMES = ("passed", "failed", "unknown")
_LISTS = (("model_names", L.TAG_MODEL), ("service_names", L.TAG_SERVICE), ("agent_names", L.TAG_AGENT),
          ("tool_names", L.TAG_TOOL), ("run_ids", L.TAG_RUN))
_FLAGS = (("has_errors", L.KEY_ERRORS), ("complete", L.KEY_COMPLETE))


def count(txn: lmdb.Transaction, dbs: dict, key: bytes) -> int:
    """How many traces one posting list holds (a maintained count)."""
    raw = txn.get(key, db=dbs["counts"])
    return L.un64(raw) if raw else 0


def chunks(txn: lmdb.Transaction, dbs: dict, key: bytes) -> Iterator[bytes]:
    """The packed chunks of one posting list, in trace-number order."""
    prefix = key + b"\0"
    size = len(prefix) + 4
    with txn.cursor(db=dbs["idx"]) as cur:
        if cur.set_range(prefix):
            for chunk_key, raw in cur:
                if len(chunk_key) != size or not chunk_key.startswith(prefix):
                    if chunk_key[:len(prefix)] != prefix:
                        break
                    continue  # a longer value sharing this prefix
                yield raw


def walk(txn: lmdb.Transaction, dbs: dict, key: bytes, offset: int, limit: int | None) -> list[int]:
    """Trace numbers `offset`.. of one posting list, ascending: whole chunks are skipped by
    their size, so a page costs its offset's chunks, not the list."""
    out: list[int] = []
    for raw in chunks(txn, dbs, key):
        n = len(raw) // 4
        if offset >= n:
            offset -= n
            continue
        tnos = sorted(array("I", raw))  # appended out of order when a trace gains a value
        take = tnos[offset:] if limit is None else tnos[offset:offset + limit - len(out)]
        offset = 0
        out.extend(take)
        if limit is not None and len(out) >= limit:
            break
    return out


def members(txn: lmdb.Transaction, dbs: dict, key: bytes) -> array:
    """All trace numbers of one posting list."""
    out = array("I")
    for raw in chunks(txn, dbs, key):
        out.frombytes(raw)
    return out


def bitmap(txn: lmdb.Transaction, dbs: dict, key: bytes) -> BitMap:
    """One posting list as a roaring bitmap."""
    return BitMap(members(txn, dbs, key))


def _only(flt: IndexFilters) -> str | None:
    """The one field `flt` constrains, or None when it constrains none or several."""
    field = None
    for name in IndexFilters.__slots__:
        if getattr(flt, name) is not None:
            if field is not None:
                return None
            field = name
    return field


def single_key(flt: IndexFilters | None) -> tuple[list[bytes], bool] | None:
    """A filter answered by posting-list counts alone: (keys of disjoint lists, negate)."""
    if flt is None:
        return None
    field = _only(flt)
    if field is None:
        return None
    value = getattr(flt, field)
    for name, tag in _LISTS:
        if field == name:
            return ([L.posting_key(tag, value[0])], False) if len(value) == 1 else None
    if field == "project_id":
        return [L.posting_key(L.TAG_PROJECT, value)], False
    for name, key in _FLAGS:
        if field == name:
            return [key], not value
    if field == "outcome" and value in OUTCOMES:
        if value == "unknown":
            return [L.KEY_PASSED, L.KEY_FAILED], True
        return [L.KEY_PASSED if value == "passed" else L.KEY_FAILED], False
    return None


def rollup_key(flt: IndexFilters | None) -> bytes | None:
    """The posting list whose rollup answers `flt`'s overview, if there is one."""
    single = single_key(flt)
    if single is None or single[1] or len(single[0]) != 1:
        return None
    key = single[0][0]
    if key in (L.KEY_PASSED, L.KEY_FAILED):
        return None  # those lists lose members: no rollup
    return key
