"""`record_feedback` and `Swarm.feedback` on a real SQLite store after a real run: what each
verdict stores, and the calls refused with a message that says why."""

from __future__ import annotations

import pytest
from feedback_run import AGENTS, Ran

from swarm import FeedbackRecord, record_feedback
from swarm.agents import AgentRegistry
from swarm.errors import ConfigError, TaskNotFound
from swarm.swarm import Swarm
from swarm.testing import KeywordRouter
from swarm.trace import TraceStore
from swarm_examples import quickstart

ORDER = "where is my order"


def stored(store: TraceStore) -> list[tuple[object, ...]]:
    return [
        (r["task_id"], r["kind"], r["agent"], r["routed_agent"], r["router_version"], r["note"])
        for r in store.feedback()
    ]


def test_good_bad_and_corrections_are_stored_with_the_routing(ran: Ran, store: TraceStore) -> None:
    good = record_feedback(store, ran.order, "good")
    bad = record_feedback(store, ran.order, "bad", note="wrong desk")
    fix = record_feedback(store, ran.order, "bad", agent="billing", agents=AGENTS)
    bare = record_feedback(store, ran.order, None, agent="accounts", agents=iter(AGENTS))
    assert stored(store) == [
        (ran.order, "good", None, "orders", "keyword", None),
        (ran.order, "bad", None, "orders", "keyword", "wrong desk"),
        (ran.order, "correction", "billing", "orders", "keyword", None),
        (ran.order, "correction", "accounts", "orders", "keyword", None),
    ]
    ids = [r["id"] for r in store.feedback()]
    assert [good.id, bad.id, fix.id, bare.id] == ids
    assert fix == FeedbackRecord(
        id=ids[2],
        task_id=ran.order,
        kind="correction",
        agent="billing",
        routed_agent="orders",
        text=ORDER,
        router_version="keyword",
        note=None,
    )
    assert store.labelled_feedback() == [(ORDER, "orders"), (ORDER, "billing"), (ORDER, "accounts")]


def test_a_unique_prefix_names_the_task_and_finds_its_decision(ran: Ran, store: TraceStore) -> None:
    record = record_feedback(store, ran.order[:-4], "bad", agent="billing")
    assert (record.task_id, record.routed_agent, record.router_version) == (
        ran.order,
        "orders",
        "keyword",
    )
    assert store.feedback()[0]["task_id"] == ran.order


def test_the_store_alone_resolves_a_prefix_and_returns_the_row(ran: Ran, store: TraceStore) -> None:
    row = store.record_feedback(ran.order[:-4], "good")
    assert row == store.feedback()[0]
    assert (row["task_id"], row["routed_agent"], row["router_version"]) == (
        ran.order,
        "orders",
        "keyword",
    )


def test_out_of_scope_is_judged_and_named_as_oos(ran: Ran, store: TraceStore) -> None:
    good = record_feedback(store, ran.joke, "good")
    confirmed = record_feedback(store, ran.joke, "good", agent="oos", agents=AGENTS)
    wrong = record_feedback(store, ran.joke, "bad", agent="tech_support", agents=AGENTS)
    none = record_feedback(store, ran.order, "bad", agent="oos", agents=AGENTS)
    assert (good.kind, good.routed_agent, confirmed.kind) == ("good", None, "good")
    assert (wrong.kind, wrong.agent, wrong.routed_agent) == ("correction", "tech_support", None)
    assert (none.kind, none.agent, none.routed_agent) == ("correction", "oos", "orders")
    assert (ORDER, "oos") in store.labelled_feedback()
    # A rejection marked good teaches the same as a correction to oos.
    assert ("tell me a joke about cats", "oos") in store.labelled_feedback()
    with pytest.raises(ConfigError, match="'bad' says out of scope was wrong"):
        record_feedback(store, ran.joke, "bad", agent="oos")


def test_a_task_not_routed_by_a_router(ran: Ran, store: TraceStore) -> None:
    forced = record_feedback(store, ran.forced, "good")
    assert (forced.routed_agent, forced.router_version) == ("billing", None)
    for verdict in ("good", "bad"):
        with pytest.raises(ConfigError, match=f"was never routed.*nothing to mark {verdict}"):
            record_feedback(store, ran.unrouted, verdict)
    fix = record_feedback(store, ran.unrouted, "bad", agent="orders", agents=AGENTS)
    assert (fix.kind, fix.agent, fix.routed_agent, fix.text) == (
        "correction",
        "orders",
        None,
        "nobody routed me",
    )
    assert [r[0] for r in stored(store)] == [ran.forced, ran.unrouted]


def test_an_unknown_task_names_the_id_and_the_store(
    ran: Ran, store: TraceStore, db_url: str
) -> None:
    with pytest.raises(TaskNotFound) as caught:
        record_feedback(store, "nope", "good")
    assert "'nope'" in str(caught.value) and db_url in str(caught.value)
    assert store.feedback() == []


def test_an_unknown_agent_lists_the_known_ones(ran: Ran, store: TraceStore) -> None:
    with pytest.raises(ConfigError) as caught:
        record_feedback(store, ran.order, "bad", agent="biling", agents=AGENTS)
    message = str(caught.value)
    assert "no agent named 'biling'; did you mean 'billing'?" in message
    assert "agents: accounts, billing, orders, tech_support" in message
    with pytest.raises(ConfigError, match="no agent named 'zzz' \\(agents: "):
        record_feedback(store, ran.order, None, agent="zzz", agents=AGENTS)
    assert store.feedback() == []
    # Without a list of agents nothing is checked: the caller knows its names.
    assert record_feedback(store, ran.order, "bad", agent="zzz").agent == "zzz"


@pytest.mark.parametrize(
    ("verdict", "agent", "message"),
    [
        ("good", "billing", "'good' says 'orders' was right, but names 'billing'"),
        ("bad", "orders", "'bad' says 'orders' was wrong, but names 'orders'"),
        ("correction", None, "a correction names the agent"),
        ("meh", None, "a verdict is good, bad or correction, not 'meh'"),
    ],
)
def test_contradictions_are_refused_and_store_nothing(
    ran: Ran, store: TraceStore, verdict: str, agent: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        record_feedback(store, ran.order, verdict, agent=agent, agents=AGENTS)
    assert store.feedback() == []


def test_good_naming_the_routed_agent_is_plain_good(ran: Ran, store: TraceStore) -> None:
    record = record_feedback(store, ran.order, "good", agent="orders", agents=AGENTS)
    assert (record.kind, record.agent) == ("good", None)


async def test_swarm_feedback_right_after_a_run(db_url: str) -> None:
    registry = AgentRegistry(quickstart.AGENTS)
    async with Swarm(registry, router=KeywordRouter(registry), db=db_url) as s:
        result = await s.run(ORDER)
        good = await s.feedback(result.task_id)  # no flush in between: feedback waits for it
        fix = await s.feedback(result.task_id, agent="billing", note="refund question")
        with pytest.raises(ConfigError, match="did you mean 'orders'.*tech_support"):
            await s.feedback(result.task_id, "bad", agent="order")
    assert (good.kind, good.routed_agent, good.text) == ("good", "orders", ORDER)
    assert (fix.kind, fix.agent, fix.note) == ("correction", "billing", "refund question")
    with TraceStore(db_url) as store:
        assert [r["kind"] for r in store.feedback()] == ["good", "correction"]


async def test_swarm_feedback_needs_a_store_and_a_start(db_url: str) -> None:
    registry = AgentRegistry(quickstart.AGENTS)
    async with Swarm(registry, router=KeywordRouter(registry), db=None) as s:
        result = await s.run(ORDER)
        with pytest.raises(ConfigError, match="no trace store \\(db=None\\)"):
            await s.feedback(result.task_id)
    with pytest.raises(ConfigError, match="not started"):
        await Swarm(registry, router=KeywordRouter(registry), db=db_url).feedback("x")
