"""One benchmark worker process: runs its share of the tasks, traced into its own shard.

    python -m halo_live.demo.benchmark.worker '<spec JSON>'

The spec names the worker index, its task ids, the output folder, the harness
settings, the model endpoint and the run id. Tracing is the one
`setup_tracing()` call the README shows; each task's outcome is recorded in its
trace (`record_outcome`, what the index and the score read) and its answer is
appended to `results-w<k>.ndjson`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

from agents import Runner, trace

from halo_live.demo.benchmark.checker import TaskResult, check_and_record
from halo_live.demo.benchmark.layout import results_path, shard_path
from halo_live.demo.benchmark.tasks import TASKS
from halo_live.demo.openai_agents_sdk.agent import HarnessSettings, build_agent, open_model

SERVICE_NAME = "codebase-helper-bench"
PROJECT_ID = "halo-demo"


def start_tracing(out: Path, worker: int, run_id: str):
    """The one tracing call of the harness: this worker's spans go to its own shard."""
    from halo_live.exporter import setup_tracing

    return setup_tracing(service_name=SERVICE_NAME, project_id=PROJECT_ID,
                         path=shard_path(out, worker), run_id=run_id)


async def run_tasks(spec: dict, trace_ids: dict[str, str] | None = None) -> None:
    out, worker = Path(spec["out"]), int(spec["worker"])
    settings = HarnessSettings(**spec["settings"])
    tasks = {t.id: t for t in TASKS}
    async with open_model(settings, spec.get("base_url"), spec.get("model")) as model:
        agent = build_agent(settings, model, spec["repo"])
        with results_path(out, worker).open("a", encoding="utf-8") as results:
            for task_id in spec["task_ids"]:
                line = await run_task(agent, tasks[task_id], settings, spec["run_id"], worker, trace_ids)
                results.write(json.dumps(line.as_dict()) + "\n")
                results.flush()  # a live view follows this file


async def run_task(agent, task, settings: HarnessSettings, run_id: str, worker: int,
                   trace_ids: dict[str, str] | None = None) -> TaskResult:
    """One task in its own SDK trace (group id = task id), scored; `trace_ids` maps SDK to written ids."""
    started = time.monotonic()
    answer, error = None, None
    metadata = {"task_id": task.id, "run_id": run_id, "worker": str(worker)}
    with trace(f"task {task.id}", group_id=task.id, metadata=metadata) as current:
        try:
            result = await Runner.run(agent, task.question, max_turns=settings.max_turns)
            answer = str(result.final_output)
        except Exception as exc:  # a failed task is a result, not a crash of the benchmark
            error = exc
        passed, reason = check_and_record(task, answer, error)  # the outcome, inside the trace
    written = (trace_ids or {}).get(current.trace_id) or current.trace_id.removeprefix("trace_")
    return TaskResult(task.id, passed, reason, answer, written, worker, round(time.monotonic() - started, 3))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    # The SDK logs every tool error at ERROR level; the trace holds them, the log is noise here.
    logging.getLogger("openai.agents").setLevel(logging.CRITICAL)
    if spec.get("otlp_endpoint"):  # the other transport: OTLP to `halo serve`
        from halo_live.demo.benchmark.otel_bridge import start_otlp

        bridge, processor = start_otlp(spec["otlp_endpoint"], SERVICE_NAME, spec["run_id"], PROJECT_ID)
        trace_ids = bridge.otel_trace_ids
    else:
        processor, trace_ids = start_tracing(Path(spec["out"]), int(spec["worker"]), spec["run_id"]), None
    try:
        asyncio.run(run_tasks(spec, trace_ids))
    finally:
        processor.shutdown()  # flushes: every span is written (or acknowledged by the server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
