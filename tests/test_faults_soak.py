"""Fault: a flood past the memory bound, and a SIGKILL under load (`bench/soak.py --short`).

Real `halo serve` processes, real OTLP/gRPC and OTLP/HTTP clients that log
what was acknowledged. The soak measures the server's capacity (closed loop),
then floods it open-loop at twice that; the long runs (32 clients, 60 s) are
the same script without `--short` (figures in docs/reliability.md).
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
    assert result["capacity_spans_per_s"] > 0 and result["offered_multiple"] > 1.5  # launched on a schedule
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


def test_a_restarted_server_ends_the_torn_line_a_killed_one_left_so_the_index_catches_up(tmp_path):
    from tests._fault_helpers import ServeProcess, otlp_request, post_http

    folder = tmp_path / "traces"
    folder.mkdir()
    dead = folder / "traces-serve-host-1.jsonl"
    first = ServeProcess(folder / "one.jsonl", "--no-index")  # a real line to tear
    try:
        assert post_http(first.http_url, otlp_request(1, 2))[0] == 200
    finally:
        first.terminate()
    whole = (folder / "one.jsonl").read_bytes()
    (folder / "one.jsonl").unlink()
    dead.write_bytes(whole + whole[:40])  # the last write of a server killed mid-line
    serve = ServeProcess(f"{folder}/")
    try:
        assert post_http(serve.http_url, otlp_request(2, 2))[0] == 200
    finally:
        assert serve.terminate() == 0
    assert dead.read_bytes() == whole + whole[:40] + b"\n"
    proc = subprocess.run([sys.executable, "-m", "halo_live", "tool", "get_dataset_overview", str(folder)],
                          capture_output=True, text=True, timeout=120)
    overview = json.loads(proc.stdout)["result"]
    assert overview["total_spans"] == 4 and overview["index_lag_bytes"] == 0
