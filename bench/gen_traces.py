"""Deterministic generator of realistic synthetic canonical HALO traces.

Each trace is an agent run: a root AGENT span, turns (CHAIN) each with an LLM
call and one to three TOOL calls, payloads of a few KB (messages, tool
arguments and results). Several traces run concurrently and spans are written
when they end (children before parents, the root last), so traces interleave
in the file as they do in a real harness. A few error signatures recur (tool
timeouts, rate limits, bad tool arguments, an agent giving up).

At the default full size (50k traces) this writes ~1.27M spans / ~3.3 GB.
With `--outcomes` each trace also gets the outcome span `record_outcome` writes
(before its root ends), and nothing else changes: the same seed gives the same
spans with and without, so the two datasets measure what outcomes cost.

    python bench/gen_traces.py OUT.jsonl --traces 2000
    python bench/gen_traces.py OUT_DIR --traces 2000 --shards 4   # OUT_DIR/traces-p0.jsonl ...
    python bench/gen_traces.py OUT.jsonl --traces 2000 --outcomes
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from halo_live.exporter import canonical  # noqa: E402

MODELS = ("gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4", "o4-mini")
SERVICES = ("swe-harness", "web-agent", "data-agent")
AGENTS = ("planner", "coder", "researcher", "reviewer")
TOOLS = ("read_file", "write_file", "run_tests", "search_web", "bash", "fetch_url")
PROJECTS = ("proj-alpha", "proj-beta")
ERRORS = (  # (span kind, message), chosen with these weights when a span fails
    ("tool", "TimeoutError: tool call exceeded 30s"),
    ("tool", "ValueError: invalid JSON in tool arguments"),
    ("llm", "RateLimitError: Error code: 429 - rate limit reached for requests"),
    ("tool", "FileNotFoundError: [Errno 2] No such file or directory"),
    ("agent", "MaxTurnsExceeded: agent gave up after 12 turns"),
)
WORDS = ("the function returns a list of results for each input file and the test suite "
         "checks whether parsing handles edge cases like empty lines unicode and large "
         "payloads while the agent plans its next step reads the repository and edits "
         "code to fix the failing assertion in module parser before running tests again").split()
BASE_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z


class Gen:
    """Builds the spans of one trace; `rng` makes everything deterministic."""

    def __init__(self, seed: int, error_rate: float, outcomes: bool = False) -> None:
        self.rng = random.Random(seed)
        self.error_rate = error_rate
        # outcomes draw from their own generator: every other span stays as it is without them
        self.outcome_rng = random.Random(seed ^ 0x0C7C0E) if outcomes else None
        corpus_rng = random.Random(seed ^ 0x5EED)
        self.corpus = " ".join(corpus_rng.choice(WORDS) for _ in range(200_000))

    def text(self, n: int) -> str:
        at = self.rng.randrange(0, len(self.corpus) - n - 1)
        return self.corpus[at:at + n]

    def hexid(self, nbytes: int) -> str:
        return f"{self.rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"

    def trace(self, index: int, run_id: str) -> list[tuple[int, bytes]]:
        """All spans of trace `index` as (end time ns, encoded line)."""
        rng = self.rng
        trace_id = self.hexid(16)
        service = SERVICES[index % len(SERVICES)]
        model = rng.choice(MODELS)
        agent = rng.choice(AGENTS)
        project = PROJECTS[index % 7 == 0]
        start = BASE_NS + index * 2_000_000_000 + rng.randrange(0, 1_000_000_000)
        root_id = self.hexid(8)
        ctx = dict(trace_id=trace_id, service=service, project=project, run_id=run_id, agent=agent)
        spans: list[tuple[int, bytes]] = []
        t = start + 1_000_000
        fail_root = None
        for turn in range(rng.randint(4, 8)):
            turn_id = self.hexid(8)
            turn_start = t
            t += rng.randrange(5, 50) * 1_000_000
            llm_end = t + rng.randrange(300, 4000) * 1_000_000
            err = self._error("llm")
            spans.append(self._llm(ctx, turn_id, model, t, llm_end, err, turn))
            t = llm_end
            for _ in range(rng.randint(1, 3)):
                tool = rng.choice(TOOLS)
                tool_end = t + rng.randrange(10, 2000) * 1_000_000
                spans.append(self._tool(ctx, turn_id, tool, t, tool_end, self._error("tool")))
                t = tool_end
            spans.append(self._span(ctx, turn_id, root_id, f"turn {turn + 1}", canonical.OBS_CHAIN,
                                    turn_start, t, None, {"input.value": self.text(700)}))
        if rng.random() < self.error_rate / 4:
            fail_root = ERRORS[4][1]
        if self.outcome_rng is not None:
            spans.append(self._outcome(ctx, root_id, index, t))
        spans.append(self._span(ctx, root_id, "", f"agent_run {agent}", canonical.OBS_AGENT, start, t + 1_000_000,
                                fail_root, {"input.value": self.text(400), "output.value": self.text(200)}))
        return spans

    def _outcome(self, ctx, parent, index, at):
        """The task's outcome, as `record_outcome` writes it at the end of the task."""
        rng = self.outcome_rng
        passed = rng.random() < 0.7
        start = rng.randrange(0, len(self.corpus) - 81)
        attrs = canonical.outcome_attributes(
            passed=passed, score=1.0 if passed else round(rng.random() * 0.5, 3), task_id=f"task-{index:06d}",
            label="correct" if passed else rng.choice(("wrong answer", "gave up", "no answer")),
            explanation=self.corpus[start:start + 80])
        attrs[canonical.OI_SPAN_KIND] = canonical.OI_KIND_EVALUATOR
        return self._span(ctx, f"{rng.getrandbits(64):016x}", parent, canonical.EVALUATION_RESULT,
                          canonical.OBS_SPAN, at, at, None, attrs)

    def _error(self, kind: str) -> str | None:
        if self.rng.random() >= self.error_rate:
            return None
        choices = [m for k, m in ERRORS if k == kind]
        return self.rng.choice(choices)

    def _llm(self, ctx, parent, model, start, end, err, turn):
        """An LLM call as OpenInference instruments it: the conversation so far as flat
        `llm.input_messages.<i>.message.*` keys (so later turns carry more keys), usage,
        invocation parameters and the reply."""
        rng = self.rng
        messages = [("system", self.text(350)), ("user", self.text(rng.randrange(300, 800)))]
        for _ in range(turn):
            messages.append(("assistant", self.text(rng.randrange(40, 160))))
            messages.append(("tool", self.text(rng.randrange(100, 300))))
        prompt, completion = rng.randrange(500, 6000), rng.randrange(20, 800)
        attrs = {
            canonical.OI_SPAN_KIND: "LLM", canonical.OI_LLM_MODEL_NAME: model, canonical.OI_LLM_PROVIDER: "openai",
            canonical.OI_LLM_SYSTEM: "openai", canonical.OI_TOKENS_PROMPT: prompt, canonical.OI_TOKENS_COMPLETION: completion,
            "llm.token_count.total": prompt + completion,
            "llm.invocation_parameters": '{"temperature": 0.2, "max_tokens": 2048, "tool_choice": "auto"}',
            canonical.OI_INPUT_VALUE: messages[-1][1][:200], "input.mime_type": "text/plain",
            canonical.OI_SESSION_ID: ctx["trace_id"][:12],
        }
        for i, (role, content) in enumerate(messages):
            attrs[f"{canonical.OI_INPUT_MESSAGES}.{i}.message.role"] = role
            attrs[f"{canonical.OI_INPUT_MESSAGES}.{i}.message.content"] = content
        reply = self.text(rng.randrange(100, 500))
        attrs[f"{canonical.OI_OUTPUT_MESSAGES}.0.message.role"] = "assistant"
        attrs[f"{canonical.OI_OUTPUT_MESSAGES}.0.message.content"] = reply
        attrs[f"{canonical.OI_OUTPUT_MESSAGES}.0.message.tool_calls.0.tool_call.function.name"] = rng.choice(TOOLS)
        attrs[canonical.OI_OUTPUT_VALUE] = reply
        attrs["output.mime_type"] = "text/plain"
        return self._span(ctx, self.hexid(8), parent, "response", canonical.OBS_LLM, start, end, err, attrs)

    def _tool(self, ctx, parent, tool, start, end, err):
        attrs = {canonical.OI_SPAN_KIND: "TOOL", canonical.OI_TOOL_NAME: tool,
                 "tool.description": f"{tool}: " + self.text(60),
                 "tool.parameters": '{"type": "object", "properties": {"path": {"type": "string"}}}',
                 canonical.OI_INPUT_VALUE: '{"path": "src/%s.py"}' % self.text(12).replace(" ", "_"),
                 "input.mime_type": "application/json",
                 canonical.OI_OUTPUT_VALUE: self.text(self.rng.randrange(400, 2400)),
                 "output.mime_type": "text/plain"}
        return self._span(ctx, self.hexid(8), parent, f"function {tool}", canonical.OBS_TOOL, start, end, err, attrs)

    def _span(self, ctx, span_id, parent, name, kind, start, end, err, attrs):
        attrs = dict(attrs)
        attrs.update(canonical.project(attrs, project_id=ctx["project"], agent_name_hint=ctx["agent"]))
        attrs[canonical.INF_AGENT_NAME] = ctx["agent"]
        attrs[canonical.INF_RUN_ID] = ctx["run_id"]
        if kind == canonical.OBS_LLM:
            attrs[canonical.INF_LLM_MODEL_NAME] = attrs[canonical.OI_LLM_MODEL_NAME]
            attrs[canonical.INF_LLM_INPUT_TOKENS] = attrs[canonical.OI_TOKENS_PROMPT]
            attrs[canonical.INF_LLM_OUTPUT_TOKENS] = attrs[canonical.OI_TOKENS_COMPLETION]
        line = canonical.canonical_line(
            trace_id=ctx["trace_id"], span_id=span_id, parent_span_id=parent, name=name,
            kind=canonical.SPAN_KIND_INTERNAL, start_time=canonical.iso_from_ns(start), end_time=canonical.iso_from_ns(end),
            status_code=canonical.STATUS_ERROR if err else canonical.STATUS_OK, status_message=err or "",
            resource_attributes={canonical.SERVICE_NAME: ctx["service"], "service.version": "1.4.2"},
            scope_name="halo-bench", scope_version="0.1", attributes=attrs,
        )
        return end, canonical.encode_line(line)


def write_shard(path: Path, indices: list[int], seed: int, concurrency: int, error_rate: float,
                run_id: str, outcomes: bool = False) -> tuple[int, int]:
    """Write the traces `indices` to `path`, `concurrency` at a time interleaved by end time."""
    gen = Gen(seed, error_rate, outcomes)
    spans = bytes_ = 0
    with open(path, "wb") as out:
        for at in range(0, len(indices), concurrency):
            group: list[tuple[int, bytes]] = []
            for i in indices[at:at + concurrency]:
                # Traces start 2 s apart and run for many seconds, so a group overlaps in time.
                group.extend(gen.trace(i, run_id))
            group.sort(key=lambda item: item[0])
            buf = b"".join(line for _, line in group)
            out.write(buf)
            spans += len(group)
            bytes_ += len(buf)
    return spans, bytes_


def generate(out: Path, traces: int, *, shards: int = 1, seed: int = 7, concurrency: int = 8,
             error_rate: float = 0.03, run_id: str = "run-0001", outcomes: bool = False) -> tuple[int, int]:
    """Write the dataset; returns (spans, bytes). `shards` > 1 writes OUT/traces-p<i>.jsonl;
    `outcomes` adds an outcome span to every trace."""
    if shards <= 1:
        out.parent.mkdir(parents=True, exist_ok=True)
        return write_shard(out, list(range(traces)), seed, concurrency, error_rate, run_id, outcomes)
    out.mkdir(parents=True, exist_ok=True)
    spans = bytes_ = 0
    for s in range(shards):
        n, b = write_shard(out / f"traces-p{s}.jsonl", list(range(s, traces, shards)), seed + s,
                           concurrency, error_rate, run_id, outcomes)
        spans += n
        bytes_ += b
    return spans, bytes_


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="output .jsonl file, or a folder with --shards")
    ap.add_argument("--traces", type=int, default=50_000)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--concurrency", type=int, default=8, help="traces interleaved at a time")
    ap.add_argument("--error-rate", type=float, default=0.03, help="per-span failure probability")
    ap.add_argument("--outcomes", action="store_true", help="an outcome span in every trace")
    args = ap.parse_args(argv)
    spans, size = generate(args.out, args.traces, shards=args.shards, seed=args.seed,
                           concurrency=args.concurrency, error_rate=args.error_rate, outcomes=args.outcomes)
    print(f"wrote {args.traces} traces, {spans} spans, {size / 1e6:.1f} MB to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
