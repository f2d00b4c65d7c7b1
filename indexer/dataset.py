"""Which files make a dataset, where its index lives, and how a file is recognised.

A dataset is one JSONL file, a folder of `*.jsonl` shards, or a glob. Files are
named relative to a root so the index survives moving the whole folder, and are
ordered by that name (what halo-engine's `load_many` gets from a sorted list).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

try:  # not hashlib: its import loads OpenSSL (3 MB resident) for constructors never used here
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without the builtin module
    from hashlib import blake2b

INDEX_DIR_NAME = ".halo-index"
INDEX_SUFFIX = ".halo-index"
HEAD_BYTES = 4096  # enough of a file's head to tell a replaced file from a grown one


class DatasetError(ValueError):
    """The path does not name a usable dataset."""


@dataclass(frozen=True, slots=True)
class Dataset:
    """A resolved dataset: its root folder, how to list its files, its default index dir."""

    root: Path
    kind: str  # "file" | "folder" | "glob"
    pattern: str  # the file path, the folder, or the glob

    def files(self) -> list[str]:
        """Current member files, dataset-relative, in dataset order (sorted by name)."""
        if self.kind == "file":
            return [Path(self.pattern).name] if os.path.isfile(self.pattern) else []
        if self.kind == "folder":
            try:
                names = [e.name for e in os.scandir(self.root)
                         if e.name.endswith(".jsonl") and e.is_file()]
            except FileNotFoundError:
                return []
            return sorted(names)
        found = [Path(p) for p in glob.glob(self.pattern) if os.path.isfile(p)]
        return sorted(str(p.resolve().relative_to(self.root)) for p in found)

    def path_of(self, rel: str) -> Path:
        return self.root / rel

    def default_index_dir(self) -> Path:
        if self.kind == "file":
            return Path(self.pattern + INDEX_SUFFIX)
        return self.root / INDEX_DIR_NAME


def resolve(path: str | os.PathLike[str]) -> Dataset:
    """Resolve a file, folder or glob into a `Dataset`; `DatasetError` if it names nothing."""
    text = os.fspath(path)
    p = Path(text)
    if p.is_dir():
        root = p.resolve()
        return Dataset(root=root, kind="folder", pattern=str(root))
    if p.is_file():
        resolved = p.resolve()
        return Dataset(root=resolved.parent, kind="file", pattern=str(resolved))
    if glob.has_magic(text):
        magic_at = min(i for i, part in enumerate(p.parts) if glob.has_magic(part))
        root = Path(*p.parts[:magic_at]) if magic_at else Path(".")
        if not root.is_dir():  # never create a folder the user did not name
            raise DatasetError(f"no such folder: {root} (in the glob {text})")
        return Dataset(root=root.resolve(), kind="glob", pattern=str(root.resolve() / Path(*p.parts[magic_at:])))
    raise DatasetError(f"no such trace file or folder: {text}")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A file's device, inode and size: a new (dev, ino) or a smaller size means a different file.

    (A file rewritten in place is told by its head bytes: `head_hash`.)
    """

    dev: int
    ino: int
    size: int


def identity(path: Path) -> FileIdentity | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileIdentity(st.st_dev, st.st_ino, st.st_size)


def head_hash(path: Path, n: int) -> str:
    """A hash of the first `n` bytes (fewer if the file is shorter: then it cannot match)."""
    with open(path, "rb") as fh:
        data = fh.read(n)
    if len(data) < n:
        return ""
    return blake2b(data, digest_size=16).hexdigest()


def line_ranges(path: Path, start: int, end: int, chunk: int) -> list[tuple[int, int]]:
    """Split [start, end) into ranges of about `chunk` bytes, each ending just after a newline.

    The last range ends at the last newline before `end`; bytes after it (a
    partial last line) are left for the next round.
    """
    ranges: list[tuple[int, int]] = []
    with open(path, "rb") as fh:
        pos = start
        while pos < end:
            target = min(pos + chunk, end)
            cut = _newline_at_or_before(fh, pos, target)
            if cut is None:
                # no newline in [pos, target): look further ahead, up to end
                cut = _newline_after(fh, target, end)
                if cut is None:
                    break
            ranges.append((pos, cut))
            pos = cut
    return ranges


def _newline_at_or_before(fh, lo: int, hi: int) -> int | None:
    """Offset just after the last newline in [lo, hi), or None."""
    probe = 1 << 16
    pos = hi
    while pos > lo:
        begin = max(lo, pos - probe)
        fh.seek(begin)
        data = fh.read(pos - begin)
        i = data.rfind(b"\n")
        if i >= 0:
            return begin + i + 1
        pos = begin
    return None


def _newline_after(fh, lo: int, hi: int) -> int | None:
    """Offset just after the first newline in [lo, hi), or None."""
    probe = 1 << 16
    pos = lo
    while pos < hi:
        fh.seek(pos)
        data = fh.read(min(probe, hi - pos))
        if not data:
            return None
        i = data.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(data)
    return None
