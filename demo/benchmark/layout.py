"""Where a benchmark run puts its files (shared by the runner and the workers)."""

from __future__ import annotations

from pathlib import Path

SCORE_FILE = "score.json"
# Written in the run folder before any shard: which files this benchmark owns there.
MARKER_FILE = ".halo-benchmark.json"
SERVE_SHARDS = "traces-serve-*.jsonl"  # what the `halo serve` child writes (OTLP transport)


def shard_path(out: Path, worker: int) -> Path:
    """Worker `worker`'s trace shard: the folder is a dataset `halo` reads."""
    return Path(out) / f"traces-w{worker}.jsonl"


def results_path(out: Path, worker: int) -> Path:
    """Worker `worker`'s task outcomes (not `.jsonl`, so never mistaken for a trace shard)."""
    return Path(out) / f"results-w{worker}.ndjson"


def score_path(traces: str | Path) -> Path:
    """Where a run's score file lives: in the folder, or beside a single trace file."""
    p = Path(traces)
    return p / SCORE_FILE if p.is_dir() else p.with_name(p.name + "." + SCORE_FILE)
