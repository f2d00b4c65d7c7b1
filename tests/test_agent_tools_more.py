"""The agent's additions over the reference's: `run_code`, `get_context_item` after
compaction, and `--dataset-context`, each through `halo TRACE_PATH -p` against the
scripted model server (real `Runner.run`, real HTTP, real index)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from halo_live.cli import main
from halo_live.demo.model_server import ModelServer, Reply
from tests._agent_helpers import TRACE_IDS, RolePolicy, call, halo_args, tool_results, write_traces


@pytest.fixture(autouse=True)
def _no_ambient_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("HALO_TELEMETRY_PATH", raising=False)


@pytest.fixture
def traces(tmp_path):
    return write_traces(tmp_path / "traces.jsonl")


AGGREGATE = """
rows = trace_rows()
by_error = {}
for r in rows:
    key = 'failed' if r['has_errors'] else 'passed'
    by_error[key] = by_error.get(key, 0) + r['total_input_tokens'] + 1
print(sorted(by_error.items()))
len(rows)
"""


def test_the_agent_computes_with_run_code_and_fixes_its_own_error(traces, capsys):
    def answer(turn):
        first, second = tool_results(turn, "run_code")
        return Reply(text=f"{first['error'].splitlines()[0]} | {second['result']['stdout'].strip()} "
                          f"| {second['result']['value']} traces")

    policy = RolePolicy(root=[Reply(tool_calls=[call("run_code", code="x = 1\nx / 0")]),
                              Reply(tool_calls=[call("run_code", code=AGGREGATE)]), answer])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == ("run_code failed: ZeroDivisionError: division by zero at line 2: x / 0 "
                           "| [('failed', 1), ('passed', 2)] | 3 traces")
    first = policy.seen["root"][0]
    assert "run_code" in {t["name"] for t in first.tools}
    assert "trace_rows(filters" in next(t for t in first.tools if t["name"] == "run_code")["description"]
    assert "`run_code` runs your Python" in first.instructions


def test_no_run_code_takes_the_tool_away(traces, capsys):
    policy = RolePolicy(root=[Reply(text="fine")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--no-run-code")) == 0
    capsys.readouterr()
    first = policy.seen["root"][0]
    assert "run_code" not in {t["name"] for t in first.tools}
    assert "`run_code` runs your Python" not in first.instructions


def test_a_compacted_result_comes_back_with_get_context_item(tmp_path, capsys):
    traces = write_traces(tmp_path / "big.jsonl", payload_chars=3_000)
    views = [Reply(tool_calls=[call("view_trace", trace_id=t)]) for t in TRACE_IDS] * 2

    def fetch(turn):
        stubs = [m["content"] for m in turn.messages
                 if m["role"] == "tool" and str(m.get("content", "")).startswith("[halo compacted")]
        assert stubs, "nothing was compacted"
        item_id = re.search(r"item_id=(\S+?):", stubs[0]).group(1)
        return Reply(tool_calls=[call("get_context_item", item_id=item_id)])

    def answer(turn):
        item = tool_results(turn, "get_context_item")[-1]
        original = json.loads(item["content"])
        return Reply(text=f"{item['tool']} {json.loads(item['arguments'])['trace_id']} "
                          f"{original['result']['trace_id']} {item['next_offset']} {len(item['content'])}")

    # the newest tool result is never compacted: the fetched item is read whole in the next turn
    policy = RolePolicy(root=[*views, Reply(tool_calls=[call("get_context_item", item_id="nope")]),
                              fetch, answer],
                        compaction=[Reply(text="summary of a view")] * 10)
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, "--compaction-threshold", "12000"))
    out, err = capsys.readouterr()
    assert code == 0, err
    tool, asked, returned, next_offset, chars = out.split()
    assert tool == "view_trace" and asked == returned == TRACE_IDS[0] and next_offset == "None"
    assert int(chars) > 3_000
    unknown = tool_results(policy.seen["root"][-1], "get_context_item")[0]
    assert unknown["error"].startswith("no context item 'nope'; compacted items: ")
    assert "get_context_item(item_id)" in policy.seen["root"][0].instructions


def test_dataset_context_reaches_every_agent(traces, tmp_path, capsys):
    context = tmp_path / "context.md"
    context.write_text("Each trace is one SWE-bench task; a read_file error means a wrong path.\n")
    policy = RolePolicy(root=[Reply(tool_calls=[call("call_subagent", input="look")]), Reply(text="ok")],
                        sub=[Reply(text="looked")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--dataset-context", f"@{context}")) == 0
    capsys.readouterr()
    for role in ("root", "sub"):
        assert "Dataset context (the caller's description of what this dataset encodes):\n" \
               "Each trace is one SWE-bench task" in policy.seen[role][0].instructions


@pytest.mark.parametrize(("value", "message"), [
    ("@/no/such/file.md", "cannot read --dataset-context file '/no/such/file.md'"),
    ("   ", "--dataset-context is empty"),
])
def test_a_bad_dataset_context_is_one_line(traces, capsys, value, message):
    code = main([str(traces), "-p", "q", "--api-key", "k", "--dataset-context", value])
    _, err = capsys.readouterr()
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_dataset_context_in_the_python_api(traces):
    import asyncio

    from halo_live.engine.agent.ask import AgentSettings, ask

    policy = RolePolicy(root=[Reply(text="ok")])
    with ModelServer(policy) as server:
        settings = AgentSettings(model="m", base_url=server.base_url, api_key="k", max_depth=0,
                                 dataset_context="tokens are counted per turn")
        result = asyncio.run(ask(traces, "q", settings))
    assert result.answer == "ok"
    assert "tokens are counted per turn" in policy.seen["root"][0].instructions
    with pytest.raises(ValueError, match="dataset_context"):
        AgentSettings(dataset_context=" ")


def test_telemetry_of_a_run_is_a_dataset_halo_tool_reads(traces, tmp_path, capsys):
    telemetry = tmp_path / "self.jsonl"
    policy = RolePolicy(root=[Reply(tool_calls=[call("run_code", code="count_traces()['total']")]),
                              Reply(text="3")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--telemetry", str(telemetry), "--quiet")) == 0
    capsys.readouterr()
    assert main(["tool", "query_traces", str(telemetry), "--index-dir", str(tmp_path / "idx")]) == 0
    [run] = json.loads(capsys.readouterr().out)["result"]["traces"]
    assert run["service_names"] == ["halo-engine"] and run["model_names"] == ["test-model"]
    assert "run_code" in run["tool_names"] and run["complete"]
    # and halo's own sandbox can compute over halo's own run
    assert main(["tool", "run_code", str(telemetry), "--allow-code", "--index-dir", str(tmp_path / "idx"),
                 "--args", json.dumps({"code": "trace_rows()[0]['agent_names']"})]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["value"] == ["halo-root"]


def test_telemetry_to_an_otlp_endpoint_reaches_halo_serve(traces, tmp_path, capsys):
    from tests._otlp_helpers import servers

    received = tmp_path / "received.jsonl"
    policy = RolePolicy(root=[Reply(tool_calls=[call("run_code", code="1 + 1")]), Reply(text="2")])
    with servers(received) as otlp, ModelServer(policy) as server:
        endpoint = f"http://127.0.0.1:{otlp.http_port}"
        assert main(halo_args(traces, server, "--telemetry", endpoint)) == 0
        otlp.writer.force_flush()
    out, err = capsys.readouterr()
    assert out.strip() == "2" and f"halo: telemetry sent to {endpoint}" in err
    assert main(["tool", "query_traces", str(received), "--index-dir", str(tmp_path / "idx")]) == 0
    [run] = json.loads(capsys.readouterr().out)["result"]["traces"]
    assert run["service_names"] == ["halo-engine"] and "run_code" in run["tool_names"]
    assert run["model_names"] == ["test-model"] and run["complete"]


def test_an_unreachable_telemetry_endpoint_keeps_the_answer_and_the_spans(traces, capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RolePolicy(root=[Reply(text="fine")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--telemetry", f"http://127.0.0.1:{port}")) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "fine"
    warning = next(line for line in err.splitlines() if "telemetry not delivered" in line)
    kept = Path(warning.rsplit("the spans are kept in ", 1)[1])
    try:
        assert kept.read_bytes().count(b"\n") >= 2
    finally:
        shutil.rmtree(kept.parent)
