"""A seeded stand-in model for any Agents SDK harness: calls its tools, then answers.

    python -m halo_live.demo.model_server --port 8000          # this policy is the default
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=any python my_harness.py

Each turn it reads the tools the agent offers and how many tool results the
conversation already holds. Until `calls` tools have been called (handoffs
excepted, which would end the agent's turn early) it asks for one, chosen by the
seed and the conversation, with arguments built from the tool's JSON schema so
that the SDK accepts them; then it answers in one sentence naming what it
called. No API key and no network: a harness instrumented with
`setup_tracing()` gets real runs, real spans and real tool errors to look at.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from halo_live.demo.model_server import Reply, ToolCall, Turn

HANDOFF_PREFIX = "transfer_to_"
WORDS = ("alpha", "beta", "gamma", "delta", "report", "config", "main", "test")
_MAX_DEPTH = 6


class GenericPolicy:
    """Drive any agent through `calls` of its tools with schema-valid arguments, then answer."""

    def __init__(self, seed: int = 0, calls: int = 2) -> None:
        if calls < 0:
            raise ValueError(f"calls must be >= 0, not {calls!r}")
        self.seed = seed
        self.calls = calls

    def __call__(self, turn: Turn) -> Reply:
        results = [m for m in turn.messages if m.get("role") == "tool"]
        tools = [t for t in turn.tools if not str(t.get("name", "")).startswith(HANDOFF_PREFIX)]
        if tools and len(results) < self.calls:
            rng = self._rng(turn, len(results))
            tool = rng.choice(tools)
            schema = tool.get("parameters") or {}
            arguments = example(schema, schema, rng)
            return Reply(tool_calls=[ToolCall(str(tool["name"]), json.dumps(arguments))])
        called = sorted({c.get("function", {}).get("name", "") for m in turn.messages
                         for c in m.get("tool_calls") or ()} - {""})
        what = f"after calling {', '.join(called)}" if called else "without calling a tool"
        return Reply(text=f"Done {what} (an offline stand-in model's answer, seed {self.seed}).")

    def _rng(self, turn: Turn, step: int) -> random.Random:
        first_user = next((str(m.get("content")) for m in turn.messages if m.get("role") == "user"), "")
        digest = hashlib.sha256(f"{self.seed}|{step}|{first_user}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))


def example(schema: Any, root: dict, rng: random.Random, depth: int = 0) -> Any:
    """A value valid for JSON schema `schema` (local `$ref`s resolve against `root`)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        return example(_resolve(schema["$ref"], root), root, rng, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        options = [s for s in schema.get(key) or () if isinstance(s, dict) and s.get("type") != "null"]
        if options:
            return example(options[0] if key == "allOf" else rng.choice(options), root, rng, depth + 1)
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = set(schema.get("required") or props)
        return {name: example(sub, root, rng, depth + 1) for name, sub in props.items() if name in required}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        return [example(schema.get("items") or {"type": "string"}, root, rng, depth + 1) for _ in range(count)]
    if kind == "integer":
        low, high = _bounds(schema, 1)
        return rng.randint(int(low), int(max(low, high)))
    if kind == "number":
        low, high = _bounds(schema, 0.01)
        return round(rng.uniform(low, max(low, high)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    text = rng.choice(WORDS)
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    text = text.ljust(low, "x")
    return text[: int(high)] if high is not None else text


def _bounds(schema: dict, step: float) -> tuple[float, float]:
    """The inclusive range a number schema allows (exclusive bounds moved in by `step`)."""
    low = schema.get("minimum")
    if low is None and "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + step
    low = 0 if low is None else low
    high = schema.get("maximum")
    if high is None and "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - step
    return low, low + 9 if high is None else high


def _resolve(ref: str, root: dict) -> Any:
    node: Any = root
    if not ref.startswith("#/"):
        return {}
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node
