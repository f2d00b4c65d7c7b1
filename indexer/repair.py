"""A damaged index is detected on open and rebuilt from the JSONL (it is derived data).

Checked before LMDB maps the file: both meta pages carry LMDB's magic, and
the file is as long as the newest meta page says (a shorter one would be a
SIGBUS on the first read past its end, not an error). Then LMDB opens it; an
`lmdb.Error` there (not an LMDB file, a lock file of another version, a
corrupted page on the path to a sub-database's first or last entry) also
counts as damage, and so does a marker left by a process that was writing
the index unsynced when the machine stopped (`durability`). Damage is said in one line on the
log, the environment's files are removed under the catch-up lock, and a new,
empty index is opened: the next catch-up re-indexes every file. An index of
another layout version is rebuilt by `layout.open_env` itself; readers that
a killed process left in the lock table are cleared here (`reader_check`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
from pathlib import Path

import lmdb

from halo_live.indexer import durability
from halo_live.indexer import layout as L

log = logging.getLogger(__name__)

DATA_FILE = "data.mdb"
LOCK_FILE = "lock.mdb"
_MAGIC = 0xBEEFC0DE
_META_AT = 16  # MDB_meta follows the 16-byte page header
_PSIZE_AT = _META_AT + 24  # mm_dbs[FREE_DBI].md_pad holds the page size
_LAST_PG_AT = _META_AT + 24 + 2 * 48  # mm_last_pg, then mm_txnid (64-bit builds)


def damage(index_dir: Path) -> str | None:
    """Why the index's data file cannot be a whole LMDB file, or None if it looks whole (or is absent)."""
    path = index_dir / DATA_FILE
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(2 * 65536)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read {DATA_FILE}: {exc.strerror or exc}"
    if size == 0:
        return None  # LMDB initialises an empty file
    if len(head) < _LAST_PG_AT + 16:
        return f"{DATA_FILE} is truncated ({size} bytes)"
    magic, _version = struct.unpack_from("<II", head, _META_AT)
    psize = struct.unpack_from("<I", head, _PSIZE_AT)[0]
    if magic != _MAGIC or psize < 512 or psize > 65536 or psize & (psize - 1):
        return f"{DATA_FILE} is not an LMDB file (overwritten?)"
    if size < 2 * psize:
        return f"{DATA_FILE} is truncated ({size} bytes)"
    metas = []
    for page in (0, 1):
        at = page * psize
        if struct.unpack_from("<I", head, at + _META_AT)[0] != _MAGIC:
            return f"{DATA_FILE}'s meta page {page} is damaged"
        last_pg, txnid = struct.unpack_from("<QQ", head, at + _LAST_PG_AT)
        metas.append((txnid, last_pg))
    _, last_pg = max(metas)
    needed = (last_pg + 1) * psize
    if size < needed:
        return f"{DATA_FILE} is truncated ({size} bytes of {needed})"
    return None


def open_checked(index_dir: Path, lock_file: str) -> tuple[lmdb.Environment, dict]:
    """`layout.open_env`, after checking the files; a damaged index is removed and opened anew.

    `lock_file`: the catch-up lock's name in `index_dir`, held while the files are removed.
    """
    reason = damage(index_dir)
    if reason is None:
        try:
            env, dbs = L.open_env(index_dir)
        except lmdb.Error as exc:
            reason = f"LMDB cannot open it ({exc})"
        else:
            reason = _probe(env, dbs) or durability.unsynced_after_stop(index_dir)
            if reason is None:
                _clear_dead_readers(env, index_dir)
                durability.clear_dead(env, index_dir)
                return env, dbs
            env.close()
    log.warning("halo index: the index in %s is damaged: %s; rebuilding it from the JSONL",
                index_dir, reason)
    _remove(index_dir, lock_file)
    return L.open_env(index_dir)


def _probe(env: lmdb.Environment, dbs: dict) -> str | None:
    """Read each sub-database's first and last entry: a damaged page on those paths shows here."""
    try:
        with env.begin(buffers=False) as txn:
            for name, db in dbs.items():
                txn.stat(db)
                with txn.cursor(db=db) as cur:
                    if cur.first():
                        cur.value()
                        cur.last()
                        cur.value()
    except lmdb.Error as exc:
        return f"LMDB cannot read it ({exc})"
    return None


def _clear_dead_readers(env: lmdb.Environment, index_dir: Path) -> None:
    # A reader slot of a killed process keeps old pages from being reused (the file only
    # grows); LMDB's robust mutexes already free a killed writer's lock.
    try:
        cleared = env.reader_check()
    except lmdb.Error:
        return
    if cleared:
        log.info("halo index: cleared %d reader(s) that exited without closing %s", cleared, index_dir)


def _remove(index_dir: Path, lock_file: str) -> None:
    """Delete the environment's files, holding the catch-up lock so no catch-up runs meanwhile."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        for path in [index_dir / DATA_FILE, index_dir / LOCK_FILE, *durability.markers(index_dir)]:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)
