"""The LMDB environment: sub-databases, key encodings, row encoding, map growth.

Sub-databases (all keys fixed-width big-endian where order matters):

  meta      b"schema", b"next_tno", b"ordered", b"max_order", b"totals"
  files     fileno(4)               -> checkpoint {rel, dev, ino, offset, head_n, head_hash}
  tid2no    trace id (or its hash)  -> tno(4)   (tno = trace number, assigned on first sight)
  pages     tno>>10 (4)             -> JSON list of the trace ids of that page of tnos
  rows      tno(4)                  -> JSON row (TraceRow fields + bookkeeping + the latest outcome)
  ids       tno(4)                  -> JSON [span ids, parent ids] (for missing-parent counts)
  spans     tno(4)                  -> span entries, one JSON array per line, file order
  order     fileno(4) + offset(8)   -> tno: dataset order (file, first span offset)
  idx       tag + 0 + value + 0 + chunk(4) -> packed uint32 tnos of one filter value, in chunks
                                       of trace numbers (tno >> 12), so an append rewrites <= 16 KB;
                                       outcome lists also lose members (the latest outcome wins)
  counts    tag + 0 + value         -> u64: how many traces the posting list holds (a count
                                       is one read, not a walk of the list)
  rollups   tag + 0 + value         -> JSON overview rollup of the traces holding that value
                                       (only for the lists that never lose members: model,
                                       service, agent, tool, run, project, errors, complete)
  by_start  start_time + 0 + tno    -> b""   (string order = the reference's comparisons)
  by_end    end_time + 0 + tno      -> b""
  tasks     task id + 0 + tno       -> b""   (the task id of the trace's latest outcome; a
                                              key only: one put per trace, no chunk to rewrite)
  sigs      hash(name, message)     -> JSON error signature aggregate
  bad       fileno(4) + offset(8)   -> reason of a skipped line
"""

from __future__ import annotations

import functools
import logging
import struct
from pathlib import Path

import lmdb
import orjson

from halo_live.indexer import durability

try:  # hashlib's import loads OpenSSL (3 MB resident) for constructors the index never uses
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without the builtin module
    from hashlib import blake2b

SCHEMA = b"halo-live-index/4"  # 2: outcomes; 3: posting counts, per-value rollups, duplicate spans;
# 4: reported cost and the tokens left to price, per trace and in the totals
DB_NAMES = ("meta", "files", "tid2no", "pages", "rows", "ids", "spans", "order", "idx",
            "by_start", "by_end", "sigs", "bad", "tasks", "counts", "rollups")
INITIAL_MAP_SIZE = 1 << 30  # sparse on Linux; grown by doubling on MapFullError
PAGE_SHIFT = 10
POSTING_SHIFT = 12  # trace numbers per posting chunk: 4096

# posting-list tags in `idx`
TAG_MODEL = b"m"
TAG_SERVICE = b"s"
TAG_AGENT = b"a"
TAG_PROJECT = b"p"
TAG_TOOL = b"t"
TAG_RUN = b"r"
KEY_ERRORS = b"e"
KEY_COMPLETE = b"c"
KEY_PASSED = b"P"  # traces whose latest outcome passed
KEY_FAILED = b"F"  # ... failed
KEY_SCORED = b"S"  # ... has a score
KEY_OUTCOME = b"O"  # traces with any outcome (never loses members)

# row list positions (the first 24 are TraceRow's fields in order, minus `file`)
R_TID, R_N, R_START, R_END, R_HAS_ERR, R_SERVICES, R_MODELS, R_AGENTS, R_AGENT_IDS = range(9)
R_IN, R_OUT, R_PROJECT, R_MISS_PARENT, R_MISS_IDENT, R_MISMATCH, R_OTEL_ERR = range(9, 16)
R_TOOL_ERR, R_RAW, R_TOOLS, R_RUNS, R_COMPLETE, R_LAST_SEEN, R_ERR_NAMES, R_DURATION = range(16, 24)
R_FILENO, R_FIRST_OFF, R_PROJECTS, R_SIGS, R_OUTCOME = range(24, 29)
R_COST, R_MODEL_TOKENS = range(29, 31)
# R_COST: the sum of the reported `inference.llm.cost.total` (USD, a float); R_MODEL_TOKENS:
# {model ("" for none): [input, output]} of the spans with tokens and no reported cost
ROW_FIELDS = 24
# R_OUTCOME: None, or the latest outcome [passed, score, task id, label, end time, fileno, offset];
# "latest" orders by (end time, file's dataset-relative name, offset)
O_PASSED, O_SCORE, O_TASK, O_LABEL, O_END, O_FILENO, O_OFFSET = range(7)

_U32 = struct.Struct(">I")
_ORDER = struct.Struct(">IQ")
MAX_KEY = 480  # LMDB's default max key is 511 bytes


_U64 = struct.Struct(">Q")


def u64(n: int) -> bytes:
    return _U64.pack(n)


def un64(b: bytes) -> int:
    return _U64.unpack(b)[0]


def u32(n: int) -> bytes:
    return _U32.pack(n)


def un32(b: bytes) -> int:
    return _U32.unpack(b)[0]


def order_key(fileno: int, offset: int) -> bytes:
    return _ORDER.pack(fileno, offset)


def unorder(key: bytes) -> tuple[int, int]:
    return _ORDER.unpack(key)


def bounded(key: bytes) -> bytes:
    """A key that fits LMDB: long ones become a prefix plus a hash of the whole."""
    if len(key) <= MAX_KEY:
        return key
    return key[:MAX_KEY - 17] + b"#" + blake2b(key, digest_size=8).hexdigest().encode()


def tid_key(trace_id: str) -> bytes:
    return bounded(trace_id.encode("utf-8", "surrogatepass"))


def posting_key(tag: bytes, value: str) -> bytes:
    return bounded(tag + b"\0" + value.encode("utf-8", "surrogatepass"))


def posting_chunk_key(key: bytes, tno: int) -> bytes:
    return key + b"\0" + u32(tno >> POSTING_SHIFT)


def task_key(task_id: str, tno: int) -> bytes:
    return bounded(task_id.encode("utf-8", "surrogatepass")) + b"\0" + u32(tno)


def time_key(value: str, tno: int) -> bytes:
    # Time strings are short; a long one is clipped (its order among equals is still by tno).
    return value.encode("utf-8", "surrogatepass")[:MAX_KEY - 5] + b"\0" + u32(tno)


SIG_MESSAGE_CHARS = 200  # error signatures group by (span name, message[:200]), as the reference


@functools.lru_cache(maxsize=1 << 14)  # a build meets few signatures, each many times
def sig_key(name: str, message: str) -> bytes:
    return blake2b(orjson.dumps([name, message]), digest_size=16).digest()


def checkpoints(txn: lmdb.Transaction, dbs: dict) -> dict[str, tuple[int, dict]]:
    """rel -> (fileno, checkpoint) of every file the index knows."""
    return {cp["rel"]: (un32(k), cp)
            for k, cp in ((k, orjson.loads(v)) for k, v in txn.cursor(db=dbs["files"]))}


def begin_read(env: lmdb.Environment) -> lmdb.Transaction:
    """A read transaction, adopting a map size another process grew the file to."""
    try:
        return env.begin(buffers=False)
    except lmdb.MapResizedError:
        adopt_map_size(env)
        return env.begin(buffers=False)


def open_env(index_dir: Path, *, readonly: bool = False) -> tuple[lmdb.Environment, dict]:
    """Open (creating) the environment and its sub-databases."""
    index_dir.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(
        str(index_dir), map_size=INITIAL_MAP_SIZE, max_dbs=len(DB_NAMES) + 1,
        subdir=True, readahead=False, max_readers=256, lock=True,
        sync=durability.SYNC_EACH_COMMIT,  # else one sync per catch-up: see indexer/durability.py
    )
    dbs = {name: env.open_db(name.encode()) for name in DB_NAMES}
    with env.begin(write=True) as txn:
        schema = txn.get(b"schema", db=dbs["meta"])
        if schema != SCHEMA:
            if schema is not None:  # another layout: the index is derived, so rebuild it
                logging.getLogger(__name__).warning(
                    "halo index: %s holds another index layout (%s, this version reads %s); "
                    "rebuilding it from the JSONL", index_dir, schema.decode(errors="replace"),
                    SCHEMA.decode())
                for db in dbs.values():
                    txn.drop(db, delete=False)
            txn.put(b"schema", SCHEMA, db=dbs["meta"])
            txn.put(b"ordered", b"1", db=dbs["meta"])
            wrote = True
        else:
            wrote = False
    if wrote:
        env.sync(True)
    return env, dbs


def grow(env: lmdb.Environment) -> None:
    """Double the map size (called after a MapFullError aborted a write)."""
    env.set_mapsize(env.info()["map_size"] * 2)


def adopt_map_size(env: lmdb.Environment) -> None:
    """Pick up a map size another process grew the file to."""
    env.set_mapsize(0)


_MADV_DONTNEED = 4
_libc = None
_data_files: dict[Path, str] = {}


def release_mapped_pages(index_dir: Path) -> None:
    """Drop this process's page-table entries for the index's data file.

    LMDB reads through a shared read-only map; copy-on-write sends each
    commit's pages to new file offsets, so a long build ends up with the whole
    file resident in its RSS although those are page-cache pages that anyone
    can reclaim. Dropping the mappings after a big commit keeps RSS honest;
    the next access faults the page back in from the page cache. The map's
    address is read from /proc/self/maps each time: it moves when the map grows.
    """
    global _libc
    target = _data_files.get(index_dir)
    if target is None:
        target = _data_files[index_dir] = str((index_dir / "data.mdb").resolve())
    try:
        with open("/proc/self/maps") as fh:
            spans = [line.split()[0] for line in fh if line.rstrip().endswith(target)]
        if _libc is None:
            import ctypes  # here: every CLI start would pay its import

            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    except OSError:
        return
    for span in spans:
        lo, hi = (int(x, 16) for x in span.split("-"))
        _libc.madvise(lo, hi - lo, _MADV_DONTNEED)
