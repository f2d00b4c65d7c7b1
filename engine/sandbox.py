"""`run_code`: model-written Python run in a real sandbox, over the trace tools.

The code runs in a `pydantic-monty` worker subprocess (a Python interpreter
written in Rust, MIT): no `exec()` in our process, no network, no filesystem
(every file call is refused), bounded execution time, heap, host calls and
printed output. It works offline, unlike the reference's Pyodide-under-Deno
sandbox, which downloads its wheels from a CDN at run time.

The sandbox sees the trace tools as functions with the tools' names and
arguments (results are the tools' `result` objects, as plain dicts and
lists) plus `trace_rows()`, one call returning the index rollups of many
traces, so an aggregate over 50k traces is one host call, not 50k.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from halo_live.engine.store import ToolError, TraceStore

RUN_CODE = "run_code"
# Execution time of the interpreter; time spent in host calls is bounded separately.
TIME_LIMIT_SECONDS = 30.0
HOST_TIME_LIMIT_SECONDS = 60.0
# Every field of 50k rollups needs over 512 MB inside the sandbox (bench/bench_run_code.py);
# a limit, not a reservation: a program over it is stopped with a MemoryError.
MEMORY_LIMIT_BYTES = 1024 << 20
OUTPUT_LIMIT_CHARS = 64_000  # the reference's stdout cap
VALUE_LIMIT_CHARS = 64_000
MAX_HOST_CALLS = 5_000
ERROR_OUTPUT_CHARS = 1_000
TIME_LIMIT_ENV = "HALO_RUN_CODE_TIME_LIMIT"  # seconds of execution per call
MEMORY_LIMIT_ENV = "HALO_RUN_CODE_MEMORY_MB"


@dataclass(frozen=True)
class SandboxLimits:
    """The bounds of one `run_code` call."""

    time_seconds: float = TIME_LIMIT_SECONDS
    memory_bytes: int = MEMORY_LIMIT_BYTES
    output_chars: int = OUTPUT_LIMIT_CHARS
    host_calls: int = MAX_HOST_CALLS
    host_seconds: float = HOST_TIME_LIMIT_SECONDS

    def __post_init__(self) -> None:
        if not (self.time_seconds > 0 and self.memory_bytes > 0 and self.output_chars > 0
                and self.host_calls > 0 and self.host_seconds > 0):
            raise ValueError(f"sandbox limits must be positive: {self}")

    @classmethod
    def from_env(cls) -> "SandboxLimits":
        """Defaults, with $HALO_RUN_CODE_TIME_LIMIT (seconds) and $HALO_RUN_CODE_MEMORY_MB applied."""
        options: dict[str, Any] = {}
        for env, key, scale in ((TIME_LIMIT_ENV, "time_seconds", 1.0),
                                (MEMORY_LIMIT_ENV, "memory_bytes", float(1 << 20))):
            raw = os.environ.get(env, "").strip()
            if raw:
                try:
                    value = float(raw) * scale
                except ValueError:
                    raise ValueError(f"${env} must be a number, got {raw!r}") from None
                if not value > 0:
                    raise ValueError(f"${env} must be > 0, got {raw!r}")
                options[key] = int(value) if key == "memory_bytes" else value
        return cls(**options)

    def describe(self) -> str:
        return (f"{self.time_seconds:g} s of execution, {self.memory_bytes >> 20} MB, "
                f"{self.output_chars // 1000}k chars of output, {self.host_calls} function calls")

DESCRIPTION = (
    "Run Python code in a sandbox over the whole dataset, for questions a fixed tool cannot "
    "answer (aggregates, distributions, comparisons across many traces). Print what you want "
    "to see; the value of the last expression is returned too. Functions available, no "
    "import needed: `trace_rows(filters=None, fields=None, offset=0, limit=None)` -> list of "
    "dicts, one per trace (trace_id, has_errors, model_names, agent_names, service_names, "
    "tool_names, total_input_tokens, total_output_tokens, duration_ms, start_time, end_time, "
    "span_count, complete, run_ids, error_span_names, otel_error_span_count, "
    "tool_error_span_count, raw_jsonl_bytes, ...), ONE call for all matching traces: use it "
    "for rollups, with `fields=[...]` naming only what you need (faster, less memory); and the trace tools with the same names and arguments "
    "(`count_traces(filters=None)`, `query_traces(filters=None, limit=50, offset=0)`, "
    "`get_dataset_overview(filters=None)`, `view_trace(trace_id)`, `view_spans(trace_id, "
    "span_ids)`, `search_trace(trace_id, regex_pattern)`, `search_span(trace_id, span_id, "
    "regex_pattern)`), each returning its `result` as dicts and lists (a bad call raises "
    "ValueError). `filters` is the tools' filter object as a dict, e.g. {'has_errors': True}. "
    "The Python is a subset (Monty): functions, lambdas, comprehensions, dicts, sets, "
    "f-strings, try/except, simple classes; modules json, re, math, collections, itertools, "
    "functools, datetime. Not available: numpy, pandas, statistics, heapq, operator, class "
    "inheritance, `yield`, `del`, files, network, processes. Limits: "
    f"{SandboxLimits().describe()}. An error comes back with its line: fix the code and call again."
)


class RunCodeArguments(BaseModel):
    """`run_code`'s one argument; unknown keys (a guessed `timeout`) are ignored, as in the reference."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    code: str = Field(min_length=1, description="Python source; print results or end with an expression.")


class CodeRun(BaseModel):
    """What a run printed and returned, and what it cost."""

    model_config = ConfigDict(defer_build=True)
    stdout: str
    value: Any = None
    output_truncated_chars: int = 0  # printed characters dropped beyond the output cap
    host_calls: int = 0
    elapsed_ms: float = 0.0


class RunCodeResult(BaseModel):
    model_config = ConfigDict(defer_build=True)
    result: CodeRun


class _Output:
    """The print callback: keeps the first `limit` characters and counts the rest.

    Cut here rather than by monty's own collector, which loses everything when its cap is hit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def __call__(self, stream: str, text: str) -> None:
        room = self.limit - self.kept
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        self.dropped += max(0, len(text) - max(room, 0))

    def text(self) -> str:
        return "".join(self.parts)


class _Host:
    """The functions the sandbox may call; each call is counted and time-boxed."""

    def __init__(self, store: TraceStore, call_tool: Callable[[str, dict], dict],
                 tool_fields: dict[str, list[str]], seconds: float) -> None:
        self.store = store
        self.call_tool = call_tool
        self.tool_fields = tool_fields
        self.calls = 0
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def _enter(self) -> None:
        self.calls += 1
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"run_code spent over {self.seconds:g} s in tool calls; "
                               "use trace_rows() for many traces")

    def functions(self) -> dict[str, Callable[..., Any]]:
        table: dict[str, Callable[..., Any]] = {"trace_rows": self.trace_rows}
        for name, fields in self.tool_fields.items():
            table[name] = self._tool(name, fields)
        return table

    def _tool(self, name: str, fields: list[str]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self._enter()
            if len(args) > len(fields):
                raise TypeError(f"{name}() takes at most {len(fields)} positional arguments "
                                f"({', '.join(fields)})")
            arguments = dict(zip(fields, args))
            for key, value in kwargs.items():
                if key in arguments:
                    raise TypeError(f"{name}() got multiple values for argument {key!r}")
                arguments[key] = value
            answer = self.call_tool(name, {k: v for k, v in arguments.items() if v is not None})
            if "error" in answer:
                raise ValueError(answer["error"])
            return answer.get("result", answer)

        return call

    def trace_rows(self, filters: dict | None = None, fields: list[str] | None = None,
                   offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        self._enter()
        from halo_live.engine.models import TraceFilters
        from pydantic import ValidationError

        try:
            parsed = TraceFilters.model_validate(filters or {})
        except ValidationError as exc:
            raise ValueError(f"trace_rows: bad filters: {exc.errors(include_url=False)[0]['msg']}") from exc
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("trace_rows: offset and limit must be >= 0")
        try:
            rows = self.store.trace_rows(parsed, offset=offset, limit=limit)
        except ToolError as exc:
            raise ValueError(str(exc)) from exc
        return [row_dict(row, fields) for row in rows]


def row_dict(row: Any, fields: list[str] | None = None) -> dict[str, Any]:
    """One index rollup as a plain dict (every field, or only `fields`); unknown fields raise."""
    names = row.__dataclass_fields__
    wanted = fields if fields is not None else [n for n in names if n not in ("file", "last_seen")]
    unknown = [f for f in wanted if f not in names]
    if unknown:
        raise ValueError(f"trace_rows: unknown fields {unknown}; fields: {', '.join(names)}")
    out = {}
    for name in wanted:
        value = getattr(row, name)
        out[name] = list(value) if isinstance(value, (list, tuple)) else value
    return out


def _where(exc: Any, code: str) -> str:
    """`line N: source` of the innermost frame in the user's code, or ""."""
    try:
        frames = exc.traceback()
    except Exception:  # a syntax error may carry no frames
        return ""
    for frame in reversed(frames or []):
        line = getattr(frame, "line", None)
        if line:
            lines = code.splitlines()
            text = (frame.source_line or (lines[line - 1] if line <= len(lines) else "")).strip()
            return f" at line {line}: {text[:200]}" if text else f" at line {line}"
    return ""


def _jsonable(value: Any) -> Any:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    if len(text) > VALUE_LIMIT_CHARS:
        return (f"[halo truncated: the value is {len(text)} chars of JSON; print or return a "
                f"smaller part] " + text[:2_000])
    return json.loads(text)


def run_code(store: TraceStore, code: str, *, call_tool: Callable[[str, dict], dict],
             tool_fields: dict[str, list[str]], limits: SandboxLimits | None = None) -> CodeRun:
    """Run `code` in a fresh sandbox worker; raises ToolError with the error and its line.

    `call_tool(name, arguments) -> dict` answers the trace-tool functions
    (`tool_fields` lists each one's argument names, in positional order).
    `limits` defaults to `SandboxLimits.from_env()`.
    """
    from pydantic_monty import (Monty, MontyCrashedError, MontyError, MontyRuntimeError,
                                MontySyntaxError)

    try:
        limits = limits or SandboxLimits.from_env()
    except ValueError as exc:
        raise ToolError(f"run_code: {exc}") from exc
    host = _Host(store, call_tool, tool_fields, limits.host_seconds)
    output = _Output(limits.output_chars)
    bounds = {"max_feed_duration_secs": limits.time_seconds, "max_memory": limits.memory_bytes,
              "max_suspensions": limits.host_calls}
    # The pool's own watchdog: kills a worker the in-sandbox limits could not stop.
    watchdog = limits.time_seconds + limits.host_seconds + 10.0
    started = time.monotonic()
    try:
        # A pool per call costs ~8 ms and leaves no worker or state behind between calls.
        with Monty(min_processes=1, max_processes=1, request_timeout=watchdog) as pool:
            with pool.checkout(limits=bounds, os_policy={"sleep": "zero"},
                               script_name="run_code.py") as session:
                value = session.feed_run(code, external_lookup=host.functions(),
                                         print_callback=output)
    except (MontyRuntimeError, MontySyntaxError) as exc:
        raise ToolError(_failure(exc.display("type-msg") + _where(exc, code), output)) from exc
    except MontyCrashedError as exc:
        why = "it ran past its time limit" if exc.timed_out else f"the worker died ({exc})"
        raise ToolError(_failure(f"the sandbox was stopped: {why}", output)) from exc
    except MontyError as exc:
        raise ToolError(_failure(f"{type(exc).__name__}: {exc}", output)) from exc
    return CodeRun(stdout=output.text(), value=_jsonable(value),
                   output_truncated_chars=output.dropped, host_calls=host.calls,
                   elapsed_ms=round((time.monotonic() - started) * 1000, 1))


def _failure(message: str, output: _Output) -> str:
    text = f"run_code failed: {message}"
    if output.dropped:
        text += f" (output cut after {output.kept} chars; {output.dropped} more dropped)"
    printed = output.text()
    if printed:
        tail = printed[-ERROR_OUTPUT_CHARS:]
        text += f"\nprinted before the error{' (tail)' if len(tail) < len(printed) else ''}:\n{tail}"
    return text
