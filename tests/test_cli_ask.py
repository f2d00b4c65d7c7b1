"""`halo TRACE_PATH -p`: flags, and every expected failure as one line and a non-zero exit."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from halo_live.demo.model_server import ModelServer, Reply
from halo_live.engine.agent.config import AgentSettings
from halo_live.cli import main
from halo_live.engine.cli import CliError
from halo_live.engine.cli.ask import parse_headers
from tests._agent_helpers import RolePolicy, call, halo_args, tool_results, write_traces

@pytest.fixture(autouse=True)
def _no_ambient_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("HALO_TELEMETRY_PATH", raising=False)
    monkeypatch.delenv("HALO_DEBUG", raising=False)


@pytest.fixture
def traces(tmp_path):
    return write_traces(tmp_path / "traces.jsonl")


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("halo: error: ")
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_halo_alone_prints_help(capsys):
    assert main([]) == 0
    out, _ = capsys.readouterr()
    assert "halo TRACE_PATH -p" in out and "--max-depth" in out and "--telemetry" in out


def test_the_reference_flags_are_accepted(traces, capsys):
    policy = RolePolicy(root=[Reply(text="ok")])
    with ModelServer(policy) as server:
        code = main(halo_args(
            traces, server, "--synthesis-model", "small", "--compaction-model", "small",
            "--max-depth", "1", "--max-turns", "5", "--max-parallel", "3",
            "-H", "X-Team: blue", "--header", "X-Run: 7", "--temperature", "0.2",
            "--max-output-tokens", "256", "--reasoning-effort", "low",
            "--no-parallel-tool-calls", "--refusal-retries", "1",
        ))
    assert code == 0
    body = policy.seen["root"][0].body
    assert body["temperature"] == 0.2 and body["max_tokens"] == 256
    assert body["reasoning_effort"] == "low" and body["parallel_tool_calls"] is False


def test_responses_is_the_default_on_openai_and_chat_elsewhere():
    assert AgentSettings().uses_responses_api()
    assert AgentSettings(base_url="https://api.openai.com/v1").uses_responses_api()
    assert not AgentSettings(base_url="http://localhost:8000/v1").uses_responses_api()
    assert AgentSettings(base_url="http://localhost:8000/v1", api="responses").uses_responses_api()


def test_each_call_role_gets_its_model_and_only_agents_get_the_chosen_effort():
    from halo_live.engine.agent.config import model_settings

    settings = AgentSettings(model="gpt-5.4-mini", synthesis_model="gpt-4.1", reasoning_effort="low")
    assert [settings.model_for(r) for r in ("agent", "synthesis", "compaction")] == [
        "gpt-5.4-mini", "gpt-4.1", "gpt-5.4-mini"]
    assert model_settings(settings, role="agent").reasoning.effort == "low"
    assert model_settings(settings, role="synthesis").reasoning is None  # gpt-4.1: none to send
    assert model_settings(settings, role="compaction").reasoning.effort == "xhigh"  # the family's max


def test_environment_supplies_key_and_endpoint(traces, capsys, monkeypatch):
    policy = RolePolicy(root=[Reply(text="from env")])
    with ModelServer(policy) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "env-key")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        code = main([str(traces), "-p", "q", "-m", "test-model"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.strip() == "from env"


def test_no_api_key_is_one_line_that_says_how(traces, capsys):
    code = main([str(traces), "-p", "q"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1
    assert "OPENAI_API_KEY" in line and "--api-key" in line and "halo tool" in line


def test_missing_trace_file_is_one_line(tmp_path, capsys):
    code = main([str(tmp_path / "nope.jsonl"), "-p", "q", "--api-key", "k"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1 and "nope.jsonl" in line


def test_missing_prompt_is_a_usage_error(traces, capsys):
    assert main([str(traces), "--api-key", "k"]) == 2
    assert "-p" in _one_error_line(capsys.readouterr().err)


def test_unreachable_endpoint_is_one_line(traces, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    code = main([str(traces), "-p", "q", "--api-key", "k", "--base-url", url, "--max-retries", "0"])
    line = _one_error_line(_errors_only(capsys))
    assert code == 1 and "cannot reach the model endpoint" in line and url in line


def _errors_only(capsys) -> str:
    return "\n".join(line for line in capsys.readouterr().err.splitlines() if line.startswith("halo:"))


@pytest.mark.parametrize(("status", "phrase"), [(401, "rejected the API key"), (404, "answered 404"),
                                                (400, "answered HTTP 400")])
def test_endpoint_refusals_are_one_line(traces, capsys, status, phrase):
    policy = RolePolicy(root=[Reply(error_status=status, error_message="nope")])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server))
    line = _one_error_line(_errors_only(capsys))
    assert code == 1 and phrase in line and "nope" in line
    assert len(policy.seen["root"]) == 1  # never retried


def test_bad_flags_are_usage_errors(traces, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(traces), "-p", "q", "--max-turns", "0"])
    assert exc.value.code == 2
    assert "--max-turns" in capsys.readouterr().err
    assert main([str(traces), "-p", "q", "--api-key", "k", "-H", "no-colon"]) == 2
    assert "NAME: VALUE" in _one_error_line(capsys.readouterr().err)


def test_header_parsing():
    assert parse_headers(["A: 1", "B:two words ", "C:"]) == {"A": "1", "B": "two words", "C": ""}
    with pytest.raises(CliError):
        parse_headers([": x"])


def test_telemetry_flag_before_the_trace_path(traces, tmp_path, capsys, monkeypatch):
    target = tmp_path / "tele.jsonl"
    monkeypatch.setenv("HALO_TELEMETRY_PATH", str(target))
    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces")]),
                              lambda t: Reply(text=str(tool_results(t)[0]["result"]["total"]))])
    with ModelServer(policy) as server:
        code = main(["--telemetry", *halo_args(traces, server)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "3" and target.exists() and str(target) in err


def test_real_halo_process(traces, tmp_path):
    """The installed console script, as a user runs it: answer on stdout, steps on stderr."""
    exe = shutil.which("halo")
    command = [exe] if exe else [sys.executable, "-m", "halo_live"]
    policy = RolePolicy(root=[Reply(tool_calls=[call("get_dataset_overview")]),
                              lambda t: Reply(tool_calls=[call(
                                  "final_answer",
                                  answer=f"{tool_results(t)[0]['result']['total_traces']} traces")])])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HALO_"))}
    with ModelServer(policy) as server:
        proc = subprocess.run(
            [*command, *halo_args(traces, server, "--api", "responses")],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3 traces"
    assert "get_dataset_overview" in proc.stderr and "Traceback" not in proc.stderr


def test_empty_dataset_is_refused_before_any_model_call(tmp_path, capsys):
    (tmp_path / "shards").mkdir()
    policy = RolePolicy()
    with ModelServer(policy) as server:
        code = main(halo_args(tmp_path / "shards", server))
    line = _one_error_line(_errors_only(capsys))
    assert code == 1 and "no traces in" in line
    assert policy.seen == {}


def test_unwritable_telemetry_path_is_one_line(traces, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main([str(traces), "-p", "q", "--api-key", "k", "--telemetry", str(blocker / "t.jsonl")])
    line = _one_error_line(_errors_only(capsys))
    assert code == 1 and "cannot write telemetry" in line


def test_json_output_for_scripts(traces, capsys):
    import json

    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces")]), Reply(text="three")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--json", "-q")) == 0
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert payload["answer"] == "three" and payload["salvaged"] is False
    assert payload["stats"]["llm_calls"] == 2 and payload["stats"]["tool_calls"] == 1
    assert err == ""


def test_headers_and_key_reach_the_endpoint(traces, capsys):
    from tests._agent_helpers import CuttingProxy

    policy = RolePolicy(root=[Reply(text="ok")])
    with ModelServer(policy) as server, CuttingProxy(server.base_url, cut=set()) as proxy:
        code = main(halo_args(traces, proxy, "-H", "X-Team: blue", "--header", "X-Run:7"))
    assert code == 0
    sent = {k.lower(): v for k, v in proxy.headers[0].items()}
    assert sent["x-team"] == "blue" and sent["x-run"] == "7"
    assert sent["authorization"] == "Bearer test"
