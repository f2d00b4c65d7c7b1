"""The progress bar a long index catch-up shows on a terminal."""

from __future__ import annotations

import sys

from halo_live.indexer import parse

_BAR_MIN_BYTES = 64 << 20  # smaller backlogs finish before a bar is worth drawing
PURE_PYTHON_NOTE = ("halo: indexing with the pure-Python span parser, about 2x slower than the "
                    "compiled one ({why}); with a C compiler (gcc) present, reinstall halo-live "
                    "to build it")


class Bar:
    """A rich progress bar, started only on a terminal for a big backlog."""

    def __init__(self) -> None:
        self.progress = None
        self.task = None
        self.noted = False

    def __call__(self, done: int, total: int) -> None:
        if not self.noted and total >= _BAR_MIN_BYTES and not parse.NATIVE:
            self.noted = True  # once per catch-up, terminal or not: a long build should say why
            print(PURE_PYTHON_NOTE.format(why=parse.parser_name()), file=sys.stderr)
        if self.progress is None:
            if total < _BAR_MIN_BYTES or not sys.stderr.isatty():
                return
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                                       TransferSpeedColumn)
            self.progress = Progress("indexing", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                     TimeRemainingColumn(), transient=True,
                                     console=Console(stderr=True))
            self.progress.start()
            self.task = self.progress.add_task("index", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
