"""`python -m halo_live.demo.benchmark`: run the benchmark once and print its score."""

from __future__ import annotations

import argparse
import sys
import time

from halo_live.demo.benchmark.runner import BenchmarkConfig, BenchmarkRun, FolderNotOurs
from halo_live.demo.openai_agents_sdk.agent import FIXES, settings_from


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m halo_live.demo.benchmark", description=__doc__)
    parser.add_argument("--out", default="halo-demo/baseline", help="output folder (trace shards, score.json)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=None, help="run only the first N tasks")
    parser.add_argument("--preset", choices=["baseline", "fixed"], default="baseline")
    parser.add_argument("--fix", action="append", default=[], choices=sorted(FIXES), help="apply one fix (repeatable)")
    parser.add_argument("--read-limit", type=int, default=None)
    parser.add_argument("--max-turns", type=int, default=None)
    parser.add_argument("--api", choices=["responses", "chat"], default="responses")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--transport", choices=["shards", "otlp"], default="shards",
                        help="shards: setup_tracing() per worker; otlp: OTel GenAI spans to a `halo serve` child")
    parser.add_argument("--online", action="store_true", help="use the real OpenAI API (OPENAI_API_KEY)")
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args.preset, args.fix, api=args.api, read_limit=args.read_limit,
                                 max_turns=args.max_turns)
        config = BenchmarkConfig(out=args.out, workers=args.workers, tasks=args.tasks, settings=settings,
                                 seed=args.seed, run_id=args.run_id, online=args.online,
                                 transport=args.transport)
    except ValueError as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2
    try:
        with BenchmarkRun(config) as run:
            while run.running():
                prog = run.progress()
                print(f"\r{prog.done}/{prog.total} done, {prog.passed} passed", end="", flush=True)
                time.sleep(0.5)
    except FolderNotOurs as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2
    score = run.score
    print(f"\r{score['passed']}/{score['tasks']} passed (score {score['score']:.2f}) "
          f"in {score['elapsed_s']} s; traces and score.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
