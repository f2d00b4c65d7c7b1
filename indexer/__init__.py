"""The streaming index: an LMDB offset index over canonical HALO JSONL, kept current.

    idx = TraceIndex.open("traces.jsonl")      # or a folder / glob of shards
    idx.catch_up()
    with idx.snapshot() as snap:
        snap.totals(); snap.trace_ids(IndexFilters(has_errors=True)); snap.trace(tid)
"""

from indexer.dataset import DatasetError
from indexer.index import IndexStorageError, TraceIndex
from indexer.models import (
    BadLine,
    CatchUpStats,
    DatasetTotals,
    ErrorSignature,
    IndexFilters,
    SpanRef,
    TraceRow,
)
from indexer.snapshot import Snapshot

__all__ = [
    "TraceIndex", "Snapshot", "TraceRow", "SpanRef", "IndexFilters", "DatasetTotals",
    "ErrorSignature", "CatchUpStats", "BadLine", "DatasetError", "IndexStorageError",
]
