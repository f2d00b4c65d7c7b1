"""TRACE_PATH checks shared by the commands that read traces.

A wrong path should cost one clear line before anything is created: an empty
path, a missing file, a glob under a missing folder, a binary file or a file
that is not JSONL (an index beside `/etc/passwd` helps nobody). Where the
traces sit on read-only storage, the index goes to a per-user cache instead
of failing. A big backlog shows a progress bar on a terminal.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from halo_live.engine.cli import CliError
from halo_live.engine.cli.progress import Bar
from halo_live.indexer import DatasetError, IndexStorageError, TraceIndex
from halo_live.indexer.dataset import resolve

if TYPE_CHECKING:  # the store (and pydantic) only for the commands that query: `halo index` stays light
    from halo_live.engine.store import TraceStore

SNIFF_BYTES = 64 * 1024  # enough for a few lines of most traces
SNIFF_LINES = 20
CACHE_ENV = "XDG_CACHE_HOME"
_noted: set[str] = set()  # fallback folders already announced by this process


def check_trace_path(trace_path: str, *, note_empty: bool = True) -> None:
    """Fail with one line when `trace_path` cannot be a trace dataset; with `note_empty`, say
    on stderr when it holds no trace file yet (for commands that would show zeros silently)."""
    if not trace_path or not trace_path.strip():
        raise CliError("TRACE_PATH is empty: give a .jsonl file, a folder of shards, or a glob")
    path = Path(trace_path)
    if glob.has_magic(trace_path) and not path.exists():
        parts = path.parts
        magic_at = min(i for i, part in enumerate(parts) if glob.has_magic(part))
        root = Path(*parts[:magic_at]) if magic_at else Path(".")
        if not root.is_dir():
            raise CliError(f"no such folder: {root} (in the glob {trace_path})")
        if note_empty and not any(glob.iglob(trace_path)):
            print(f"halo: no file matches {trace_path} yet: nothing to read (files that match "
                  "later are read then)", file=sys.stderr)
        return
    if not path.exists():
        raise CliError(f"no such trace file or folder: {trace_path}")
    if path.is_file():
        check_jsonl_file(path, trace_path)
    elif not path.is_dir():
        raise CliError(f"{trace_path} is neither a file nor a folder")
    else:
        _note_shards_only_below(path, trace_path, note_empty=note_empty)


def _note_shards_only_below(folder: Path, shown: str, *, note_empty: bool) -> None:
    """A folder reads only its own *.jsonl: say so when it has none, rather than show 0 traces
    silently, and point one level down when the shards sit there (`halo report halo-demo`
    instead of `halo-demo/baseline`)."""
    try:
        if any(folder.glob("*.jsonl")):
            return
        below = sorted({p.parent.name for p in folder.glob("*/*.jsonl") if not p.parent.name.startswith(".")})
    except OSError:
        return
    if below:
        shown_dirs = ", ".join(f"{name}/" for name in below[:3]) + (", ..." if len(below) > 3 else "")
        print(f"halo: {shown} has no *.jsonl file of its own, its subfolders do ({shown_dirs}): give one "
              f"of them, or a quoted glob like '{folder / '*' / '*.jsonl'}'", file=sys.stderr)
    elif note_empty:
        print(f"halo: {shown} holds no *.jsonl file yet: nothing to read (a folder is read as its "
              "own *.jsonl shards, which may still appear)", file=sys.stderr)


def check_jsonl_file(path: Path, shown: str) -> None:
    """A file must look like JSONL: a JSON object among its first lines, or nothing yet."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise CliError(f"cannot read {shown}: {exc.strerror or exc}") from None
    lines = [line for line in head.split(b"\n")[:-1] if line.strip()][:SNIFF_LINES]
    for line in lines:
        try:
            if isinstance(json.loads(line), dict):
                return  # stray garbage later on (even NULs left by a crash) is skipped per line
        except ValueError:
            continue
    if b"\0" in head:
        raise CliError(f"{shown} is a binary file, not a JSONL trace file (one JSON span per line)")
    if not lines:
        return  # empty, or one line still being written: a live file may start like this
    raise CliError(f"{shown} is not a JSONL trace file: none of its first {len(lines)} "
                   "line(s) is a JSON object")


def index_dir_for(trace_path: str, index_dir: str | None) -> str | None:
    """`index_dir`, or None for the default beside the traces, or a per-user cache folder
    when that default cannot be written (read-only media, someone else's folder)."""
    if index_dir:
        return index_dir
    try:
        dataset = resolve(trace_path)
    except DatasetError:
        return None  # the command reports it in its own words
    default = dataset.default_index_dir()
    probe = default if default.exists() else default.parent
    if os.access(probe, os.W_OK):
        return None
    cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache") / "halo-live" / "index"
    digest = hashlib.sha1(str(dataset.pattern).encode()).hexdigest()[:12]
    fallback = cache / f"{Path(dataset.pattern).name or 'traces'}-{digest}"
    if str(fallback) not in _noted:
        _noted.add(str(fallback))
        print(f"halo: {probe} is not writable; the index lives in {fallback} "
              "(--index-dir picks another place)", file=sys.stderr)
    return str(fallback)


def prepare(trace_path: str, index_dir: str | None, *, note_empty: bool = True) -> str | None:
    """Check the path, pick the index folder and catch the index up (with a progress bar on
    a terminal for a big backlog). Returns the index folder to pass on (None: default)."""
    check_trace_path(trace_path, note_empty=note_empty)
    index_dir = index_dir_for(trace_path, index_dir)
    if not sys.stderr.isatty():
        return index_dir  # the command's own catch-up does the same work, silently
    try:
        with TraceIndex.open(trace_path, index_dir) as idx:
            bar = Bar()
            try:
                idx.catch_up(bar)
            finally:
                bar.close()
    except (DatasetError, IndexStorageError, OSError):
        pass  # the command opens it again and reports the failure in its own words
    return index_dir


def open_index(trace_path: str, index_dir: str | None):
    """`prepare`, then open the index (a `TraceIndex`, for `halo tool`'s lite lane: no pydantic);
    a dataset that cannot be opened is a `CliError`, in `open_store`'s words."""
    from halo_live.engine.filtering import ToolError, open_index

    index_dir = prepare(trace_path, index_dir)
    try:
        return open_index(trace_path, index_dir)
    except ToolError as exc:
        raise CliError(str(exc)) from exc


def open_store(trace_path: str, index_dir: str | None, *, stuck_after: float | None = None) -> TraceStore:
    """`prepare`, then open the trace store; a dataset that cannot be opened is a `CliError`.
    `stuck_after`: the `--stuck-after` seconds (None: the default, 300)."""
    from halo_live.engine.store import ToolError, TraceStore

    index_dir = prepare(trace_path, index_dir)
    try:
        return TraceStore.open(trace_path, index_dir, stuck_after=stuck_after)
    except ToolError as exc:
        raise CliError(str(exc)) from exc


def add_stuck_after(parser: Any) -> None:
    """`--stuck-after SECONDS`: the one spelling of the stuck threshold on every command."""
    parser.add_argument("--stuck-after", type=stuck_seconds, default=None, metavar="SECONDS",
                        help="a task with no span started or ended for this long is stuck; far past it, "
                             "or with its process gone, abandoned (default 300)")


def stuck_seconds(text: str) -> float:
    """`--stuck-after`'s value: seconds > 0 (argparse turns the ValueError into one usage line)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text!r}")
    return value
