"""The streaming index: an LMDB offset index over canonical HALO JSONL, kept current.

    idx = TraceIndex.open("traces.jsonl")      # or a folder / glob of shards
    idx.catch_up()
    with idx.snapshot() as snap:
        snap.totals(); snap.trace_ids(IndexFilters(has_errors=True)); snap.trace(tid)

Names resolve lazily, so a parse worker (`indexer.worker`) imports only the parser.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TraceIndex", "Snapshot", "TraceRow", "SpanRef", "IndexFilters", "DatasetTotals",
    "ErrorSignature", "CatchUpStats", "BadLine", "DatasetError", "IndexStorageError",
]

_HOME = {
    "TraceIndex": "indexer.index", "IndexStorageError": "indexer.index",
    "Snapshot": "indexer.snapshot", "DatasetError": "indexer.dataset",
    "TraceRow": "indexer.models", "SpanRef": "indexer.models", "IndexFilters": "indexer.models",
    "DatasetTotals": "indexer.models", "ErrorSignature": "indexer.models",
    "CatchUpStats": "indexer.models", "BadLine": "indexer.models",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'indexer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
