"""Labelled files and training sources: parsing, aliases, and errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swarm.agents import Agent
from swarm.errors import DataError
from swarm.router import TrainingData, read_labelled_file


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_with_quoted_multiline_text(tmp_path: Path) -> None:
    f = write(tmp_path / "d.csv", 'text,label\n"two\nlines",a\nsimple,b\n')
    assert read_labelled_file(f) == [("two\nlines", "a"), ("simple", "b")]


def test_csv_accepts_category_column_and_extra_columns(tmp_path: Path) -> None:
    f = write(tmp_path / "d.csv", "id,text,category\n1,hello,greet\n2,bye,leave\n")
    assert read_labelled_file(f) == [("hello", "greet"), ("bye", "leave")]


def test_explicit_columns(tmp_path: Path) -> None:
    f = write(tmp_path / "d.csv", "q,y\nhello,greet\n")
    assert read_labelled_file(f, text_column="q", label_column="y") == [("hello", "greet")]


def test_jsonl(tmp_path: Path) -> None:
    rows = [{"text": "hi", "label": "greet"}, {"text": "bye", "intent": "leave"}]
    f = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_labelled_file(f) == [("hi", "greet"), ("bye", "leave")]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: no such file"):
        read_labelled_file(tmp_path / "nope.csv")


def test_bad_header_names_line_one(tmp_path: Path) -> None:
    f = write(tmp_path / "d.csv", "sentence_a,tag\nx,y\n")
    with pytest.raises(
        DataError, match=r"d\.csv:1: header must name the columns 'text' and 'label'"
    ):
        read_labelled_file(f)


def test_row_without_label_names_its_line(tmp_path: Path) -> None:
    # The quoted text spans lines 2-3, so the unlabelled row starts on line 4.
    f = write(tmp_path / "d.csv", 'text,label\n"a\nb",x\nno label here,\n')
    with pytest.raises(DataError, match=r"d\.csv:4: row has no label"):
        read_labelled_file(f)


def test_short_row_has_no_label(tmp_path: Path) -> None:
    f = write(tmp_path / "d.csv", "text,label\nfine,a\nshort\n")
    with pytest.raises(DataError, match=r"d\.csv:3: row has no label"):
        read_labelled_file(f)


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    f = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{not json}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: not a JSON object"):
        read_labelled_file(f)
    g = write(tmp_path / "e.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"e\.jsonl:2: row has no label"):
        read_labelled_file(g)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty file"):
        read_labelled_file(write(tmp_path / "d.csv", ""))
    with pytest.raises(DataError, match="no labelled rows"):
        read_labelled_file(write(tmp_path / "h.csv", "text,label\n"))


class Cards(Agent):
    name = "cards"
    description = "Card orders and blocks"
    examples = ["block my card", "new card please"]

    async def run(self, task, ctx):  # type: ignore[no-untyped-def]
        return "ok"


class _Feedback:
    def labelled_feedback(self) -> list[tuple[str, str]]:
        return [("block my card", "fraud"), ("someone used my card", "fraud")]


def test_sources_are_counted_and_feedback_relabels(tmp_path: Path) -> None:
    data = TrainingData()
    data.add_agents([Cards()])
    data.add_file(write(tmp_path / "extra.csv", "text,label\nlost card,cards\n"))
    data.add_pairs([("a scenario step", "cards")], "scenario steps")
    data.add_feedback(_Feedback())
    assert data.counts_by_source() == {
        "agent examples": 2,
        "agent descriptions": 1,
        "file extra.csv": 1,
        "scenario steps": 1,
        "feedback": 2,
    }
    resolved = {ex.text: ex.label for ex in data.resolved()}
    assert resolved["block my card"] == "fraud"  # feedback corrected the agent's example
    assert data.relabelled_by_feedback == 1 and data.conflicts == []
    assert len(resolved) == 6


DUPLICATED = "check my account balance"


def duplicated_data(policy: str = "error") -> TrainingData:
    """The case `duplicate_examples`: one text among two agents' examples (same source)."""
    from swarm import AgentRegistry, agent

    @agent(examples=["what is my balance", DUPLICATED, "balance please"])
    async def accounts(task, ctx):  # type: ignore[no-untyped-def]
        return "accounts"

    @agent(examples=[DUPLICATED.upper(), "show my statement", "list my transactions"])
    async def statements(task, ctx):  # type: ignore[no-untyped-def]
        return "statements"

    data = TrainingData(on_conflict=policy)  # type: ignore[arg-type]
    data.add_agents(AgentRegistry([accounts, statements]))
    return data


def test_one_text_under_two_agents_is_an_error_naming_both() -> None:
    data = duplicated_data()
    with pytest.raises(DataError) as caught:
        data.resolved()
    assert str(caught.value) == (
        f"1 training text has two labels: {DUPLICATED!r}: accounts (agent accounts) and "
        "statements (agent statements); give each text to one agent, or choose a policy "
        "(--on-conflict first|last|drop)"
    )


@pytest.mark.parametrize(
    ("policy", "label", "said"),
    [
        ("first", "accounts", "kept the label given first"),
        ("last", "statements", "kept the label given last"),
        ("drop", None, "left them out of training"),
    ],
)
def test_a_conflict_policy_chosen_says_what_it_did(
    policy: str, label: str | None, said: str
) -> None:
    data = duplicated_data(policy)
    resolved = {ex.text.casefold(): ex.label for ex in data.resolved()}
    assert resolved.get(DUPLICATED) == label
    assert len(data.conflicts) == 1
    assert data.conflict_note() == f"1 text had two labels (--on-conflict {policy}: {said})"


def test_a_file_and_an_agent_in_conflict_name_the_file(tmp_path: Path) -> None:
    data = TrainingData()
    data.add_agents([Cards()])
    extra = write(tmp_path / "extra.csv", "text,label\nBlock my card,fraud\n")
    data.add_file(extra)
    with pytest.raises(
        DataError, match=f"'block my card': cards \\(agent cards\\) and fraud \\({extra}\\)"
    ):
        data.resolved()


def test_fingerprint_ignores_order_but_not_labels() -> None:
    a, b, c = TrainingData(), TrainingData(), TrainingData()
    a.add_pairs([("x", "1"), ("y", "2")], "s")
    b.add_pairs([("y", "2"), ("x", "1")], "t")
    c.add_pairs([("x", "1"), ("y", "3")], "s")
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_agents_out_of_scope_examples_are_labelled_oos() -> None:
    from swarm import AgentRegistry, agent

    @agent(examples=["block my card"])
    async def cards(task, ctx):  # type: ignore[no-untyped-def]
        return "ok"

    data = TrainingData()
    data.add_agents(AgentRegistry([cards], out_of_scope=["tell me a joke"]))
    pairs = {(e.text, e.label) for e in data.examples}
    assert ("tell me a joke", "oos") in pairs and ("block my card", "cards") in pairs
    assert data.counts_by_source()["out-of-scope examples"] == 1
