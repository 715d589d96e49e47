"""The console session in-process with a learned router on the hash encoder (no model to load):
`/why`, feedback, `/route`, `/retrain` switching only when not worse, and the held-out split."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from swarm.agents import AgentRegistry
from swarm.console import ConsoleSession
from swarm.console.live import ObservedStore
from swarm.console.retrain import held_out_split, retrain
from swarm.router import Router, TrainingData
from swarm.router.feedback import BanditEvent
from swarm.router.model import HeadConfig
from swarm.router.train import TrainConfig, train_router
from swarm.testing.encoders import HashEncoder
from swarm_examples import quickstart

TEXT = "my parcel came but I was charged twice for it"
SMALL = TrainConfig(head=HeadConfig(members=3, max_epochs=40, hidden=64))


@pytest.fixture
def registry() -> AgentRegistry:
    return AgentRegistry(quickstart.AGENTS)


@pytest.fixture
def models_dir(tmp_path: Path, registry: AgentRegistry, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SWARM_EMBEDDING_CACHE", str(tmp_path / "cache"))
    data = TrainingData()
    data.add_agents(registry)
    router, _ = train_router(
        data, SMALL, encoder=HashEncoder(), agents_fingerprint=registry.fingerprint()
    )
    router.save(tmp_path / "models")
    return tmp_path / "models"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObservedStore]:
    s = ObservedStore(f"sqlite:///{tmp_path / 'console.db'}")
    yield s
    s.close()


def session(
    lines: list[str], registry: AgentRegistry, models_dir: Path, store: ObservedStore
) -> tuple[ConsoleSession, Console]:
    out = Console(file=io.StringIO(), width=100, color_system=None, highlight=False)
    feed = iter(lines)

    def read_line(prompt: str) -> str:
        try:
            line = next(feed)
        except StopIteration:
            raise EOFError from None
        out.print(prompt + line)
        return line

    s = ConsoleSession(
        registry=registry,
        router=Router.load(models_dir),
        store=store,
        console=out,
        agents_spec="swarm_examples.quickstart",
        models_dir=str(models_dir),
        out_of_scope=quickstart.OUT_OF_SCOPE,
        read_line=read_line,
    )
    return s, out


def screen(out: Console) -> str:
    f = out.file
    assert isinstance(f, io.StringIO)
    return f.getvalue()


def test_correct_retrain_and_the_router_gets_it_right(
    registry: AgentRegistry, models_dir: Path, store: ObservedStore
) -> None:
    first = Router.load(models_dir)
    routed = first.route([TEXT])[0].agent
    wanted = "orders" if routed != "orders" else "billing"
    s, out = session(
        [TEXT, "/why", f"/route {wanted}", "/retrain", TEXT, "/why"], registry, models_dir, store
    )
    s.run()
    text = screen(out)
    assert "nearest training examples" in text  # /why: Router.explain
    assert f"correction recorded: “{TEXT}” belongs to {wanted}" in text
    assert "held-out evaluation" in text and f"old {first.version}" in text
    assert "switched: router" in text
    assert s.router is not first and s.swarm.router is s.router
    # the same request now goes where the person said
    assert s.router.route([TEXT])[0].agent == wanted
    assert text.count(f"route {wanted}") >= 1
    assert (models_dir / "CURRENT").read_text().strip() == s.router.version
    tasks = store.tasks(limit=None, roots_only=True)
    assert [t["text"] for t in tasks].count(TEXT) == 3
    assert store.feedback()[0]["session_id"] == s.session_id


def test_a_worse_router_is_saved_but_not_made_current(
    registry: AgentRegistry, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm.router import metrics

    old = Router.load(models_dir)
    real = metrics.evaluate

    def evaluate(router: Router, texts: list[str], labels: list[str], **kw: object) -> object:
        report = real(router, texts, labels, **kw)  # type: ignore[arg-type]
        if router is not old:  # make the new router look worse on the held-out set
            report.accuracy = -1.0
        return report

    monkeypatch.setattr(metrics, "evaluate", evaluate)
    outcome = retrain(
        old, registry, [(TEXT, "accounts")], models_dir, out_of_scope=quickstart.OUT_OF_SCOPE,
        config=SMALL,
    )  # fmt: skip
    assert not outcome.switched
    assert (models_dir / "CURRENT").read_text().strip() == old.version
    assert outcome.folder.exists() and outcome.folder.name == outcome.router.version
    assert outcome.cases[0].label == "accounts" and outcome.held_out >= 1
    out = Console(file=io.StringIO(), width=100, color_system=None)
    out.print(outcome.view())
    assert f"kept router {old.version}" in screen(out)
    # The manifest says why, as `swarm router versions` shows it.
    manifest = json.loads((outcome.folder / "manifest.json").read_text())
    assert manifest["parent"] == old.version
    assert manifest["promotion"]["promoted"] is False
    assert manifest["promotion"]["reason"].startswith("worse on")


def test_held_out_split_is_fixed_and_keeps_small_labels() -> None:
    pairs = [(f"text {i}", "a") for i in range(10)] + [("x", "b"), ("y", "b")]
    train, held = held_out_split(pairs)
    again_train, again_held = held_out_split(list(reversed(pairs)))  # order does not matter
    assert set(again_held) == set(held) and set(again_train) == set(train)
    assert len(held) == 2 and all(label == "a" for _, label in held)
    assert {("x", "b"), ("y", "b")} <= set(train)
    assert set(train) | set(held) == set(pairs) and not set(train) & set(held)


def test_retrain_needs_the_learned_router(
    registry: AgentRegistry, tmp_path: Path, store: ObservedStore
) -> None:
    from swarm.testing import KeywordRouter

    out = Console(file=io.StringIO(), width=100, color_system=None)
    lines = iter(["/retrain", "/why"])
    s = ConsoleSession(
        registry=registry,
        router=KeywordRouter(registry),
        store=store,
        console=out,
        read_line=lambda _prompt: next(lines),
    )
    with pytest.raises(StopIteration):
        s.run()
    text = screen(out)
    assert "/retrain needs the learned router" in text and "no request routed yet" in text


def test_a_cancelled_retrain_saves_nothing(registry: AgentRegistry, models_dir: Path) -> None:
    import threading

    from swarm.console.retrain import RetrainCancelled

    old = Router.load(models_dir)
    before = sorted(p.name for p in models_dir.iterdir())
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(RetrainCancelled):
        retrain(old, registry, [], models_dir, config=SMALL, cancelled=cancelled)
    assert sorted(p.name for p in models_dir.iterdir()) == before


def test_retrain_learns_good_and_bad_marks_with_the_bandit_update(
    registry: AgentRegistry, models_dir: Path
) -> None:
    old = Router.load(models_dir)
    routed = old.route([TEXT])[0].agent
    assert routed is not None
    common = {"out_of_scope": quickstart.OUT_OF_SCOPE, "config": SMALL}
    plain = retrain(old, registry, [], models_dir, **common)  # type: ignore[arg-type]
    marked = retrain(
        old,
        registry,
        [],
        models_dir,
        events=[BanditEvent(TEXT, routed, 0.0)],
        **common,  # type: ignore[arg-type]
    )

    def p(router: Router) -> float:
        _, probs = router.probabilities([TEXT])
        return float(probs[0][router.head_labels.index(routed)])

    # The same retrain (seeded), then the bad mark: the agent it was wrongly sent to loses.
    assert p(marked.router) < p(plain.router)
    manifest = json.loads((marked.folder / "manifest.json").read_text())
    assert manifest["parent"] == old.version and "promotion" in manifest
