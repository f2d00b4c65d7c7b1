"""Runs the benchmark: an offline model process, N worker processes, a score file.

    run = BenchmarkRun(BenchmarkConfig(out="runs/baseline", workers=4))
    with run:                       # starts the model server and the workers
        while run.running():
            print(run.progress())   # tasks done so far, from the results files
            time.sleep(0.5)
    score = run.score               # also written to runs/baseline/score.json

The score is what the traces say: each task's checker records its outcome in
the task's trace, and `finish()` counts the passed and failed outcomes of this
run in the index. The output folder holds one trace shard per worker
(`traces-w<k>.jsonl`, a dataset `halo` reads as a folder), their results
(`results-w<k>.ndjson`: answers and reasons), worker logs under `logs/`, the
browsed `fake-repo/`, and `score.json` (a summary; `halo compare` no longer needs it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halo_live.demo.benchmark.serve import HaloServeProcess
from halo_live.demo.benchmark.tasks import select
from halo_live.demo.benchmark.layout import MARKER_FILE, SCORE_FILE, SERVE_SHARDS, results_path, shard_path
from halo_live.demo.model_process import ModelServerProcess
from halo_live.demo.openai_agents_sdk.agent import HarnessSettings
from halo_live.demo.openai_agents_sdk.fake_repo import materialize
from halo_live.indexer import IndexFilters, TraceIndex

OFFLINE_POLICY = "halo_live.demo.offline_policy:OfflinePolicy"


@dataclass
class BenchmarkConfig:
    """One benchmark run. `online` uses the real OpenAI API (OPENAI_API_KEY) instead of the offline model."""

    out: str | Path
    workers: int = 4
    tasks: int | None = None
    settings: HarnessSettings = field(default_factory=HarnessSettings)
    seed: int = 0
    run_id: str | None = None
    online: bool = False
    model: str | None = None
    latency: float = 1.0  # scales the offline model's think time (0: as fast as possible)
    transport: str = "shards"  # "shards": setup_tracing() per worker; "otlp": OTLP to a `halo serve` child

    def __post_init__(self) -> None:
        if self.transport not in ("shards", "otlp"):
            raise ValueError(f"transport must be 'shards' or 'otlp', not {self.transport!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, not {self.workers}")
        select(self.tasks)  # validates the count
        if self.transport == "otlp" and importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is None:
            raise ValueError("the OTLP transport needs opentelemetry-exporter-otlp-proto-http "
                             "(pip install opentelemetry-exporter-otlp-proto-http)")
        if self.online and not os.environ.get("OPENAI_API_KEY"):
            raise ValueError("an online run needs OPENAI_API_KEY")


@dataclass
class Progress:
    total: int
    done: int = 0
    passed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    results: list[dict] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.passed / self.done if self.done else 0.0


class BenchmarkRun:
    """A running benchmark; a context manager that always stops its processes."""

    def __init__(self, config: BenchmarkConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        self.tasks = select(config.tasks)
        self.run_id = config.run_id or f"run-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.score: dict[str, Any] | None = None
        self._model: ModelServerProcess | None = None
        self._serve: HaloServeProcess | None = None
        self._workers: list[subprocess.Popen] = []
        self._logs: list[Any] = []
        self._started = 0.0

    def start(self) -> "BenchmarkRun":
        self._clean()
        repo = materialize(self.out / "fake-repo")
        base_url = None
        if not self.config.online:
            kwargs = {"seed": self.config.seed, "latency": self.config.latency}
            self._model = ModelServerProcess(OFFLINE_POLICY, kwargs).start()
            base_url = self._model.base_url
        (self.out / "logs").mkdir(exist_ok=True)
        endpoint = None
        if self.config.transport == "otlp":
            self._serve = HaloServeProcess(self.out, self.out / "logs" / "serve.log").start()
            endpoint = self._serve.endpoint
        self._started = time.time()
        n = min(self.config.workers, len(self.tasks))
        for k in range(n):
            spec = {"worker": k, "task_ids": [t.id for t in self.tasks[k::n]], "out": str(self.out),
                    "repo": str(repo), "settings": self.config.settings.as_dict(),
                    "base_url": base_url, "model": self.config.model, "run_id": self.run_id,
                    "otlp_endpoint": endpoint}
            log = (self.out / "logs" / f"w{k}.log").open("w")
            self._logs.append(log)
            self._workers.append(subprocess.Popen(
                [sys.executable, "-m", "halo_live.demo.benchmark.worker", json.dumps(spec)],
                stdout=log, stderr=subprocess.STDOUT))
        return self

    def _clean(self) -> None:
        """Remove what a previous benchmark wrote here, so runs don't stack; claim the folder.

        Only files a benchmark recorded in the folder's marker are deleted. A folder
        holding any other `.jsonl` (someone's traces) is refused: raises FolderNotOurs.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        owned, claimed = owned_files(self.out)
        foreign = foreign_files(self.out, owned)
        if foreign:
            raise FolderNotOurs(
                f"{self.out} holds trace files this benchmark did not write ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); a run replaces the shards in its folder: "
                "pick another folder")
        for name in sorted(owned):
            (self.out / name).unlink(missing_ok=True)
        if claimed:
            for stale in (self.out / "logs").glob("*.log"):
                if stale.name.startswith("w") or stale.name == "serve.log":
                    stale.unlink()
        # The index is derived from the shards just removed; a stale one would only be reset.
        shutil.rmtree(self.out / ".halo-index", ignore_errors=True)
        n = min(self.config.workers, len(self.tasks))
        files = [p.name for k in range(n) for p in (shard_path(self.out, k), results_path(self.out, k))]
        marker = {"run_id": self.run_id, "files": files + [SCORE_FILE],
                  "globs": [SERVE_SHARDS] if self.config.transport == "otlp" else []}
        (self.out / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")

    def running(self) -> bool:
        return any(w.poll() is None for w in self._workers)

    def progress(self) -> Progress:
        """Tasks done so far, read from the workers' results files."""
        prog = Progress(total=len(self.tasks))
        for k in range(len(self._workers)):
            path = results_path(self.out, k)
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line still being written
                prog.results.append(row)
        prog.done = len(prog.results)
        prog.passed = sum(1 for r in prog.results if r["passed"])
        for r in prog.results:
            prog.reasons[r["reason"]] = prog.reasons.get(r["reason"], 0) + 1
        return prog

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the workers; True when all have exited."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                worker.wait(left)
            except subprocess.TimeoutExpired:
                return False
        return True

    def finish(self) -> dict[str, Any]:
        """Wait for the workers, stop the model, write and return the score (from the traces)."""
        self.wait()
        self.stop()
        prog = self.progress()
        done, passed = outcomes_in_index(self.out, self.run_id)
        failed_workers = [k for k, w in enumerate(self._workers) if w.returncode != 0]
        self.score = {
            "run_id": self.run_id, "settings": self.config.settings.as_dict(),
            "seed": self.config.seed, "online": self.config.online, "transport": self.config.transport,
            "workers": len(self._workers), "tasks": prog.total, "done": done,
            "passed": passed, "score": round(passed / prog.total, 4) if prog.total else 0.0,
            "reasons": prog.reasons, "failed_workers": failed_workers,
            "elapsed_s": round(time.time() - self._started, 2),
            "results": sorted(prog.results, key=lambda r: r["task_id"]),
        }
        (self.out / SCORE_FILE).write_text(json.dumps(self.score, indent=2) + "\n")
        return self.score

    def stop(self) -> None:
        """Stop the workers and the model server now (no score); safe twice."""
        for worker in self._workers:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(10)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        for log in self._logs:
            log.close()
        self._logs = []
        if self._serve is not None:  # after the workers: they flushed, the server wrote it all
            self._serve.stop()
            self._serve = None
        if self._model is not None:
            self._model.stop()
            self._model = None

    def __enter__(self) -> "BenchmarkRun":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.stop()


def outcomes_in_index(out: Path, run_id: str) -> tuple[int, int]:
    """(tasks with a pass/fail outcome, tasks passed) of run `run_id`, as the index of `out` has them."""
    with TraceIndex.open(out) as index:
        index.catch_up()
        with index.snapshot() as snap:
            run = IndexFilters(run_ids=[run_id], outcome="passed")
            passed = snap.count(run)
            run.outcome = "failed"
            return passed + snap.count(run), passed


class FolderNotOurs(RuntimeError):
    """The run folder holds trace files no benchmark recorded writing: never delete them."""


def owned_files(out: Path) -> tuple[set[str], bool]:
    """Names of the files in `out` a benchmark wrote, and whether the folder is a benchmark's.

    From the marker a run writes before its first shard. A folder from before
    markers counts as a benchmark's only when it holds a benchmark's score or
    results files; then its `traces-w*`/`traces-serve-*` shards are its own.
    """
    try:
        marker = json.loads((out / MARKER_FILE).read_text())
    except (OSError, ValueError):
        marker = None
    if isinstance(marker, dict):
        names = {n for n in marker.get("files") or [] if isinstance(n, str) and "/" not in n}
        for pattern in marker.get("globs") or []:
            names.update(p.name for p in out.glob(str(pattern)))
        return {n for n in names if (out / n).is_file()}, True
    if _legacy_score(out / SCORE_FILE) or any(out.glob("results-w*.ndjson")):
        names = {p.name for pattern in ("traces-w*.jsonl", SERVE_SHARDS, "results-w*.ndjson", SCORE_FILE)
                 for p in out.glob(pattern)}
        return names, True
    return set(), False


def foreign_files(out: Path, owned: set[str] | None = None) -> list[str]:
    """The `.jsonl` files in `out` no benchmark recorded writing (a run must refuse the folder)."""
    if owned is None:
        owned = owned_files(out)[0]
    return sorted(p.name for p in Path(out).glob("*.jsonl") if p.name not in owned)


def _legacy_score(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "run_id" in data and "score" in data


def run_benchmark(config: BenchmarkConfig) -> dict[str, Any]:
    """Run to the end and return the score (as written to score.json)."""
    with BenchmarkRun(config) as run:
        run.wait()
    return run.score
