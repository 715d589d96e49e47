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
from typing import Protocol

from swarm.errors import DataError
from swarm.feedback import OUT_OF_SCOPE

__all__ = [
    "DEFAULT_OOS_LABEL",
    "FeedbackSource",
    "LabelledExample",
    "TrainingData",
    "read_labelled_file",
]

DEFAULT_OOS_LABEL = OUT_OF_SCOPE
"""Examples with this label teach the router what no agent should take."""

TEXT_COLUMNS = ("text", "utterance", "query", "sentence")
LABEL_COLUMNS = ("label", "intent", "category", "agent")


@dataclass(frozen=True, slots=True)
class LabelledExample:
    text: str
    label: str
    source: str


class FeedbackSource(Protocol):
    """What the trace store offers: corrections people made, as (text, right agent) pairs."""

    def labelled_feedback(self) -> list[tuple[str, str]]: ...


@dataclass
class TrainingData:
    """Examples from every source, in the order added. A later source wins when the same text comes
    with another label (feedback corrects what agents' examples said)."""

    examples: list[LabelledExample] = field(default_factory=list)
    overridden: int = 0
    """Texts whose label a later source changed."""

    def add_pairs(self, pairs: Iterable[tuple[str, str]], source: str) -> int:
        """Add (text, label) pairs from `source`; the hook for scenario steps and any other source.

        Returns how many examples were added. Empty texts or labels are skipped, not errors: files
        are checked line by line in `read_labelled_file`, where the line can be named.
        """
        added = 0
        for text, label in pairs:
            text, label = str(text).strip(), str(label).strip()
            if text and label:
                self.examples.append(LabelledExample(text, label, source))
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
        added = self.add_pairs(
            ((text, oos_label) for text in getattr(agents, "out_of_scope", ())),
            "out-of-scope examples",
        )
        for a in agents:
            name = str(getattr(a, "name"))  # noqa: B009 - any object with a name will do
            added += self.add_pairs(
                ((e, name) for e in getattr(a, "examples", ())), "agent examples"
            )
            description = getattr(a, "description", "")
            if descriptions and description:
                added += self.add_pairs([(description, name)], "agent descriptions")
        return added

    def add_file(self, path: str | Path, **columns: str | None) -> int:
        return self.add_pairs(read_labelled_file(path, **columns), f"file {Path(path).name}")

    def add_feedback(self, store: FeedbackSource) -> int:
        return self.add_pairs(store.labelled_feedback(), "feedback")

    def resolved(self) -> list[LabelledExample]:
        """One example per text: the last label given wins; exact repeats collapse."""
        by_text: dict[str, LabelledExample] = {}
        overridden = 0
        for ex in self.examples:
            previous = by_text.get(ex.text)
            if previous is not None and previous.label != ex.label:
                overridden += 1
            by_text[ex.text] = ex
        self.overridden = overridden
        return list(by_text.values())

    def counts_by_source(self) -> dict[str, int]:
        return dict(Counter(ex.source for ex in self.examples))

    def fingerprint(self) -> str:
        """A hash of the (text, label) pairs, order-free: what the artifact learnt from."""
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
