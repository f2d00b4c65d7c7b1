"""User-supplied regexes with a time limit: `regex_pattern` filters, the search tools, the code grep.

A regex from a user or a model can backtrack for hours inside one C call that
no thread can interrupt (`(a|aa)+$` against a long run of "a"s). These run on
the `regex` package, whose matching takes a timeout: each match call is bounded,
and so is the whole tool call, and either limit hit is a readable error. The
syntax is Python's `re` (the reference's), which `regex` accepts unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import regex

MATCH_SECONDS = 2.0  # one search over one span or line
CALL_SECONDS = 60.0  # every search of one tool call together


class BoundedRegex:
    """A compiled pattern whose `search` / `finditer` raise `error` instead of running on."""

    def __init__(self, pattern: str, *, flags: int = 0, error: type[Exception] = ValueError,
                 label: str = "Invalid regex pattern", match_seconds: float = MATCH_SECONDS,
                 call_seconds: float = CALL_SECONDS) -> None:
        self.pattern = pattern
        self._error = error
        self._match_seconds = match_seconds
        self._call_seconds = call_seconds
        try:
            self._compiled = regex.compile(pattern, flags | regex.VERSION0)
        except regex.error as exc:
            raise error(f"{label} {pattern!r}: {exc}") from exc
        except RecursionError as exc:  # the parser recurses per nested group
            raise error(f"the regex {pattern[:40]!r}... is too deeply nested to run; simplify it") from exc
        self._deadline = time.monotonic() + call_seconds

    def _timeout(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise self._too_slow(f"all its searches took more than {self._call_seconds:g} s together; "
                                 "narrow the candidates with indexed filters first")
        return min(self._match_seconds, remaining)

    def _too_slow(self, why: str) -> Exception:
        return self._error(f"the regex {self.pattern[:80]!r} was stopped: {why} (nested repetition "
                           "such as (a+)+ or (a|aa)+ backtracks without end; simplify it)")

    def search(self, text: str) -> regex.Match | None:
        try:
            return self._compiled.search(text, timeout=self._timeout())
        except TimeoutError:
            raise self._too_slow(f"one search took more than {self._match_seconds:g} s") from None

    def finditer(self, text: str) -> Iterator[regex.Match]:
        try:
            yield from self._compiled.finditer(text, timeout=self._timeout())
        except TimeoutError:
            raise self._too_slow(f"one search took more than {self._match_seconds:g} s") from None
