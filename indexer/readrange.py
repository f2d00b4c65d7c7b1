"""Read a byte range of a dataset file for the scanner, without churning the page cache.

What the page cache holds (asked with `mincore`, which reads nothing) is copied
from it; the rest is read straight from the disk with `O_DIRECT`. A cold build
of a file bigger than memory then costs the kernel a DMA per range instead of
a copy plus page-cache bookkeeping (33 GB on 2 cores: parse workers 68 CPU-s
buffered, 30 direct), and it does not evict what the index and its readers keep
cached. Asking with a non-blocking read (`RWF_NOWAIT`) instead would start the
kernel's readahead of the very range then read directly: 6 CPU-s more. Where a
piece is missing (not Linux, a filesystem without O_DIRECT) ranges are read
the plain way.
"""

from __future__ import annotations

import mmap
import os
import threading

ALIGN = 4096  # O_DIRECT wants offsets, lengths and the buffer aligned to the block size
_DIRECT = getattr(os, "O_DIRECT", 0)
_local = threading.local()


_UNSET = object()
_libc = _UNSET


def _mincore():
    """libc's mmap / mincore / munmap, once (None where they or O_DIRECT are missing)."""
    global _libc
    if _libc is _UNSET:
        _libc = None
        if _DIRECT and mmap.PAGESIZE == ALIGN:
            import ctypes  # here: it costs an import-time millisecond every CLI start would pay

            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.mmap.restype = ctypes.c_void_p
                libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_int, ctypes.c_long)
                libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
                libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
                libc.map_failed = ctypes.c_void_p(-1).value
                libc.vector_type = ctypes.c_ubyte
                _libc = libc
            except (OSError, AttributeError):
                pass
    return _libc


def _buffer(size: int) -> mmap.mmap:
    """A page-aligned buffer of at least `size` bytes, kept per thread: ranges differ
    by a line or so, and a fresh multi-megabyte buffer would be page-faulted anew."""
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) < size:
        size += size >> 3
        buf = _local.buf = mmap.mmap(-1, max(ALIGN, -(-size // ALIGN) * ALIGN))
    return buf


def read_range(path: str, start: int, end: int) -> memoryview:
    """The bytes [start, end) of `path` (fewer if the file is shorter), in a reused buffer:
    valid until this thread's next call."""
    base = start & -ALIGN
    stop = -(-end // ALIGN) * ALIGN
    view = memoryview(_buffer(stop - base))
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = _mincore()
        cached = _cached_until(libc, fd, base, stop) if libc is not None else end
        at = _buffered(fd, view, base, start, min(end, cached))
        if at < end:
            at = _direct(path, view, base, at, end, stop)
        at = _buffered(fd, view, base, at, end)  # what a direct read could not take
    finally:
        os.close(fd)
    return view[start - base:at - base]


def _cached_until(libc, fd: int, base: int, stop: int) -> int:
    """Where the run of pages the page cache holds from `base` on ends (`stop` when it
    holds them all); `stop` too when that cannot be asked, so the range is read the plain way."""
    length = stop - base
    addr = libc.mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, base)
    if addr in (None, libc.map_failed):
        return stop
    try:
        vec = (libc.vector_type * (length // ALIGN))()
        if libc.mincore(addr, length, vec) != 0:
            return stop
    finally:
        libc.munmap(addr, length)
    absent = next((i for i, flag in enumerate(bytes(vec)) if not flag & 1), None)
    return stop if absent is None else base + absent * ALIGN


def _direct(path: str, view: memoryview, base: int, at: int, end: int, stop: int) -> int:
    """Read [at, end) from the disk, whole blocks from the block holding `at`; returns
    where it got to (`at` when the filesystem will not read directly)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | _DIRECT)
    except OSError:  # e.g. a filesystem without O_DIRECT
        return at
    try:
        pos = at & -ALIGN
        while pos < end:
            n = os.preadv(fd, [view[pos - base:stop - base]], pos)
            if n <= 0:
                break
            pos += n
            if n % ALIGN:
                break  # the end of the file
        return max(at, min(pos, end))
    except OSError:  # an alignment this device will not take: read the plain way
        return at
    finally:
        os.close(fd)


def _buffered(fd: int, view: memoryview, base: int, at: int, end: int) -> int:
    while at < end:
        n = os.preadv(fd, [view[at - base:end - base]], at)
        if n <= 0:
            break
        at += n
    return at
