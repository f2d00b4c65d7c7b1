"""Helpers for the exporter tests: read a trace file, check canonical lines, restore SDK tracing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from exporter import format as f

_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX = re.compile(r"^[0-9a-f]{8,32}$")


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a trace file, parsed (fails on a line that is not JSON)."""
    data = Path(path).read_bytes()
    assert data == b"" or data.endswith(b"\n"), "file must end with a newline"
    return [json.loads(line) for line in data.splitlines()]


def check_line(line: dict[str, Any]) -> None:
    """Assert that one parsed line is a canonical HALO span the reference accepts."""
    for field in f.REQUIRED_FIELDS:
        assert field in line, f"missing {field}: {line}"
    assert _HEX32.match(line[f.TRACE_ID]), line[f.TRACE_ID]
    assert _HEX.match(line[f.SPAN_ID]), line[f.SPAN_ID]
    parent = line[f.PARENT_SPAN_ID]
    assert parent == "" or _HEX.match(parent), parent
    assert _TIME.match(line[f.START_TIME]) and _TIME.match(line[f.END_TIME]), line
    assert line[f.START_TIME] <= line[f.END_TIME]
    assert line[f.KIND] in f.SPAN_KINDS
    assert set(line[f.STATUS]) == {f.STATUS_CODE_FIELD, f.STATUS_MESSAGE_FIELD}
    assert line[f.STATUS][f.STATUS_CODE_FIELD] in f.STATUS_CODES
    assert set(line[f.RESOURCE]) == {f.ATTRIBUTES}
    assert set(line[f.SCOPE]) == {f.SCOPE_NAME_FIELD, f.SCOPE_VERSION_FIELD}
    attrs = line[f.ATTRIBUTES]
    assert attrs[f.INF_SCHEMA_VERSION] == f.SCHEMA_VERSION
    assert isinstance(attrs[f.INF_PROJECT_ID], str)
    assert attrs[f.INF_OBSERVATION_KIND] in f.OBSERVATION_KINDS
    for key in (f.INF_LLM_INPUT_TOKENS, f.INF_LLM_OUTPUT_TOKENS):
        assert key not in attrs or isinstance(attrs[key], int)


def check_file(path: Path) -> list[dict[str, Any]]:
    """Parse and check every line of `path`; returns them."""
    lines = read_lines(path)
    for line in lines:
        check_line(line)
    return lines


@contextmanager
def sdk_processors_restored() -> Iterator[None]:
    """Put the SDK's global trace processors back as they were after the block."""
    from agents.tracing import get_trace_provider

    provider = get_trace_provider()
    multi = provider._multi_processor
    saved = multi._processors
    try:
        yield
    finally:
        multi.set_processors(list(saved))
