"""Overview rollups kept per filter value, so a one-filter overview is one read.

For every posting list that never loses members (a model, service, agent,
tool, run or project value; the error traces; the complete traces) the index
keeps the sums, bounds and name sets of the overview over the traces in it.
Rows only grow (spans are added, names never leave a row), so a record
changes by the difference between a row before and after a batch.

Writing: a cold build sees most traces once, and many of them share a model,
an agent set, a tool set; changes are grouped per dimension by (values before,
values after), each group is summed once per transaction (in C) and folded into
its values' records, so the cost per trace is a few tuples and appends.

Record (JSON): {"v": [traces, spans, missing parents, missing identities,
project mismatches, otel errors, tool errors, input tokens, output tokens, raw
bytes, error traces, complete traces], "lo": earliest start, "hi": latest end,
"u": [services, models, agents, agent ids, tools], "r": {run id: [file, offset]
of its first trace in dataset order}, "x": 1 while exact}. A trace whose start
time goes from "" to a real time breaks "lo"'s monotonicity: "x" drops to 0 and
readers fall back to the rows.
"""

from __future__ import annotations

from operator import add, itemgetter

import lmdb
import orjson

from halo_live.indexer import layout as L
from halo_live.indexer.models import DatasetTotals

SUMMED = (L.R_N, L.R_MISS_PARENT, L.R_MISS_IDENT, L.R_MISMATCH, L.R_OTEL_ERR, L.R_TOOL_ERR,
          L.R_IN, L.R_OUT, L.R_RAW)
V_TRACES, V_ERRORS, V_COMPLETE = 0, 10, 11
V_FIELDS = 12
UNIONS = (L.R_SERVICES, L.R_MODELS, L.R_AGENTS, L.R_AGENT_IDS, L.R_TOOLS)


def _vector(row: list) -> list:
    return [1, *[row[p] for p in SUMMED], 1 if row[L.R_HAS_ERR] else 0, 1 if row[L.R_COMPLETE] else 0]


_DIMS = ((L.TAG_MODEL, L.R_MODELS), (L.TAG_SERVICE, L.R_SERVICES), (L.TAG_AGENT, L.R_AGENTS),
         (L.TAG_TOOL, L.R_TOOLS), (L.TAG_RUN, L.R_RUNS))
_FLAT = (None, None, None, None, None, None, None, None)  # a new trace: no lists before


def _values(row: list) -> tuple:
    """The row's values per dimension: the five name lists, project, errors, complete."""
    return (tuple(row[L.R_MODELS]), tuple(row[L.R_SERVICES]), tuple(row[L.R_AGENTS]),
            tuple(row[L.R_TOOLS]), tuple(row[L.R_RUNS]),
            (row[L.R_PROJECT],) if row[L.R_PROJECT] is not None else (),
            (True,) if row[L.R_HAS_ERR] else (), (True,) if row[L.R_COMPLETE] else ())


def empty() -> dict:
    return {"v": [0] * V_FIELDS, "lo": None, "hi": None, "u": [[] for _ in UNIONS], "r": {}, "x": 1}


_VEC, _DELTA, _START, _END, _UID, _RUNS, _WHERE, _INEXACT = range(8)


class Rollups:
    """Collects one write transaction's row changes; `write(txn, dbs)` folds them in.

    Changes are grouped per dimension by (values before, values after): a group
    is summed once (in C: zip, min, max) and folded into each of its values'
    records, so a trace costs a few tuples and appends, not a merge per value.
    """

    def __init__(self, rel_of: dict[int, str]) -> None:
        self.rel_of = rel_of
        self.groups: list[dict[tuple, list]] = [{} for _ in range(8)]
        self.uids: dict[tuple, int] = {}  # the name lists of a row, numbered: unions by number

    def add(self, old: list | None, row: list) -> None:
        """A row changed from `old` (None: a new trace) to `row`."""
        vec = _vector(row)
        delta = inexact = None
        if old is not None:
            delta = [a - b for a, b in zip(vec, _vector(old))]
            inexact = old[L.R_START] != row[L.R_START] and (not old[L.R_START] or row[L.R_START] > old[L.R_START])
        names = (tuple(row[L.R_SERVICES]), tuple(row[L.R_MODELS]), tuple(row[L.R_AGENTS]),
                 tuple(row[L.R_AGENT_IDS]), tuple(row[L.R_TOOLS]))
        uid = self.uids.setdefault(names, len(self.uids))
        after = _values(row)
        runs = after[4]
        where = [self.rel_of[row[L.R_FILENO]], row[L.R_FIRST_OFF]] if runs else None
        item = (vec, delta, row[L.R_START], row[L.R_END], uid, runs, where, inexact)
        before = _FLAT if old is None else _values(old)
        for dim, groups in enumerate(self.groups):
            if after[dim]:
                key = (before[dim], after[dim], runs)  # one run set a group: its first trace is a min()
                items = groups.get(key)
                if items is None:
                    groups[key] = [item]
                else:
                    items.append(item)

    def add_new(self, row: list, names: tuple) -> None:
        """`add(None, row)` for a new trace, given its sorted name lists (services, models,
        agents, agent ids, tools, runs): the few tuples and appends, nothing else."""
        services, models, agents, agent_ids, tools, runs = map(tuple, names)
        uid = self.uids.setdefault((services, models, agents, agent_ids, tools), len(self.uids))
        err, complete, project = row[L.R_HAS_ERR], row[L.R_COMPLETE], row[L.R_PROJECT]
        vec = [1, row[L.R_N], row[L.R_MISS_PARENT], row[L.R_MISS_IDENT], row[L.R_MISMATCH],
               row[L.R_OTEL_ERR], row[L.R_TOOL_ERR], row[L.R_IN], row[L.R_OUT], row[L.R_RAW],
               1 if err else 0, 1 if complete else 0]
        where = [self.rel_of[row[L.R_FILENO]], row[L.R_FIRST_OFF]] if runs else None
        item = (vec, None, row[L.R_START], row[L.R_END], uid, runs, where, None)
        after = (models, services, agents, tools, runs, (project,) if project is not None else (),
                 (True,) if err else (), (True,) if complete else ())
        for groups, values in zip(self.groups, after):
            if values:
                key = (None, values, runs)
                items = groups.get(key)
                if items is None:
                    groups[key] = [item]
                else:
                    items.append(item)

    def write(self, txn: lmdb.Transaction, dbs: dict) -> None:
        db = dbs["rollups"]
        records: dict[bytes, dict] = {}
        known: dict[bytes, set] = {}  # per record: its names as (list position, name) pairs
        # each uid's names as (list position, name) pairs: a group's union is one C call
        tagged = [_tagged(names) for names in self.uids]
        get = itemgetter
        for dim, groups in enumerate(self.groups):
            for (before, after, runs), items in groups.items():
                full = [sum(c) for c in zip(*map(get(_VEC), items))]
                delta = [sum(c) for c in zip(*map(get(_DELTA), items))] if before is not None else None
                inexact = before is not None and any(map(get(_INEXACT), items))
                lo, hi = min(map(get(_START), items)), max(map(get(_END), items))
                union = frozenset().union(*map(tagged.__getitem__, set(map(get(_UID), items))))
                first = min(map(get(_WHERE), items)) if runs else None
                for value in after:
                    key = _key(dim, value)
                    rec = records.get(key)
                    if rec is None:
                        raw = txn.get(key, db=db)
                        rec = records[key] = orjson.loads(raw) if raw is not None else empty()
                    was = before is not None and value in before
                    rec["v"] = list(map(add, rec["v"], delta if was else full))
                    if was and inexact:
                        rec["x"] = 0
                    if rec["lo"] is None or lo < rec["lo"]:
                        rec["lo"] = lo
                    if rec["hi"] is None or hi > rec["hi"]:
                        rec["hi"] = hi
                    have = known.get(key)
                    if have is None:
                        have = known[key] = {(pos, v) for pos, values in enumerate(rec["u"]) for v in values}
                    if not union <= have:
                        have |= union
                        rec["u"] = [sorted(v for p, v in have if p == pos) for pos in range(len(UNIONS))]
                    for run in runs or ():
                        at = rec["r"].get(run)
                        if at is None or first < at:
                            rec["r"][run] = first
        for key, rec in records.items():
            txn.put(key, orjson.dumps(rec), db=db)
        for groups in self.groups:
            groups.clear()


_TAGGED: dict[tuple, frozenset] = {}  # a memo across transactions: name sets recur
_TAGGED_MAX = 1 << 16


def _tagged(names: tuple) -> frozenset:
    out = _TAGGED.get(names)
    if out is None:
        if len(_TAGGED) >= _TAGGED_MAX:
            _TAGGED.clear()
        out = _TAGGED[names] = frozenset((pos, v) for pos, values in enumerate(names) for v in values)
    return out


def _key(dim: int, value) -> bytes:
    if dim < len(_DIMS):
        return L.posting_key(_DIMS[dim][0], value)
    if dim == len(_DIMS):
        return L.posting_key(L.TAG_PROJECT, value)
    return L.KEY_ERRORS if dim == len(_DIMS) + 1 else L.KEY_COMPLETE


def read(txn: lmdb.Transaction, dbs: dict, key: bytes) -> dict | None:
    """The rollup of one posting list; an empty one when no trace holds the value; None when
    it is not exact (the caller reads rows instead)."""
    raw = txn.get(key, db=dbs["rollups"])
    rec = orjson.loads(raw) if raw is not None else empty()
    return rec if rec["x"] else None


def as_totals(rec: dict) -> DatasetTotals:
    """A rollup record as the dataset totals of its traces (outcome counts left at zero)."""
    v = rec["v"]
    runs = sorted(rec["r"].items(), key=lambda kv: (kv[1], kv[0]))
    out = DatasetTotals(
        total_traces=v[V_TRACES], earliest_start_time=rec["lo"] or "", latest_end_time=rec["hi"] or "",
        service_names=rec["u"][0], model_names=rec["u"][1], agent_names=rec["u"][2],
        agent_ids=rec["u"][3], tool_names=rec["u"][4], run_ids=[run for run, _ in runs],
        error_trace_count=v[V_ERRORS], complete_traces=v[V_COMPLETE])
    (out.total_spans, out.missing_parent_count, out.missing_agent_identity_count,
     out.project_id_mismatch_count, out.otel_error_span_count, out.tool_error_span_count,
     out.total_input_tokens, out.total_output_tokens, out.raw_jsonl_bytes) = v[1:10]
    return out
