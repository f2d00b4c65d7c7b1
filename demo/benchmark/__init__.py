"""A small benchmark of the codebase-helper agent, run by parallel worker processes.

    from halo_live.demo.benchmark import BenchmarkConfig, BenchmarkRun, run_benchmark
    score = run_benchmark(BenchmarkConfig(out="runs/baseline", workers=4))

Or `python -m halo_live.demo.benchmark --out runs/baseline [--preset fixed]`.
"""

from halo_live.demo.benchmark.layout import score_path
from halo_live.demo.benchmark.runner import BenchmarkConfig, BenchmarkRun, Progress, run_benchmark
from halo_live.demo.benchmark.tasks import TASKS, Task

__all__ = ["BenchmarkConfig", "BenchmarkRun", "Progress", "run_benchmark", "score_path", "TASKS", "Task"]
