"""Run folders: a `halo TRACE_PATH -p` run killed mid-way resumes from its last completed
turn, and a finished run takes a follow-up. Real `halo` processes and real `Runner` runs
against the scripted model server; the runs live in a tmp `$HALO_RUNS_DIR`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from halo_live.cli import main
from halo_live.demo.model_server import ModelServer, Reply
from tests._agent_helpers import RolePolicy, call, halo_args, tool_results, write_traces


@pytest.fixture(autouse=True)
def _no_ambient_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def traces(tmp_path):
    return write_traces(tmp_path / "traces.jsonl")


def states() -> list[dict]:
    root = Path(os.environ["HALO_RUNS_DIR"])
    found = [json.loads(p.read_text()) for p in root.glob("*/state.json")]
    return sorted(found, key=lambda s: s["created_at"])


def _endpoint(server) -> list[str]:
    return ["--base-url", server.base_url, "--api-key", "test"]


def _two_lookups_then(block: threading.Event, reached: threading.Event):
    """Turns 1 and 2 call tools; turn 3 hangs (the process is stopped there); the resumed
    run's first turn answers from the two results it finds in its conversation."""

    def hang(turn):
        reached.set()
        block.wait(60)
        return Reply(text="too late")

    def answer(turn):
        counted = tool_results(turn, "count_traces")
        queried = tool_results(turn, "query_traces")
        return Reply(tool_calls=[call("final_answer", answer=(
            f"{len(counted)}+{len(queried)} results: {counted[0]['result']['total']} traces"))])

    return RolePolicy(root=[Reply(tool_calls=[call("count_traces")]),
                            Reply(tool_calls=[call("query_traces", limit=2)]), hang, answer])


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_run_stopped_after_two_turns_resumes_without_redoing_them(traces, capsys, how):
    block, reached = threading.Event(), threading.Event()
    policy = _two_lookups_then(block, reached)
    with ModelServer(policy) as server:
        argv = [sys.executable, "-m", "halo_live", *halo_args(traces, server, "--max-depth", "0")]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert reached.wait(120), proc.stderr.read() if proc.poll() is not None else "no third turn"
            proc.send_signal(getattr(signal, how))
            _, err = proc.communicate(timeout=60)
        finally:
            block.set()
            if proc.poll() is None:
                proc.kill()
        [state] = states()
        assert state["turns"] == 2 and state["answer"] is None
        if how == "SIGINT":  # Ctrl-C: one line, exit 130, the run marked as stopped
            assert proc.returncode == 130
            assert f"halo: run {state['run_id']} interrupted; resume it with: halo --resume {state['run_id']}" in err
            assert state["status"] == "failed" and state["error"] == "interrupted"
        else:  # killed outright: the last checkpoint is all there is
            assert proc.returncode == -signal.SIGKILL and state["status"] == "running"

        assert main(["--resume", "last", *_endpoint(server)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "1+1 results: 3 traces"
    root_turns = policy.seen["root"]
    assert len(root_turns) == 4  # two tool turns, the one cut off, one resumed: nothing redone
    resumed = root_turns[-1]
    assert resumed.messages[0]["content"] == "what fails and why?"
    assert "[halo: turn 3 of 20]" in str(resumed.messages[-1]["content"])
    [done] = states()
    assert done["status"] == "done" and done["answer"] == "1+1 results: 3 traces"
    assert done["turns"] == 3


def test_a_model_outage_fails_the_run_in_one_line_and_resume_finishes_it(traces, capsys):
    outage = Reply(error_status=503, error_message="overloaded")
    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces")]), outage,
                              lambda turn: Reply(text=f"resumed: {tool_results(turn)[0]['result']['total']}")])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, "--max-retries", "0"))
        _, err = capsys.readouterr()
        [state] = states()
        assert code == 1
        assert err.strip().endswith(f"; resume it with: halo --resume {state['run_id']}")
        assert len([line for line in err.splitlines() if line.startswith("halo:")]) == 1
        assert state["status"] == "failed" and state["turns"] == 1 and "503" in state["error"]
        assert main(["--resume", state["run_id"], *_endpoint(server), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    assert out.strip() == "resumed: 3"
    assert len(policy.seen["root"]) == 3  # the count was not made again
    assert "api_key" not in states()[0]["settings"]  # the key is never written down


def test_continue_asks_a_follow_up_in_the_finished_conversation(traces, capsys):
    def follow_up(turn):
        said = [m["content"] for m in turn.messages if m["role"] in ("user", "assistant")
                and isinstance(m.get("content"), str) and not m["content"].startswith("[halo:")]
        return Reply(text=" / ".join(said))

    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces")]), Reply(text="three traces"),
                              follow_up])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, prompt="how many?", *["--quiet"])) == 0
        assert capsys.readouterr().out.strip() == "three traces"
        assert main(["--continue", "-p", "which fail?", *_endpoint(server), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    assert out.strip() == "how many? / three traces / which fail?"
    first, second = states()
    assert second["parent"] == first["run_id"] and second["prompt"] == "which fail?"
    assert second["status"] == "done" and second["turns"] == 1 and first["turns"] == 2
    assert tool_results(policy.seen["root"][-1], "count_traces")[0]["result"]["total"] == 3


@pytest.mark.parametrize(("argv", "message"), [
    (["--resume", "no-such-run"], "no run 'no-such-run' in "),
    (["--continue", "-p", "q"], "no runs in "),
    (["--resume", "last", "--continue", "-p", "q"], "--resume and --continue do not go together"),
])
def test_a_bad_resume_is_one_line(argv, message, capsys):
    assert main([*argv, "--api-key", "k"]) == 2
    _, err = capsys.readouterr()
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_finished_run_is_not_resumed_and_a_stopped_one_takes_no_follow_up(traces, capsys):
    policy = RolePolicy(root=[Reply(text="done"), Reply(error_status=503)])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--quiet")) == 0
        [state] = states()
        assert main(["--resume", state["run_id"], *_endpoint(server)]) == 2
        _, err = capsys.readouterr()
        assert f"run {state['run_id']} is finished; ask a follow-up with halo --continue" in err
        assert main(halo_args(traces, server, "--max-retries", "0", "--quiet")) == 1
        stopped = states()[-1]["run_id"]
        assert main(["--continue", stopped, "-p", "more?", *_endpoint(server)]) == 2
    _, err = capsys.readouterr()
    assert f"run {stopped} has not finished (failed); resume it first: halo --resume {stopped}" in err
