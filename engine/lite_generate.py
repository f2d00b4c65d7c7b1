"""Writes `lite_schemas.py`, the lite tools' argument schemas, from the pydantic models.

    python -m halo_live.engine.lite_generate

Run it after changing a lite tool's arguments in `halo_live.engine.models`;
tests/test_lite.py fails until the file matches the models again.
"""

from __future__ import annotations

import pprint
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from halo_live.engine.lite import RUNNERS
from halo_live.engine.tools import TOOLS

TARGET = Path(__file__).with_name("lite_schemas.py")


class _FactoryDefaults(GenerateJsonSchema):
    """pydantic's JSON schema, with the value of a `default_factory` as the field's default."""

    def get_default_value(self, schema):
        if "default_factory" in schema and not schema.get("default_factory_takes_data"):
            return schema["default_factory"]()
        return super().get_default_value(schema)


def generated_source() -> str:
    """The text of `lite_schemas.py` as the current models give it."""
    schemas = {name: _strip(TOOLS[name].arguments_model.model_json_schema(schema_generator=_FactoryDefaults))
               for name in RUNNERS}
    return ('"""The lite tools\' argument schemas, generated from `halo_live.engine.models`: do not edit.\n\n'
            "`python -m halo_live.engine.lite_generate` rewrites this file; tests/test_lite.py fails when it is out\n"
            'of date. Titles and descriptions are left out: the lite check needs none.\n"""\n\n'
            f"SCHEMAS = {pprint.pformat(schemas, width=110, sort_dicts=False)}\n")


def _strip(node: Any) -> Any:
    """`node` without the annotation keywords (titles, descriptions), which validate nothing."""
    if isinstance(node, dict):
        return {key: _strip(value) for key, value in node.items()
                if key not in ("title", "description") or not isinstance(value, str)}
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


if __name__ == "__main__":
    TARGET.write_text(generated_source(), encoding="utf-8")
    print(f"wrote {TARGET}")
