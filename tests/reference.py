"""Run halo-engine 0.3.5, the reference we must match, in a venv of its own.

Its top-level package is also called `engine`, so it can never share our
process: `ReferenceEngine.run()` sends it a JSON job on stdin and reads its
answers back. The venv is built once per machine (halo-engine without its
dependencies, whose ripgrep wheel does not build here, plus pydantic) under
`$HALO_REF_VENV` or `~/.cache/halo-live/ref-venv-0.3.5`. Where it cannot be
built (no registry), tests using the `halo_reference` fixture are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REFERENCE_REQUIREMENT = "halo-engine==0.3.5"
VENV_ENV = "HALO_REF_VENV"

# Runs inside the reference venv. Builds each file's sidecar index with the
# reference's own builder, loads the union with `TraceStore.load_many`, and
# answers each call exactly as its tool layer would: arguments validated by
# the tool's model, the result serialized with `model_dump_json()`.
_DRIVER = r"""
import asyncio, json, sys
from pathlib import Path
from engine.traces.models.trace_dataset_source import TraceDatasetSource
from engine.traces.models.trace_index_config import TraceIndexConfig
from engine.traces.trace_index_builder import TraceIndexBuilder
from engine.traces.trace_store import TraceStore
from engine.traces.models import trace_query_models as m

job = json.load(sys.stdin)
config = TraceIndexConfig(index_dir=Path(job["index_dir"]))
sources = []
for p in job["paths"]:
    path = Path(p)
    index_path = asyncio.run(TraceIndexBuilder.ensure_index_exists(path, config))
    sources.append(TraceDatasetSource(trace_path=path, index_path=index_path))
store = TraceStore.load_many(sources)

def call(name, args):
    if name == "get_dataset_overview":
        a = m.DatasetOverviewArguments.model_validate(args)
        return m.DatasetOverviewResult(result=store.get_overview(a.filters))
    if name == "query_traces":
        a = m.QueryTracesArguments.model_validate(args)
        return m.QueryTracesResult(result=store.query_traces(a.filters, a.limit, a.offset))
    if name == "count_traces":
        a = m.CountTracesArguments.model_validate(args)
        return m.CountTracesResult(result=store.count_traces(a.filters))
    if name == "view_trace":
        a = m.ViewTraceArguments.model_validate(args)
        return m.ViewTraceResult(result=store.view_trace(a.trace_id))
    if name == "view_spans":
        a = m.ViewSpansArguments.model_validate(args)
        return m.ViewTraceResult(result=store.view_spans(a.trace_id, a.span_ids))
    if name == "search_trace":
        a = m.SearchTraceArguments.model_validate(args)
        return m.SearchTraceResult(result=store.search_trace(
            a.trace_id, a.regex_pattern, a.context_buffer_chars, a.max_matches))
    if name == "search_span":
        a = m.SearchSpanArguments.model_validate(args)
        return m.SearchSpanResult(result=store.search_span(
            a.trace_id, a.span_id, a.regex_pattern, a.context_buffer_chars, a.max_matches))
    raise SystemExit(f"unknown tool {name}")

answers = []
for c in job["calls"]:
    try:
        answers.append({"ok": json.loads(call(c["tool"], c.get("args", {})).model_dump_json())})
    except Exception as exc:
        answers.append({"exception": type(exc).__name__, "message": str(exc)})
json.dump({"trace_count": store.trace_count, "answers": answers}, sys.stdout)
"""


def venv_dir() -> Path:
    """Where the reference venv lives (overridable for CI caches)."""
    default = Path.home() / ".cache" / "halo-live" / "ref-venv-0.3.5"
    return Path(os.environ.get(VENV_ENV, default))


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_reference() -> Path:
    """Build the reference venv if needed; returns its python. Raises RuntimeError if impossible."""
    venv = venv_dir()
    python = _venv_python(venv)
    marker = venv / ".halo-ref-ready"
    if marker.exists() and python.exists():
        return python
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", REFERENCE_REQUIREMENT],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "pydantic>=2.6"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"cannot build the reference venv ({' '.join(step[:4])}): "
                               f"{done.stderr.strip()[-500:]}")
    marker.write_text(REFERENCE_REQUIREMENT)
    return python


class ReferenceEngine:
    """halo-engine 0.3.5's trace store, driven in a subprocess."""

    def __init__(self, python: Path) -> None:
        self.python = python

    def run(self, paths: list[Path | str], calls: list[dict[str, Any]], index_dir: Path) -> dict:
        """Answer `calls` ({"tool": name, "args": {...}}) on the dataset made of `paths`.

        Returns {"trace_count": N, "answers": [{"ok": result} | {"exception": ..., "message": ...}]}.
        Loading itself failing (the reference rejects the file) raises RuntimeError.
        """
        job = {"paths": [str(p) for p in paths], "index_dir": str(index_dir), "calls": calls}
        done = subprocess.run(
            [str(self.python), "-I", "-c", _DRIVER],
            input=json.dumps(job), capture_output=True, text=True, timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"reference failed to load {paths}: {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout)

    def load_counts(self, paths: list[Path | str], index_dir: Path) -> dict:
        """The reference's view of a dataset: trace/span/error counts, models, agents, services."""
        out = self.run(paths, [{"tool": "get_dataset_overview", "args": {}}], index_dir)
        return out["answers"][0]["ok"]["result"]


SDIST_NAME = "halo_engine-0.3.5.tar.gz"


def reference_sdist_file(member: str) -> bytes:
    """A file of halo-engine 0.3.5's sdist (its demos and scripts are not in the wheel).

    The sdist is fetched once with `pip download` beside the reference venv;
    raises RuntimeError where it can't be (no registry).
    """
    import tarfile

    cache = venv_dir().parent
    sdist = cache / SDIST_NAME
    if not sdist.exists():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", "--no-binary", ":all:", REFERENCE_REQUIREMENT, "-d", str(cache)],
            capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not sdist.exists():
            raise RuntimeError(f"cannot download the reference sdist: {done.stderr.strip()[-500:]}")
    with tarfile.open(sdist) as tar:
        extracted = tar.extractfile(f"halo_engine-0.3.5/{member}")
        if extracted is None:
            raise RuntimeError(f"{member} is not a file in {SDIST_NAME}")
        return extracted.read()
