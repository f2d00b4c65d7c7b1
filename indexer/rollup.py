"""Overview rollups kept per filter value, so a one-filter overview is one read.

For every posting list that never loses members (a model, service, agent,
tool, run or project value; the error traces; the complete traces) the index
keeps the sums, bounds and name sets of the overview over the traces in it.
Rows only grow (spans are added, names never leave a row), so a record
changes by the difference between a row before and after a batch.

Writing: a cold build sees most traces once, and many of them share the same
set of filter values; changes are summed per (values before, values after)
group first and each group is folded into its lists' records once per
transaction, so the cost per trace is one tuple and a few additions.

Record (JSON): {"v": [traces, spans, missing parents, missing identities,
project mismatches, otel errors, tool errors, input tokens, output tokens, raw
bytes, error traces, complete traces], "lo": earliest start, "hi": latest end,
"u": [services, models, agents, agent ids, tools], "r": {run id: [file, offset]
of its first trace in dataset order}, "x": 1 while exact}. A trace whose start
time goes from "" to a real time breaks "lo"'s monotonicity: "x" drops to 0 and
readers fall back to the rows.
"""

from __future__ import annotations

import lmdb
import orjson

from halo_live.indexer import layout as L

SUMMED = (L.R_N, L.R_MISS_PARENT, L.R_MISS_IDENT, L.R_MISMATCH, L.R_OTEL_ERR, L.R_TOOL_ERR,
          L.R_IN, L.R_OUT, L.R_RAW)
V_TRACES, V_ERRORS, V_COMPLETE = 0, 10, 11
V_FIELDS = 12
UNIONS = (L.R_SERVICES, L.R_MODELS, L.R_AGENTS, L.R_AGENT_IDS, L.R_TOOLS)


def _vector(row: list) -> list:
    return [1, *[row[p] for p in SUMMED], 1 if row[L.R_HAS_ERR] else 0, 1 if row[L.R_COMPLETE] else 0]


def _ident(row: list) -> tuple:
    """The filter values of a row that have a rollup: its group."""
    return (tuple(row[L.R_MODELS]), tuple(row[L.R_SERVICES]), tuple(row[L.R_AGENTS]),
            tuple(row[L.R_TOOLS]), tuple(row[L.R_RUNS]), row[L.R_PROJECT],
            bool(row[L.R_HAS_ERR]), bool(row[L.R_COMPLETE]))


def empty() -> dict:
    return {"v": [0] * V_FIELDS, "lo": None, "hi": None, "u": [[] for _ in UNIONS], "r": {}, "x": 1}


class _Group:
    __slots__ = ("full", "delta", "lo", "hi", "ids", "runs", "inexact")

    def __init__(self) -> None:
        self.full = [0] * V_FIELDS  # sum of the rows after
        self.delta = [0] * V_FIELDS  # sum of (after - before), for lists the rows were in before
        self.lo: str | None = None
        self.hi: str | None = None
        self.ids: set[str] = set()
        self.runs: dict[str, list] = {}
        self.inexact = False


class Rollups:
    """Collects one write transaction's row changes; `write(txn, dbs)` folds them in."""

    def __init__(self, rel_of: dict[int, str]) -> None:
        self.rel_of = rel_of
        self.groups: dict[tuple, _Group] = {}
        self._keys: dict[tuple, list[bytes]] = {}

    def add(self, old: list | None, row: list) -> None:
        """A row changed from `old` (None: a new trace) to `row`."""
        ident = _ident(row)
        gkey = (None if old is None else _ident(old), ident)
        g = self.groups.get(gkey)
        if g is None:
            g = self.groups[gkey] = _Group()
        vec = _vector(row)
        full = g.full
        for i in range(V_FIELDS):
            full[i] += vec[i]
        if old is not None:
            before = _vector(old)
            delta = g.delta
            for i in range(V_FIELDS):
                delta[i] += vec[i] - before[i]
            if old[L.R_START] != row[L.R_START] and (not old[L.R_START] or row[L.R_START] > old[L.R_START]):
                g.inexact = True
        start, end = row[L.R_START], row[L.R_END]
        if g.lo is None or start < g.lo:
            g.lo = start
        if g.hi is None or end > g.hi:
            g.hi = end
        if row[L.R_AGENT_IDS]:
            g.ids.update(row[L.R_AGENT_IDS])
        if row[L.R_RUNS]:
            where = [self.rel_of[row[L.R_FILENO]], row[L.R_FIRST_OFF]]
            runs = g.runs
            for run in row[L.R_RUNS]:
                at = runs.get(run)
                if at is None or where < at:
                    runs[run] = where

    def _keys_of(self, ident: tuple | None) -> list[bytes]:
        if ident is None:
            return []
        keys = self._keys.get(ident)
        if keys is None:
            models, services, agents, tools, runs, project, err, complete = ident
            keys = [L.posting_key(tag, v) for tag, values in
                    ((L.TAG_MODEL, models), (L.TAG_SERVICE, services), (L.TAG_AGENT, agents),
                     (L.TAG_TOOL, tools), (L.TAG_RUN, runs)) for v in values]
            if project is not None:
                keys.append(L.posting_key(L.TAG_PROJECT, project))
            if err:
                keys.append(L.KEY_ERRORS)
            if complete:
                keys.append(L.KEY_COMPLETE)
            self._keys[ident] = keys
        return keys

    def write(self, txn: lmdb.Transaction, dbs: dict) -> None:
        db = dbs["rollups"]
        records: dict[bytes, dict] = {}
        for (old_ident, ident), g in self.groups.items():
            before = set(self._keys_of(old_ident))
            models, services, agents, tools = ident[0], ident[1], ident[2], ident[3]
            for key in self._keys_of(ident):
                rec = records.get(key)
                if rec is None:
                    raw = txn.get(key, db=db)
                    rec = records[key] = orjson.loads(raw) if raw is not None else empty()
                was = key in before
                v = rec["v"]
                add = g.delta if was else g.full
                for i in range(V_FIELDS):
                    v[i] += add[i]
                if was and g.inexact:
                    rec["x"] = 0
                if rec["lo"] is None or g.lo < rec["lo"]:
                    rec["lo"] = g.lo
                if rec["hi"] is None or g.hi > rec["hi"]:
                    rec["hi"] = g.hi
                u = rec["u"]
                for pos, values in ((0, services), (1, models), (2, agents), (3, g.ids), (4, tools)):
                    if values and not set(values).issubset(u[pos]):
                        u[pos] = sorted(set(u[pos]).union(values))
                runs = rec["r"]
                for run, where in g.runs.items():
                    at = runs.get(run)
                    if at is None or where < at:
                        runs[run] = where
        for key, rec in records.items():
            txn.put(key, orjson.dumps(rec), db=db)
        self.groups.clear()


def read(txn: lmdb.Transaction, dbs: dict, key: bytes) -> dict | None:
    """The rollup of one posting list; an empty one when no trace holds the value; None when
    it is not exact (the caller reads rows instead)."""
    raw = txn.get(key, db=dbs["rollups"])
    rec = orjson.loads(raw) if raw is not None else empty()
    return rec if rec["x"] else None
