"""`--telemetry`: record the engine's own run as canonical JSONL, through our exporter.

The run's model calls, tool calls and subagents become spans of one trace
(workflow "halo ask") written by `halo_live.setup_tracing()`, so `halo
report halo-telemetry-*.jsonl` or `halo that-file -p ...` can diagnose halo
itself. Given an `http(s)://` endpoint instead of a path, the run's spans are
recorded to a temporary file and sent there as one OTLP/HTTP (JSON) request
when the run ends (`halo serve`, a Collector, Phoenix). The SDK's trace
processors are restored afterwards, so an in-process caller's tracing is left
as found.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from agents import trace as sdk_trace
from agents.tracing import get_trace_provider, set_trace_processors

from halo_live.exporter import otlp_json_out
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


def is_endpoint(target: str | Path | None) -> bool:
    return isinstance(target, str) and target.lower().startswith(("http://", "https://"))


class Telemetry:
    """An installed processor writing to `path`; `shutdown()` flushes and uninstalls it,
    then sends the file to `endpoint` when one was given."""

    def __init__(self, path: Path, run_id: str, endpoint: str | None = None) -> None:
        self.path = path
        self.run_id = run_id
        self.endpoint = endpoint
        self.delivered = False  # to the endpoint
        self._previous = _current_processors()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.processor = setup_tracing(service_name=SERVICE_NAME, path=path, run_id=run_id)

    @property
    def target(self) -> str | Path:
        """Where the spans go: the endpoint, or the file."""
        return self.endpoint if self.delivered else self.path

    def trace(self, workflow: str):
        """One SDK trace around the whole run, so subagent runs nest under it."""
        return sdk_trace(workflow, metadata={"halo.run_id": self.run_id})

    def shutdown(self) -> None:
        self.processor.shutdown()
        if self._previous is not None:
            set_trace_processors(self._previous)
        if self.endpoint:
            self._send()

    def _send(self) -> None:
        """Deliver the recorded spans; a failure is one warning and the file is kept."""
        import json

        try:
            lines = [json.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]
            otlp_json_out.send(self.endpoint, lines)
        except (OSError, ValueError) as exc:
            print(f"halo: warning: telemetry not delivered to {self.endpoint} ({exc}); "
                  f"the spans are kept in {self.path}", file=sys.stderr)
            return
        self.delivered = True
        shutil.rmtree(self.path.parent, ignore_errors=True)


class TelemetryError(ValueError):
    """The telemetry file cannot be written."""


def start_telemetry(path: str | Path | None) -> Telemetry:
    """Start recording to `path` (`"-"` or None: the default path; an http(s) URL: that
    OTLP/HTTP endpoint, through a temporary file)."""
    run_id = uuid.uuid4().hex[:12]
    endpoint = str(path) if is_endpoint(path) else None
    if endpoint:
        target = Path(tempfile.mkdtemp(prefix="halo-telemetry-")) / f"halo-telemetry-{run_id}.jsonl"
    else:
        target = default_path(run_id) if path in (None, DEFAULT, "") else Path(path)
    try:
        return Telemetry(target, run_id, endpoint)
    except (OSError, ValueError) as exc:
        raise TelemetryError(f"cannot write telemetry to {target}: {exc}") from exc
