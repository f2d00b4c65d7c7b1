"""Commits go to the page cache; each catch-up ends with one sync. What makes that safe.

LMDB's own per-commit sync cost a cold build of 33 GB 11 of its 40 seconds
(about 800 commits, two disk flushes each). Without it a killed process still
loses nothing: its writes are in the page cache, which outlives it. A machine
that stops can lose some of them, in any order. So before a process first
writes the index it leaves a marker file there naming this boot, flushed to
the disk; it syncs the index at the end of each catch-up and removes the marker
when it closes the index, after a last sync. An index found with a marker of
another boot was being written when the machine stopped, and is rebuilt from
the JSONL as a damaged one is (`repair.open_checked`). A marker of this boot
whose process is gone is harmless (the page cache has its writes): the next
opener syncs the index and removes it.

Where the boot cannot be told (no /proc/sys/kernel/random/boot_id), LMDB syncs
every commit as before.
"""

from __future__ import annotations

import os
from pathlib import Path

import lmdb

PREFIX = "unsynced-"  # + pid: one marker per process writing the index


def boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


BOOT = boot_id()
SYNC_EACH_COMMIT = BOOT is None


def markers(index_dir: Path) -> list[Path]:
    try:
        return [index_dir / name for name in os.listdir(index_dir) if name.startswith(PREFIX)]
    except OSError:
        return []


def unsynced_after_stop(index_dir: Path) -> str | None:
    """Why the index may have lost writes to a machine stop, or None."""
    for path in markers(index_dir):
        try:
            boot = path.read_text().strip()
        except OSError:
            continue
        if boot != BOOT:
            return "it was being written when the machine stopped (its last writes may be lost)"
    return None


def clear_dead(env: lmdb.Environment, index_dir: Path) -> None:
    """Remove the markers of this boot's processes that are gone, once their writes are synced."""
    from halo_live.indexer.live import process_alive  # here: its imports are the open-span reader's

    dead = []
    for path in markers(index_dir):
        try:
            pid = int(path.name[len(PREFIX):])
        except ValueError:
            continue
        if pid != os.getpid() and not process_alive(pid):
            dead.append(path)
    if dead:
        env.sync(True)
        for path in dead:
            _unlink(path)


class Marker:
    """This process's marker in one index folder: placed before its first write."""

    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / f"{PREFIX}{os.getpid()}"
        self.placed = False

    def place(self) -> None:
        if self.placed or SYNC_EACH_COMMIT:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, f"{BOOT}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.path.parent)  # the marker's name, too, must be on the disk
        self.placed = True

    def remove(self, env: lmdb.Environment) -> None:
        """After a last sync: everything this process wrote is on the disk."""
        if self.placed:
            env.sync(True)
            _unlink(self.path)
            self.placed = False


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
