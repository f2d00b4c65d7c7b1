"""First-user audit: bad input gets one clear line and a non-zero exit, nothing is created
where it should not be, and a lost span line is reported by flush() (OTel semantics)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from halo_live.engine.cli import paths as cli_paths
from halo_live.cli import COMMANDS, main
from tests import _tools_helpers as gen
from tests._exporter_helpers import sdk_processors_restored

DEV_FULL = "/dev/full"  # every write fails with ENOSPC: a real failing disk, no mock
needs_dev_full = pytest.mark.skipif(not os.path.exists(DEV_FULL), reason="no /dev/full")


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    return gen.write(tmp_path / "t.jsonl", gen.generate(6, seed=5))


def _one_line(capsys) -> tuple[str, str]:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return out, lines[0]


def _halo(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "halo_live", *argv], cwd=Path(__file__).parent.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


# --- JsonlWriter.flush / force_flush -------------------------------------------------------

@needs_dev_full
def test_writer_flush_is_false_when_the_write_failed():
    from halo_live.exporter.writer import JsonlWriter

    w = JsonlWriter(DEV_FULL, flush_interval=60)
    try:
        w.submit([b'{"a": 1}\n'])
        assert w.flush(5) is False and w.dropped == 1
        assert w.flush(5) is True  # nothing new was lost since
        w.submit([b'{"a": 2}\n'])
        assert w.force_flush(5) is False and w.dropped == 2
    finally:
        w.shutdown(5)


def test_writer_flush_is_false_for_lines_refused_after_shutdown(tmp_path):
    from halo_live.exporter.writer import JsonlWriter

    w = JsonlWriter(tmp_path / "t.jsonl")
    w.submit([b"{}\n"])
    assert w.flush(5) is True
    w.shutdown(5)
    assert w.submit([b"{}\n"]) is None
    assert w.flush(1) is False


@needs_dev_full
def test_otel_exporter_force_flush_reports_the_loss():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from halo_live.exporter import HaloSpanExporter

    exporter = HaloSpanExporter(DEV_FULL, wait_for_write=False, flush_interval=60)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("audit").start_as_current_span("s"):
        pass
    assert exporter.force_flush(5000) is False
    assert exporter.dropped == 1
    provider.shutdown()


@needs_dev_full
def test_agents_sdk_processor_force_flush_reports_the_loss():
    from agents.tracing import custom_span, trace

    from halo_live.exporter import setup_tracing

    with sdk_processors_restored():
        processor = setup_tracing(service_name="audit", project_id="p", path=DEV_FULL)
        try:
            with trace("audit"):
                with custom_span("step"):
                    pass
            assert processor.force_flush(5) is False
            assert processor.writer.dropped >= 1
        finally:
            processor.shutdown(5)


# --- usage errors: one line ---------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--temperature", "5", "x.jsonl", "-p", "q"],
    ["--bogus"],
    ["report"],
    ["report", "x", "--top", "many"],
    ["demo", "--api", "carrier-pigeon"],
    ["serve", "--out", "x", "--fsync", "sometimes"],
])
def test_a_bad_flag_is_one_line_not_the_whole_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    _, line = _one_line(capsys)
    assert "error:" in line and "--help" in line


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_help_has_examples(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"halo {name}" in out.split("examples:")[1]


def test_top_level_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "examples:" in capsys.readouterr().out


def test_tool_list_names_the_arguments(capsys):
    assert main(["tool", "--list"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("search_trace"))
    assert "trace_id, regex_pattern, [context_buffer_chars], [max_matches]" in line


@pytest.mark.parametrize("argv, phrase", [
    (["index", "{traces}", "--workers", "0"], "--workers must be at least 1"),
    (["tool", "count_traces", "{traces}", "--indent", "-1"], "--indent must be >= 0"),
])
def test_bad_numbers_are_usage_errors(argv, phrase, traces, capsys):
    assert main([a.format(traces=traces) for a in argv]) == 2
    assert phrase in _one_line(capsys)[1]


# --- TRACE_PATH checks ----------------------------------------------------------------------

@pytest.mark.parametrize("command, code, phrase", [
    (["report"], 1, "TRACE_PATH is empty"), (["index"], 1, "TRACE_PATH is empty"),
    (["compare", "x"], 1, "TRACE_PATH is empty"), (["tool", "count_traces"], 2, "usage: halo tool"),
])
def test_empty_trace_path_is_refused(command, code, phrase, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # "" used to mean the current folder
    assert main([*command, ""]) == code
    assert phrase in _one_line(capsys)[1]
    assert not (tmp_path / ".halo-index").exists()


@pytest.mark.parametrize("command", [["report"], ["index"], ["tool", "count_traces"]])
def test_glob_under_a_missing_folder_creates_nothing(command, tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main([*command, str(missing / "*.jsonl")]) == 1
    assert "no such folder" in _one_line(capsys)[1]
    assert not missing.exists()


def test_a_glob_under_an_existing_folder_may_match_nothing_yet(tmp_path, capsys):
    assert main(["index", str(tmp_path / "*.jsonl")]) == 0  # a benchmark about to start


@pytest.mark.parametrize("content, phrase", [
    (bytes(range(256)) * 8, "binary file"),
    (b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n", "not a JSONL"),
])
@pytest.mark.parametrize("command", [["report"], ["index"], ["tool", "get_dataset_overview"]])
def test_a_file_that_is_not_jsonl_is_refused_without_an_index(content, phrase, command, tmp_path, capsys):
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    assert main([*command, str(path)]) == 1
    assert phrase in _one_line(capsys)[1]
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_garbage_lines_and_crash_nuls_in_a_trace_file_are_skipped(traces, capsys):
    good = traces.read_bytes()
    traces.write_bytes(good + b"garbage{\n\0\0\0\0\n[1, 2]\n")
    assert main(["tool", "count_traces", str(traces)]) == 0
    assert json.loads(capsys.readouterr().out) == {"result": {"total": 6}}


def test_empty_file_and_empty_folder_are_fine(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "shards").mkdir()
    for target in ("empty.jsonl", "shards"):
        assert main(["tool", "count_traces", str(tmp_path / target)]) == 0
        assert json.loads(capsys.readouterr().out) == {"result": {"total": 0}}


def test_unwritable_trace_folder_puts_the_index_in_the_user_cache(traces, tmp_path, monkeypatch, capsys):
    # Root ignores permission bits, so stand in for a read-only mount by what access() says.
    real_access = os.access
    monkeypatch.setattr(cli_paths.os, "access",
                        lambda p, mode, **kw: False if Path(p) == traces.parent and mode == os.W_OK
                        else real_access(p, mode, **kw))
    monkeypatch.setattr(cli_paths, "_noted", set())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["tool", "count_traces", str(traces)]) == 0
    out, note = _one_line(capsys)
    assert json.loads(out) == {"result": {"total": 6}}
    assert "not writable" in note and "--index-dir" in note
    assert not Path(str(traces) + ".halo-index").exists()
    assert list((tmp_path / "cache" / "halo-live" / "index").iterdir())


# --- the ask form ----------------------------------------------------------------------------

def test_a_local_endpoint_needs_no_api_key(traces, monkeypatch, capsys):
    from halo_live.demo.model_server import ModelServer, Reply, ScriptedPolicy

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with ModelServer(ScriptedPolicy([Reply(text="the answer")])) as server:
        code = main([str(traces), "-p", "q", "--base-url", server.base_url, "--quiet", "-m", "m"])
        assert server.turns  # it was asked
    assert code == 0 and capsys.readouterr().out.strip() == "the answer"


def test_a_remote_endpoint_still_needs_a_key(traces, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main([str(traces), "-p", "q", "--base-url", "https://api.example.com/v1"]) == 1
    assert "no API key" in _one_line(capsys)[1]


@pytest.mark.parametrize("url, local", [
    ("http://127.0.0.1:8000/v1", True), ("http://localhost:11434/v1", True), ("http://[::1]:8/v1", True),
    ("https://api.openai.com/v1", False), ("http://10.0.0.5/v1", False), (None, False), ("::bad", False),
])
def test_is_local(url, local):
    from halo_live.engine.cli.ask import is_local

    assert is_local(url) is local


# --- real processes -------------------------------------------------------------------------

def test_a_closed_pipe_ends_report_quietly_with_exit_0(traces):
    read_end, write_end = os.pipe()
    os.close(read_end)  # `halo report | head` after head is gone
    try:
        proc = subprocess.run([sys.executable, "-m", "halo_live", "report", str(traces)],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
                              cwd=Path(__file__).parent.parent)
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def _wait_for(proc: subprocess.Popen, prefix: str) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no {prefix!r} line; got {seen!r}; stderr {proc.stderr.read()!r}")


def test_serve_answers_a_grpc_client_on_the_http_port_with_one_line(tmp_path):
    proc = _halo("serve", "--out", str(tmp_path / "t.jsonl"), "--grpc-port", "0", "--http-port", "0",
                 "--index", "none")
    try:
        lines = _wait_for(proc, "halo serve: ready")
        http_port = int(next(x for x in lines if "OTLP/HTTP" in x).rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", http_port), timeout=10) as sock:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\0\0\0\4\0\0\0\0\0")
            sock.recv(4096)  # aiohttp answers 400 and closes
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert "rejected a malformed HTTP request" in err and "gRPC listens on" in err


def test_serve_on_a_port_in_use_is_one_line_with_a_hint(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _halo("serve", "--out", str(tmp_path / "t.jsonl"), "--grpc-port", "0",
                     "--http-port", str(port), "--index", "none")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert str(port) in lines[0] and "--http-port 0" in lines[0]


def test_index_follow_stops_on_sigint_with_a_summary(traces):
    proc = _halo("index", str(traces), "--follow")
    try:
        _wait_for(proc, "following ")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped following; 6 traces" in out


@pytest.mark.parametrize("url", ["not a url", "localhost:8000/v1", "ftp://127.0.0.1/v1"])
def test_a_base_url_without_http_is_a_usage_error(url, traces, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main([str(traces), "-p", "q", "--base-url", url]) == 2
    assert "http://" in _one_line(capsys)[1]


# --- where commands write -------------------------------------------------------------------

def test_demo_never_replaces_traces_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "traces"
    out.mkdir()
    mine = out / "traces-w0.jsonl"  # the README's own shard naming for a user's harness
    mine.write_bytes(b'{"trace_id": "a"}\n')
    assert main(["demo", "--out", str(out), "--tasks", "1"]) == 2
    assert "did not write" in _one_line(capsys)[1]
    assert mine.read_bytes() == b'{"trace_id": "a"}\n' and sorted(out.iterdir()) == [mine]
    assert main(["demo", "--out", str(mine)]) == 2
    assert "is a file" in _one_line(capsys)[1]


def test_serve_appends_only_to_a_trace_file(tmp_path, capsys):
    other = tmp_path / "notes.txt"
    other.write_text("my notes\nmore notes\n")
    assert main(["serve", "--out", str(other), "--grpc-port", "0", "--http-port", "0", "--index", "none"]) == 1
    assert "not a JSONL trace file" in _one_line(capsys)[1]
    assert other.read_text() == "my notes\nmore notes\n"


def test_demo_baseline_names_the_compare_command(tmp_path):
    from rich.console import Console

    from halo_live.demo.cli import _next_steps

    console = Console(record=True, width=400)
    out = tmp_path / "base"
    _next_steps(console, out, "baseline", {"passed": 1, "tasks": 2, "score": 0.5, "run_id": "r"})
    assert f"halo compare {out} {tmp_path / 'fixed'}" in console.export_text()


def test_an_unquoted_glob_gets_a_hint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "a/x.jsonl", "a/y.jsonl"])
    assert exc.value.code == 2
    assert "quote the glob" in _one_line(capsys)[1]


def test_report_tables_show_whole_trace_ids_on_80_columns(traces, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["report", str(traces), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ids = {r["trace_id"] for r in report["slowest_traces"]}
    ids |= {s["example_trace_ids"][0] for s in report["error_signatures"] if s["example_trace_ids"]}
    assert main(["report", str(traces)]) == 0
    text = capsys.readouterr().out
    assert ids and all(tid in text for tid in ids)  # copyable into `halo tool view_trace`


def test_a_folder_whose_shards_sit_one_level_down_gets_a_hint(traces, tmp_path, capsys):
    root = tmp_path / "runs"
    (root / "baseline").mkdir(parents=True)
    traces.rename(root / "baseline" / "t.jsonl")
    assert main(["tool", "count_traces", str(root)]) == 0
    out, note = _one_line(capsys)
    assert json.loads(out) == {"result": {"total": 0}}
    assert "baseline/" in note and "*.jsonl" in note
    assert main(["tool", "count_traces", str(root / "*" / "*.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out) == {"result": {"total": 6}}


def test_serve_on_all_interfaces_without_a_token_warns(tmp_path):
    proc = _halo("serve", "--out", str(tmp_path / "t.jsonl"), "--grpc-port", "0", "--http-port", "0",
                 "--index", "none", "--host", "0.0.0.0")
    try:
        _wait_for(proc, "halo serve: ready")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "without --token" in err


@needs_dev_full
def test_serve_on_a_failing_disk_answers_retryable_and_says_why_at_exit():
    import urllib.error
    import urllib.request

    proc = _halo("serve", "--out", DEV_FULL, "--grpc-port", "0", "--http-port", "0", "--index", "none")
    try:
        lines = _wait_for(proc, "halo serve: ready")
        url = next(x for x in lines if "OTLP/HTTP" in x).split()[-1]
        body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708", "name": "x",
            "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}
        request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)
        assert answer.value.code == 503  # retryable: the sender keeps the spans
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err
    assert "1 line(s) not written (queue full or write failed)" in err


@pytest.mark.parametrize("argv, meant", [(["reprot", "x/"], "report"), (["serv", "--out", "x"], "serve")])
def test_a_misspelt_command_is_named(argv, meant, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert f"did you mean `halo {meant}`" in _one_line(capsys)[1]


def test_a_path_that_looks_like_a_command_is_still_a_path(traces, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tools").mkdir()  # close to `tool`, but it exists: the ask form reads it
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(["tools", "-p", "q"]) == 1
    assert "no API key" in _one_line(capsys)[1]
