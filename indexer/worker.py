"""A parse worker: reads (path, fileno, start, end) frames on stdin, answers Batch frames.

Started by `halo_live.indexer.pool`; exits when stdin closes. Imports only the parser.
"""

from __future__ import annotations

import gc
import sys

from halo_live.indexer.parse import parse_file_range
from halo_live.indexer.pool import recv, send


def main() -> int:
    gc.disable()  # a parse makes many objects and no cycles: the collector would only cost time
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            job = recv(stdin)
        except EOFError:
            return 0
        try:
            result = parse_file_range(*job)
        except Exception as exc:  # reported to the caller, which raises it
            result = RuntimeError(f"{type(exc).__name__}: {exc}")
        send(stdout, result)


if __name__ == "__main__":
    sys.exit(main())
