"""The streaming index: an LMDB offset index over canonical HALO JSONL, kept current.

    idx = TraceIndex.open("traces.jsonl")      # or a folder / glob of shards
    idx.catch_up()
    with idx.snapshot() as snap:
        snap.totals(); snap.trace_ids(IndexFilters(has_errors=True)); snap.trace(tid)

Names resolve lazily, so a parse worker (`halo_live.indexer.worker`) imports only the parser.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TraceIndex", "Snapshot", "TraceRow", "Outcome", "SpanRef", "IndexFilters", "DatasetTotals",
    "ErrorSignature", "CatchUpStats", "BadLine", "DatasetError", "IndexStorageError",
]

_HOME = {
    "TraceIndex": "halo_live.indexer.index", "IndexStorageError": "halo_live.indexer.index",
    "Snapshot": "halo_live.indexer.snapshot", "DatasetError": "halo_live.indexer.dataset",
    "TraceRow": "halo_live.indexer.models", "Outcome": "halo_live.indexer.models", "SpanRef": "halo_live.indexer.models", "IndexFilters": "halo_live.indexer.models",
    "DatasetTotals": "halo_live.indexer.models", "ErrorSignature": "halo_live.indexer.models",
    "CatchUpStats": "halo_live.indexer.models", "BadLine": "halo_live.indexer.models",
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
