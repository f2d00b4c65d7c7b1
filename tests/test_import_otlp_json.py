"""`halo import otlp-json`: a Collector file exporter's output through the receiver's own decoder.

Inputs: a hand-checked sample in the Collector's file-exporter shape
(tests/fixtures/collector-file-exporter.json: hex ids, camelCase, int64 as
strings, `flags`, `schemaUrl`), and files written by the project's own OTLP
JSON encoder (`tests._otlp_helpers.json_request`).
"""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zstandard

from halo_live.cli import main
from halo_live.exporter import canonical
from halo_live.exporter.receiver_json import from_json
from halo_live.indexer import TraceIndex
from tests._otlp_helpers import json_request, json_span

SAMPLE = Path(__file__).parent / "fixtures" / "collector-file-exporter.json"


def read(path: Path) -> list[dict]:
    return [orjson.loads(raw) for raw in path.read_bytes().splitlines()]


def test_sample_imports_as_the_receiver_decodes_it(tmp_path, capsys, halo_reference):
    out = tmp_path / "traces.jsonl"
    assert main(["import", "otlp-json", str(SAMPLE), str(out)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert summary == [f"imported 5 spans of 2 traces into {out}"]
    expected = [line for raw in SAMPLE.read_bytes().splitlines() for line in from_json(raw).lines]
    assert out.read_bytes() == b"".join(expected)
    lines = {line["span_id"]: line for line in read(out)}
    tool = lines["eee19b7ec3c1b175"]["attributes"]
    assert tool[canonical.INF_OBSERVATION_KIND] == "TOOL"
    assert tool[canonical.INF_AGENT_NAME] == "Shop agent"  # from its AGENT parent in the same request
    chat = lines["1111111111111111"]["attributes"]
    assert chat[canonical.INF_LLM_MODEL_NAME] == "gpt-4o" and chat[canonical.INF_AGENT_NAME] == "Support"
    overview = halo_reference.load_counts([out], tmp_path / "ref-index")
    assert overview["total_traces"] == 2 and overview["total_spans"] == 5
    assert overview["error_trace_count"] == 1
    assert sorted(overview["model_names"]) == ["gpt-4.1-mini", "gpt-4o"]
    assert sorted(overview["agent_names"]) == ["Shop agent", "Support"]


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.ZstdCompressor().compress],
                         ids=["gzip", "zstd"])
def test_compressed_files_import_the_same(tmp_path, compress):
    plain, packed = tmp_path / "plain.jsonl", tmp_path / "packed.jsonl"
    source = tmp_path / "traces.json.z"
    source.write_bytes(compress(SAMPLE.read_bytes()))
    assert main(["import", "otlp-json", str(SAMPLE), str(plain)]) == 0
    assert main(["import", "otlp-json", str(source), str(packed)]) == 0
    assert packed.read_bytes() == plain.read_bytes()


def _encoder_file(path: Path, requests: int, *, first: int = 0) -> None:
    with path.open("ab") as f:
        for r in range(first, first + requests):
            spans = [json_span(traceId=f"{r + 1:032x}", spanId=f"{r + 1:08x}{s + 1:08x}",
                               parentSpanId="", links=None) for s in range(3)]
            f.write(json_request(spans) + b"\n")


def test_rerun_continues_where_it_stopped_and_never_writes_a_span_twice(tmp_path, capsys):
    source, out = tmp_path / "collector.json", tmp_path / "traces.jsonl"
    _encoder_file(source, 4)
    assert main(["import", "otlp-json", str(source), str(out)]) == 0
    assert len(read(out)) == 12
    assert main(["import", "otlp-json", str(source), str(out)]) == 0
    assert len(read(out)) == 12
    _encoder_file(source, 2, first=4)
    capsys.readouterr()
    assert main(["import", "otlp-json", str(source), str(out)]) == 0
    assert capsys.readouterr().out.startswith("imported 6 spans of 2 traces")
    lines = read(out)
    assert len(lines) == 18 and len({(x["trace_id"], x["span_id"]) for x in lines}) == 18
    # Without the checkpoint (deleted, or a crash before it was saved) the ids in OUT still hold.
    (tmp_path / "traces.jsonl.halo-import.json").unlink()
    assert main(["import", "otlp-json", str(source), str(out)]) == 0
    assert "18 already there" in capsys.readouterr().out
    assert len(read(out)) == 18


def test_a_last_line_without_newline_is_imported_once_whole_else_left(tmp_path, capsys):
    source, out = tmp_path / "collector.json", tmp_path / "traces.jsonl"
    source.write_bytes(SAMPLE.read_bytes().rstrip(b"\n"))
    assert main(["import", "otlp-json", str(source), str(out)]) == 0
    assert len(read(out)) == 5
    with source.open("ab") as f:
        f.write(b'\n{"resourceSpans": [')  # the Collector is mid-way through a line
    assert main(["import", "otlp-json", str(source), str(out)]) == 0
    assert "skipped 1: a partial last line (left for the next run)" in capsys.readouterr().out
    assert len(read(out)) == 5


def test_a_malformed_record_is_skipped_and_counted(tmp_path, capsys):
    source, out = tmp_path / "collector.json", tmp_path / "traces.jsonl"
    _encoder_file(source, 1)
    with source.open("ab") as f:
        f.write(b'{"resourceSpans": [\n')  # a torn record
        f.write(json_request([json_span(traceId="zz", links=None)]) + b"\n")  # a bad span id
    _encoder_file(source, 1, first=1)
    assert main(["import", "otlp-json", str(source), str(out)]) == 0
    summary = capsys.readouterr().out
    assert "imported 6 spans of 2 traces" in summary
    assert "skipped 1: lines that are not an OTLP/JSON trace request (e.g. body is not valid JSON" in summary
    assert "skipped 1: spans rejected by the OTLP decoder" in summary
    assert len(read(out)) == 6


@pytest.mark.parametrize("content", [b"hello world\n", b"\x00\x01binary\n", b'["a list"]\n'])
def test_a_file_with_no_request_is_one_line_and_exit_1_with_nothing_written(tmp_path, capsys, content):
    source, out = tmp_path / "not-otlp.json", tmp_path / "traces.jsonl"
    source.write_bytes(content)
    assert main(["import", "otlp-json", str(source), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("halo: error: ") and "holds no OTLP/JSON trace request" in err[0]
    assert not out.exists()
    assert not (tmp_path / "traces.jsonl.halo-import.json").exists()  # no checkpoint either


def test_missing_file_and_folder_out_are_one_line(tmp_path, capsys):
    assert main(["import", "otlp-json", str(tmp_path / "nope.json"), str(tmp_path / "o.jsonl")]) == 1
    assert capsys.readouterr().err.strip() == f"halo: error: {tmp_path / 'nope.json'} does not exist"
    assert main(["import", "otlp-json", str(SAMPLE), str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err


def test_follow_imports_lines_as_the_collector_appends_them(tmp_path):
    source, out = tmp_path / "collector.json", tmp_path / "traces.jsonl"
    _encoder_file(source, 1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "halo_live", "import", "otlp-json", str(source), str(out),
         "--follow", "--interval", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: out.exists() and len(read(out)) == 3)
        with source.open("ab") as f:  # the Collector writes a line in two pieces
            body = json_request([json_span(traceId=f"{9:032x}", spanId="0000000900000001",
                                           parentSpanId="", links=None)])
            f.write(body[:40])
            f.flush()
            time.sleep(0.2)
            f.write(body[40:] + b"\n")
        _wait_for(lambda: len(read(out)) == 4)
        index = TraceIndex.open(out)
        index.catch_up()
        with index.snapshot() as snap:
            assert snap.totals().total_traces == 2
        index.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "imported 4 spans of 2 traces" in stdout


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
