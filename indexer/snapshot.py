"""Read side: one short LMDB read transaction = one consistent view of the index.

Filters are answered from posting lists (packed trace numbers per value, read
into roaring bitmaps so combined filters intersect in C) and the time-ordered
keys; only `min_duration_ms`, score bounds (on the traces with a score) and
time bounds on a small candidate set read rows. A filter on one value is
counted from its maintained count and paged by walking its list's chunks from
the first, so neither costs more on a bigger dataset. Nothing here reads the
JSONL except `read_span` and `span_lines`.
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

import lmdb
import orjson
from pyroaring import BitMap

from halo_live.exporter import canonical
from halo_live.indexer import layout as L
from halo_live.indexer import postings as P
from halo_live.indexer import rollup as R
from halo_live.indexer.models import (BadLine, DatasetTotals, ErrorSignature, IndexFilters, Outcome, SpanRef,
                                      TraceRow)

_ROW_SCAN_LIMIT = 4096  # below this many candidates, check time bounds on rows, not by range scan
FEW_CANDIDATES = 32  # candidates below 1/32 of all traces: order them from their rows
RANGE_READ_SLACK = 4  # read a trace's whole byte range when it is at most 4x its spans...
RANGE_READ_MIN = 1 << 16  # ...or at most 64 KB anyway, but never more than 256 KB
RANGE_READ_MAX = 1 << 18
# A span list past 1 MB (~15,000 spans) is decoded an entry at a time while its lines are
# read, so reading a huge trace holds one span, not the trace (issue 18: bounded memory).
STREAM_ENTRIES_BYTES = 1 << 20
OUTCOMES = P.OUTCOMES


def _codes(code) -> str:
    return canonical.STATUS_CODES[code] if type(code) is int else code


class Snapshot:
    """A consistent, read-only view; use as a context manager (or call `close()`)."""

    def __init__(self, env: lmdb.Environment, dbs: dict, root: Path) -> None:
        self._txn = L.begin_read(env)
        self._dbs = dbs
        self._root = root
        self._fds: dict[int, int] = {}
        cps = L.checkpoints(self._txn, dbs)
        self._fileno: dict[str, int] = {rel: no for rel, (no, _) in cps.items()}
        self._rel: dict[int, str] = {no: rel for rel, no in self._fileno.items()}
        self._indexed_bytes = sum(cp["offset"] for _, cp in cps.values())
        meta = dbs["meta"]
        raw = self._txn.get(b"next_tno", db=meta)
        self._n = L.un32(raw) if raw else 0
        self._ordered = self._txn.get(b"ordered", db=meta) != b"0"
        self._pages: dict[int, list[str]] = {}

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    # --- dataset ---------------------------------------------------------------------
    def totals(self) -> DatasetTotals:
        raw = self._txn.get(b"totals", db=self._dbs["meta"])
        t = orjson.loads(raw) if raw else {}
        out = DatasetTotals(**{k: v for k, v in t.items() if k in DatasetTotals.__slots__})
        out.files = len(self._rel)
        out.indexed_bytes = self._indexed_bytes
        with self._txn.cursor(db=self._dbs["by_start"]) as cur:
            if cur.first():
                out.earliest_start_time = cur.key()[:-5].decode("utf-8", "surrogatepass")
        with self._txn.cursor(db=self._dbs["by_end"]) as cur:
            if cur.last():
                out.latest_end_time = cur.key()[:-5].decode("utf-8", "surrogatepass")
        return out

    def count(self, filters: IndexFilters | None = None) -> int:
        """How many traces match (no ordering work; one value's count is one read)."""
        single = P.single_key(filters)
        if single is not None:
            keys, negate = single
            n = sum(self._count(key) for key in keys)
            return self._n - n if negate else n
        cands = self._candidates(filters)
        return self._n if cands is None else len(cands)

    def trace_ids(self, filters: IndexFilters | None = None, offset: int = 0,
                  limit: int | None = None) -> list[str]:
        """Matching trace ids in dataset order; `offset`/`limit` page through them."""
        if limit is not None and limit <= 0:
            return []
        stop = None if limit is None else offset + limit
        single = P.single_key(filters) if self._ordered else None
        if single is not None and not single[1] and len(single[0]) == 1:
            return [self._tid(t) for t in self._walk(single[0][0], offset, limit)]
        cands = self._candidates(filters)
        if self._ordered:
            if cands is None:
                return [self._tid(t) for t in range(self._n)[offset:stop]]
            if offset >= len(cands):
                return []
            return [self._tid(t) for t in cands[offset:min(stop or len(cands), len(cands))]]
        out: list[str] = []
        seen = 0
        for tno in self._dataset_order():
            if cands is None or tno in cands:
                if seen >= offset:
                    out.append(self._tid(tno))
                    if stop is not None and seen + 1 >= stop:
                        break
                seen += 1
        return out

    def error_signatures(self) -> list[ErrorSignature]:
        """Every (span name, status message[:200]) error group, largest first, ties as the reference."""
        sigs = [orjson.loads(v) for _, v in self._txn.cursor(db=self._dbs["sigs"])]
        sigs.sort(key=lambda s: (-s["s"], s["q"]))
        return [ErrorSignature(s["n"], s["m"], s["s"], s["t"], list(s["x"]), s["k"], s["f"]) for s in sigs]

    def trace_ids_by_start(self, filters: IndexFilters | None = None, offset: int = 0,
                           limit: int | None = None, *, newest_first: bool = True) -> list[str]:
        """Matching trace ids by start time (newest first by default), paged: the start-time
        index walked from one end, so a first page costs a few reads even on a big dataset."""
        if limit is not None and limit <= 0:
            return []
        cands = self._candidates(filters)
        if cands is not None and len(cands) * FEW_CANDIDATES < self._n:
            # a few candidates: their start times from their rows, ordered as the index keys
            # (start time, then trace number) are, cost less than walking every key
            rows = self._dbs["rows"]
            keys = sorted((L.time_key(orjson.loads(self._txn.get(L.u32(t), db=rows))[L.R_START], t)
                           for t in cands), reverse=newest_first)
            stop = None if limit is None else offset + limit
            return [self._tid(L.un32(key[-4:])) for key in keys[offset:stop]]
        out: list[str] = []
        seen = 0
        with self._txn.cursor(db=self._dbs["by_start"]) as cur:
            if not (cur.last() if newest_first else cur.first()):
                return out
            keys = cur.iterprev(values=False) if newest_first else cur.iternext(values=False)
            for key in keys:
                tno = L.un32(key[-4:])
                if cands is not None and tno not in cands:
                    continue
                if seen >= offset:
                    out.append(self._tid(tno))
                    if limit is not None and len(out) >= limit:
                        break
                seen += 1
        return out

    def trace_ids_by_signature(self, span_name: str, status_message: str, filters: IndexFilters | None = None,
                               offset: int = 0, limit: int | None = None, *,
                               newest_first: bool = True) -> tuple[list[str], int]:
        """A page of the matching traces that hit one error signature (span name, status
        message[:200], as `error_signatures` groups them), by start time, and how many match.

        Each row lists the signatures its trace hits (their `sigs` keys), so a candidate
        costs one row read, and a byte search skips the rows that cannot hold the key;
        only the page's trace numbers become trace ids.
        """
        hexkey = L.sig_key(span_name, status_message[:L.SIG_MESSAGE_CHARS]).hex()
        needle = b'"' + hexkey.encode() + b'"'
        cands = self._candidates(filters)
        errors = self._bitmap(L.KEY_ERRORS)
        cands = errors if cands is None else cands & errors
        rows = self._dbs["rows"]
        hits: list[int] = []
        with self._txn.cursor(db=self._dbs["by_start"]) as cur:
            if cur.last() if newest_first else cur.first():
                keys = cur.iterprev(values=False) if newest_first else cur.iternext(values=False)
                for key in keys:
                    tno = L.un32(key[-4:])
                    if tno not in cands:
                        continue
                    raw = self._txn.get(key[-4:], db=rows)
                    if raw is not None and needle in raw and hexkey in orjson.loads(raw)[L.R_SIGS]:
                        hits.append(tno)
        page = hits[offset:] if limit is None else hits[offset:offset + limit]
        return [self._tid(t) for t in page], len(hits)

    def sort_keys(self) -> dict[str, tuple[float, int, int]]:
        """Every trace's (duration ms, input + output tokens, span count), from one
        sequential pass over the rows (no row objects built): what a row-field sort ranks by."""
        out = {}
        loads, tid = orjson.loads, self._tid
        d, i, o, n = L.R_DURATION, L.R_IN, L.R_OUT, L.R_N
        with self._txn.cursor(db=self._dbs["rows"]) as cur:
            for key, raw in cur:
                r = loads(raw)
                out[tid(L.un32(key))] = (r[d] or 0.0, r[i] + r[o], r[n])
        return out

    def start_times(self) -> Iterator[str]:
        """Every trace's start time, ascending, from the start-time index (no row reads)."""
        with self._txn.cursor(db=self._dbs["by_start"]) as cur:
            for key in cur.iternext(values=False):
                yield key[:-5].decode("utf-8", "surrogatepass")

    def bad_lines(self, limit: int = 100) -> list[BadLine]:
        """Skipped lines (first `limit`, by file and offset); the full count is in totals."""
        out = []
        for key, reason in self._txn.cursor(db=self._dbs["bad"]):
            fileno, off = L.unorder(key)
            out.append(BadLine(self._rel.get(fileno, "?"), off, reason.decode()))
            if len(out) >= limit:
                break
        return out

    # --- one trace -------------------------------------------------------------------
    def trace(self, trace_id: str) -> TraceRow | None:
        tno = self._tno(trace_id)
        return None if tno is None else self._row(tno)

    def rows(self, trace_ids: list[str]) -> list[TraceRow]:
        """Rows of the given traces (unknown ids skipped), in the given order."""
        out = []
        for tid in trace_ids:
            row = self.trace(tid)
            if row is not None:
                out.append(row)
        return out

    def spans(self, trace_id: str) -> list[SpanRef]:
        return list(self.iter_spans(trace_id))

    def iter_spans(self, trace_id: str) -> Iterator[SpanRef]:
        """`spans`, one at a time: a huge trace's list is decoded as it is read."""
        rel = self._rel
        for e in self._entry_iter(trace_id):
            yield SpanRef(rel[e[0]], e[1], e[2], e[3], e[4], e[5], _codes(e[6]))

    def error_spans(self, trace_id: str) -> list[tuple[str, str]]:
        """(span name, full status message) of the trace's ERROR spans, in file order."""
        return [(e[5], e[7]) for e in self._entry_iter(trace_id) if e[7] is not None]

    def read_span(self, ref: SpanRef) -> bytes:
        """The span's line, without its newline, read from the JSONL."""
        fileno = self._fileno.get(ref.file)
        if fileno is None:
            raise KeyError(ref.file)
        return os.pread(self._fd(fileno), ref.length, ref.offset)

    def span_lines(self, trace_id: str) -> Iterable[bytes]:
        """The trace's span lines (without newlines) in file order; empty for an unknown id.

        A trace's spans sit close together in its file (interleaved with a few
        concurrent traces), so when their byte range is not much larger than the
        spans themselves it is read with one `pread` and sliced: one system call
        per trace instead of one per span, which is most of a regex filter's time.
        Spans far apart come one read at a time, lazily (a regex filter stops at
        its first hit).
        """
        blob = self._blob(trace_id)
        if len(blob) > STREAM_ENTRIES_BYTES:
            return (os.pread(self._fd(e[0]), e[2], e[1]) for e in _stream_entries(blob))
        entries = _decode_entries(blob)
        if not entries:
            return []
        fileno = entries[0][0]
        pread = os.pread
        fd = self._fd(fileno)
        if len(entries) == 1:
            return [pread(fd, entries[0][2], entries[0][1])]
        if any(e[0] != fileno for e in entries):
            return [pread(self._fd(e[0]), e[2], e[1]) for e in entries]
        low = min([e[1] for e in entries])
        high = max([e[1] + e[2] for e in entries])
        size = sum([e[2] for e in entries])
        if high - low > min(max(RANGE_READ_SLACK * size, RANGE_READ_MIN), RANGE_READ_MAX):
            return (pread(fd, e[2], e[1]) for e in entries)
        blob = pread(fd, high - low, low)
        if len(blob) < high - low:  # the file shrank under us: per-span reads say what is left
            return [pread(fd, e[2], e[1]) for e in entries]
        return [blob[e[1] - low:e[1] - low + e[2]] for e in entries]

    # --- internals -------------------------------------------------------------------
    def _fd(self, fileno: int) -> int:
        fd = self._fds.get(fileno)
        if fd is None:
            fd = self._fds[fileno] = os.open(self._root / self._rel[fileno], os.O_RDONLY)
        return fd

    def _tno(self, trace_id: str) -> int | None:
        raw = self._txn.get(L.tid_key(trace_id), db=self._dbs["tid2no"])
        return None if raw is None else L.un32(raw)

    def _tid(self, tno: int) -> str:
        page_no = tno >> L.PAGE_SHIFT
        page = self._pages.get(page_no)
        if page is None:
            page = self._pages[page_no] = orjson.loads(self._txn.get(L.u32(page_no), db=self._dbs["pages"]))
        return page[tno & ((1 << L.PAGE_SHIFT) - 1)]

    def _raw_row(self, tno: int) -> list:
        return orjson.loads(self._txn.get(L.u32(tno), db=self._dbs["rows"]))

    def _row(self, tno: int) -> TraceRow:
        r = self._raw_row(tno)
        o = r[L.R_OUTCOME]
        outcome = None if o is None else Outcome(
            o[L.O_PASSED], o[L.O_SCORE], o[L.O_TASK], o[L.O_LABEL], o[L.O_END],
            self._rel.get(o[L.O_FILENO], ""), o[L.O_OFFSET])
        return TraceRow(*r[:L.ROW_FIELDS], file=self._rel.get(r[L.R_FILENO], ""), outcome=outcome,
                        reported_cost_usd=r[L.R_COST], model_tokens=r[L.R_MODEL_TOKENS])

    def _entry_iter(self, trace_id: str) -> Iterable[list]:
        """The entries, decoded whole, or one at a time past `STREAM_ENTRIES_BYTES`."""
        blob = self._blob(trace_id)
        return _stream_entries(blob) if len(blob) > STREAM_ENTRIES_BYTES else _decode_entries(blob)

    def _blob(self, trace_id: str) -> bytes:
        """The trace's span entries as stored: JSON arrays, each followed by a comma."""
        tno = self._tno(trace_id)
        if tno is None:
            return b""
        return self._txn.get(L.u32(tno), db=self._dbs["spans"]) or b""

    def _dataset_order(self):
        by_name = sorted(self._rel.items(), key=lambda kv: kv[1])
        with self._txn.cursor(db=self._dbs["order"]) as cur:
            for fileno, _ in by_name:
                prefix = L.u32(fileno)
                if not cur.set_range(prefix):
                    continue
                for key, value in cur:
                    if key[:4] != prefix:
                        break
                    yield L.un32(value)

    def rollup(self, filters: IndexFilters | None) -> DatasetTotals | None:
        """The overview's sums, bounds and names over the traces matching a filter on one
        value (a model, service, agent, tool, run, project; has_errors or complete True),
        read from the rollup kept for that value; None for any other filter."""
        key = P.rollup_key(filters)
        if key is None:
            return None
        rec = R.read(self._txn, self._dbs, key)
        if rec is None:
            return None
        out = R.as_totals(rec)
        if out.total_traces and self._count(L.KEY_OUTCOME):
            mine = self._bitmap(key)
            out.outcome_traces = mine.intersection_cardinality(self._bitmap(L.KEY_OUTCOME))
            out.passed_traces = mine.intersection_cardinality(self._bitmap(L.KEY_PASSED))
            out.failed_traces = mine.intersection_cardinality(self._bitmap(L.KEY_FAILED))
        return out

    def _count(self, key: bytes) -> int:
        return P.count(self._txn, self._dbs, key)

    def _walk(self, key: bytes, offset: int, limit: int | None) -> list[int]:
        return P.walk(self._txn, self._dbs, key, offset, limit)

    def _bitmap(self, key: bytes) -> BitMap:
        """One posting list as a roaring bitmap."""
        return P.bitmap(self._txn, self._dbs, key)

    def _posting(self, key: bytes) -> array:
        """All trace numbers of one posting list (its chunks are consecutive keys)."""
        return P.members(self._txn, self._dbs, key)

    def _any_of(self, tag: bytes, values: list[str]) -> BitMap:
        out = BitMap()
        for v in values:
            out.update(self._posting(L.posting_key(tag, v)))
        return out

    def _tasks(self, task_ids: Iterable[str]) -> BitMap:
        """Trace numbers whose latest outcome names any of `task_ids`."""
        out = BitMap()
        with self._txn.cursor(db=self._dbs["tasks"]) as cur:
            for task in task_ids:
                prefix = L.task_key(task, 0)[:-4]
                if cur.set_range(prefix):
                    for key in cur.iternext(values=False):
                        if len(key) != len(prefix) + 4 or not key.startswith(prefix):
                            if key[:len(prefix)] != prefix:
                                break
                            continue  # a longer task id sharing this prefix
                        out.add(L.un32(key[-4:]))
        return out

    def _candidates(self, flt: IndexFilters | None) -> BitMap | None:
        """Trace numbers matching `flt` (a roaring bitmap), or None for "all traces"."""
        if flt is None:
            return None
        include: list[BitMap] = []
        exclude: list[BitMap] = []
        for tag, values in ((L.TAG_MODEL, flt.model_names), (L.TAG_SERVICE, flt.service_names),
                            (L.TAG_AGENT, flt.agent_names), (L.TAG_TOOL, flt.tool_names),
                            (L.TAG_RUN, flt.run_ids)):
            if values is not None:
                include.append(self._any_of(tag, list(values)))
        if flt.project_id is not None:
            include.append(self._any_of(L.TAG_PROJECT, [flt.project_id]))
        if flt.task_ids is not None:
            include.append(self._tasks(flt.task_ids))
        for key, want in ((L.KEY_ERRORS, flt.has_errors), (L.KEY_COMPLETE, flt.complete)):
            if want is not None:
                (include if want else exclude).append(self._bitmap(key))
        if flt.outcome is not None:
            if flt.outcome not in OUTCOMES:
                raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {flt.outcome!r}")
            if flt.outcome == "unknown":
                exclude.append(self._bitmap(L.KEY_PASSED) | self._bitmap(L.KEY_FAILED))
            else:
                include.append(self._bitmap(L.KEY_PASSED if flt.outcome == "passed" else L.KEY_FAILED))
        scored = flt.min_score is not None or flt.max_score is not None
        if scored:  # only traces with a score can match: their rows say which
            include.append(self._bitmap(L.KEY_SCORED))
        timed = flt.start_time_gte is not None or flt.end_time_lte is not None
        if include:
            include.sort(key=len)
            cands = BitMap.intersection(*include) if len(include) > 1 else include[0]
        elif exclude or timed or flt.min_duration_ms is not None:
            cands = None
        else:
            return None
        for ex in exclude:
            cands = (BitMap(range(self._n)) if cands is None else cands) - ex
        if timed:
            if cands is not None and len(cands) <= _ROW_SCAN_LIMIT:
                cands = BitMap([t for t in cands if self._times_match(self._raw_row(t), flt)])
            else:
                for ranged in self._time_ranges(flt):
                    cands = ranged if cands is None else cands & ranged
        if scored:
            cands = BitMap([t for t in cands if self._score_matches(self._raw_row(t), flt)])
        if flt.min_duration_ms is not None:
            pool = range(self._n) if cands is None else cands
            keep = []
            for t in pool:
                d = self._raw_row(t)[L.R_DURATION]
                if d is not None and d >= flt.min_duration_ms:
                    keep.append(t)
            cands = BitMap(keep)
        return cands

    @staticmethod
    def _score_matches(row: list, flt: IndexFilters) -> bool:
        score = row[L.R_OUTCOME][L.O_SCORE]
        return ((flt.min_score is None or score >= flt.min_score)
                and (flt.max_score is None or score <= flt.max_score))

    @staticmethod
    def _times_match(row: list, flt: IndexFilters) -> bool:
        if flt.start_time_gte is not None and row[L.R_START] < flt.start_time_gte:
            return False
        if flt.end_time_lte is not None and row[L.R_END] > flt.end_time_lte:
            return False
        return True

    def _time_ranges(self, flt: IndexFilters):
        if flt.start_time_gte is not None:
            low = flt.start_time_gte.encode("utf-8", "surrogatepass")
            got = array("I")
            with self._txn.cursor(db=self._dbs["by_start"]) as cur:
                if cur.set_range(low):
                    for key in cur.iternext(values=False):
                        got.append(L.un32(key[-4:]))
            yield BitMap(got)
        if flt.end_time_lte is not None:
            high = flt.end_time_lte.encode("utf-8", "surrogatepass")
            got = array("I")
            with self._txn.cursor(db=self._dbs["by_end"]) as cur:
                for key in cur.iternext(values=False):
                    if key[:-5] > high:
                        break
                    got.append(L.un32(key[-4:]))
            yield BitMap(got)

    def among(self, trace_ids: Iterable[str], filters: IndexFilters | None) -> set[str]:
        """Those of `trace_ids` (a few, such as the open traces) that match `filters`."""
        cands = self._candidates(filters)
        found = set()
        for tid in trace_ids:
            tno = self._tno(tid)
            if tno is not None and (cands is None or tno in cands):
                found.add(tid)
        return found

    def sort_columns(self) -> tuple[list[str], list[tuple[float, int, int]]]:
        """Every trace's id and its `sort_keys` value, both in trace-number order: the same
        pass over the rows, without a per-row id lookup or dict (a third cheaper), for a
        caller that ranks many traces (`halo ui`'s sorts)."""
        loads = orjson.loads
        d, i, o, n = L.R_DURATION, L.R_IN, L.R_OUT, L.R_N
        with self._txn.cursor(db=self._dbs["rows"]) as cur:
            dense = cur.last() and L.un32(cur.key()) + 1 == self._n and cur.first() and cur.key() == L.u32(0)
            keys = [(r[d] or 0.0, r[i] + r[o], r[n]) for r in map(loads, cur.iternext(keys=False))] if dense else []
        ids: list[str] = []
        with self._txn.cursor(db=self._dbs["pages"]) as cur:
            for raw in cur.iternext(keys=False):
                ids.extend(loads(raw))
        if len(keys) != self._n or len(ids) < self._n:  # a trace number without its row: by id, then
            by_id = self.sort_keys()
            return list(by_id), list(by_id.values())
        return ids[:self._n], keys


def _decode_entries(blob: bytes) -> list[list]:
    return orjson.loads(b"[" + blob[:-1] + b"]") if blob else []


def _stream_entries(blob: bytes) -> Iterator[list]:
    """The entries of `blob` one at a time (the standard library's decoder resumes at an index)."""
    text = blob.decode("utf-8", "surrogatepass")
    decode = _DECODER.raw_decode
    at, end = 0, len(text)
    while at < end:
        entry, at = decode(text, at)
        at += 1  # the comma after each entry
        yield entry


_DECODER = json.JSONDecoder()
