"""Helpers for the exporter tests: read a trace file, check canonical lines, restore SDK tracing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from halo_live.exporter import canonical

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
    for field in canonical.REQUIRED_FIELDS:
        assert field in line, f"missing {field}: {line}"
    assert _HEX32.match(line[canonical.TRACE_ID]), line[canonical.TRACE_ID]
    assert _HEX.match(line[canonical.SPAN_ID]), line[canonical.SPAN_ID]
    parent = line[canonical.PARENT_SPAN_ID]
    assert parent == "" or _HEX.match(parent), parent
    assert _TIME.match(line[canonical.START_TIME]) and _TIME.match(line[canonical.END_TIME]), line
    assert line[canonical.START_TIME] <= line[canonical.END_TIME]
    assert line[canonical.KIND] in canonical.SPAN_KINDS
    assert set(line[canonical.STATUS]) == {canonical.STATUS_CODE_FIELD, canonical.STATUS_MESSAGE_FIELD}
    assert line[canonical.STATUS][canonical.STATUS_CODE_FIELD] in canonical.STATUS_CODES
    assert set(line[canonical.RESOURCE]) == {canonical.ATTRIBUTES}
    assert set(line[canonical.SCOPE]) == {canonical.SCOPE_NAME_FIELD, canonical.SCOPE_VERSION_FIELD}
    attrs = line[canonical.ATTRIBUTES]
    assert attrs[canonical.INF_SCHEMA_VERSION] == canonical.SCHEMA_VERSION
    assert isinstance(attrs[canonical.INF_PROJECT_ID], str)
    assert attrs[canonical.INF_OBSERVATION_KIND] in canonical.OBSERVATION_KINDS
    for key in (canonical.INF_LLM_INPUT_TOKENS, canonical.INF_LLM_OUTPUT_TOKENS):
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
