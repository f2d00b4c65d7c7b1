"""Show the agent's steps on the terminal as they happen (rich, on stderr).

stdout carries only the final answer, so `halo T -p Q > answer.md` works;
the steps (tool calls with short arguments, short results, subagents,
retries, compaction) go to stderr, indented by depth.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

_LONG_FLOAT = re.compile(r"(\d+\.\d)\d+")
ARGS_CHARS = 140
RESULT_CHARS = 160
TEXT_CHARS = 300


def shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summarize_result(result: Any) -> str:
    """A one-line gist of a tool result: an error, the headline numbers, or its start."""
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            return shorten(result, RESULT_CHARS)
    if isinstance(result, dict):
        if "error" in result and len(result) <= 2:
            return f"error: {shorten(str(result['error']), RESULT_CHARS)}"
        body = result.get("result", result)
        if isinstance(body, dict):
            facts = []
            for key in ("total_traces", "total", "count", "match_count", "span_count",
                        "error_trace_count", "has_more", "oversized", "summary", "answer"):
                if key in body and body[key] is not None:
                    value = body[key]
                    if isinstance(value, (dict, list)):
                        value = "yes"
                    facts.append(f"{key}={shorten(str(value), 80)}")
            for key in ("traces", "spans", "matches"):
                if isinstance(body.get(key), list):
                    facts.append(f"{len(body[key])} {key}")
            if facts:
                return shorten(", ".join(facts), RESULT_CHARS)
    return shorten(json.dumps(result, default=str, ensure_ascii=False), RESULT_CHARS)


class StepPrinter:
    """Prints steps of every agent of a run; `quiet=True` prints nothing."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)

    def _line(self, depth: int, text: str) -> None:
        if not self.quiet:
            self.console.print("  " * depth + text)

    def agent_started(self, depth: int, name: str, task: str) -> None:
        self._line(depth, f"[bold cyan]▶ {escape(name)}[/] {escape(shorten(task, TEXT_CHARS))}")

    def agent_finished(self, depth: int, name: str, summary: str) -> None:
        self._line(depth, f"[cyan]◀ {escape(name)}[/] {escape(shorten(summary, RESULT_CHARS))}")

    def tool_called(self, depth: int, name: str, arguments: str, *, who: str = "") -> None:
        tag = f"[dim]{escape(who)}[/] " if who else ""
        self._line(depth, f"{tag}[yellow]→ {escape(name)}[/]({escape(shorten(arguments, ARGS_CHARS))})")

    def tool_returned(self, depth: int, name: str, result: Any, seconds: float, *,
                      who: str = "") -> None:
        gist = summarize_result(result)
        style = "red" if gist.startswith("error:") else "green"
        tag = f"[dim]{escape(who)}[/] " if who else ""
        self._line(depth, f"{tag}[{style}]← {escape(name)}[/] {escape(gist)} [dim]({seconds:.2f}s)[/]")

    def thought(self, depth: int, text: str) -> None:
        if text.strip():
            self._line(depth, f"[dim]· {escape(shorten(text, TEXT_CHARS))}[/]")

    def notice(self, depth: int, text: str) -> None:
        self._line(depth, f"[magenta]! {escape(shorten(text, TEXT_CHARS))}[/]")


class RetryNotices(logging.Handler):
    """Shows the client's and the SDK runner's retries as notices while a run is on.

    Both only log them (INFO / DEBUG); without this a user would stare at a
    silent terminal through a minute of backoff. Levels are restored on exit.
    """

    LOGGERS = {"openai._base_client": logging.INFO, "openai.agents": logging.DEBUG}

    def __init__(self, printer: StepPrinter, on_retry=None) -> None:
        super().__init__(level=logging.DEBUG)
        self.printer = printer
        self.on_retry = on_retry
        self._saved: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a logging call with bad arguments is not our failure
            return
        if message.startswith("Retrying"):
            message = _LONG_FLOAT.sub(r"\1", message)
            self.printer.notice(0, f"model call failed; {message[0].lower()}{message[1:]}")
            if self.on_retry is not None:
                self.on_retry()

    def __enter__(self) -> "RetryNotices":
        for name, level in self.LOGGERS.items():
            logger = logging.getLogger(name)
            self._saved[name] = logger.level
            if logger.getEffectiveLevel() > level:
                logger.setLevel(level)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, level in self._saved.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(level)
