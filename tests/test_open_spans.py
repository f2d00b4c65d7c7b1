"""Open traces: a real `Runner.run` whose model answer is delayed shows as running with its
open LLM span, then stuck, then complete; a worker killed with SIGKILL mid-task shows as
abandoned; the canonical file beside the sidecar still loads in halo-engine 0.3.5."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import openai
import pytest
from agents import Agent, ModelSettings, RunConfig, Runner, function_tool
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel

from halo_live.demo.model_server import ModelServer, Reply, ToolCall
from halo_live.engine.models import TraceFilters
from halo_live.engine.tools import open_store, run_tool
from halo_live.exporter import setup_tracing
from halo_live.exporter.open_spans import is_sidecar, read_sidecar
from tests._exporter_helpers import check_file, sdk_processors_restored

ROOT = Path(__file__).resolve().parents[1]
MODEL = "slow-model"
DEADLINE = 60.0


class HeldPolicy:
    """Calls `add` once, then holds its second answer until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.turns = 0

    def __call__(self, turn) -> Reply:
        self.turns += 1
        if self.turns == 1:
            return Reply(tool_calls=[ToolCall("add", '{"a": 1, "b": 2}')])
        self.release.wait(DEADLINE)
        return Reply(text="3")


@function_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def wait_for(check, what: str):
    """Poll `check()` until it returns a truthy value (no timing is asserted, only the outcome)."""
    end = time.monotonic() + DEADLINE
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"never saw {what}")
        time.sleep(0.1)


def live_tasks(store, **filters):
    return store.get_overview(TraceFilters(**filters)).live_tasks


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_a_delayed_model_call_is_running_then_stuck_then_complete(tmp_path, api, halo_reference):
    path = tmp_path / "traces.jsonl"
    policy = HeldPolicy()
    with sdk_processors_restored(), ModelServer(policy) as server:
        processor = setup_tracing(service_name="svc", project_id="proj", path=path)
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        model_cls = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
        agent = Agent(name="solver", instructions="Add.", tools=[add], model_settings=ModelSettings(),
                      model=model_cls(model=MODEL, openai_client=client))
        result: list = []

        async def go():
            try:
                result.append(await Runner.run(agent, "1+2?", run_config=RunConfig(workflow_name="task-7")))
            finally:
                await client.close()

        runner = threading.Thread(target=lambda: asyncio.run(go()))
        runner.start()
        try:
            wait_for(path.exists, "the trace file")  # made with the sidecar, before any span ends
            with open_store(path) as patient, open_store(path, stuck_after=2) as impatient:
                # the tool call's spans are written; the agent and its second LLM call are open
                tasks = wait_for(lambda: (lambda t: t if t.running == 1 and t.open_tasks[0].written
                                          and t.open_tasks[0].current_span else None)(live_tasks(patient)),
                                 "the running task")
                task = tasks.open_tasks[0]
                assert task.state == "running" and task.pid == os.getpid()
                assert task.current_span.kind == "LLM" and task.current_span.agent == "solver"
                assert task.current_span.model == MODEL and task.doing == f"LLM call to {MODEL}"
                assert task.since == task.current_span.started_at and task.last_activity >= task.since
                assert tasks.complete == 0 and tasks.stuck == tasks.abandoned == 0
                assert run_tool(patient, "count_traces", {"filters": {"state": "running"}}) == {"result": {"total": 1}}
                listed = run_tool(patient, "query_traces", {"filters": {"state": "running"}})["result"]
                assert [t["trace_id"] for t in listed["traces"]] == [task.trace_id]
                assert run_tool(patient, "count_traces", {"filters": {"state": "complete"}})["result"]["total"] == 0

                # nothing starts or ends while the model holds its answer: stuck past the threshold
                stuck = wait_for(lambda: (lambda t: t if t.stuck == 1 else None)(live_tasks(impatient)),
                                 "the stuck task")
                assert stuck.running == 0 and stuck.open_tasks[0].trace_id == task.trace_id
                assert stuck.open_tasks[0].current_span.kind == "LLM"
                assert impatient.count_traces(TraceFilters(state="stuck")).total == 1
                assert impatient.count_traces(TraceFilters(state="stuck", has_errors=True)).total == 0

                policy.release.set()
                runner.join(DEADLINE)
                processor.force_flush()
                done = wait_for(lambda: (lambda t: t if t.complete == 1 and not t.open_tasks else None)(
                    live_tasks(patient)), "the task complete")
                assert done.running == done.stuck == done.abandoned == 0
                assert patient.count_traces(TraceFilters(state="complete")).total == 1
                assert patient.count_traces(TraceFilters(state="running")).total == 0
        finally:
            policy.release.set()
            runner.join(DEADLINE)
            processor.shutdown()
    assert result and result[0].final_output == "3"
    assert not [p for p in tmp_path.iterdir() if is_sidecar(p.name)]  # removed at shutdown
    check_file(path)
    # the canonical file the run wrote loads in halo-engine 0.3.5, with equal answers
    from tests.test_tools_reference import assert_same_as_reference

    spans = [json.loads(line) for line in path.read_bytes().splitlines()]
    trace_id = spans[0]["trace_id"]
    calls = [{"tool": "get_dataset_overview", "args": {}}, {"tool": "query_traces", "args": {}},
             {"tool": "count_traces", "args": {"filters": {"agent_names": ["solver"]}}},
             {"tool": "view_trace", "args": {"trace_id": trace_id}},
             {"tool": "view_spans", "args": {"trace_id": trace_id, "span_ids": [spans[0]["span_id"]]}},
             {"tool": "search_trace", "args": {"trace_id": trace_id, "regex_pattern": MODEL}}]
    with open_store(path) as store:
        assert_same_as_reference(halo_reference, [path], calls, store, tmp_path)


WORKER = textwrap.dedent("""
    import asyncio, sys
    import openai
    from agents import Agent, Runner
    from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
    from halo_live.exporter import setup_tracing

    setup_tracing(service_name="worker", project_id="proj", path=sys.argv[1])
    client = openai.AsyncOpenAI(base_url=sys.argv[2], api_key="test", max_retries=0)
    agent = Agent(name="worker-agent", instructions="Answer.",
                  model=OpenAIChatCompletionsModel(model="held-model", openai_client=client))
    asyncio.run(Runner.run(agent, "hang"))
""")


def test_a_worker_killed_mid_task_is_abandoned(tmp_path):
    path = tmp_path / "traces.jsonl"
    release = threading.Event()

    def held(turn) -> Reply:
        release.wait(DEADLINE)
        return Reply(text="late")

    with ModelServer(held) as server:
        worker = subprocess.Popen([sys.executable, "-c", WORKER, str(path), server.base_url], cwd=ROOT)
        try:
            sidecar = wait_for(lambda: next((p for p in tmp_path.iterdir() if is_sidecar(p.name)
                                             and (read_sidecar(p) or {}).get("traces")), None), "the sidecar")
            assert path.exists()
            with open_store(path) as store:
                running = wait_for(lambda: (lambda t: t if t.running == 1 and t.open_tasks[0].current_span
                                            and t.open_tasks[0].current_span.kind == "LLM" else None)(
                    live_tasks(store)), "the worker's running task")
                assert running.open_tasks[0].pid == worker.pid and not running.open_tasks[0].written
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(DEADLINE)
                gone = live_tasks(store)
                assert (gone.running, gone.stuck, gone.abandoned) == (0, 0, 1)
                task = gone.open_tasks[0]
                assert task.state == "abandoned" and task.why == f"process {worker.pid} is gone"
                assert task.current_span.model == "held-model"
                answer = run_tool(store, "query_traces", {"filters": {"state": "abandoned"}})["result"]
                assert [t["trace_id"] for t in answer["traces"]] == [task.trace_id]
                assert answer["traces"][0]["span_count"] == 0
            assert sidecar.exists()  # SIGKILL leaves it: that is how we know
        finally:
            release.set()
            if worker.poll() is None:
                worker.kill()
                worker.wait(DEADLINE)


def test_the_file_beside_a_sidecar_answers_as_the_reference(halo_reference, tmp_path):
    from tests.test_tools_reference import assert_same_as_reference, calls_for

    from tests import _tools_helpers as gen

    lines = gen.generate(20, seed=5, big_every=7, incomplete_every=4)
    path = gen.write(tmp_path / "traces.jsonl", lines)
    sidecar = Path(f"{path}.halo-open-otherhost-4242.json")
    sidecar.write_text(json.dumps({
        "format": "halo-live-open/1", "pid": 4242, "host": "otherhost", "updated_at": time.time(),
        "interval": 1.0, "service": "svc", "project_id": "p",
        "traces": [{"trace_id": "f" * 32, "name": "t", "started_at": time.time(), "last_activity": time.time(),
                    "spans": [{"span_id": "a" * 16, "parent_span_id": "", "name": "agent.x", "kind": "AGENT",
                               "agent": "x", "model": None, "started_at": time.time()}]}]}))
    with open_store(path) as store:
        assert_same_as_reference(halo_reference, [path], calls_for(lines), store, tmp_path)
        tasks = live_tasks(store)
        total = store.count_traces(TraceFilters()).total
        assert tasks.running == 1 and tasks.unwritten == 1
        assert tasks.complete + tasks.running + tasks.stuck + tasks.abandoned == total + tasks.unwritten
        counted = sum(store.count_traces(TraceFilters(state=s)).total
                      for s in ("complete", "running", "stuck", "abandoned"))
        assert counted == total + tasks.unwritten


def _span(trace_id: str, span_id: str, parent: str, ended_ago: float) -> bytes:
    from halo_live.exporter import canonical as c

    end = int((time.time() - ended_ago) * 1e9)
    return c.encode_line(c.canonical_line(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="tool.grep", kind=c.SPAN_KIND_INTERNAL,
        start_time=c.iso_from_ns(end - 10**9), end_time=c.iso_from_ns(end), status_code=c.STATUS_OK,
        status_message="", resource_attributes={c.SERVICE_NAME: "otlp-app"}, scope_name="s", scope_version="1",
        attributes={c.INF_SCHEMA_VERSION: 1, c.INF_PROJECT_ID: "p", c.INF_OBSERVATION_KIND: "TOOL"}))


def test_traces_known_only_from_their_spans_are_judged_by_silence(tmp_path):
    """What an OTLP receiver sees: spans as they end. No root yet = open; silence decides the state."""
    path = tmp_path / "traces.jsonl"
    running, stuck, abandoned, done = (f"{n:032x}" for n in (1, 2, 3, 4))
    path.write_bytes(b"".join([
        _span(running, "a" * 16, "f" * 16, 10), _span(stuck, "b" * 16, "f" * 16, 400),
        _span(abandoned, "c" * 16, "f" * 16, 1300), _span(done, "d" * 16, "", 5000)]))
    with open_store(path) as store:
        tasks = live_tasks(store)
        assert (tasks.complete, tasks.running, tasks.stuck, tasks.abandoned) == (1, 1, 1, 1)
        states = {t.trace_id: (t.state, t.pid) for t in tasks.open_tasks}
        assert states == {running: ("running", None), stuck: ("stuck", None), abandoned: ("abandoned", None)}
        assert [t.trace_id for t in tasks.open_tasks] == [abandoned, stuck, running]  # the worst first
        assert run_tool(store, "get_dataset_overview", {}) == run_tool(store, "get_dataset_overview", {})
        for state, trace_id in (("running", running), ("stuck", stuck), ("abandoned", abandoned),
                                ("complete", done)):
            page = store.query_traces(TraceFilters(state=state))
            assert [t.trace_id for t in page.traces] == [trace_id] and page.total == 1
            assert store.count_traces(TraceFilters(state=state)).total == 1
            assert store.count_traces(TraceFilters(state=state, service_names=["otlp-app"])).total == 1
        assert store.count_traces(TraceFilters(state="stuck", service_names=["other"])).total == 0
        # one filter value: the overview comes from the index's rollup; a regex sends it through the rows
        from_rollup = live_tasks(store, service_names=["otlp-app"])
        assert (from_rollup.complete, from_rollup.running, from_rollup.stuck, from_rollup.abandoned) == (1, 1, 1, 1)
        assert from_rollup == live_tasks(store, service_names=["otlp-app"], regex_pattern=".")
    with open_store(path, stuck_after=5000) as patient:  # a longer threshold: all three still run
        assert live_tasks(patient).running == 3


def _sidecar(path: Path, name: str, *, pid: int, host: str, updated_ago: float, pid_start=None,
             trace_id: str) -> None:
    now = time.time()
    Path(f"{path}.halo-open-{name}.json").write_text(json.dumps({
        "format": "halo-live-open/1", "pid": pid, "pid_start": pid_start, "host": host,
        "updated_at": now - updated_ago, "interval": 1.0, "service": "svc", "project_id": "p",
        "traces": [{"trace_id": trace_id, "name": "t", "started_at": now - 30, "last_activity": now - 1,
                    "spans": []}]}))


def test_a_reused_pid_or_a_silent_writer_on_another_host_means_abandoned(tmp_path):
    from halo_live.exporter.open_spans import hostname, process_start

    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"")
    me, reused, far_fresh, far_silent = (f"{n:032x}" for n in (11, 12, 13, 14))
    _sidecar(path, "me", pid=os.getpid(), host=hostname(), updated_ago=0, trace_id=me,
             pid_start=process_start(os.getpid()))
    _sidecar(path, "reused", pid=os.getpid(), host=hostname(), updated_ago=0, trace_id=reused,
             pid_start="1")  # the same pid, but not the process that wrote this sidecar
    _sidecar(path, "far1", pid=7, host="elsewhere", updated_ago=2, trace_id=far_fresh)
    _sidecar(path, "far2", pid=7, host="elsewhere", updated_ago=900, trace_id=far_silent)
    with open_store(path) as store:
        states = {t.trace_id: t.state for t in live_tasks(store).open_tasks}
    assert states == {me: "running", reused: "abandoned", far_fresh: "running", far_silent: "abandoned"}


def test_halo_tool_takes_the_threshold_as_stuck_after(tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_bytes(_span(f"{5:032x}", "e" * 16, "f" * 16, 400))  # open, silent 400 s
    for flag, state in ((["--stuck-after", "300"], "stuck"), (["--stuck-after", "1000"], "running"), ([], "stuck")):
        done = subprocess.run([sys.executable, "-m", "halo_live", "tool", "count_traces", str(path), "--args",
                               json.dumps({"filters": {"state": state}}), *flag], capture_output=True, text=True,
                              timeout=DEADLINE, cwd=ROOT)
        assert done.returncode == 0 and json.loads(done.stdout) == {"result": {"total": 1}}, (flag, done.stderr)


def test_no_sidecar_when_open_spans_are_off(tmp_path):
    from agents.tracing import agent_span, trace

    path = tmp_path / "traces.jsonl"
    with sdk_processors_restored():
        processor = setup_tracing(path=path, open_spans=False)
        with trace("t"), agent_span(name="a"):
            time.sleep(0.05)
        processor.shutdown()
    assert [p.name for p in tmp_path.iterdir()] == ["traces.jsonl"]
