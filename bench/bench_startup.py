"""Benchmark the command line's start-up: wall-clock of whole `halo-live` processes.

    python bench/bench_startup.py [--runs 11] [--traces 200]

Each command runs `--runs` times after one warm-up (a warm file cache), as its
own process through the installed `halo-live` script beside this Python
(never a shell shim), on a small deterministic dataset indexed beforehand.
Printed per command: median, min and max milliseconds. Two floors are printed
with them: the interpreter alone, and the interpreter plus pydantic with one
model built, which every command that validates a tool's arguments pays (with
the installed pydantic plugins, and without them, as `halo-live` runs), except
`halo tool count_traces`, which takes the lite lane (`halo_live.engine.lite`).

Python modules are compiled once and their bytecode cached, as for any
installed package: the warm-up writes it under a temporary
`PYTHONPYCACHEPREFIX` (so the source tree stays clean, and a stray
`__pycache__` or a `PYTHONDONTWRITEBYTECODE` in the environment changes
nothing). An editable install run with `PYTHONDONTWRITEBYTECODE=1` and no
`__pycache__` compiles its modules from source on every run instead, which
costs a short command about 25 ms more.
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


def timed(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    """Milliseconds of `runs` runs of `argv`, after one warm-up; a failing command stops the bench."""
    times = []
    for i in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
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
        env = dict(os.environ, PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        traces = Path(tmp) / "traces.jsonl"
        generate(traces, args.traces, seed=7)
        subprocess.run([str(script), "index", str(traces)], check=True, stdout=subprocess.DEVNULL, env=env)
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
            ("halo-live tool count_traces, errors only",
             [str(script), "tool", "count_traces", str(traces), "--args", '{"filters": {"has_errors": true}}']),
            ("halo-live tool query_traces (through pydantic)",
             [str(script), "tool", "query_traces", str(traces), "--args", '{"limit": 5}']),
            ("halo-live report FILE", [str(script), "report", str(traces)]),
        ]
        print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
              f"{os.cpu_count()} CPUs; {args.traces} traces; {args.runs} runs after a warm-up; load average "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"{'command':<48} {'median':>8} {'min':>8} {'max':>8}  (ms)")
        for label, argv in rows:
            times = timed(argv, args.runs, env)
            print(f"{label:<48} {statistics.median(times):8.1f} {min(times):8.1f} {max(times):8.1f}")
        print("# load average at the end " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
