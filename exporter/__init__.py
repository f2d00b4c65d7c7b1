"""Producers of canonical HALO JSONL: the Agents SDK processor, the OTel exporter, the writer,
and `record_outcome` (a task's pass/fail in its trace).

Imports are lazy so `import halo_live.exporter.canonical` stays cheap for the indexer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["setup_tracing", "record_outcome", "HaloTracingProcessor", "HaloSpanExporter", "JsonlWriter"]

_LAZY = {
    "setup_tracing": ("halo_live.exporter.agents_sdk", "setup_tracing"),
    "record_outcome": ("halo_live.exporter.outcome", "record_outcome"),
    "HaloTracingProcessor": ("halo_live.exporter.agents_sdk", "HaloTracingProcessor"),
    "HaloSpanExporter": ("halo_live.exporter.otel_exporter", "HaloSpanExporter"),
    "JsonlWriter": ("halo_live.exporter.writer", "JsonlWriter"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'exporter' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    return getattr(importlib.import_module(module_name), attr)
