"""Wait for a dataset to change: inotify where the kernel offers it, else a short poll.

`fingerprint()` is a cheap stat of every member file; `wait()` returns when a
watched file or folder changes, when `poke()` is called (the index's
`notify()`), or after the poll interval (<= 100 ms, which also bounds how long
a set `stop` goes unnoticed), whichever comes first.
"""

from __future__ import annotations

import ctypes
import os
import select
import threading

from halo_live.indexer.dataset import Dataset

_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_MASK = (_IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
         | _IN_DELETE_SELF | _IN_MOVE_SELF)


def _libc():
    try:
        lib = ctypes.CDLL(None, use_errno=True)  # the loaded libc; find_library would run ldconfig
        lib.inotify_init1  # noqa: B018 - probe
        return lib
    except (OSError, AttributeError):
        return None


class Watcher:
    """Change notification for one dataset; falls back to polling silently."""

    def __init__(self, dataset: Dataset, wake: threading.Event) -> None:
        self.dataset = dataset
        self.wake = wake
        self.fd = -1
        self._poke_r, self._poke_w = os.pipe()  # lets notify() interrupt a select()
        os.set_blocking(self._poke_r, False)
        os.set_blocking(self._poke_w, False)
        lib = _libc()
        if lib is not None:
            fd = lib.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd >= 0:
                self.fd = fd
                # Watching the folder sees appends to any file in it and new shards.
                lib.inotify_add_watch(fd, os.fsencode(str(dataset.root)), _MASK)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for fd in (self._poke_r, self._poke_w):
            if fd >= 0:
                os.close(fd)
        self._poke_r = self._poke_w = -1

    def poke(self) -> None:
        """Wake a `wait()` in progress (called from another thread)."""
        try:
            os.write(self._poke_w, b"!")
        except (BlockingIOError, OSError):
            pass  # a full pipe or a closed watcher: a wake-up is already pending or moot

    def fingerprint(self) -> tuple:
        out = []
        for rel in self.dataset.files():
            try:
                st = os.stat(self.dataset.path_of(rel))
            except FileNotFoundError:
                continue
            out.append((rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def wait(self, timeout: float, stop: threading.Event) -> None:
        if self.wake.is_set():
            self.wake.clear()
            return
        if stop.is_set():
            return
        fds = [self._poke_r] + ([self.fd] if self.fd >= 0 else [])
        ready, _, _ = select.select(fds, [], [], timeout)
        for fd in ready:
            _drain(fd)
        self.wake.clear()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1 << 16):
            pass
    except BlockingIOError:
        pass
