"""`swarm router …`: train, evaluate and explain the learned router."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
from rich.console import Console

from swarm.cli.common import MODELS_OPTION, importable_cwd, make_console, progress_bars
from swarm.errors import DataError, SwarmError
from swarm.trace import DEFAULT_DB_URL

MODELS_DIR = "storage/models"


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
    help="Retrain from scratch, adding this trace store's labelled feedback to the data.",
)
@click.option(
    "--feedback",
    "from_feedback",
    is_flag=True,
    help="Learn from the feedback in --db on top of the serving router (corrections as labelled "
    "examples, good/bad as a bandit update); promote it only if held-out accuracy holds.",
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
    help="With --feedback: labelled held-out file for the promotion gate; repeatable.",
)
@click.option(
    "--suite",
    "suites",
    multiple=True,
    help="With --feedback: scenario suites (files or folders) whose routing expectations are "
    "the held-out set; default: scenarios/ when there is no --eval.",
)
@click.option(
    "--tolerance",
    type=float,
    default=0.01,
    show_default=True,
    help="With --feedback: promote unless held-out accuracy falls more than this (0.01: 1 point).",
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
    "--oos-label", default="oos", show_default=True, help="Label of out-of-scope examples."
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
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--text-column", default=None, help="Column/key of the text (default text).")
@click.option(
    "--label-column",
    default=None,
    help="Column/key of the label (default label, intent or category).",
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
def train(
    data_files: tuple[str, ...],
    agents_module: str | None,
    feedback_db: str | None,
    from_feedback: bool,
    db: str,
    eval_files: tuple[str, ...],
    suites: tuple[str, ...],
    tolerance: float,
    out_dir: str,
    encoder: str | None,
    oos_label: str,
    threshold: float | None,
    target_rejection: float,
    ambiguity_margin: float,
    members: int | None,
    hidden: int | None,
    epochs: int | None,
    seed: int,
    text_column: str | None,
    label_column: str | None,
    cache_dir: str | None,
    finetune: bool,
    finetune_minutes: float,
    no_current: bool,
    as_json: bool,
) -> None:
    """Train a router from labelled files (--data) and/or agents (--agents), save a new version.

    With --feedback: learn from people's feedback on top of the serving router instead.
    """
    from swarm.router.encoders import DEFAULT_ENCODER
    from swarm.router.model import HeadConfig
    from swarm.router.train import TrainConfig, gather_training_data, train_router

    if from_feedback:
        if data_files or agents_module or feedback_db:
            raise click.UsageError(
                "--feedback learns on top of the serving router; --data, --agents and "
                "--feedback-db train a new one from scratch: use one or the other"
            )
        _train_from_feedback(db, out_dir, eval_files, suites, tolerance, as_json)
        return
    if not data_files and not agents_module and not feedback_db:
        raise click.UsageError("give --data FILE, --agents MODULE or --feedback-db URL")
    if agents_module:
        importable_cwd()
    out = make_console()
    data, fingerprint = gather_training_data(
        files=data_files,
        agents_module=agents_module,
        feedback_db=feedback_db,
        text_column=text_column,
        label_column=label_column,
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
        ambiguity_margin=ambiguity_margin,
        finetune=finetune,
        finetune_minutes=finetune_minutes,
    )
    with progress_bars(out, enabled=not as_json) as progress:
        trained, report = train_router(
            data, config, cache_dir=cache_dir, progress=progress, agents_fingerprint=fingerprint
        )
    folder = trained.save(out_dir, make_current=not no_current)
    if as_json:
        _json_line({"version": trained.version, "path": str(folder), **report.to_dict()})
        return
    out.print(report)
    serving = "" if no_current else " (now serving)"
    out.print(f"[green]saved router {trained.version}[/green] to {folder}{serving}")


def _train_from_feedback(
    db: str,
    models_dir: str,
    eval_files: tuple[str, ...],
    suites: tuple[str, ...],
    tolerance: float,
    as_json: bool,
) -> None:
    from swarm.cli.views import feedback_outcome_view
    from swarm.router import Router, read_labelled_file
    from swarm.router.feedback import learn_from_feedback
    from swarm.trace import TraceStore

    serving = Router.load(models_dir)
    held_out: list[tuple[str, str]] = []
    for f in eval_files:
        held_out += read_labelled_file(f)
    if suites or not eval_files:
        held_out += _suite_pairs(suites or ("scenarios",), serving, explicit=bool(suites))
    if not held_out:
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
            f"held-out set: {len(held_out)} labelled texts",
            style="grey50",
        )
    outcome = learn_from_feedback(
        serving, rows, held_out, models_dir=models_dir, tolerance=tolerance
    )
    if as_json:
        _json_line(outcome.to_dict())
        return
    out.print(feedback_outcome_view(outcome))


def _suite_pairs(paths: tuple[str, ...], router: Any, *, explicit: bool) -> list[tuple[str, str]]:
    """(text, label) from scenario steps the router decides and whose routing is expected, for
    the agents this router knows (the default scenarios/ folder may hold other swarms' suites)."""
    from pathlib import Path

    from swarm.scenarios.format import NONE_LABEL
    from swarm.scenarios.loader import load_suites

    if not explicit and not Path(paths[0]).is_dir():
        return []
    loaded = load_suites(paths)
    if loaded.errors and explicit:
        raise loaded.errors[0]
    oos = router.policy.oos_label
    known = set(router.head_labels)
    pairs = []
    for suite in loaded.suites:
        for scenario in suite.expanded():
            for step in scenario.steps:
                label = step.expect.label
                if step.agent is not None or label is None:
                    continue
                label = oos if label == NONE_LABEL else label
                if label in known:
                    pairs.append((step.user, label))
    return pairs


@router.command("use")
@click.argument("version")
@MODELS_OPTION
def use(version: str, models_dir: str) -> None:
    """Make VERSION the serving router (roll back, or promote a version kept beside)."""
    from swarm.router import current_version, list_versions, set_current

    versions = list_versions(models_dir)
    matches = [v for v in versions if v == version] or [
        v for v in versions if v.startswith(version)
    ]
    if len(matches) != 1:
        known = ", ".join(versions[-5:]) or "none"
        what = "is ambiguous" if matches else "is not a version"
        raise DataError(f"{version!r} {what} in {models_dir} (latest: {known})")
    previous = current_version(models_dir)
    set_current(models_dir, matches[0])
    undo = f"; undo with `swarm router use {previous}`" if previous else ""
    make_console().print(
        f"[green]router {matches[0]} now serves[/green] (was {previous or 'none'}){undo}"
    )


@router.command("versions")
@MODELS_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def versions(models_dir: str, as_json: bool) -> None:
    """Every saved router version, which one serves, and why each was promoted or kept beside."""
    from pathlib import Path

    from swarm.cli.views import versions_table
    from swarm.router import current_version, list_versions
    from swarm.router.artifacts import read_manifest

    serving = current_version(models_dir)
    manifests = [read_manifest(Path(models_dir) / v) for v in list_versions(models_dir)]
    # Oldest first; a version made from another within the same second still comes after it.
    parents = {m["version"]: m.get("parent") for m in manifests}

    def generation(version: str | None) -> int:
        return 0 if version not in parents else 1 + generation(parents[version])

    manifests.sort(key=lambda m: (str(m.get("created_at", "")), generation(m["version"])))
    if as_json:
        _json_line(
            {
                "serving": serving,
                "versions": [
                    {
                        "version": m["version"],
                        "created_at": m.get("created_at"),
                        "parent": m.get("parent"),
                        "promotion": m.get("promotion"),
                        "metrics": m.get("metrics"),
                    }
                    for m in manifests
                ],
            }
        )
        return
    make_console().print(versions_table(manifests, serving))


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
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def eval_(
    model_dir: str,
    data_file: str,
    oos_label: str | None,
    text_column: str | None,
    label_column: str | None,
    as_json: bool,
) -> None:
    """Accuracy, macro-F1, per-label scores, confused pairs, calibration, out-of-scope metrics."""
    from swarm.router import Router, read_labelled_file
    from swarm.router.metrics import evaluate

    pairs = read_labelled_file(data_file, text_column=text_column, label_column=label_column)
    out = make_console()
    loaded = Router.load(model_dir)
    texts, labels = [t for t, _ in pairs], [label for _, label in pairs]
    with progress_bars(out, enabled=not as_json) as progress:
        advance = progress("routing", len(texts)) if progress else None
        report = evaluate(loaded, texts, labels, oos_label=oos_label, progress=advance)
    if as_json:
        _json_line(report.to_dict())
        return
    out.print(report)


@router.command()
@click.argument("text")
@click.option(
    "--model",
    "model_dir",
    default=MODELS_DIR,
    show_default=True,
    help="Version folder, or models folder (its CURRENT).",
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
def explain(text: str, model_dir: str, agents_module: str | None, top: int, as_json: bool) -> None:
    """Route TEXT and show the top candidates and the training examples behind them."""
    from swarm.router import Router

    loaded = Router.load(model_dir)
    if agents_module:
        from swarm.agents import AgentRegistry

        importable_cwd()
        registry = AgentRegistry()
        registry.load_module(agents_module)
        loaded.check_agents(registry.names)
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
