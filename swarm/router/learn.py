"""The one way a router learns, and the one gate a new version passes before it serves.

`learn` trains a candidate (a new head from labelled examples, or people's feedback learnt on top
of a serving router, or both), compares it with the router that serves the same agents on
held-out texts it never trained on (`gate`), and saves it: serving when the gate promotes it,
kept beside with the reason when not. `swarm router train` (with or without `--feedback`), the
console's `/retrain` and `ensure_router` (packs and `--router auto`) all come here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from swarm.errors import ArtifactError, DataError
from swarm.router.artifacts import (
    MANIFEST_FILE,
    agent_set_fingerprint,
    current_version,
    list_versions,
    read_manifest,
)
from swarm.router.data import DEFAULT_OOS_LABEL, FEEDBACK_SOURCE, TrainingData, normalise_text
from swarm.router.encoders import Encoder
from swarm.router.feedback import (
    LEARNING_TEMPERATURE,
    BanditConfig,
    FeedbackData,
    bandit_update,
    gather_feedback,
    learning_temperature,
    recalibrated,
)
from swarm.router.router import Router

__all__ = [
    "MIN_HELD_OUT",
    "GateResult",
    "HeldOut",
    "LearnCancelled",
    "LearnOutcome",
    "gate",
    "learn",
    "serving_for",
    "serving_version",
    "versions_for",
]

MIN_HELD_OUT = 20
"""The fewest held-out texts (that the candidate did not train on) the gate measures on; with
fewer, one text moves accuracy by more than five points and the gate claims no result."""

Unmeasured = Literal["promote", "keep"]
ProgressFactory = Callable[[str, int], Callable[[int], None]]


class LearnCancelled(Exception):
    """Learning was cancelled (the `cancelled` event was set): nothing was saved."""


# ---- the held-out set ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldOut:
    """Labelled texts to compare routers on, one per normalised text, with a name saying where
    they came from (e.g. "file eval.csv + suites scenarios")."""

    name: str
    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, name: str, pairs: Iterable[tuple[str, str]]) -> HeldOut:
        """Deduplicated by `normalise_text` (the first label given wins)."""
        seen: dict[str, tuple[str, str]] = {}
        for text, label in pairs:
            seen.setdefault(normalise_text(text), (text, label))
        return cls(name, tuple(seen.values()))

    @property
    def texts(self) -> list[str]:
        return [t for t, _ in self.pairs]

    @property
    def labels(self) -> list[str]:
        return [label for _, label in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def without(self, texts: Iterable[str]) -> HeldOut:
        """The texts not among `texts` (compared normalised): what a router did not train on."""
        drop = {normalise_text(t) for t in texts}
        return HeldOut(self.name, tuple(p for p in self.pairs if normalise_text(p[0]) not in drop))

    def split(self) -> tuple[HeldOut, HeldOut]:
        """Two halves chosen by a hash of the text (the same texts every time): one to refit a
        temperature on, one to measure with."""

        def rank(pair: tuple[str, str]) -> str:
            return hashlib.sha256(normalise_text(pair[0]).encode()).hexdigest()

        ordered = sorted(self.pairs, key=rank)
        return (
            HeldOut(f"{self.name} (calibration half)", tuple(ordered[0::2])),
            HeldOut(f"{self.name} (measuring half)", tuple(ordered[1::2])),
        )

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for label, text in sorted((label, normalise_text(t)) for t, label in self.pairs):
            h.update(f"{label}\t{text}\n".encode())
        return h.hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        """What a figure was measured on, for the manifest and `router versions`."""
        return {"name": self.name, "size": len(self), "hash": self.fingerprint()}


# ---- the gate ------------------------------------------------------------------------------------


@dataclass
class GateResult:
    promoted: bool
    reason: str
    before: Any
    """The serving router's EvalReport on the held-out set (None when nothing was measured)."""
    after: Any
    """The candidate's (None when nothing was measured)."""
    tolerance: float
    held_out: dict[str, Any] = field(default_factory=dict)
    """`HeldOut.describe()` of the texts both were measured on."""

    @property
    def measured(self) -> bool:
        return self.after is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "promoted": self.promoted,
            "measured": self.measured,
            "reason": self.reason,
            "tolerance": self.tolerance,
            "held_out": self.held_out,
            "before": _summary(self.before),
            "after": _summary(self.after),
        }


def _summary(report: Any) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "version": report.version,
        "examples": report.examples,
        "accuracy": round(report.accuracy, 4),
        "macro_f1": round(report.macro_f1, 4),
        "ece": round(report.ece, 4),
    }


def gate(
    candidate: Router,
    serving: Router | None,
    held_out: HeldOut,
    *,
    trained_on: Iterable[str] = (),
    tolerance: float = 0.01,
    min_held_out: int = MIN_HELD_OUT,
    unmeasured: Unmeasured = "keep",
) -> GateResult:
    """Should `candidate` serve instead of `serving`?

    Both are measured on the same texts: `held_out` less every text the candidate trained on
    (`trained_on`, compared normalised). With no serving router for the candidate's agents there
    is nothing to compare with: promoted. With fewer than `min_held_out` texts left the gate claims
    no result and `unmeasured` decides ("keep": kept beside; "promote": `router train` and
    `ensure_router`, which serve what they were asked to train). Otherwise the candidate is
    promoted when its accuracy is at least the serving one's minus `tolerance` (0.01: one point).
    """
    from swarm.router.metrics import evaluate

    if serving is None or set(serving.labels) != set(candidate.labels):
        why = (
            "no router serves these agents yet"
            if serving is None
            else (f"router {serving.version} serves other agents")
        )
        return GateResult(True, f"{why}: nothing to compare with", None, None, tolerance)
    fair = held_out.without(trained_on)
    if len(fair) < min_held_out:
        return unmeasured_result(len(held_out), fair, min_held_out, unmeasured, tolerance)
    described = fair.describe()
    oos = candidate.policy.oos_label or DEFAULT_OOS_LABEL
    before = evaluate(serving, fair.texts, fair.labels, oos_label=oos)
    after = evaluate(candidate, fair.texts, fair.labels, oos_label=oos)
    change = after.accuracy - before.accuracy
    on = f"on {len(fair)} held-out texts ({fair.name})"
    if change >= -tolerance:
        reason = (
            f"not worse {on}: accuracy {before.accuracy:.4f} -> {after.accuracy:.4f} "
            f"({change * 100:+.2f} points; the gate allows a fall of {tolerance * 100:.2f})"
        )
        return GateResult(True, reason, before, after, tolerance, described)
    reason = (
        f"worse {on}: accuracy {before.accuracy:.4f} -> {after.accuracy:.4f} "
        f"({change * 100:+.2f} points, more than the {tolerance * 100:.2f} the gate allows)"
    )
    return GateResult(False, reason, before, after, tolerance, described)


def unmeasured_result(
    given: int, fair: HeldOut, min_held_out: int, unmeasured: Unmeasured, tolerance: float
) -> GateResult:
    """The gate's verdict when fewer than `min_held_out` of the `given` held-out texts are ones
    the candidate did not train on (`fair`): no result claimed; `unmeasured` decides."""
    left = f"{len(fair)} of {given}" if given else "0"
    what = (
        f"not enough held-out data ({left} held-out texts the new router did not train on; "
        f"the gate needs {min_held_out})"
    )
    promoted = unmeasured == "promote"
    verdict = "promoted without a comparison" if promoted else "kept beside"
    return GateResult(promoted, f"{what}: {verdict}", None, None, tolerance, fair.describe())


# ---- which version serves which agents -----------------------------------------------------------


def versions_for(
    models_dir: str | Path,
    agent_names: Sequence[str],
    *,
    data_fingerprint: str | None = None,
    encoder_fingerprint: str | None = None,
    kept_beside: bool = False,
) -> list[str]:
    """Versions in `models_dir` trained for exactly these agents (and, when given, this data and
    this encoder), newest first; those the gate kept beside only with `kept_beside`."""
    root = Path(models_dir)
    wanted = agent_set_fingerprint(agent_names)
    found = []
    for version in reversed(list_versions(root)):
        try:
            m = read_manifest(root / version)
        except ArtifactError:
            continue  # a broken folder serves nobody; loading it by name says why
        if m.get("agents_fingerprint") != wanted:
            continue
        if data_fingerprint is not None and m.get("data_fingerprint") != data_fingerprint:
            continue
        if encoder_fingerprint is not None and m["encoder"].get("fingerprint") != (
            encoder_fingerprint
        ):
            continue
        if not kept_beside and (m.get("promotion") or {}).get("promoted") is False:
            continue
        found.append(version)
    return found


def serving_version(models_dir: str | Path, agent_names: Sequence[str]) -> str | None:
    """The version that serves these agents in `models_dir`: CURRENT when it was trained for
    them, else the newest version that was (one folder holds versions for several agent sets)."""
    root = Path(models_dir)
    current = current_version(root)
    if current is not None and (root / current / MANIFEST_FILE).is_file():
        manifest = read_manifest(root / current)
        if manifest.get("agents_fingerprint") == agent_set_fingerprint(agent_names):
            return current
    versions = versions_for(root, agent_names)
    return versions[0] if versions else None


def serving_for(
    models_dir: str | Path, agent_names: Sequence[str], *, encoder: Encoder | None = None
) -> Router | None:
    """`serving_version`'s router, loaded with `encoder` when it was trained with that one (else
    with the encoder its manifest names)."""
    version = serving_version(models_dir, agent_names)
    if version is None:
        return None
    folder = Path(models_dir) / version
    recorded = read_manifest(folder)["encoder"].get("fingerprint")
    same = encoder is not None and recorded == encoder.fingerprint
    return Router.load(folder, encoder=encoder if same else None)


# ---- all together --------------------------------------------------------------------------------


@dataclass
class LearnOutcome:
    router: Router
    """The new version (saved unless learn had no models folder; serving when `made_current`)."""
    gate: GateResult
    serving: Router | None
    """What it was compared with (None when there was none, or too little to measure on)."""
    compared_with: str | None
    """The version serving these agents when it was learnt."""
    folder: Path | None
    made_current: bool
    report: Any = None
    """The TrainReport when a new head was trained."""
    feedback: FeedbackData | None = None
    contributions: dict[str, float] = field(default_factory=dict)
    """Held-out accuracy change (points) each kind of feedback brought (feedback on top only)."""
    cases: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(text, label a person gave, serving router's choice, new router's choice)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.router.version,
            "path": str(self.folder) if self.folder else None,
            "serving": self.made_current,
            "compared_with": self.compared_with,
            **self.gate.to_dict(),
        }
        if self.report is not None:
            out.update(self.report.to_dict())
        if self.feedback is not None:
            out["feedback"] = self.feedback.counts()
            out["contradictions"] = [
                {"text": c.text, "verdicts": list(c.verdicts)} for c in self.feedback.contradictions
            ]
            out["skipped"] = dict(self.feedback.skipped)
            out["contributions"] = self.contributions
        return out

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.table import Table
        from rich.text import Text

        if self.report is not None:
            yield self.report
        if self.feedback is not None:
            counts = self.feedback.counts()
            used = Table(title="feedback", show_edge=False, title_justify="left")
            for column in ("good", "bad", "corrections", "contradictory texts", "skipped"):
                used.add_column(column, justify="right")
            used.add_row(
                *(
                    str(counts[k])
                    for k in ("good", "bad", "corrections", "contradictory_texts", "skipped")
                )
            )
            yield used
            for c in self.feedback.contradictions[:10]:
                yield Text(
                    f"contradictory, left out: “{c.text}”: " + ", ".join(c.verdicts), "yellow"
                )
            for reason, n in self.feedback.skipped.items():
                yield Text(f"skipped {n}: {reason}", style="grey50")
        g = self.gate
        if g.measured:
            held = g.held_out
            table = Table(
                title=f"held-out set: {held['size']} texts, {held['name']} (hash {held['hash']})",
                title_justify="left",
                show_edge=False,
            )
            for column in ("router", "accuracy", "macro-F1", "ECE"):
                table.add_column(column, justify="left" if column == "router" else "right")
            for name, r in (("serving", g.before), ("new", g.after)):
                table.add_row(
                    f"{name} {r.version}", f"{r.accuracy:.4f}", f"{r.macro_f1:.4f}", f"{r.ece:.4f}"
                )
            yield table
        if self.contributions:
            yield "contributions (held-out accuracy, points): " + ", ".join(
                f"{k} {v:+.2f}" for k, v in self.contributions.items()
            )
        if self.cases:
            cases = Table(title="cases people labelled", show_edge=False, title_justify="left")
            for column in ("request", "wanted", "serving", "new"):
                cases.add_column(column)
            for text, label, old, new in self.cases[:20]:
                cases.add_row(
                    text if len(text) <= 44 else text[:43] + "…",
                    label,
                    Text(old, style="green" if old == label else "red"),
                    Text(new, style="green" if new == label else "red"),
                )
            yield cases
        version, where = self.router.version, f" (in {self.folder})" if self.folder else ""
        if self.made_current:
            undo = (
                f"; roll back with `swarm router use {self.compared_with}`"
                if self.compared_with is not None
                else ""
            )
            yield Text.assemble(
                ("promoted", "bold green"),
                f": router {version} now serves{where} ({g.reason}){undo}",
            )
        elif g.promoted:
            yield Text.assemble(
                ("saved", "bold"),
                f": router {version}{where}, not serving (--no-current); the gate: {g.reason}; "
                f"`swarm router use {version}` serves it",
            )
        else:
            kept = f"router {self.compared_with} still serves; " if self.compared_with else ""
            yield Text.assemble(
                ("kept beside", "bold yellow"),
                f": router {version}{where} ({g.reason}); {kept}"
                f"`swarm router use {version}` serves it anyway",
            )


def learn(
    models_dir: str | Path | None,
    *,
    data: TrainingData | None = None,
    base: Router | None = None,
    serving: Router | None = None,
    feedback_rows: Iterable[Mapping[str, Any]] = (),
    held_out: HeldOut | None = None,
    config: Any = None,
    bandit: BanditConfig | None = None,
    tolerance: float = 0.01,
    min_held_out: int = MIN_HELD_OUT,
    unmeasured: Unmeasured = "keep",
    make_current: bool = True,
    encoder: Encoder | None = None,
    cache_dir: str | Path | None = None,
    progress: ProgressFactory | None = None,
    cancelled: threading.Event | None = None,
    registry_fingerprint: str | None = None,
) -> LearnOutcome:
    """Train a candidate, gate it against the serving router, save it.

    The candidate: with `data`, a new head trained on all of it (`config`: a TrainConfig) plus the
    corrections among `feedback_rows`; without, `base` (required then) with the corrections
    learnt on top. Either way, the good/bad marks among `feedback_rows` are learnt by the bandit
    update (`swarm.router.feedback`). After a feedback update the temperature is refit on one half
    of the held-out texts and the gate measures on the other, when there are enough for both.

    `serving` is what the gate compares with: by default `base`, else the router serving the same
    agents in `models_dir` (`serving_for`). `make_current=False` saves without serving, whatever
    the gate says. With `models_dir` None nothing is saved. Raises DataError when there is
    nothing to learn, LearnCancelled when `cancelled` is set (nothing saved then).
    """
    from swarm.router.train import TrainConfig, train_router

    if data is None and base is None:
        raise ValueError("learn needs training data, or a router to learn on top of")
    rows = list(feedback_rows)
    held_out = held_out or HeldOut("none")

    def check_cancelled() -> None:
        if cancelled is not None and cancelled.is_set():
            raise LearnCancelled("cancelled; nothing was saved")

    feedback: FeedbackData | None = None
    report = None
    trained_on: list[str] = []
    if data is not None:
        data_fingerprint = data.fingerprint()  # what it learnt from, feedback apart
        labels = sorted({ex.label for ex in data.resolved()})
        train_data = TrainingData(list(data.examples), on_conflict=data.on_conflict)
        cfg = config or TrainConfig()
        if rows:
            feedback = gather_feedback(rows, labels, oos_label=cfg.oos_label)
            train_data.add_pairs(feedback.corrections, FEEDBACK_SOURCE)
        candidate, report = train_router(
            train_data,
            cfg,
            encoder=encoder,
            cache_dir=cache_dir,
            progress=_cancellable(progress, cancelled),
            agents_fingerprint=registry_fingerprint,
        )
        candidate.manifest["data_fingerprint"] = data_fingerprint
        trained_on += [ex.text for ex in train_data.resolved()]
        start = candidate
        corrections: list[tuple[str, str]] = []
    else:
        assert base is not None
        start = base
        feedback = gather_feedback(
            rows, base.head_labels, oos_label=base.policy.oos_label or DEFAULT_OOS_LABEL
        )
        if not feedback.events and not feedback.corrections:
            detail = f" ({len(feedback.contradictions)} texts had contradictory feedback)" * bool(
                feedback.contradictions
            )
            raise DataError(f"no usable feedback in {feedback.rows} rows{detail}; nothing to learn")
        corrections = feedback.corrections
        trained_on += base.examples.texts if base.examples is not None else []
    events = feedback.events if feedback is not None else []
    trained_on += [t for t, _ in corrections] + [e.text for e in events]
    fair = held_out.without(trained_on)
    calibration: HeldOut | None = None
    if (events or corrections) and len(fair) >= 2 * min_held_out:
        calibration, fair = fair.split()

    def update(events_: Sequence[Any], corrections_: Sequence[tuple[str, str]]) -> Router:
        check_cancelled()
        updated = bandit_update(start, events_, bandit, corrections=corrections_)
        if calibration is not None:
            updated = recalibrated(updated, calibration.texts, calibration.labels)
        return updated

    candidate = update(events, corrections) if events or corrections else start
    if serving is None:
        serving = base
    compared_with = serving.version if serving is not None else None
    if serving is None and models_dir is not None:
        compared_with = serving_version(models_dir, candidate.labels)
        if compared_with is not None and len(fair) >= min_held_out:  # load only to measure
            serving = serving_for(models_dir, candidate.labels, encoder=candidate.encoder)

    contributions: dict[str, float] = {}
    if (
        data is None
        and serving is not None
        and events
        and corrections
        and len(fair) >= min_held_out
    ):
        from swarm.router.metrics import evaluate

        def accuracy(router: Router) -> float:
            return evaluate(router, fair.texts, fair.labels).accuracy

        base_accuracy = accuracy(serving)
        for kind, router in (
            ("corrections", update([], corrections)),
            ("bandit", update(events, [])),
            ("together", candidate),
        ):
            contributions[kind] = round((accuracy(router) - base_accuracy) * 100, 2)
    check_cancelled()
    if serving is None and compared_with is not None:  # not loaded: too little to measure on
        result = unmeasured_result(len(held_out), fair, min_held_out, unmeasured, tolerance)
    else:
        result = gate(
            candidate,
            serving,
            fair,
            tolerance=tolerance,
            min_held_out=min_held_out,
            unmeasured=unmeasured,
        )
    if calibration is not None:
        result.held_out["temperature_refit_on"] = calibration.describe()

    cases: list[tuple[str, str, str, str]] = []
    if feedback is not None and feedback.corrections and serving is not None:
        texts = [t for t, _ in feedback.corrections]
        oos = candidate.policy.oos_label or DEFAULT_OOS_LABEL
        old, new = serving.route(texts), candidate.route(texts)
        cases = [
            (t, label, d0.agent or oos, d1.agent or oos)
            for (t, label), d0, d1 in zip(feedback.corrections, old, new, strict=True)
        ]

    if data is None or feedback is not None:
        _stamp(candidate, start, feedback, bandit, contributions, on_top=data is None)
    if registry_fingerprint is not None:
        candidate.manifest["registry_fingerprint"] = registry_fingerprint
    candidate.manifest["promotion"] = result.to_dict()
    if compared_with is not None:
        candidate.manifest["compared_with"] = compared_with
    made_current = result.promoted and make_current
    folder = None
    if models_dir is not None:
        check_cancelled()
        folder = candidate.save(models_dir, make_current=made_current)
        if result.after is not None:
            result.after.version = candidate.version  # saving may rename a version
    return LearnOutcome(
        candidate,
        result,
        serving,
        compared_with,
        folder,
        made_current if folder is not None else False,
        report=report,
        feedback=feedback,
        contributions=contributions,
        cases=cases,
    )


def _stamp(
    candidate: Router,
    start: Router,
    feedback: FeedbackData | None,
    bandit: BanditConfig | None,
    contributions: dict[str, float],
    *,
    on_top: bool,
) -> None:
    """A fresh version name (for feedback learnt on top of `start`, a child version) and a
    manifest that says what it learnt from."""
    if on_top:
        created = dt.datetime.now(dt.UTC)
        events = feedback.events if feedback else []
        corrections = feedback.corrections if feedback else []
        digest = hashlib.sha256(repr((start.version, corrections, events)).encode()).hexdigest()
        candidate.version = created.strftime("%Y%m%d-%H%M%S-") + digest[:6]
        candidate.manifest = {
            **start.manifest,
            "created_at": created.isoformat(timespec="seconds"),
            "parent": start.version,
        }
        for stale in ("files", "promotion", "compared_with"):
            candidate.manifest.pop(stale, None)
    candidate.manifest[LEARNING_TEMPERATURE] = learning_temperature(start)
    if feedback is not None:
        candidate.manifest["feedback"] = {
            **feedback.counts(),
            "contributions": contributions,
            "bandit_config": (bandit or BanditConfig()).to_dict(),
        }


def _cancellable(
    progress: ProgressFactory | None, cancelled: threading.Event | None
) -> ProgressFactory | None:
    """Training reports progress often; that is where a cancelled learn stops."""
    if cancelled is None:
        return progress

    def make(description: str, total: int) -> Callable[[int], None]:
        advance = progress(description, total) if progress is not None else None

        def step(n: int) -> None:
            if cancelled.is_set():
                raise LearnCancelled("cancelled; nothing was saved")
            if advance is not None:
                advance(n)

        return step

    return make
