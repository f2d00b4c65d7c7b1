"""`halo-live` (and `halo`): the composition root of the command line.

The engine owns its commands and the dispatcher; the demo owns `halo demo`.
This module sits above both and joins them, so the engine never imports its
own demo.
"""

from __future__ import annotations

from collections.abc import Sequence

from halo_live.engine import cli as engine_cli

# name -> module; each module defines HELP, add_arguments(parser), run(args) -> int
COMMANDS: dict[str, str] = {**engine_cli.COMMANDS, "demo": "halo_live.demo.cli"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `halo-live` and `halo` console scripts."""
    return engine_cli.main(argv, commands=COMMANDS)
