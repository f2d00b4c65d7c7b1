"""`halo-live` (and `halo`): the composition root of the command line.

The engine owns its commands and the dispatcher; the demo owns `halo demo`.
This module sits above both and joins them, so the engine never imports its
own demo.
"""

from __future__ import annotations

from collections.abc import Sequence

from halo_live.engine import cli as engine_cli

COMMANDS: dict[str, engine_cli.Command] = {
    **engine_cli.COMMANDS,
    "demo": engine_cli.Command("halo_live.demo.cli", "run the offline benchmark of a demo agent and watch "
                               "the live index (then: halo compare)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `halo-live` and `halo` console scripts."""
    return engine_cli.main(argv, commands=COMMANDS)
