"""`swarm router …`: train, evaluate and explain the learned router."""

from __future__ import annotations

import click


@click.group("router")
def router() -> None:
    """Train, evaluate and explain the learned router."""
