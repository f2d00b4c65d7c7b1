"""halo-live: live traces for improving LLM agent harnesses.

    from halo_live import setup_tracing
    setup_tracing(service_name="my-harness", project_id="my-benchmark")   # writes ./traces.jsonl
    record_outcome(passed=True, task_id="t01")   # inside a task's trace: its pass/fail

The packages: `halo_live.exporter` (the canonical line and every way to write
it), `halo_live.indexer` (the streaming LMDB index), `halo_live.engine` (the
trace tools, the diagnostic agent and the `halo` commands) and `halo_live.demo`
(an offline benchmark). Names resolve lazily, so importing a subpackage costs
nothing here.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["setup_tracing", "record_outcome", "HaloTracingProcessor", "HaloSpanExporter", "JsonlWriter", "__version__"]

_HOME = {
    "setup_tracing": "halo_live.exporter.agents_sdk",
    "record_outcome": "halo_live.exporter.outcome",
    "HaloTracingProcessor": "halo_live.exporter.agents_sdk",
    "HaloSpanExporter": "halo_live.exporter.otel_exporter",
    "JsonlWriter": "halo_live.exporter.writer",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'halo_live' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
