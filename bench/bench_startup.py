"""Benchmark the command line's start-up: wall-clock of whole `halo-live` processes.

    python bench/bench_startup.py [--runs 11] [--traces 200]

Each command runs `--runs` times after one warm-up (a warm file cache), as its
own process through the installed `halo-live` script beside this Python
(never a shell shim), on a small deterministic dataset indexed beforehand.
Printed per command: median, min and max milliseconds. Two floors are printed
with them: the interpreter alone, and the interpreter plus pydantic with one
model built, which every command that validates a tool's arguments pays (with
the installed pydantic plugins, and without them, as `halo-live` runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_traces import generate  # noqa: E402

PYDANTIC_FLOOR = ("from pydantic import BaseModel\n"
                  "class A(BaseModel):\n    x: int = 0\nA()")


def timed(argv: list[str], runs: int) -> list[float]:
    """Milliseconds of `runs` runs of `argv`, after one warm-up; a failing command stops the bench."""
    times = []
    for i in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = (time.perf_counter() - started) * 1000
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-300:]}")
        if i:
            times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--traces", type=int, default=200)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "halo-live"
    if not script.exists():
        raise SystemExit(f"no halo-live script beside {sys.executable}: pip install the project first")
    with tempfile.TemporaryDirectory() as tmp:
        traces = Path(tmp) / "traces.jsonl"
        generate(traces, args.traces, seed=7)
        subprocess.run([str(script), "index", str(traces)], check=True, stdout=subprocess.DEVNULL)
        rows = [
            ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
            ("python + pydantic, one model (floor)", [sys.executable, "-c", PYDANTIC_FLOOR]),
            ("  the same, pydantic plugins off (as halo runs)",
             ["env", "PYDANTIC_DISABLE_PLUGINS=__all__", sys.executable, "-c", PYDANTIC_FLOOR]),
            ("halo-live --version", [str(script), "--version"]),
            ("halo-live --help", [str(script), "--help"]),
            ("halo-live index FILE (nothing new)", [str(script), "index", str(traces)]),
            ("halo-live tool count_traces FILE --args '{}'",
             [str(script), "tool", "count_traces", str(traces), "--args", "{}"]),
            ("halo-live report FILE", [str(script), "report", str(traces)]),
        ]
        print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
              f"{os.cpu_count()} CPUs; {args.traces} traces; {args.runs} runs after a warm-up")
        print(f"{'command':<48} {'median':>8} {'min':>8} {'max':>8}  (ms)")
        for label, argv in rows:
            times = timed(argv, args.runs)
            print(f"{label:<48} {statistics.median(times):8.1f} {min(times):8.1f} {max(times):8.1f}")


if __name__ == "__main__":
    main()
