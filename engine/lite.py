"""Tool calls without pydantic: `halo tool`'s lite lane, and the answer envelope every call shares.

Importing pydantic and building a model costs about 80 ms, most of a short
`halo tool count_traces` run. For the tools in `RUNNERS`, `halo tool` checks
the arguments against their JSON schema, generated from
`halo_live.engine.models` into `lite_schemas.py` (`python -m
halo_live.engine.lite_generate` rewrites it; tests/test_lite.py fails when it differs),
and runs the same query functions the `TraceStore` runs. The check accepts
only what it knows pydantic validates to the same values (exact JSON types, the
schema's bounds and defaults); anything else, a keyword it does not know
included, returns None and the call takes the pydantic way, so every error
message stays pydantic's.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

from halo_live.engine import budget as b
from halo_live.engine import filtering
from halo_live.engine.lite_schemas import SCHEMAS

# `{"result":` and `}` around what a tool's run returns
ENVELOPE_CHARS = len('{"result":}')


def _count_traces(snap: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"total": filtering.count(snap, arguments["filters"])}


# The tools the lite lane answers, each from one index snapshot (what `TraceStore` returns as a model)
RUNNERS: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
    "count_traces": _count_traces,
}


def envelope(tool: str, result: Any, limit: int, paged: str | None = None) -> dict[str, Any]:
    """`{"result": result}` within `limit` characters of compact JSON (see `budget.fit_tree`);
    `ToolError` when even a cut answer does not fit."""
    answer = b.fit_tree({"result": result}, limit, keep=(paged,) if paged else ())
    if answer is None:
        raise filtering.ToolError(f"the answer of {tool} does not fit in {limit:,} characters even cut "
                                  "down; ask for less (fewer ids, a narrower regex, a smaller limit)")
    return answer


def parse_arguments(tool: str, text: str) -> dict[str, Any] | None:
    """The validated arguments (JSON `text`) of a lite tool as `model_dump()` would give them,
    or None when pydantic must decide (bad or unusual input, or not a lite tool)."""
    schema = SCHEMAS.get(tool)
    if schema is None:
        return None
    try:
        arguments = _valid(schema, json.loads(text) if text else {}, schema.get("$defs", {}))
    except (ValueError, RecursionError, _Unsure, KeyError, TypeError):  # a schema shape it cannot read too
        return None
    # a task state needs the open-span sidecars and --stuck-after: the `TraceStore` way answers it
    return None if (arguments.get("filters") or {}).get("state") is not None else arguments


def run(index: Any, tool: str, arguments: dict[str, Any], limit: int = b.DEFAULT_BUDGET_CHARS) -> dict[str, Any]:
    """Catch `index` (a `TraceIndex`) up, answer the lite tool from one snapshot, within `limit`."""
    index.catch_up()
    with index.snapshot() as snap:
        result = RUNNERS[tool](snap, arguments)
    return envelope(tool, result, limit)


# --- a strict reading of pydantic's JSON schemas -------------------------------------------

class _Unsure(Exception):
    """The input (or the schema) is not one the lite check vouches for."""


_KNOWN = {"type", "anyOf", "$ref", "enum", "properties", "required", "additionalProperties", "items",
          "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
          "minLength", "maxLength", "default", "$defs"}
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "integer": lambda v: type(v) is int,
    # pydantic turns an int into a float; past 2**53, or not finite, let it decide
    "number": lambda v: (type(v) is int and abs(v) <= 2 ** 53) or (type(v) is float and math.isfinite(v)),
    "null": lambda v: v is None,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}


def _valid(schema: dict[str, Any], value: Any, defs: dict[str, Any]) -> Any:
    """`value` as validated by `schema`; `_Unsure` unless certain."""
    if not _KNOWN.issuperset(schema):
        raise _Unsure
    if "$ref" in schema:
        return _valid(defs[schema["$ref"].rsplit("/", 1)[-1]], value, defs)
    if "anyOf" in schema:
        matches = []
        for option in schema["anyOf"]:
            try:
                matches.append(_valid(option, value, defs))
            except _Unsure:
                pass
        if len(matches) != 1:
            raise _Unsure
        return matches[0]
    kind = schema.get("type")
    check = _TYPES.get(kind)
    if check is None or not check(value):
        raise _Unsure
    if "enum" in schema and value not in schema["enum"]:
        raise _Unsure
    if kind in ("integer", "number"):
        _bounds(schema, value)
        return float(value) if kind == "number" else value
    if kind in ("string", "array"):
        size = len(value)
        if not schema.get("minLength", schema.get("minItems", 0)) <= size \
                <= schema.get("maxLength", schema.get("maxItems", size)):
            raise _Unsure
        if kind == "array":
            return [_valid(schema.get("items", {"type": None}), item, defs) for item in value]
        return value
    if kind == "object":
        return _object(schema, value, defs)
    return value


def _bounds(schema: dict[str, Any], value: float) -> None:
    ok = (value >= schema.get("minimum", value) and value <= schema.get("maximum", value)
          and ("exclusiveMinimum" not in schema or value > schema["exclusiveMinimum"])
          and ("exclusiveMaximum" not in schema or value < schema["exclusiveMaximum"]))
    if not ok:
        raise _Unsure


def _object(schema: dict[str, Any], value: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    if schema.get("additionalProperties") is not False or not set(value) <= set(properties):
        raise _Unsure  # only closed models: what pydantic does with extra keys is not in the schema
    required = set(schema.get("required", ()))
    out = {}
    for name, field in properties.items():
        if name in value:
            out[name] = _valid(field, value[name], defs)
        elif name in required or "default" not in field:
            raise _Unsure
        else:
            out[name] = copy.deepcopy(field["default"])
    return out
