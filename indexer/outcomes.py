"""A trace's latest outcome: its postings, task keys and error signatures' outcome counts.

A row keeps its latest outcome span (greatest end time, then file, then
offset). When that moves the trace between passed / failed / unknown, its
outcome postings move (members are removed, not only appended), and each of
its error signatures' counts of traces with a known outcome ("k") and of
failed ones ("f") follow, so the lift of a signature is read, never scanned.
"""

from __future__ import annotations

from array import array
from collections import defaultdict

import orjson

from halo_live.indexer import layout as L


class OutcomeChanges:
    """`BatchWriter`'s outcome bookkeeping (it holds the transaction, postings, moves,
    task keys, counts, signatures and totals these methods change)."""

    def _later(self, outcome: tuple, fileno: int, current: list | None) -> bool:
        """Whether a parsed outcome (parse.P_OUTCOME) is later than the row's current one."""
        if current is None:
            return True
        rel = self.rel_of
        return ((outcome[0], rel[fileno], outcome[1])
                >= (current[L.O_END], rel[current[L.O_FILENO]], current[L.O_OFFSET]))

    def _sig(self, key: bytes) -> dict:
        sig = self.sigs.get(key)
        if sig is None:
            sig = self.sigs[key] = orjson.loads(self.txn.get(key, db=self.dbs["sigs"]))
        return sig

    def _shift_signatures(self, hexkeys: list[str], was: bool | None, now: bool | None) -> None:
        """A trace's outcome state changed: move it between its signatures' outcome counts."""
        known = (now is not None) - (was is not None)
        failed = (now is False) - (was is False)
        for hexkey in hexkeys:
            sig = self._sig(bytes.fromhex(hexkey))
            sig["k"] += known
            sig["f"] += failed

    def _outcome_changes(self, tno: int, before: list | None, after: list) -> None:
        """Postings and totals of a trace whose latest outcome changed."""
        t = self.totals
        was, now = state(before), state(after)
        t["passed_traces"] += (now is True) - (was is True)
        t["failed_traces"] += (now is False) - (was is False)
        task = after[L.O_TASK]
        if before is None:  # the common case, a trace's first outcome: postings only grow
            t["outcome_traces"] += 1
            self.postings[L.KEY_OUTCOME].append(tno)
            for key in outcome_keys(after):
                self.postings[key].append(tno)
            if task:
                self.task_keys.add(L.task_key(task, tno))
            return
        for key in outcome_keys(before):
            self.moves[key][tno] = self.moves[key].get(tno, 0) - 1
        for key in outcome_keys(after):
            self.moves[key][tno] = self.moves[key].get(tno, 0) + 1
        if task != before[L.O_TASK]:
            if before[L.O_TASK]:
                self._drop_task_key(L.task_key(before[L.O_TASK], tno))
            if task:
                self.task_keys.add(L.task_key(task, tno))

    def _drop_task_key(self, key: bytes) -> None:
        if not self.txn.delete(key, db=self.dbs["tasks"]):
            self.task_keys.discard(key)  # put by this transaction: not written yet

    def _apply_moves(self) -> None:
        """Outcome postings: removals rewrite their chunks (or cancel an append of this
        transaction), additions join the appends; and the task keys, put in key order."""
        shift, idx = L.POSTING_SHIFT, self.dbs["idx"]
        if self.task_keys:
            with self.txn.cursor(db=self.dbs["tasks"]) as cur:
                cur.putmulti([(key, b"") for key in sorted(self.task_keys)])
        for key, net in self.moves.items():
            removed = {tno for tno, change in net.items() if change < 0}
            pending = self.postings[key]
            cancelled = removed.intersection(pending)  # first outcomes of this transaction
            if cancelled:
                pending[:] = [tno for tno in pending if tno not in cancelled]
            pending.extend(tno for tno, change in net.items() if change > 0)
            gone: defaultdict[int, set[int]] = defaultdict(set)
            for tno in removed - cancelled:
                gone[tno >> shift].add(tno)
            self.counts[key] -= len(removed - cancelled)
            for chunk, tnos in gone.items():
                chunk_key = L.posting_chunk_key(key, chunk << shift)
                kept = array("I", [x for x in array("I", self.txn.get(chunk_key, db=idx) or b"")
                                   if x not in tnos])
                if kept:
                    self.txn.put(chunk_key, kept.tobytes(), db=idx)
                else:
                    self.txn.delete(chunk_key, db=idx)


def outcome_record(outcome: tuple, fileno: int) -> list:
    """A row's R_OUTCOME from a parsed outcome (parse.P_OUTCOME) found in file `fileno`."""
    end, offset, passed, score, task_id, label = outcome
    return [passed, score, task_id, label, end, fileno, offset]


def state(record: list | None) -> bool | None:
    """True / False for a passed / failed latest outcome; None when unknown or absent."""
    return None if record is None else record[L.O_PASSED]


def outcome_keys(record: list | None) -> list[bytes]:
    """The posting lists a trace with this latest outcome belongs to."""
    if record is None:
        return []
    keys = []
    if record[L.O_PASSED] is not None:
        keys.append(L.KEY_PASSED if record[L.O_PASSED] else L.KEY_FAILED)
    if record[L.O_SCORE] is not None:
        keys.append(L.KEY_SCORED)
    return keys
