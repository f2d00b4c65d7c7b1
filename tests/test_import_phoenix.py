"""`halo import phoenix` against a real Phoenix server (arize-phoenix, SQLite, loopback).

A real Agents SDK run (both model APIs, against the stub model server) is
written by `setup_tracing()`; the same spans go to Phoenix through its OTLP
endpoint; `halo import phoenix` brings them back, and the trace tools must
answer the same on both files (span counts, models, errors, tool and agent
names, tokens, times, error signatures). Phoenix keeps no resource, so
service names are the one thing the import cannot give back.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest

from halo_live.cli import main
from halo_live.engine.tools import open_store, run_tool
from tests._exporter_helpers import sdk_processors_restored
from tests.phoenix import PhoenixServer, ensure_phoenix, free_port, relabel
from tests.test_exporter_sdk import run_harness

pytestmark = [pytest.mark.phoenix, pytest.mark.slow]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    """One Phoenix server for this module (it takes a while to start)."""
    try:
        python = ensure_phoenix()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"Phoenix unavailable: {exc}")
    server = PhoenixServer(python, tmp_path_factory.mktemp("phoenix")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    """Two real SDK runs (Responses and Chat Completions) written by setup_tracing()."""
    from halo_live import setup_tracing

    path = tmp_path_factory.mktemp("direct") / "direct.jsonl"
    with sdk_processors_restored():
        processor = setup_tracing(service_name="harness", project_id="px-round-trip", path=path)
        run_harness("responses", streamed=False)
        run_harness("chat", streamed=True)
        processor.shutdown()
    return path


def read(path) -> list[dict]:
    return [orjson.loads(raw) for raw in path.read_bytes().splitlines()]


def answers(path) -> dict:
    """What the trace tools say about a file, minus what Phoenix cannot keep (the resource)."""
    store = open_store(path)
    try:
        overview = run_tool(store, "get_dataset_overview", {})["result"]
        traces = run_tool(store, "query_traces", {"limit": 500})["result"]["traces"]
        errors = run_tool(store, "count_traces", {"filters": {"has_errors": True}})["result"]
        views = {t["trace_id"]: run_tool(store, "view_trace", {"trace_id": t["trace_id"]})["result"]
                 for t in traces}
    finally:
        store.close()
    for key in ("service_names", "raw_jsonl_bytes", "spans_indexed", "last_span_arrival",
                "index_lag_bytes", "sample_trace_ids"):
        overview.pop(key, None)
    for t in traces:
        t.pop("service_names")
        t.pop("raw_jsonl_bytes")
    spans = {tid: sorted((s["span_id"], s["parent_span_id"], s["name"], s["status"]["code"],
                          s["status"]["message"], s["start_time"], s["end_time"],
                          json.dumps({k: v for k, v in s["attributes"].items()
                                      if k.startswith(("inference.", "llm.model_name", "tool.name",
                                                       "agent.name", "openinference.span.kind"))},
                                     sort_keys=True))
                         for s in view["spans"])
             for tid, view in views.items()}
    return {"overview": overview, "traces": sorted(traces, key=lambda t: t["trace_id"]),
            "errors": errors, "spans": spans}


def test_a_phoenix_round_trip_answers_as_the_direct_export(phoenix, direct, tmp_path, capsys,
                                                            halo_reference):
    lines = read(direct)
    phoenix.send(lines, "round-trip")
    phoenix.wait_for_spans("round-trip", len(lines))
    out = tmp_path / "imported.jsonl"
    assert main(["import", "phoenix", "--url", phoenix.url, "--project", "round-trip",
                 "--page-size", "7", str(out)]) == 0
    traces = len({line["trace_id"] for line in lines})
    assert capsys.readouterr().out.strip() == f"imported {len(lines)} spans of {traces} traces into {out}"

    got, want = answers(out), answers(direct)
    assert got["overview"]["total_spans"] == len(lines) and got["overview"]["error_trace_count"] == 2
    assert got["overview"]["model_names"] and got["overview"]["tool_names"] == ["add", "explode"]
    assert got == want
    ours = halo_reference.load_counts([out], tmp_path / "ref-out")
    theirs = halo_reference.load_counts([direct], tmp_path / "ref-direct")
    for key in ("total_traces", "total_spans", "error_trace_count", "model_names", "agent_names",
                "tool_error_span_count", "total_input_tokens", "total_output_tokens", "error_taxonomy"):
        assert ours[key] == theirs[key], key

    # Re-running writes nothing twice; new spans in Phoenix are picked up where it stopped.
    assert main(["import", "phoenix", "--url", phoenix.url, "--project", "round-trip", str(out)]) == 0
    assert capsys.readouterr().out.startswith("imported 0 spans of 0 traces")
    assert len(read(out)) == len(lines)


def test_an_import_stopped_mid_way_continues_where_it_stopped(phoenix, direct, tmp_path):
    from halo_live.exporter.importers.phoenix import PhoenixImport
    from halo_live.exporter.importers.resume import ImportTarget

    lines = relabel(read(direct), "stopped")
    phoenix.send(lines, "stopped")
    phoenix.wait_for_spans("stopped", len(lines))
    out = tmp_path / "out.jsonl"
    stop = threading.Event()
    with ImportTarget(out, "phoenix-stopped") as target:
        PhoenixImport(phoenix.url, "stopped", target, page_size=5).run(
            stop=stop, progress=lambda done, total: stop.set())  # as if interrupted after a page
    assert len(read(out)) == 5
    with ImportTarget(out, "phoenix-stopped") as target:
        PhoenixImport(phoenix.url, "stopped", target, page_size=5).run()
        assert target.stats.spans == len(lines) - 5 and target.stats.duplicates == 0
    assert sorted(x["span_id"] for x in read(out)) == sorted(x["span_id"] for x in lines)


def test_since_imports_only_later_spans(phoenix, direct, tmp_path):
    lines = relabel(read(direct), "since")
    phoenix.send(lines, "since")
    phoenix.wait_for_spans("since", len(lines))
    cut = sorted(line["start_time"] for line in lines)[len(lines) // 2]
    out = tmp_path / "later.jsonl"
    assert main(["import", "phoenix", "--url", phoenix.url, "--project", "since", "--since", cut,
                 str(out)]) == 0
    got = read(out)
    assert got and all(line["start_time"] >= cut for line in got)
    assert len(got) == sum(1 for line in lines if line["start_time"] >= cut)


def test_follow_imports_traces_as_they_reach_phoenix(phoenix, direct, tmp_path):
    lines = relabel(read(direct), "live")
    first = lines[0]["trace_id"]
    head = [line for line in lines if line["trace_id"] == first]
    tail = [line for line in lines if line["trace_id"] != first]
    phoenix.send(head, "live")
    phoenix.wait_for_spans("live", len(head))
    out = tmp_path / "live.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "halo_live", "import", "phoenix", "--url", phoenix.url,
                             "--project", "live", "--follow", "--interval", "0.2", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: out.exists() and len(read(out)) == len(head))
        with open_store(out) as store:  # the live index reads what the import has written so far
            assert run_tool(store, "count_traces", {})["result"]["total"] == 1
            phoenix.send(tail, "live")
            _wait_for(lambda: len(read(out)) == len(lines))
            assert run_tool(store, "count_traces", {})["result"]["total"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"imported {len(lines)} spans" in stdout
    assert sorted(line["span_id"] for line in read(out)) == sorted(line["span_id"] for line in lines)


def test_bad_input_is_one_line_and_exit_1_with_nothing_written(phoenix, tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    assert main(["import", "phoenix", "--url", phoenix.url, "--project", "no-such-project", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"halo: error: Phoenix at {phoenix.url} has no project 'no-such-project' "
                   "(404: Project with name no-such-project not found)"]
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens on a just-freed port
    assert main(["import", "phoenix", "--url", dead, "--project", "p", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"halo: error: cannot reach Phoenix at {dead}")
    assert not out.exists()


def test_wrong_or_missing_api_key_is_one_line(tmp_path_factory, tmp_path, capsys, monkeypatch):
    """A Phoenix with auth on refuses the import without a valid PHOENIX_API_KEY."""
    try:
        python = ensure_phoenix()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"Phoenix unavailable: {exc}")
    server = PhoenixServer(python, tmp_path_factory.mktemp("phoenix-auth"),
                           env={"PHOENIX_ENABLE_AUTH": "true", "PHOENIX_SECRET": "s" * 40 + "1A"}).start()
    try:
        out = tmp_path / "x.jsonl"
        for key in (None, "not-a-key"):
            if key is None:
                monkeypatch.delenv("PHOENIX_API_KEY", raising=False)
            else:
                monkeypatch.setenv("PHOENIX_API_KEY", key)
            assert main(["import", "phoenix", "--url", server.url, "--project", "default", str(out)]) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"halo: error: Phoenix at {server.url} refused the "
                                                       "credentials (401")
            assert err[0].endswith("set PHOENIX_API_KEY to a Phoenix API key")
        assert not out.exists()
    finally:
        server.stop()


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)
