"""The console's slash commands: names, arguments and one-line help, and the parser that turns a
typed line into a command call or a usage line (never an exception).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from swarm.feedback import OUT_OF_SCOPE

__all__ = ["COMMANDS", "Command", "Parsed", "UsageProblem", "parse"]


_NOTE_WORDS = 100  # /approve ID and a note, quoted or not


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    min_args: int = 0
    max_args: int = 0
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[Command, ...] = (
    Command("help", "/help", "this list"),
    Command("agents", "/agents", "the agents, their descriptions and limits"),
    Command("why", "/why", "why the last request went where it did (candidates, nearest examples)"),
    Command("trace", "/trace [ID]", "the tree of the last task, or of task ID", 0, 1),
    Command("good", "/good", "the last routing was right (teaches the router)"),
    Command("bad", "/bad", "the last routing was wrong"),
    Command(
        "route",
        f"/route AGENT|{OUT_OF_SCOPE}",
        f"correct the last routing: re-run the request at AGENT ({OUT_OF_SCOPE}: no agent should)",
        1,
        1,
    ),
    Command("retrain", "/retrain", "train a new router with the feedback; switch if not worse"),
    Command("approvals", "/approvals", "the approvals waiting for a person"),
    Command(
        "approve",
        "/approve ID [NOTE]",
        "approve a waiting approval; a request of this session that waited goes on",
        1,
        _NOTE_WORDS,
    ),
    Command("deny", "/deny ID [NOTE]", "deny a waiting approval", 1, _NOTE_WORDS),
    Command("history", "/history", "this session's requests"),
    Command("quit", "/quit", "leave (Ctrl-D works too)", aliases=("exit", "q")),
)

_BY_NAME = {alias: c for c in COMMANDS for alias in (c.name, *c.aliases)}


class UsageProblem(ValueError):
    """A typed command that cannot run; the message is the one line to show."""


@dataclass(frozen=True)
class Parsed:
    command: Command
    args: list[str]


def parse(line: str) -> Parsed:
    """`/name args…` -> Parsed, or UsageProblem with the line a person should read."""
    body = line.strip()[1:]
    try:
        words = shlex.split(body)
    except ValueError as exc:  # an unclosed quote
        raise UsageProblem(f"cannot read that line ({exc}); /help lists the commands") from None
    if not words:
        raise UsageProblem("a command follows the slash: /help lists them")
    name, args = words[0].lower(), words[1:]
    command = _BY_NAME.get(name)
    if command is None:
        raise UsageProblem(f"unknown command /{name}; /help lists the commands")
    if not command.min_args <= len(args) <= command.max_args:
        raise UsageProblem(f"usage: {command.usage}  ({command.help})")
    return Parsed(command, args)
