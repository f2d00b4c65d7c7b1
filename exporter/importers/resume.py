"""The output side every importer shares: whole lines, no span twice, a checkpoint.

`ImportTarget(out, source)` reads the span ids already in `out` (so a crash
between a write and its checkpoint never duplicates a span), appends new lines
through `JsonlWriter` (one `write()` of whole lines each time, under the
writer's lock) and keeps the importer's position in `OUT.halo-import.json`,
one entry per source, replaced atomically after each page is on disk.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from halo_live.exporter import canonical
from halo_live.exporter.writer import JsonlWriter

CHECKPOINT_SUFFIX = ".halo-import.json"
_WRITE_TIMEOUT = 60.0


class ImportFailed(Exception):
    """An import that cannot go on (unreachable server, refused keys, unknown project, bad file)."""


@dataclass
class ImportStats:
    """What one import run did, for the summary line."""

    spans: int = 0
    traces: set[str] = field(default_factory=set)
    duplicates: int = 0  # already in the output (a resumed or repeated import)
    skipped: collections.Counter = field(default_factory=collections.Counter)  # reason -> count
    examples: dict[str, str] = field(default_factory=dict)  # reason -> the first case of it
    pages: int = 0

    def skip(self, reason: str, count: int = 1, example: str = "") -> None:
        self.skipped[reason] += count
        if example:
            self.examples.setdefault(reason, example)

    def summary(self, out: Path) -> str:
        parts = [f"imported {self.spans:,} spans of {len(self.traces):,} traces into {out}"]
        if self.duplicates:
            parts.append(f"{self.duplicates:,} already there")
        for reason, count in self.skipped.most_common():
            example = self.examples.get(reason)
            parts.append(f"skipped {count:,}: {reason}" + (f" (e.g. {example})" if example else ""))
        return "; ".join(parts)


_HEAD = b'{"' + canonical.TRACE_ID.encode() + b'":"'
_SPAN = b'","' + canonical.SPAN_ID.encode() + b'":"'


def span_key(raw: bytes) -> tuple[str, str] | None:
    """(trace_id, span_id) of an encoded line; the canonical key order makes it a slice."""
    if raw.startswith(_HEAD):
        end = raw.find(b'"', len(_HEAD))
        if raw.startswith(_SPAN, end):
            stop = raw.find(b'"', end + len(_SPAN))
            if stop > 0:
                return (raw[len(_HEAD):end].decode("utf-8", "replace"),
                        raw[end + len(_SPAN):stop].decode("utf-8", "replace"))
    try:  # another producer's key order
        line = orjson.loads(raw)
        return str(line[canonical.TRACE_ID]), str(line[canonical.SPAN_ID])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class ImportTarget:
    """The output file of an import and its checkpoint, for one `source` key."""

    def __init__(self, out: str | os.PathLike[str], source: str) -> None:
        self.out = Path(out)
        if self.out.is_dir():
            raise ImportFailed(f"{self.out} is a folder; give the .jsonl file to write")
        if not self.out.parent.is_dir():
            raise ImportFailed(f"the folder of {self.out} does not exist")
        self.source = source
        self.checkpoint_path = self.out.with_name(self.out.name + CHECKPOINT_SUFFIX)
        self.seen: set[tuple[str, str]] = self._read_ids()
        self._all = self._read_checkpoint()
        self.state: dict[str, Any] = dict(self._all.get(source, {}))
        self.stats = ImportStats()
        self._writer: JsonlWriter | None = None

    def _read_ids(self) -> set[tuple[str, str]]:
        seen: set[tuple[str, str]] = set()
        if not self.out.exists():
            return seen
        with open(self.out, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # a half line: the writer heals it, it holds no whole span
                key = span_key(raw)
                if key is not None:
                    seen.add(key)
        return seen

    def _read_checkpoint(self) -> dict[str, Any]:
        try:
            data = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ImportFailed(f"cannot read the checkpoint {self.checkpoint_path}: {exc}; "
                               "delete it to start over (no span is written twice)") from None
        return data if isinstance(data, dict) else {}

    def write(self, lines: Iterable[bytes]) -> int:
        """Append the lines not yet in the output; returns how many were new."""
        fresh = []
        for raw in lines:
            key = span_key(raw)
            if key is None:
                raise ValueError("not a canonical span line")  # our own producers wrote it: a bug
            if key in self.seen:
                self.stats.duplicates += 1
                continue
            self.seen.add(key)
            self.stats.traces.add(key[0])
            fresh.append(raw)
        if fresh:
            if self._writer is None:
                self._writer = JsonlWriter(self.out, max_queue_lines=max(100_000, len(fresh)))
            ticket = self._writer.submit(fresh, timeout=_WRITE_TIMEOUT)
            if not self._writer.wait(ticket, _WRITE_TIMEOUT):
                raise ImportFailed(f"cannot write to {self.out}")
            self.stats.spans += len(fresh)
        return len(fresh)

    def save(self, **state: Any) -> None:
        """Record the importer's position (after the lines it covers are written)."""
        self.state.update(state)
        self._all[self.source] = self.state
        if not self.out.exists() and not self.checkpoint_path.exists():
            return  # nothing written yet: leave no file behind (a failed import leaves none)
        tmp = self.checkpoint_path.with_name(self.checkpoint_path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._all, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.checkpoint_path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(_WRITE_TIMEOUT)
            self._writer = None

    def __enter__(self) -> ImportTarget:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


Progress = Callable[[int, int | None], None]  # (done, total or None) in the importer's own unit
Notify = Callable[[str], None]  # one line for the user (the CLI prints it on stderr)

_OUTAGE_WAIT = (1.0, 60.0)  # --follow's wait after a failed poll: doubles from the first to the second


def warn(message: str) -> None:
    """The default `Notify`: a logging warning."""
    logging.getLogger("halo_live.import").warning("%s", message)


def outage_wait(failures: int) -> float:
    """Seconds `--follow` waits after `failures` polls in a row found the server away."""
    return min(_OUTAGE_WAIT[1], _OUTAGE_WAIT[0] * 2 ** max(0, failures - 1))


def no_progress(done: int, total: int | None) -> None:
    """The default progress callback: nothing."""
