"""`/retrain`: train a new router version with people's feedback, evaluate it against the serving
one on the same held-out set, and save it as serving only when it is not worse.

The held-out set is a fixed fifth of the agents' examples and out-of-scope texts (chosen by a
hash of the text, so every retrain holds out the same ones) that neither router trained on, plus
every case people labelled. New routers never train on that fifth, so from the second retrain on
the comparison is fair; the first compares with a router that may have seen some of them, and
those are left out of the evaluation.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarm.console.views import CaseRow, RetrainView
from swarm.feedback import OUT_OF_SCOPE

if TYPE_CHECKING:
    from swarm.router.feedback import BanditEvent

__all__ = ["RetrainCancelled", "RetrainOutcome", "held_out_split", "retrain"]

OOS = OUT_OF_SCOPE
HOLD_OUT_EVERY = 5


@dataclass
class RetrainOutcome:
    router: Any
    """The new router (saved; serving only when `switched`)."""
    old_report: Any
    new_report: Any
    cases: list[CaseRow]
    switched: bool
    held_out: int
    trained_on: int
    folder: Path
    note: str = ""

    def view(self) -> RetrainView:
        return RetrainView(
            self.old_report,
            self.new_report,
            self.cases,
            switched=self.switched,
            held_out=self.held_out,
            trained_on=self.trained_on,
            note=self.note,
        )


class RetrainCancelled(Exception):
    """Ctrl-C during `/retrain`: training stopped, nothing saved."""


ProgressFactory = Callable[[str, int], Callable[[int], None]]


def _cancellable(
    progress: ProgressFactory | None, cancelled: threading.Event | None
) -> ProgressFactory | None:
    """Training reports progress often; that is where a cancelled retrain stops."""
    if cancelled is None:
        return progress

    def make(description: str, total: int) -> Callable[[int], None]:
        advance = progress(description, total) if progress is not None else None

        def step(n: int) -> None:
            if cancelled.is_set():
                raise RetrainCancelled("retrain cancelled")
            if advance is not None:
                advance(n)

        return step

    return make


def _rank(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def held_out_split(
    pairs: Iterable[tuple[str, str]], every: int = HOLD_OUT_EVERY
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, held out): per label, every `every`-th text in hash order is held out.

    Labels with fewer than `every` texts keep them all for training: a label must be learnt.
    """
    by_label: dict[str, list[str]] = {}
    for text, label in pairs:
        by_label.setdefault(label, []).append(text)
    train: list[tuple[str, str]] = []
    held: list[tuple[str, str]] = []
    for label, texts in by_label.items():
        ordered = sorted(dict.fromkeys(texts), key=_rank)
        for i, text in enumerate(ordered):
            keep_out = len(ordered) >= every and i % every == every - 1
            (held if keep_out else train).append((text, label))
    return train, held


def retrain(
    old: Any,
    registry: Any,
    feedback: Sequence[tuple[str, str]],
    models_dir: str | Path,
    *,
    out_of_scope: Sequence[str] = (),
    progress: ProgressFactory | None = None,
    cache_dir: str | Path | None = None,
    config: Any = None,
    cancelled: threading.Event | None = None,
    events: Sequence[BanditEvent] = (),
) -> RetrainOutcome:
    """Train, evaluate both, save the new version; CURRENT moves only when it is not worse.

    `feedback`: (text, agent) pairs people stated (corrections); pairs naming agents this swarm
    lacks are dropped. `events`: routings people marked good or bad, learnt by the bandit update
    (`swarm.router.feedback`) on top of the new head. Blocking (encodes and trains): call it
    from a thread; setting `cancelled` stops it at the next progress step (RetrainCancelled) and
    before anything is saved.
    """
    from swarm.router import TrainingData
    from swarm.router.feedback import GateResult, bandit_update, recalibrated
    from swarm.router.metrics import evaluate
    from swarm.router.train import TrainConfig, train_router

    names = set(registry.names)
    base = [(e, a.name) for a in registry for e in a.examples]
    base += [(a.description, a.name) for a in registry if a.description]
    base += [(t, OOS) for t in out_of_scope]
    labelled = [(t, a) for t, a in feedback if a in names or a == OOS]
    train_pairs, held = held_out_split(base)

    data = TrainingData()
    data.add_pairs([p for p in train_pairs if p[1] != OOS], "agent examples")
    data.add_pairs([p for p in train_pairs if p[1] == OOS], "out of scope")
    data.add_pairs(labelled, "feedback")
    new, _report = train_router(
        data,
        config or TrainConfig(),
        encoder=getattr(old, "encoder", None),
        cache_dir=cache_dir,
        progress=_cancellable(progress, cancelled),
        agents_fingerprint=registry.fingerprint(),
    )
    known = set(new.head_labels)
    events = [e for e in events if e.action in known]
    if events:
        if cancelled is not None and cancelled.is_set():
            raise RetrainCancelled("retrain cancelled; nothing was saved")
        # The update sharpens the head: refit the temperature on the held-out fifth, which the
        # new router never trained on.
        new = recalibrated(bandit_update(new, events), [t for t, _ in held], [a for _, a in held])

    # The evaluation: held-out texts the serving router did not train on, then the labelled cases
    # (a person's label wins over an example's).
    seen = set(getattr(getattr(old, "examples", None), "texts", None) or ())
    cases = dict(labelled)
    evaluation = {t: label for t, label in held if t not in seen and t not in cases}
    note = ""
    if len(evaluation) < len(held):
        note = (
            f"{len(held) - len(evaluation)} held-out examples were left out of the evaluation: "
            "the serving router trained on them"
        )
    evaluation.update(cases)
    if not evaluation:  # nothing fair to compare on: compare on the held-out fifth anyway
        evaluation = dict(held)
        note = "the serving router trained on every held-out example: the comparison favours it"
    texts, labels = list(evaluation), list(evaluation.values())
    old_report = evaluate(old, texts, labels, oos_label=OOS)
    new_report = evaluate(new, texts, labels, oos_label=OOS)
    case_texts = list(cases)
    rows: list[CaseRow] = []
    if case_texts:
        old_d = old.route(case_texts)
        new_d = new.route(case_texts)
        rows = [
            CaseRow(t, cases[t], d0.agent or OOS, d1.agent or OOS)
            for t, d0, d1 in zip(case_texts, old_d, new_d, strict=True)
        ]
    switched = new_report.accuracy >= old_report.accuracy
    if cancelled is not None and cancelled.is_set():
        raise RetrainCancelled("retrain cancelled; nothing was saved")
    verdict = "not worse" if switched else "worse"
    reason = (
        f"{verdict} on {len(texts)} held-out texts: accuracy "
        f"{old_report.accuracy:.4f} -> {new_report.accuracy:.4f} (console /retrain)"
    )
    new.manifest["parent"] = old.version
    new.manifest["promotion"] = GateResult(switched, reason, old_report, new_report, 0.0).to_dict()
    folder = new.save(models_dir, make_current=switched)
    new_report.version = new.version  # saving may rename a version that already exists
    return RetrainOutcome(
        router=new,
        old_report=old_report,
        new_report=new_report,
        cases=rows,
        switched=switched,
        held_out=len(texts),
        trained_on=len(data.resolved()),
        folder=folder,
        note=note,
    )
