"""Fault: a flood past the memory bound, and a SIGKILL under load (`bench/soak.py --short`).

Real `halo serve` processes, real OTLP/gRPC and OTLP/HTTP clients that log
what was acknowledged; the long runs (32 clients, 60 s) are the same script
without `--short` (figures in docs/reliability.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _soak(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--short", *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def test_a_flood_is_throttled_and_every_acknowledged_span_is_on_disk_exactly_once():
    result = _soak()
    assert result["spans_acknowledged"] > 0
    assert result["throttled_answers"] > 0  # the memory bound was reached and said so
    assert result["spans_lost"] == 0 and result["spans_doubled"] == 0
    assert result["rss_bound_held"], result
    assert result["count_traces_runs"] > 0 and result["count_traces_errors"] == 0
    assert result["serve_exit"] == 0 and result["tracebacks"] == 0


def test_sigkill_mid_flood_loses_no_acknowledged_span():
    result = _soak("--kill")
    assert result["killed_at_s"] is not None
    assert result["spans_acknowledged"] > 0 and result["spans_lost"] == 0
    assert result["serve_exit"] == 0 and result["count_traces_errors"] == 0
