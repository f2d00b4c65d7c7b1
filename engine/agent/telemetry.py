"""`--telemetry`: record the engine's own run as canonical JSONL, through our exporter.

The run's model calls, tool calls and subagents become spans of one trace
(workflow "halo ask") written by `halo_live.setup_tracing()`, so `halo
report halo-telemetry-*.jsonl` or `halo that-file -p ...` can diagnose halo
itself. The SDK's trace processors are restored afterwards, so an in-process
caller's tracing is left as found.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from agents import trace as sdk_trace
from agents.tracing import get_trace_provider, set_trace_processors

from halo_live.exporter.agents_sdk import setup_tracing
TELEMETRY_PATH_ENV = "HALO_TELEMETRY_PATH"
SERVICE_NAME = "halo-engine"
DEFAULT = "-"  # `--telemetry` given without a path


def default_path(run_id: str) -> Path:
    """$HALO_TELEMETRY_PATH, else ./halo-telemetry-RUN_ID.jsonl (the reference's rule)."""
    env = os.environ.get(TELEMETRY_PATH_ENV, "").strip()
    return Path(env) if env else Path(f"halo-telemetry-{run_id}.jsonl")


def _current_processors() -> list[Any] | None:
    try:  # the SDK offers no getter; read it to restore it, and skip restoring if absent
        return list(get_trace_provider()._multi_processor._processors)  # type: ignore[attr-defined]
    except AttributeError:
        return None


class Telemetry:
    """An installed processor writing to `path`; `shutdown()` flushes and uninstalls it."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._previous = _current_processors()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.processor = setup_tracing(service_name=SERVICE_NAME, path=path, run_id=run_id)

    def trace(self, workflow: str):
        """One SDK trace around the whole run, so subagent runs nest under it."""
        return sdk_trace(workflow, metadata={"halo.run_id": self.run_id})

    def shutdown(self) -> None:
        self.processor.shutdown()
        if self._previous is not None:
            set_trace_processors(self._previous)


class TelemetryError(ValueError):
    """The telemetry file cannot be written."""


def start_telemetry(path: str | Path | None) -> Telemetry:
    """Start recording to `path` (`"-"` or None: the default path)."""
    run_id = uuid.uuid4().hex[:12]
    target = default_path(run_id) if path in (None, DEFAULT, "") else Path(path)
    try:
        return Telemetry(target, run_id)
    except (OSError, ValueError) as exc:
        raise TelemetryError(f"cannot write telemetry to {target}: {exc}") from exc
