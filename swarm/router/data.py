"""Where the router's training examples come from: agents' examples, labelled files (CSV/JSONL),
labelled scenario steps and people's feedback, gathered into one `TrainingData` that counts sources.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from swarm.errors import DataError
from swarm.feedback import OUT_OF_SCOPE

__all__ = [
    "CONFLICT_POLICIES",
    "DEFAULT_OOS_LABEL",
    "FEEDBACK_SOURCE",
    "Conflict",
    "ConflictPolicy",
    "FeedbackSource",
    "LabelledExample",
    "TrainingData",
    "normalise_text",
    "read_labelled_file",
]

DEFAULT_OOS_LABEL = OUT_OF_SCOPE
"""Examples with this label teach the router what no agent should take."""

TEXT_COLUMNS = ("text", "utterance", "query", "sentence")
LABEL_COLUMNS = ("label", "intent", "category", "agent")


FEEDBACK_SOURCE = "feedback"
"""The source of people's corrections: a person's label wins over every other source's."""

ConflictPolicy = Literal["error", "first", "last", "drop"]
CONFLICT_POLICIES: tuple[str, ...] = ("error", "first", "last", "drop")
"""What to do with a text that two sources (or two agents) give different labels: stop with an
error naming each one (the default), keep the first label given, keep the last, or drop the text."""


def normalise_text(text: str) -> str:
    """The form two texts are compared in: case-folded, runs of white space made one space.
    "Block my card" and "block  my card" are the same request to the router."""
    return " ".join(text.casefold().split())


@dataclass(frozen=True, slots=True)
class LabelledExample:
    text: str
    label: str
    source: str
    origin: str = ""
    """Where exactly it came from, for error messages: the agent (`module.name`) or the file."""


@dataclass(frozen=True)
class Conflict:
    """One text given different labels by the examples in `claims` (in the order added)."""

    text: str
    claims: tuple[LabelledExample, ...]

    def describe(self) -> str:
        said = " and ".join(
            f"{ex.label} ({ex.origin or ex.source})"
            for ex in {(ex.label, ex.origin or ex.source): ex for ex in self.claims}.values()
        )
        return f"{self.text!r}: {said}"


class FeedbackSource(Protocol):
    """What the trace store offers: corrections people made, as (text, right agent) pairs."""

    def labelled_feedback(self) -> list[tuple[str, str]]: ...


@dataclass
class TrainingData:
    """Examples from every source, in the order added, resolved to one label per text.

    A text that two sources (or two agents) give different labels is a conflict: `resolved()`
    stops with a DataError naming each such text and every label and origin, unless
    `on_conflict` says otherwise ("first", "last", "drop"). People's feedback is not a conflict:
    a correction relabels the text (the last one given wins), and `relabelled_by_feedback` counts
    them. Texts are compared by `normalise_text` (case and white space do not make two texts).
    """

    examples: list[LabelledExample] = field(default_factory=list)
    on_conflict: ConflictPolicy = "error"
    conflicts: list[Conflict] = field(default_factory=list)
    """Set by `resolved()`: the texts with conflicting labels (resolved by `on_conflict`)."""
    relabelled_by_feedback: int = 0
    """Set by `resolved()`: texts whose label a person's correction changed."""

    def add_pairs(self, pairs: Iterable[tuple[str, str]], source: str, *, origin: str = "") -> int:
        """Add (text, label) pairs from `source`; the hook for scenario steps and any other source.

        Returns how many examples were added. Empty texts or labels are skipped, not errors: files
        are checked line by line in `read_labelled_file`, where the line can be named.
        """
        added = 0
        for text, label in pairs:
            text, label = str(text).strip(), str(label).strip()
            if text and label:
                self.examples.append(LabelledExample(text, label, source, origin))
                added += 1
        return added

    def add_agents(
        self,
        agents: Iterable[object],
        *,
        descriptions: bool = True,
        oos_label: str = DEFAULT_OOS_LABEL,
    ) -> int:
        """Each agent's `examples` (and its `description`, a useful extra utterance), and, from an
        `AgentRegistry`, the requests its modules listed as OUT_OF_SCOPE, labelled `oos_label`."""
        added = 0
        for a in agents:
            name = str(getattr(a, "name"))  # noqa: B009 - any object with a name will do
            origin = f"agent {name}"
            added += self.add_pairs(
                ((e, name) for e in getattr(a, "examples", ())), "agent examples", origin=origin
            )
            description = getattr(a, "description", "")
            if descriptions and description:
                added += self.add_pairs(
                    [(description, name)], "agent descriptions", origin=f"{origin}'s description"
                )
        # Last, as the bank's router has always been trained (its folds follow the order).
        added += self.add_pairs(
            ((text, oos_label) for text in getattr(agents, "out_of_scope", ())),
            "out-of-scope examples",
            origin="OUT_OF_SCOPE",
        )
        return added

    def add_file(self, path: str | Path, **columns: str | None) -> int:
        name = f"file {Path(path).name}"
        return self.add_pairs(read_labelled_file(path, **columns), name, origin=str(path))

    def add_feedback(self, store: FeedbackSource) -> int:
        return self.add_pairs(store.labelled_feedback(), FEEDBACK_SOURCE)

    def resolved(self) -> list[LabelledExample]:
        """One example per text (in the order first added), its conflicts settled by
        `on_conflict`; raises DataError under "error" when there are any."""
        groups: dict[str, list[LabelledExample]] = {}
        for ex in self.examples:
            groups.setdefault(normalise_text(ex.text), []).append(ex)
        out: list[LabelledExample] = []
        self.conflicts, self.relabelled_by_feedback = [], 0
        for claims in groups.values():
            given = [ex for ex in claims if ex.source != FEEDBACK_SOURCE]
            said = [ex for ex in claims if ex.source == FEEDBACK_SOURCE]
            if len({ex.label for ex in given}) > 1:
                self.conflicts.append(Conflict(claims[0].text, tuple(given)))
                if self.on_conflict == "drop":
                    given = []
                elif self.on_conflict == "last":
                    given = given[-1:]
            chosen = said[-1] if said else (given[0] if given else None)
            if said and given and said[-1].label != given[0].label:
                self.relabelled_by_feedback += 1
            if chosen is not None:
                out.append(
                    LabelledExample(claims[0].text, chosen.label, chosen.source, chosen.origin)
                )
        if self.conflicts and self.on_conflict == "error":
            n = len(self.conflicts)
            shown = "; ".join(c.describe() for c in self.conflicts[:10])
            more = f" (and {n - 10} more)" * (n > 10)
            raise DataError(
                f"{n} training text{'s have' if n != 1 else ' has'} two labels: {shown}{more}; "
                "give each text to one agent, or choose a policy (--on-conflict first|last|drop)"
            )
        return out

    def conflict_note(self) -> str:
        """What `resolved()` did with conflicting texts, in words ("" when there were none)."""
        n = len(self.conflicts)
        if not n:
            return ""
        done = {
            "first": "kept the label given first",
            "last": "kept the label given last",
            "drop": "left them out of training",
            "error": "stopped",
        }[self.on_conflict]
        return f"{n} text{'s' * (n != 1)} had two labels (--on-conflict {self.on_conflict}: {done})"

    def counts_by_source(self) -> dict[str, int]:
        return dict(Counter(ex.source for ex in self.examples))

    def fingerprint(self) -> str:
        """A hash of the resolved (text, label) pairs, order-free: what the artifact learnt from."""
        h = hashlib.sha256()
        for line in sorted(f"{ex.label}\t{ex.text}" for ex in self.resolved()):
            h.update(line.encode() + b"\n")
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.examples)


def read_labelled_file(
    path: str | Path, *, text_column: str | None = None, label_column: str | None = None
) -> list[tuple[str, str]]:
    """(text, label) pairs from a CSV (with a header) or a JSONL file (one object a line).

    Columns default to `text` and `label` (also accepted: utterance/query/sentence and
    intent/category/agent). Every problem names the file and the line.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if not p.is_file():
        raise DataError(f"{p}: not a file")
    try:
        raw = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read as UTF-8 text: {exc}") from exc
    suffix = p.suffix.lower()
    is_jsonl = suffix in (".jsonl", ".ndjson") or (
        suffix not in (".csv", ".tsv") and raw.lstrip().startswith("{")
    )
    pairs = (
        _read_jsonl(p, raw, text_column, label_column)
        if is_jsonl
        else _read_csv(
            p, raw, text_column, label_column, delimiter="\t" if suffix == ".tsv" else ","
        )
    )
    if not pairs:
        raise DataError(f"{p}: no labelled rows")
    return pairs


def _pick(found: Iterable[str], wanted: str | None, aliases: tuple[str, ...]) -> str | None:
    names = list(found)
    if wanted is not None:
        return wanted if wanted in names else None
    lowered = {n.strip().lower(): n for n in names}
    return next((lowered[a] for a in aliases if a in lowered), None)


def _read_csv(
    p: Path, raw: str, text_column: str | None, label_column: str | None, delimiter: str
) -> list[tuple[str, str]]:
    reader = csv.reader(raw.splitlines(keepends=True), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{p}: empty file") from None
    except csv.Error as exc:
        raise DataError(f"{p}:1: bad CSV header: {exc}") from exc
    text_name = _pick(header, text_column, TEXT_COLUMNS)
    label_name = _pick(header, label_column, LABEL_COLUMNS)
    if text_name is None or label_name is None:
        want = f"{text_column or 'text'!r} and {label_column or 'label'!r}"
        raise DataError(f"{p}:1: header must name the columns {want} (found: {', '.join(header)})")
    text_at, label_at = header.index(text_name), header.index(label_name)
    pairs: list[tuple[str, str]] = []
    line = reader.line_num + 1  # where the next row starts; a quoted field may span lines
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"{p}:{line}: bad CSV row: {exc}") from exc
        if row and any(cell.strip() for cell in row):
            text = row[text_at].strip() if len(row) > text_at else ""
            label = row[label_at].strip() if len(row) > label_at else ""
            if not label:
                raise DataError(f"{p}:{line}: row has no label (column {label_name!r})")
            if not text:
                raise DataError(f"{p}:{line}: row has no text (column {text_name!r})")
            pairs.append((text, label))
        line = reader.line_num + 1
    return pairs


def _read_jsonl(
    p: Path, raw: str, text_column: str | None, label_column: str | None
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}:{number}: not a JSON object: {exc.msg}") from exc
        if not isinstance(obj, dict):
            raise DataError(f"{p}:{number}: expected a JSON object with 'text' and 'label'")
        text_name = _pick(obj, text_column, TEXT_COLUMNS)
        label_name = _pick(obj, label_column, LABEL_COLUMNS)
        label = obj.get(label_name) if label_name else None
        text = obj.get(text_name) if text_name else None
        if label is None or not str(label).strip():
            raise DataError(f"{p}:{number}: row has no label (key {label_column or 'label'!r})")
        if text is None or not str(text).strip():
            raise DataError(f"{p}:{number}: row has no text (key {text_column or 'text'!r})")
        pairs.append((str(text).strip(), str(label).strip()))
    return pairs
