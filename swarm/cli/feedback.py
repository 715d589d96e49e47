"""`swarm feedback TASK_ID [good|bad] [--agent NAME]`: mark how a task was routed, from a shell.
Thin: the rules are in `swarm.feedback`; agent names are checked against an agents module or the
agent set of the router that decided.
"""

from __future__ import annotations

import dataclasses
import glob
import json
from pathlib import Path

import click
from rich.text import Text

from swarm.cli.common import DB_OPTION, MODELS_OPTION, importable_cwd, make_console, registry_for
from swarm.errors import ConfigError
from swarm.feedback import OUT_OF_SCOPE, FeedbackRecord

__all__ = ["feedback"]

MANIFEST_FILE = "manifest.json"  # as swarm.router.artifacts writes it; read here with plain json
CURRENT_FILE = "CURRENT"


@click.command()
@click.argument("task_id")
@click.argument("verdict", required=False, type=click.Choice(["good", "bad"]))
@click.option(
    "--agent",
    default=None,
    help=f"The agent that should have taken the task (a correction), or {OUT_OF_SCOPE} when no "
    "agent should have.",
)
@click.option("--note", default=None, help="Why, in a few words; kept with the feedback.")
@click.option(
    "--agents",
    "agents_spec",
    default=None,
    help="Check --agent against this module's agents. Default: the agents of the router version "
    "that routed the task (its manifest under --models-dir).",
)
@MODELS_OPTION
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def feedback(
    task_id: str,
    verdict: str | None,
    agent: str | None,
    note: str | None,
    agents_spec: str | None,
    models_dir: str,
    db: str,
    as_json: bool,
) -> None:
    """Mark how TASK_ID (a unique prefix will do) was routed: good, bad, or --agent NAME where it
    should have gone. `swarm router train --feedback` learns from it."""
    from swarm.feedback import record_feedback
    from swarm.trace import TraceStore

    if verdict is None and agent is None:
        raise click.UsageError("say good or bad, or name the agent that should have taken it")
    if verdict == "good" and agent is not None:
        raise click.UsageError(f"good takes no --agent; for a correction: bad --agent {agent}")
    with TraceStore(db) as store:
        agents = None
        if agent is not None:
            task = store.task(task_id)  # an unknown id is the first thing to say
            decision = store.decision(task["id"])
            version = decision["router_version"] if decision else None
            agents = _known_agents(agents_spec, models_dir, version)
        record = record_feedback(store, task_id, verdict, agent=agent, note=note, agents=agents)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(record)))
        return
    out = make_console()
    out.print(_recorded(record), soft_wrap=True)
    out.print(Text("`swarm router train --feedback` learns from it", style="grey50"))


def _known_agents(agents_spec: str | None, models_dir: str, version: str | None) -> list[str]:
    if agents_spec:
        importable_cwd()
        names: list[str] = registry_for(agents_spec).names
        return names
    found = _manifest_agents(Path(models_dir), version)
    if found is None:
        decided = f"router {version}" if version else "no router"
        raise ConfigError(
            f"cannot check the agent name: {decided} decided this task and {models_dir} has no "
            f"manifest for it nor a serving router; pass --agents MODULE"
        )
    return found


def _manifest_agents(models_dir: Path, version: str | None) -> list[str] | None:
    """The agents a router version was trained for, from its manifest; else the serving
    version's. A pack keeps its versions one folder down (`models/bank/<version>`)."""
    folders: list[Path] = []
    if version and "/" not in version and not version.startswith("."):
        folders += [models_dir / version, *models_dir.glob(f"*/{glob.escape(version)}")]
    current = models_dir / CURRENT_FILE
    if current.is_file() and (serving := current.read_text().strip()):
        folders.append(models_dir / serving)
    for folder in folders:
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            continue  # no such version here, or a partial one: try the next
        agents = manifest.get("agents") if isinstance(manifest, dict) else None
        if isinstance(agents, list) and all(isinstance(a, str) for a in agents):
            return agents
    return None


def _recorded(record: FeedbackRecord) -> Text:
    """`recorded: task ID "text" routed to cards marked bad; should be: disputes`"""
    went = f"routed to {record.routed_agent}" if record.routed_agent else "routed out of scope"
    line = Text.assemble(
        ("recorded: ", "green"), f"task {record.task_id} ", (f'"{record.text}"', "bold"), f" {went}"
    )
    right = "out of scope" if record.agent == OUT_OF_SCOPE else record.agent
    if record.kind == "good":
        line.append(" marked good", style="green")
    elif record.kind == "bad":
        line.append(" marked bad", style="yellow")
    elif record.agent == (record.routed_agent or OUT_OF_SCOPE):  # a correction that agrees
        line.append(f" confirmed: belongs to {right}", style="green")
    else:
        line.append(" marked bad", style="yellow")
        line.append(f"; should be: {right}")
    if record.note:
        line.append(f" ({record.note})", style="grey50")
    return line
