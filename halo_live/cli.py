"""`halo-live` (and `halo`): the composition root of the command line.

The engine owns its commands and the dispatcher; the demo owns `halo demo`.
This module sits above both and joins them, so the engine never imports its
own demo.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from halo_live.engine import cli as engine_cli

# pydantic loads every installed pydantic plugin (entry-point group "pydantic") when it
# builds a model; logfire's costs ~250 ms per process, which a halo command would pay on
# each run for nothing. A user who set the variable keeps their setting.
PYDANTIC_PLUGINS_ENV = "PYDANTIC_DISABLE_PLUGINS"

COMMANDS: dict[str, engine_cli.Command] = {
    **engine_cli.COMMANDS,
    "demo": engine_cli.Command("halo_live.demo.cli", "run the offline benchmark of a demo agent and watch "
                               "the live index (then: halo compare)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `halo-live` and `halo` console scripts (`argv` None: the process's
    own command line, and the process is ours to configure)."""
    if argv is None:
        os.environ.setdefault(PYDANTIC_PLUGINS_ENV, "__all__")
    return engine_cli.main(argv, commands=COMMANDS)
