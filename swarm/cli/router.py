"""`swarm router …`: train, evaluate and explain the learned router."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console

from swarm.cli.common import (
    ENABLE_ENV,
    MODELS_OPTION,
    importable_cwd,
    make_console,
    progress_bars,
    second_opinion_from_env,
)
from swarm.errors import DataError, SwarmError
from swarm.models import OUT_OF_SCOPE
from swarm.paths import DEFAULT_MODELS_DIR
from swarm.trace import DEFAULT_DB_URL

MODELS_DIR = DEFAULT_MODELS_DIR
# As swarm.router.data.CONFLICT_POLICIES and swarm.router.learn.MIN_HELD_OUT (a test checks):
# importing swarm.router here would load numpy for `swarm --help`.
CONFLICT_POLICIES = ("error", "first", "last", "drop")
MIN_HELD_OUT = 20


def _json_line(obj: Any) -> None:
    click.echo(json.dumps(obj, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


@click.group("router")
def router() -> None:
    """Train, evaluate and explain the learned router."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@router.command()
@click.option(
    "--data",
    "data_files",
    multiple=True,
    help="Labelled CSV or JSONL file (text,label); repeatable.",
)
@click.option(
    "--agents", "agents_module", default=None, help="Module whose agents' examples to learn."
)
@click.option(
    "--feedback-db",
    default=None,
    help="Train a new router, adding this trace store's labelled feedback to the data.",
)
@click.option(
    "--feedback",
    "from_feedback",
    is_flag=True,
    help="Learn from the feedback in --db on top of the serving router (corrections as labelled "
    "examples, good/bad as a bandit update) instead of training a new one.",
)
@click.option(
    "--db",
    default=lambda: os.environ.get("SWARM_DB", DEFAULT_DB_URL),
    show_default="$SWARM_DB or " + DEFAULT_DB_URL,
    help="With --feedback: the trace store whose feedback to learn.",
)
@click.option(
    "--eval",
    "eval_files",
    multiple=True,
    help="Labelled held-out file for the promotion gate (never trained on); repeatable.",
)
@click.option(
    "--suite",
    "suites",
    multiple=True,
    help="Scenario suites (files or folders) whose routing expectations join the held-out set; "
    "default (no --eval): with --feedback on a demo's router (--out MODELS/NAME), that demo "
    "pack's suites; else scenarios/ when it exists.",
)
@click.option(
    "--tolerance",
    type=float,
    default=0.01,
    show_default=True,
    help="The gate promotes unless held-out accuracy falls more than this (0.01: 1 point).",
)
@click.option(
    "--min-held-out",
    type=click.IntRange(min=1),
    default=MIN_HELD_OUT,
    show_default=True,
    help="The fewest held-out texts the gate measures on; with fewer it claims no result "
    "(--feedback keeps the new version beside; a new router serves anyway).",
)
@click.option(
    "--out",
    "out_dir",
    default=MODELS_DIR,
    show_default=True,
    help="Models folder; a new version is written inside.",
)
@click.option(
    "--encoder", default=None, help="MODEL[@onnx-fp32|@sentence-transformers] (see README)."
)
@click.option(
    "--oos-label", default=OUT_OF_SCOPE, show_default=True, help="Label of out-of-scope examples."
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Out-of-scope threshold by hand (default: chosen on held-out data).",
)
@click.option(
    "--target-rejection",
    type=float,
    default=0.02,
    show_default=True,
    help="Without out-of-scope examples: share of in-scope held-out texts the threshold rejects.",
)
@click.option(
    "--oos-recall",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="With out-of-scope examples: the share of them the threshold must reject on held-out "
    "data (its cost in-scope is reported).",
)
@click.option(
    "--ambiguity-margin",
    type=float,
    default=0.1,
    show_default=True,
    help="Top two probabilities closer than this: ambiguous.",
)
@click.option(
    "--members",
    type=int,
    default=None,
    help="Heads in the ensemble (k-fold); 1 = one head with a validation split.",
)
@click.option("--hidden", type=int, default=None, help="Hidden width of each head (0: linear).")
@click.option(
    "--epochs", type=int, default=None, help="Most epochs per head (early stopping decides)."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the head (or the update)."
)
@click.option(
    "--text-column", default=None, help="Column/key of the text in --data and --eval files."
)
@click.option(
    "--label-column",
    default=None,
    help="Column/key of the label in --data and --eval files (default label, intent, category).",
)
@click.option(
    "--on-conflict",
    type=click.Choice(CONFLICT_POLICIES),
    default="error",
    show_default=True,
    help="A text given to two labels (two agents, or an agent and a file): stop with an error "
    "naming each, keep the first label, keep the last, or drop the text.",
)
@click.option(
    "--cache",
    "cache_dir",
    default=None,
    help="Embedding cache folder (default $SWARM_EMBEDDING_CACHE or storage/cache/embeddings).",
)
@click.option(
    "--finetune",
    is_flag=True,
    help="Fine-tune the encoder first (slow; bounded by --finetune-minutes).",
)
@click.option("--finetune-minutes", type=float, default=10.0, show_default=True)
@click.option(
    "--no-current", is_flag=True, help="Save the version without making it the serving one."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
@click.pass_context
def train(
    ctx: click.Context,
    data_files: tuple[str, ...],
    agents_module: str | None,
    feedback_db: str | None,
    from_feedback: bool,
    db: str,
    eval_files: tuple[str, ...],
    suites: tuple[str, ...],
    tolerance: float,
    min_held_out: int,
    out_dir: str,
    encoder: str | None,
    oos_label: str,
    threshold: float | None,
    target_rejection: float,
    oos_recall: float | None,
    ambiguity_margin: float,
    members: int | None,
    hidden: int | None,
    epochs: int | None,
    seed: int,
    text_column: str | None,
    label_column: str | None,
    on_conflict: str,
    cache_dir: str | None,
    finetune: bool,
    finetune_minutes: float,
    no_current: bool,
    as_json: bool,
) -> None:
    """Train a router from labelled files (--data) and/or agents (--agents), save a new version.

    With --feedback: learn from people's feedback on top of the serving router instead. Either
    way the new version is compared with the one serving the same agents on held-out texts it did
    not train on (--eval, --suite) and serves only if it is not worse.
    """
    from swarm.router.encoders import DEFAULT_ENCODER
    from swarm.router.learn import learn
    from swarm.router.model import HeadConfig
    from swarm.router.train import TrainConfig, gather_training_data

    given = {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    }
    if from_feedback:
        clash = sorted(given & TRAINING_ONLY)
        if clash:
            flag = {param.name: param.opts[0] for param in ctx.command.params}
            flags = ", ".join(flag[name] for name in clash)
            raise click.UsageError(
                f"--feedback learns on top of the serving router; {flags} "
                f"{'configure' if len(clash) > 1 else 'configures'} training a new one: "
                "use one or the other"
            )
        held_out = (eval_files, suites, text_column, label_column)
        _train_from_feedback(
            db, out_dir, held_out, tolerance, min_held_out, seed, no_current, as_json
        )
        return
    if "db" in given:
        raise click.UsageError(
            "--db names the store --feedback learns from; for a new router "
            "with the store's feedback among its data, use --feedback-db URL"
        )
    if not data_files and not agents_module and not feedback_db:
        raise click.UsageError("give --data FILE, --agents MODULE or --feedback-db URL")
    if "finetune_minutes" in given and not finetune:
        raise click.UsageError("--finetune-minutes bounds --finetune, which was not given")
    if agents_module:
        importable_cwd()
    out = make_console()
    data, fingerprint = gather_training_data(
        files=data_files,
        agents_module=agents_module,
        feedback_db=feedback_db,
        text_column=text_column,
        label_column=label_column,
        on_conflict=on_conflict,  # type: ignore[arg-type]
    )
    head = HeadConfig(seed=seed)
    if members is not None:
        head.members = members
    if hidden is not None:
        head.hidden = hidden
    if epochs is not None:
        head.max_epochs = epochs
    config = TrainConfig(
        head=head,
        encoder=encoder or DEFAULT_ENCODER,
        oos_label=oos_label,
        threshold=threshold,
        target_rejection=target_rejection,
        oos_recall=oos_recall,
        ambiguity_margin=ambiguity_margin,
        finetune=finetune,
        finetune_minutes=finetune_minutes,
    )
    labels = sorted({ex.label for ex in data.resolved()})
    held_out = _held_out(eval_files, suites, labels, oos_label, text_column, label_column)
    with progress_bars(out, enabled=not as_json) as progress:
        outcome = learn(
            out_dir,
            data=data,
            held_out=held_out,
            config=config,
            tolerance=tolerance,
            min_held_out=min_held_out,
            unmeasured="promote",
            make_current=not no_current,
            cache_dir=cache_dir,
            progress=progress,
            registry_fingerprint=fingerprint,
        )
    if as_json:
        _json_line(outcome.to_dict())
        return
    out.print(outcome)


TRAINING_ONLY = frozenset(
    {
        "data_files",
        "agents_module",
        "feedback_db",
        "encoder",
        "oos_label",
        "threshold",
        "target_rejection",
        "oos_recall",
        "ambiguity_margin",
        "members",
        "hidden",
        "epochs",
        "on_conflict",
        "cache_dir",
        "finetune",
        "finetune_minutes",
    }
)
"""Options that configure training a new head: refused with --feedback, which does not."""


def _held_out(
    eval_files: tuple[str, ...],
    suites: tuple[str, ...],
    labels: list[str],
    oos_label: str,
    text_column: str | None = None,
    label_column: str | None = None,
) -> Any:
    """The gate's held-out set from --eval files and --suite paths (default scenarios/)."""
    from swarm.console.retrain import suite_pairs
    from swarm.router import read_labelled_file
    from swarm.router.learn import HeldOut

    pairs: list[tuple[str, str]] = []
    names = []
    for f in eval_files:
        pairs += read_labelled_file(f, text_column=text_column, label_column=label_column)
        names.append(f"file {f}")
    paths = suites or (() if eval_files else ("scenarios",))
    if paths:
        found = suite_pairs(paths, labels, oos_label, explicit=bool(suites))
        if found:
            pairs += found
            names.append(f"suites {', '.join(paths)}")
    return HeldOut.of(" + ".join(names) or "none given", pairs)


def _demo_suites(models_dir: str) -> tuple[str, ...]:
    """The suites of the installed demo pack whose router `models_dir` holds (`swarm demo NAME`
    keeps it in MODELS/NAME), as --suite paths; () for any other folder."""
    from pathlib import Path

    from swarm.agents.registry import installed_demos, load_demo

    name = Path(models_dir).name
    if name not in installed_demos():
        return ()
    pack = load_demo(name)
    return (str(pack.suites),) if pack.suites is not None and pack.suites.is_dir() else ()


def _train_from_feedback(
    db: str,
    models_dir: str,
    held_out_from: tuple[tuple[str, ...], tuple[str, ...], str | None, str | None],
    tolerance: float,
    min_held_out: int,
    seed: int,
    no_current: bool,
    as_json: bool,
) -> None:
    from swarm.router import Router, current_version
    from swarm.router.artifacts import router_folders
    from swarm.router.feedback import BanditConfig
    from swarm.router.learn import learn
    from swarm.trace import TraceStore

    routers = router_folders(models_dir) if current_version(models_dir) is None else []
    if routers:  # storage/models holds one models folder per demo: say which to name
        raise click.UsageError(
            f"{models_dir} holds the routers of: {', '.join(r.name for r in routers)}; "
            f"pass --out {routers[0]}"
        )
    serving = Router.load(models_dir)
    oos = serving.policy.oos_label or OUT_OF_SCOPE
    eval_files, suites, text_column, label_column = held_out_from
    if not eval_files and not suites:
        suites = _demo_suites(models_dir)
    held_out = _held_out(eval_files, suites, serving.head_labels, oos, text_column, label_column)
    if not len(held_out):
        raise DataError(
            "no held-out evaluation set: give --eval FILE (labelled) or --suite PATH (scenario "
            f"suites with routing expectations for router {serving.version}'s agents)"
        )
    with TraceStore(db) as store:
        rows = store.feedback()
    out = make_console()
    if not as_json:
        out.print(
            f"learning from {len(rows)} feedback rows on top of router {serving.version}; "
            f"held-out set: {len(held_out)} labelled texts ({held_out.name})",
            style="grey50",
        )
    outcome = learn(
        models_dir,
        base=serving,
        feedback_rows=rows,
        held_out=held_out,
        bandit=BanditConfig(seed=seed),
        tolerance=tolerance,
        min_held_out=min_held_out,
        make_current=not no_current,
    )
    if as_json:
        _json_line(outcome.to_dict())
        return
    out.print(outcome)


@router.command("use")
@click.argument("version")
@MODELS_OPTION
def use(version: str, models_dir: str) -> None:
    """Make VERSION the serving router (roll back, or promote a version kept beside)."""
    from swarm.router import current_version, set_current
    from swarm.router.artifacts import find_version

    found = find_version(models_dir, version)
    previous = current_version(models_dir)
    set_current(models_dir, found)
    undo = f"; undo with `swarm router use {previous}`" if previous else ""
    make_console().print(
        f"[green]router {found} now serves[/green] (was {previous or 'none'}){undo}"
    )


@router.command("versions")
@MODELS_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def versions(models_dir: str, as_json: bool) -> None:
    """Every saved router version: the agents it serves, which one serves now, what its figures
    were measured on, and why it was promoted or kept beside."""
    from pathlib import Path

    from swarm.router import current_version, list_versions
    from swarm.router.artifacts import describe_version, read_manifest

    serving = current_version(models_dir)
    manifests = [read_manifest(Path(models_dir) / v) for v in list_versions(models_dir)]
    # Oldest first, in the order they were saved (a child after its parent).
    rows = [describe_version(m, serving) for m in manifests]
    if as_json:
        _json_line({"serving": serving, "versions": rows})
        return
    make_console().print(_versions_table(rows))


def _versions_table(rows: list[dict[str, Any]]) -> Any:
    """One block a version (they wrap at any width): its name, agents and parent, then each
    figure with what it was measured on, then the gate's verdict."""
    from rich.console import Group
    from rich.text import Text

    blocks: list[Any] = [Text("router versions, oldest first (* serves)", style="bold")]
    for r in rows:
        head = Text.assemble(
            ("* " if r["serving"] else "  "),
            (r["version"], "bold" if r["serving"] else ""),
            f"  agents: {', '.join(r['agents'])}",
        )
        if r["parent"]:
            head.append(f"  from {r['parent']}", style="grey50")
        blocks.append(head)
        if "accuracy" in r:
            on = r["measured_on"]
            where = ", ".join(
                str(x)
                for x in (on.get("name"), on.get("size") and f"{on['size']} texts", on.get("hash"))
                if x
            )
            blocks.append(Text(f"    accuracy {r['accuracy']:.4f} on {where}"))
        promotion = r["promotion"]
        if promotion is not None:
            word = "promoted" if promotion["promoted"] else "kept beside"
            blocks.append(
                Text(
                    f"    {word}: {promotion['reason']}",
                    style="green" if promotion["promoted"] else "yellow",
                )
            )
    return Group(*blocks)


@router.command("eval")
@click.option(
    "--model",
    "model_dir",
    default=MODELS_DIR,
    show_default=True,
    help="Version folder, or models folder (its CURRENT).",
)
@click.option("--data", "data_file", required=True, help="Labelled CSV or JSONL file (text,label).")
@click.option(
    "--oos-label", default=None, help="Label of out-of-scope rows (default: the router's)."
)
@click.option("--text-column", default=None)
@click.option("--label-column", default=None)
@click.option(
    "--llm",
    "with_llm",
    is_flag=True,
    help="Ask the LLM SWARM_LLM_BASE_URL configures when the router is unsure (as "
    "SWARM_ROUTER_LLM=1 does for `swarm run`); report how often it was asked and changed it.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def eval_(
    model_dir: str,
    data_file: str,
    oos_label: str | None,
    text_column: str | None,
    label_column: str | None,
    with_llm: bool,
    as_json: bool,
) -> None:
    """Accuracy, macro-F1, per-label scores, confused pairs, calibration, out-of-scope metrics."""
    from swarm.router import Router, read_labelled_file
    from swarm.router.metrics import evaluate

    pairs = read_labelled_file(data_file, text_column=text_column, label_column=label_column)
    out = make_console()
    loaded: Any = Router.load(model_dir)
    oos = oos_label if oos_label is not None else loaded.policy.oos_label
    if with_llm:
        loaded = second_opinion_from_env(loaded, environ={**os.environ, ENABLE_ENV: "1"})
    texts, labels = [t for t, _ in pairs], [label for _, label in pairs]
    try:
        with progress_bars(out, enabled=not as_json) as progress:
            advance = progress("routing", len(texts)) if progress else None
            report = evaluate(loaded, texts, labels, oos_label=oos, progress=advance)
    finally:
        if with_llm:
            loaded.close()
    stats = loaded.stats.to_dict() if with_llm else None
    if as_json:
        _json_line({**report.to_dict(), **({"second_opinion": stats} if stats else {})})
        return
    out.print(report)
    if stats:
        out.print(
            f"LLM asked for {stats['asked']} of {stats['decisions']} decisions "
            f"({stats['asked_share']:.1%}); it changed {stats['changed']} and failed "
            f"{stats['failed']} (the router's decision stood)"
        )


@router.command()
@click.argument("text")
@click.option(
    "--model",
    "model_dir",
    default=None,
    help="Version folder, or models folder (its CURRENT). Default: with --agents, the router "
    f"`swarm run --agents` serves for them; else {MODELS_DIR}.",
)
@click.option(
    "--agents", "agents_module", default=None, help="Check the router against these agents."
)
@click.option(
    "-k",
    "--top",
    "top",
    type=int,
    default=3,
    show_default=True,
    help="Candidates and examples shown.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def explain(
    text: str, model_dir: str | None, agents_module: str | None, top: int, as_json: bool
) -> None:
    """Route TEXT and show the top candidates and the training examples behind them."""
    from swarm.router import Router

    if agents_module:
        from swarm.agents import AgentRegistry

        importable_cwd()
        registry = AgentRegistry()
        registry.load_module(agents_module)
        if model_dir is None:  # the router `swarm run --agents` serves (its pack's folder too)
            from rich.console import Console

            from swarm.scenarios.runner import default_router_factory

            progress_to = Console(stderr=True, highlight=False)
            served = default_router_factory(MODELS_DIR, console=progress_to)("auto", registry)
            assert isinstance(served, Router)  # "auto" is always the learned router
            loaded = served
        else:
            loaded = Router.load(model_dir)
            loaded.check_agents(registry.names)
    else:
        loaded = Router.load(model_dir or MODELS_DIR)
    explanation = loaded.explain(text, k=top)
    if as_json:
        _json_line(explanation.to_dict())
        return
    make_console().print(explanation)


def run_standalone(command: click.Command, argv: list[str] | None, prog_name: str) -> None:
    """Run one of these commands outside the `swarm` group (`python -m swarm.router.train`),
    with the same one-line errors."""
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(1)
    except SwarmError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {exc}")
        sys.exit(2)
