"""The offline model: a seeded policy that drives the codebase-helper tools like a weak LLM.

It reads only what a real model would read (the instructions, the tool
descriptions, the conversation) and has the failure modes real models have
with a first-draft harness, each switched off by a harness change:

- it asks `read_file` for far more lines than the tool allows, unless the
  instructions or the tool description state the limit ("at most N lines");
  after the terse rejection it halves the request once more, then gives up;
- it guesses a source directory that doesn't exist and, on the error,
  repeats the same call until the turn budget runs out, unless the
  instructions say how to recover (call `list_files` on a missing path);
- now and then it misreads a value (off by one line), whatever the harness.

Decisions are drawn from `random.Random(f"{seed}|{question}")`, so a run is
reproducible and two harnesses face the same "model" on the same task.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass

from halo_live.demo.model_server import Reply, ToolCall, Turn

P_WRONG_DIR = 0.3
P_BIG_READ = 0.5
P_MISREAD = 0.05
GUESSED_DIR = "lib/ledger"
BIG_READ = 200
SMALL_READ = 40

_LIMIT_RE = re.compile(r"at most (\d+) lines", re.I)
_RECOVERY_RE = re.compile(r"does not exist.{0,80}list_files", re.I | re.S)
_KEYWORD_RE = re.compile(r"`([^`]+)`")
_HIT_RE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): (?P<text>.*)$", re.M)


@dataclass
class _Call:
    name: str
    args: dict
    result: str

    @property
    def failed(self) -> bool:
        return self.result.lower().startswith("error")


def _history(turn: Turn) -> list[_Call]:
    """The tool calls of the conversation so far, with their results."""
    results = {m.get("tool_call_id"): m.get("content") or "" for m in turn.messages if m["role"] == "tool"}
    calls = []
    for message in turn.messages:
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except ValueError:
                args = {}
            calls.append(_Call(fn.get("name", ""), args, str(results.get(call.get("id"), ""))))
    return calls


def _question(turn: Turn) -> str:
    return next((m["content"] or "" for m in turn.messages if m["role"] == "user"), "")


def _keyword(question: str) -> str:
    quoted = _KEYWORD_RE.search(question)
    if quoted:
        return quoted.group(1)
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]+", question)
    return max(words, key=len) if words else question


def _value(text: str, keyword: str) -> tuple[int, str] | None:
    """(line number, value) of the first `keyword = value` line in numbered read output."""
    pattern = re.compile(rf"^(\d+): .*?\b{re.escape(keyword)}\s*[=:]\s*(.+)$", re.M)
    match = pattern.search(text)
    return (int(match.group(1)), match.group(2).strip()) if match else None


class OfflinePolicy:
    """A `Turn -> Reply` policy for the codebase-helper agent; `latency` scales its think time."""

    def __init__(self, seed: int = 0, latency: float = 1.0) -> None:
        self.seed = seed
        self.latency = latency

    def __call__(self, turn: Turn) -> Reply:
        question = _question(turn)
        rng = random.Random(f"{self.seed}|{question}")
        traits = {"wrong_dir": rng.random() < P_WRONG_DIR, "big_read": rng.random() < P_BIG_READ,
                  "misread": rng.random() < P_MISREAD}
        calls = _history(turn)
        if self.latency > 0:  # think time grows with the context, as a real model's does
            step = random.Random(f"{self.seed}|{question}|{len(calls)}")
            time.sleep(self.latency * (0.02 + 0.06 * step.random() + 0.005 * len(calls)))
        return self._decide(turn, _keyword(question), traits, calls)

    def _decide(self, turn: Turn, keyword: str, traits: dict, calls: list[_Call]) -> Reply:
        context = (turn.instructions or "") + " " + " ".join(t["description"] for t in turn.tools)
        limit_match = _LIMIT_RE.search(context)
        limit = int(limit_match.group(1)) if limit_match else None
        knows_recovery = bool(_RECOVERY_RE.search(turn.instructions or ""))
        if not calls:
            return _call("grep", pattern=re.escape(keyword), path=GUESSED_DIR if traits["wrong_dir"] else ".")
        last = calls[-1]
        if last.name == "grep":
            if last.failed:
                if knows_recovery:
                    return _call("list_files", path=".")
                return _call("grep", **last.args)  # the loop: same call, same error
            return self._read_first_hit(last.result, keyword, limit, traits)
        if last.name == "list_files":
            top = "src" if "src/" in last.result else "."
            return _call("grep", pattern=re.escape(keyword), path=top)
        if last.name == "read_file":
            if last.failed:
                if "no such file" in last.result:
                    return _call("list_files", path=".")
                asked = int(last.args.get("max_lines", BIG_READ))
                read_errors = sum(1 for c in calls if c.name == "read_file" and c.failed)
                if limit is None and read_errors < 2:
                    return _call("read_file", **{**last.args, "max_lines": max(1, asked // 2)})
                return Reply(text=f"I was unable to read {last.args.get('path')}: "
                                  "the read_file tool rejected my request.")
            found = _value(last.result, keyword)
            if not found:
                return Reply(text=f"I could not find `{keyword}` in {last.args.get('path')}.")
            line, value = found
            if traits["misread"]:
                nxt = re.search(rf"^{line + 1}: .*?[=:]\s*(.+)$", last.result, re.M)
                value = nxt.group(1).strip() if nxt else value
            return Reply(text=f"`{keyword}` is {value} (in {last.args.get('path')}, line {line}).")
        return Reply(text="I don't know.")

    def _read_first_hit(self, result: str, keyword: str, limit: int | None, traits: dict) -> Reply:
        hits = list(_HIT_RE.finditer(result))
        if not hits:
            return Reply(text=f"`{keyword}` does not appear in the repository.")
        assign = re.compile(rf"\b{re.escape(keyword)}\s*[=:]")
        hit = next((h for h in hits if assign.search(h.group("text"))), hits[0])
        wanted = limit if limit is not None else (BIG_READ if traits["big_read"] else SMALL_READ)
        start = max(1, int(hit.group("line")) - 3)
        return _call("read_file", path=hit.group("path"), start_line=start, max_lines=wanted)


def _call(name: str, **arguments) -> Reply:
    return Reply(tool_calls=[ToolCall(name, json.dumps(arguments))])
