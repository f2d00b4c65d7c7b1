"""Merge a parsed batch into the index inside one write transaction.

Rows merge as halo-engine 0.3.5's `_RowAccumulator.merge_in` merges partials
(file order), so a trace indexed over many batches equals one built at once.
Posting lists, time keys, error signatures and dataset totals change by the
difference between a row before and after the batch.

A trace new to the index (most traces of a cold build) takes a path of its own
that only adds (`_add_trace`). Outcomes: `outcomes.py`.
"""

from __future__ import annotations

from array import array
from collections import defaultdict

import lmdb
import orjson

from halo_live.indexer import layout as L
from halo_live.indexer.outcomes import OutcomeChanges, outcome_record, state
from halo_live.indexer.cost import merge as merge_cost, move_totals as cost_totals
from halo_live.indexer.parse import Batch, duration_ms, parse_bytes
from halo_live.indexer.rollup import Rollups

_SIG_EXAMPLES = 3
_U32 = L._U32.pack
_ORDER = L._ORDER.pack

TOTAL_KEYS = (
    "total_traces", "total_spans", "error_trace_count", "missing_parent_count",
    "missing_agent_identity_count", "project_id_mismatch_count", "otel_error_span_count",
    "tool_error_span_count", "total_input_tokens", "total_output_tokens", "raw_jsonl_bytes",
    "complete_traces", "bad_lines", "spans_without_projection",
    "outcome_traces", "passed_traces", "failed_traces", "duplicate_spans",
    "reported_cost_usd",
)
TOTAL_SETS = ("service_names", "model_names", "agent_names", "agent_ids", "tool_names", "run_ids")
_SET_FIELDS = (
    (L.R_SERVICES, L.TAG_SERVICE, "service_names"),
    (L.R_MODELS, L.TAG_MODEL, "model_names"),
    (L.R_AGENTS, L.TAG_AGENT, "agent_names"),
    (L.R_AGENT_IDS, None, "agent_ids"),
    (L.R_TOOLS, L.TAG_TOOL, "tool_names"),
    (L.R_RUNS, L.TAG_RUN, "run_ids"),
)


_SUMMED = (  # dataset totals that are sums of a row field
    ("total_spans", L.R_N), ("missing_parent_count", L.R_MISS_PARENT),
    ("missing_agent_identity_count", L.R_MISS_IDENT), ("project_id_mismatch_count", L.R_MISMATCH),
    ("otel_error_span_count", L.R_OTEL_ERR), ("tool_error_span_count", L.R_TOOL_ERR),
    ("total_input_tokens", L.R_IN), ("total_output_tokens", L.R_OUT), ("raw_jsonl_bytes", L.R_RAW),
)


def load_totals(txn: lmdb.Transaction, dbs: dict) -> dict:
    totals: dict = {k: 0 for k in TOTAL_KEYS}
    totals.update({k: [] for k in TOTAL_SETS})
    raw = txn.get(b"totals", db=dbs["meta"])
    if raw is not None:
        totals.update(orjson.loads(raw))  # a key added since this index was built starts at zero
    totals.setdefault("model_tokens", {})
    return totals


class BatchWriter(OutcomeChanges):
    """Applies batches to one open write transaction; `finish()` writes the shared records."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict, rel_of: dict[int, str], now: float,
                 read_line=None) -> None:
        self.txn = txn
        self.read_line = read_line  # (fileno, offset, length) -> the line: re-reads a batch's spans
        self.dbs = dbs
        self.rel_of = rel_of
        self.now = now
        meta = dbs["meta"]
        self.totals = load_totals(txn, dbs)
        self.total_sets = {k: set(self.totals[k]) for k in TOTAL_SETS}
        raw = txn.get(b"next_tno", db=meta)
        self.next_tno = L.un32(raw) if raw else 0
        self.ordered = txn.get(b"ordered", db=meta) != b"0"
        raw = txn.get(b"max_order", db=meta)
        self.max_order = tuple(orjson.loads(raw)) if raw else None
        self.postings: defaultdict[bytes, list[int]] = defaultdict(list)
        self._lists: dict[bytes, dict[str, list[int]]] = {tag: {} for _, tag, _ in _SET_FIELDS if tag}
        self._set_fields = [(pos, tag, self.total_sets[name]) for pos, tag, name in _SET_FIELDS]
        # per name list: (posting tag, dataset total set, value -> this transaction's appends)
        self._set_specs = [(tag, self.total_sets[name], self._lists.get(tag)) for _, tag, name in _SET_FIELDS]
        self._projects: dict[str, list[int]] = {}  # project -> this transaction's appends
        self.pages: dict[int, list[str]] = {}
        self.sigs: dict[bytes, dict] = {}
        # outcome postings of traces that already had an outcome: net +1/-1 per tno (a new
        # outcome only appends, through `postings`); task keys to put, sorted at the end
        self.moves: defaultdict[bytes, dict[int, int]] = defaultdict(dict)
        self.task_keys: set[bytes] = set()
        self.counts: defaultdict[bytes, int] = defaultdict(int)  # posting key -> members added
        self.rollups = Rollups(rel_of)
        # A new trace's row, ids and spans are appended as it comes (tnos only grow: no B-tree
        # search, full pages); its small order and time keys wait for `finish()`, to go in
        # sorted, one C call per database. (Holding the big values back too made the writer's
        # heap grow and shrink every commit: 4x the page faults.)
        self._appenders = [(txn.cursor(db=dbs[name]), dbs[name]) for name in ("rows", "ids", "spans")]
        self.new_order: dict[bytes, bytes] = {}  # order key -> tno key
        self.new_times: tuple[set[bytes], set[bytes]] = (set(), set())  # by_start, by_end keys
        self._tid2no = dbs["tid2no"]
        self.new_traces = 0
        self.duplicates = 0  # spans skipped because the index already held them

    # --- per batch -----------------------------------------------------------------
    def apply(self, batch: Batch) -> None:
        txn, dbs = self.txn, self.dbs
        fold, fileno = self._fold, batch.fileno
        for p in batch.partials:
            fold(p, fileno)
        for off, reason in batch.bad:
            txn.put(L.order_key(batch.fileno, off), reason.encode(), db=dbs["bad"])
        self.totals["bad_lines"] += batch.bad_count
        self.totals["spans_without_projection"] += batch.unprojected
        self.totals["duplicate_spans"] += batch.duplicates
        self.duplicates += batch.duplicates

    def _fold(self, p: tuple, fileno: int) -> None:
        """Fold one trace's partial (parse.P_* fields) into the index."""
        key = p[0].encode("utf-8", "surrogatepass")  # L.tid_key, inline: once per partial
        if len(key) > L.MAX_KEY:
            key = L.bounded(key)
        tk = _U32(self.next_tno)
        # a new trace's number goes in with the lookup: one B-tree walk, not two
        if self.txn.put(key, tk, db=self._tid2no, overwrite=False):
            self._add_trace(tk, p, fileno)
        else:
            self._merge_trace(key, p, fileno)

    def _merge_trace(self, key: bytes, p: tuple, fileno: int) -> None:
        """Fold a partial into the row of a trace the index (or this transaction) holds."""
        (tid, first_off, n, start, end, err, tool_err, miss_ident, _, raw, in_tok, out_tok,
         project, root, services, models, agents, agent_ids, projects, tools, runs, errors,
         more_ids, more_blob, outcome, _, cost, model_tokens) = p
        txn, dbs = self.txn, self.dbs
        tk = bytes(txn.get(key, db=self._tid2no))
        tno = L.un32(tk)
        sids, pids = (set(x) for x in orjson.loads(txn.get(tk, db=dbs["ids"])))
        more_sids, more_pids = orjson.loads(more_ids)
        if not sids.isdisjoint(more_sids):  # before the row (or its order key) changes
            self._merge_new_spans(more_blob, sids, fileno)
            return
        row = orjson.loads(txn.get(tk, db=dbs["rows"]))
        old = list(row)
        blob = txn.get(tk, db=dbs["spans"]) or b""
        self._maybe_reorder(row, tno, fileno, first_off)

        spans_before = row[L.R_N]
        row[L.R_N] += n
        if not row[L.R_START] or (start and start < row[L.R_START]):
            row[L.R_START] = start
        if not row[L.R_END] or end > row[L.R_END]:
            row[L.R_END] = end
        if err:
            row[L.R_HAS_ERR] = True
        for pos, values in ((L.R_SERVICES, services), (L.R_MODELS, models),
                            (L.R_AGENTS, agents), (L.R_AGENT_IDS, agent_ids),
                            (L.R_TOOLS, tools), (L.R_RUNS, runs)):
            if values and not values.issubset(row[pos]):
                row[pos] = sorted(values.union(row[pos]))
        row[L.R_IN] += in_tok
        row[L.R_OUT] += out_tok
        if row[L.R_PROJECT] is None:
            row[L.R_PROJECT] = project
        if projects and not projects.issubset(row[L.R_PROJECTS]):
            row[L.R_PROJECTS] = sorted(projects.union(row[L.R_PROJECTS]))
        row[L.R_MISMATCH] = max(0, len(row[L.R_PROJECTS]) - 1)
        sids.update(more_sids)
        pids.update(more_pids)
        row[L.R_MISS_PARENT] = sum(1 for x in pids if x not in sids)
        ids = orjson.dumps([list(sids), list(pids)])
        row[L.R_MISS_IDENT] += miss_ident
        row[L.R_OTEL_ERR] += err
        row[L.R_TOOL_ERR] += tool_err
        row[L.R_RAW] += raw
        row[L.R_COMPLETE] = row[L.R_COMPLETE] or root
        row[L.R_LAST_SEEN] = self.now
        merge_cost(row, cost, model_tokens)
        if outcome is not None and self._later(outcome, fileno, row[L.R_OUTCOME]):
            was = state(row[L.R_OUTCOME])
            row[L.R_OUTCOME] = outcome_record(outcome, fileno)
            if state(row[L.R_OUTCOME]) != was:  # before `_signatures` adds this batch's ones
                self._shift_signatures(row[L.R_SIGS], was, state(row[L.R_OUTCOME]))
        if errors:
            names = {e[0] for e in errors}
            if not names.issubset(row[L.R_ERR_NAMES]):
                row[L.R_ERR_NAMES] = sorted(names.union(row[L.R_ERR_NAMES]))
            self._signatures(tid, row, errors, spans_before)
        row[L.R_DURATION] = duration_ms(row[L.R_START], row[L.R_END])

        txn.put(tk, orjson.dumps(row), db=dbs["rows"])
        txn.put(tk, ids, db=dbs["ids"])
        txn.put(tk, blob + more_blob, db=dbs["spans"])
        self._index_changes(tno, old, row)

    def _merge_new_spans(self, blob: bytes, known: set[str], fileno: int) -> None:
        """A partial repeating spans the index holds (a retried export arriving in a later
        batch): its other spans are read again and merged one by one, the repeats skipped."""
        for entry in orjson.loads(b"[" + blob[:-1] + b"]"):
            _, off, length, sid = entry[:4]
            if sid in known:
                self.duplicates += 1
                self.totals["duplicate_spans"] += 1
                continue
            batch = parse_bytes(self.read_line(fileno, off, length) + b"\n", fileno, off)
            for p in batch.partials:
                self._fold(p, fileno)

    def _add_trace(self, tk: bytes, p: tuple, fileno: int) -> None:
        """A trace the index has not seen (most traces of a cold build): its row is the
        partial's, built directly, and its postings, totals and keys are all additions
        (what `_index_changes` does for a row without a before, in one place)."""
        (tid, first_off, n, start, end, err, tool_err, miss_ident, missing, raw, in_tok, out_tok,
         project, root, services, models, agents, agent_ids, projects, tools, runs, errors,
         ids, blob, outcome, duration, cost, model_tokens) = p
        tno = self.next_tno
        self.next_tno = tno + 1
        self.new_traces += 1
        order = (self.rel_of[fileno], first_off)
        if self.max_order is not None and order < self.max_order:
            self.ordered = False  # a trace number no longer follows dataset order
        if self.max_order is None or order > self.max_order:
            self.max_order = order
        self.new_order[_ORDER(fileno, first_off)] = tk
        page = self.pages.get(tno >> L.PAGE_SHIFT)
        if page is None:
            page = self._page(tno >> L.PAGE_SHIFT)
        page.append(tid)

        names = (sorted(services), sorted(models), sorted(agents), sorted(agent_ids), sorted(tools),
                 sorted(runs))
        row = [tid, n, start, end, bool(err), names[0], names[1], names[2], names[3], in_tok,
               out_tok, project, missing, miss_ident, max(0, len(projects) - 1), err, tool_err, raw,
               names[4], names[5], root, self.now, sorted({e[0] for e in errors}) if errors else [],
               duration, fileno, first_off, sorted(projects), [],
               outcome_record(outcome, fileno) if outcome is not None else None,
               cost, model_tokens or {}]
        if errors:
            self._signatures(tid, row, errors, 0)
        for (cur, db), value in zip(self._appenders, (orjson.dumps(row), ids, blob)):
            if not cur.put(tk, value, append=True):  # not past the last key (never seen so)
                self.txn.put(tk, value, db=db)

        post = self.postings
        for values, (tag, total_set, by_value) in zip(names, self._set_specs):
            if values:
                if tag is None:
                    total_set.update(values)
                else:  # the dataset's name sets take these lists' values at `finish()`
                    for value in values:
                        tnos = by_value.get(value)
                        if tnos is None:
                            tnos = by_value[value] = post[L.posting_key(tag, value)]
                        tnos.append(tno)
        t = self.totals
        if project is not None:
            tnos = self._projects.get(project)
            if tnos is None:
                tnos = self._projects[project] = post[L.posting_key(L.TAG_PROJECT, project)]
            tnos.append(tno)
        if err:
            post[L.KEY_ERRORS].append(tno)
            t["error_trace_count"] += 1
        if root:
            post[L.KEY_COMPLETE].append(tno)
            t["complete_traces"] += 1
        if outcome is not None:
            self._outcome_changes(tno, None, row[L.R_OUTCOME])
        self.rollups.add_new(row, names)
        t["reported_cost_usd"] += cost
        if model_tokens:
            sums = t["model_tokens"]
            for model, (tin, tout) in model_tokens.items():
                pair = sums.setdefault(model, [0, 0])
                pair[0] += tin
                pair[1] += tout
        starts, ends = self.new_times
        starts.add(start.encode("utf-8", "surrogatepass")[:L.MAX_KEY - 5] + b"\0" + tk)
        ends.add(end.encode("utf-8", "surrogatepass")[:L.MAX_KEY - 5] + b"\0" + tk)
        t["total_traces"] += 1
        t["total_spans"] += n
        t["missing_parent_count"] += missing
        t["missing_agent_identity_count"] += miss_ident
        t["project_id_mismatch_count"] += row[L.R_MISMATCH]
        t["otel_error_span_count"] += err
        t["tool_error_span_count"] += tool_err
        t["total_input_tokens"] += in_tok
        t["total_output_tokens"] += out_tok
        t["raw_jsonl_bytes"] += raw

    def _page(self, page_no: int) -> list[str]:
        raw = self.txn.get(L.u32(page_no), db=self.dbs["pages"])
        page = self.pages[page_no] = orjson.loads(raw) if raw else []
        return page

    def _maybe_reorder(self, row: list, tno: int, fileno: int, first_off: int) -> None:
        """A trace first seen in a later-named shard moves to an earlier one's position."""
        if fileno == row[L.R_FILENO]:
            return
        if self.rel_of[fileno] >= self.rel_of[row[L.R_FILENO]]:
            return
        was = L.order_key(row[L.R_FILENO], row[L.R_FIRST_OFF])
        if self.new_order.pop(was, None) is None:
            self.txn.delete(was, db=self.dbs["order"])
        self.new_order[L.order_key(fileno, first_off)] = L.u32(tno)
        row[L.R_FILENO], row[L.R_FIRST_OFF] = fileno, first_off
        self.ordered = False

    def _signatures(self, tid: str, row: list, errors: list, spans_before: int) -> None:
        # "q" is where the reference's scan (traces in dataset order, spans in file order)
        # first meets the signature: it breaks ties between equal counts the same way.
        seen = set(row[L.R_SIGS])
        passed = state(row[L.R_OUTCOME])
        rel = self.rel_of[row[L.R_FILENO]]
        for name, message, index in errors:
            message = message[:L.SIG_MESSAGE_CHARS]
            key = L.sig_key(name, message)
            where = [rel, row[L.R_FIRST_OFF], spans_before + index]
            sig = self.sigs.get(key)
            if sig is None:
                raw = self.txn.get(key, db=self.dbs["sigs"])
                if raw is None:
                    sig = {"n": name, "m": message, "s": 0, "t": 0, "x": [], "q": where, "k": 0, "f": 0}
                else:
                    sig = orjson.loads(raw)
                self.sigs[key] = sig
            if where < sig["q"]:
                sig["q"] = where
            sig["s"] += 1
            hexkey = key.hex()
            if hexkey not in seen:
                seen.add(hexkey)
                row[L.R_SIGS].append(hexkey)
                sig["t"] += 1
                sig["k"] += passed is not None
                sig["f"] += passed is False
                if len(sig["x"]) < _SIG_EXAMPLES or tid < sig["x"][-1]:
                    sig["x"] = sorted([*sig["x"], tid])[:_SIG_EXAMPLES]

    def _index_changes(self, tno: int, old: list | None, row: list) -> None:
        t, txn, dbs = self.totals, self.txn, self.dbs
        post = self.postings
        for pos, tag, total_set in self._set_fields:
            values = row[pos]
            if not values:
                continue
            if old is not None:
                before = old[pos]
                values = [value for value in values if value not in before]
            total_set.update(values)
            if tag is not None:
                by_value = self._lists[tag]
                for value in values:
                    tnos = by_value.get(value)
                    if tnos is None:
                        tnos = by_value[value] = post[L.posting_key(tag, value)]
                    tnos.append(tno)
        if row[L.R_PROJECT] is not None and (old is None or old[L.R_PROJECT] is None):
            post[L.posting_key(L.TAG_PROJECT, row[L.R_PROJECT])].append(tno)
        if row[L.R_HAS_ERR] and not (old and old[L.R_HAS_ERR]):
            post[L.KEY_ERRORS].append(tno)
            t["error_trace_count"] += 1
        if row[L.R_COMPLETE] and not (old and old[L.R_COMPLETE]):
            post[L.KEY_COMPLETE].append(tno)
            t["complete_traces"] += 1
        before = old[L.R_OUTCOME] if old is not None else None
        if row[L.R_OUTCOME] != before:
            self._outcome_changes(tno, before, row[L.R_OUTCOME])
        self.rollups.add(old, row)
        cost_totals(self.totals, old, row)
        for pos, db, keys in ((L.R_START, "by_start", self.new_times[0]),
                              (L.R_END, "by_end", self.new_times[1])):
            if old is None or old[pos] != row[pos]:
                if old is not None:
                    was = L.time_key(old[pos], tno)
                    if was in keys:
                        keys.discard(was)
                    else:
                        txn.delete(was, db=dbs[db])
                keys.add(L.time_key(row[pos], tno))
        if old is None:
            t["total_traces"] += 1
            for name, pos in _SUMMED:
                t[name] += row[pos]
        else:
            for name, pos in _SUMMED:
                t[name] += row[pos] - old[pos]

    # --- once per transaction --------------------------------------------------------
    def _put_keys(self) -> None:
        """Put the order and time keys of this transaction's changes, sorted."""
        txn, dbs = self.txn, self.dbs
        for db, items in ((dbs["order"], sorted(self.new_order.items())),
                          (dbs["by_start"], [(k, b"") for k in sorted(self.new_times[0])]),
                          (dbs["by_end"], [(k, b"") for k in sorted(self.new_times[1])])):
            if items:
                with txn.cursor(db=db) as cur:
                    cur.putmulti(items)

    def finish(self) -> None:
        txn, dbs = self.txn, self.dbs
        meta = dbs["meta"]
        shift = L.POSTING_SHIFT
        self._apply_moves()
        self._put_keys()
        counts = self.counts
        for key, tnos in self.postings.items():
            counts[key] += len(tnos)
            if not tnos:
                continue
            first = min(tnos) >> shift
            if first == max(tnos) >> shift:  # the common case: all in one chunk
                chunks = {first: tnos}
            else:
                chunks = defaultdict(list)
                for tno in tnos:
                    chunks[tno >> shift].append(tno)
            for chunk, more in chunks.items():
                chunk_key = L.posting_chunk_key(key, chunk << shift)
                raw = txn.get(chunk_key, db=dbs["idx"]) or b""
                txn.put(chunk_key, raw + array("I", more).tobytes(), db=dbs["idx"])
        for key, more in counts.items():
            if more:
                raw = txn.get(key, db=dbs["counts"])
                txn.put(key, L.u64((L.un64(raw) if raw else 0) + more), db=dbs["counts"])
        self.rollups.write(txn, dbs)
        for page_no, page in self.pages.items():
            txn.put(L.u32(page_no), orjson.dumps(page), db=dbs["pages"])
        for key, sig in self.sigs.items():
            txn.put(key, orjson.dumps(sig), db=dbs["sigs"])
        for _, total_set, by_value in self._set_specs:
            if by_value:
                total_set.update(by_value)
        for name in TOTAL_SETS:
            if len(self.total_sets[name]) != len(self.totals[name]):
                self.totals[name] = sorted(self.total_sets[name])
        self.totals["last_indexed_at"] = self.now
        txn.put(b"totals", orjson.dumps(self.totals), db=meta)
        txn.put(b"next_tno", L.u32(self.next_tno), db=meta)
        txn.put(b"ordered", b"1" if self.ordered else b"0", db=meta)
        if self.max_order is not None:
            rel, off = self.max_order
            txn.put(b"max_order", orjson.dumps([rel, off]), db=meta)
