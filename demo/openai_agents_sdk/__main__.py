"""Ask the codebase helper about a repository, with every span traced to JSONL.

    python -m halo_live.demo.openai_agents_sdk "What is `DEFAULT_PORT` set to?"
    python -m halo_live.demo.openai_agents_sdk --repo . "Where is the CLI defined?"

With OPENAI_API_KEY set it uses a real model (`--model`, default gpt-4.1-mini);
without one (or with `--offline`) it starts the bundled offline model as a
separate process, so the real SDK and the real `openai` client produce real
spans either way. By default it browses a bundled fake repository.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile

from agents import Runner

from halo_live.demo.openai_agents_sdk.agent import HarnessSettings, build_agent, open_model
from halo_live.demo.openai_agents_sdk.fake_repo import materialize

DEFAULT_QUESTION = "What is `DEFAULT_PORT` set to?"
OFFLINE_POLICY = "halo_live.demo.offline_policy:OfflinePolicy"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m halo_live.demo.openai_agents_sdk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", nargs="*", help=f"default: {DEFAULT_QUESTION!r}")
    parser.add_argument("--traces", default=None, help="trace file (default $HALO_TRACES_PATH, else ./traces.jsonl)")
    parser.add_argument("--repo", default=None, help="repository to browse (default: the bundled fake one)")
    parser.add_argument("--fixed", action="store_true", help="run the harness with its fixes applied")
    parser.add_argument("--api", choices=["responses", "chat"], default="responses")
    parser.add_argument("--offline", action="store_true", help="use the offline model even with an API key")
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", type=int, default=0, help="the offline model's seed")
    return parser.parse_args(argv)


async def ask(question: str, settings: HarnessSettings, base_url: str | None, model: str | None, repo: str) -> str:
    async with open_model(settings, base_url, model) as model_obj:
        agent = build_agent(settings, model_obj, repo)
        result = await Runner.run(agent, question, max_turns=settings.max_turns)
        return str(result.final_output)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from halo_live.exporter import setup_tracing

    # The one line a harness needs: every span of every run below becomes a JSONL line.
    tracing = setup_tracing(service_name="codebase-helper", project_id="halo-demo", path=args.traces)
    logging.getLogger("openai.agents").setLevel(logging.CRITICAL)  # tool errors are in the trace
    settings = HarnessSettings.preset("fixed" if args.fixed else "baseline", api=args.api)
    question = " ".join(args.question) or DEFAULT_QUESTION
    online = bool(os.environ.get("OPENAI_API_KEY")) and not args.offline
    with tempfile.TemporaryDirectory(prefix="halo-fake-repo-") as scratch:
        repo = args.repo or str(materialize(scratch))
        try:
            if online:
                answer = asyncio.run(ask(question, settings, None, args.model, repo))
            else:
                from halo_live.demo.model_process import ModelServerProcess

                kwargs = {"seed": args.seed, "latency": 0.2}
                with ModelServerProcess(OFFLINE_POLICY, kwargs) as offline:
                    answer = asyncio.run(ask(question, settings, offline.base_url, args.model, repo))
        except Exception as exc:  # the run failed; its trace says why
            answer = f"(the run failed: {type(exc).__name__}: {exc})"
        finally:
            tracing.shutdown()
    path = args.traces or os.environ.get("HALO_TRACES_PATH") or "traces.jsonl"
    print(answer)
    print(f"\ntraces written to {path}; try: halo report {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
