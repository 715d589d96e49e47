"""`python -m swarm.console`: the `swarm console` command, runnable before (or without) the
`swarm` group, with the same one-line errors.
"""

from __future__ import annotations

from swarm.cli.router import run_standalone
from swarm.console.command import console_command

if __name__ == "__main__":
    run_standalone(console_command, None, "python -m swarm.console")
