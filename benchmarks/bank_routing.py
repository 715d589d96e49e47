"""Routing accuracy per agent of the bank router on BANKING77's 3,080 test rows (CC-BY-4.0, never
used in training), each intent mapped to its agent by swarm_examples.bank.intents (the examples
distribution: `pip install -e examples`).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bank_routing.py [--models DIR]

Trains the bank router into DIR (default storage/models/bank) first if it holds none for today's
data (minutes; the embedding cache makes later runs fast). Prints a table to stderr and one JSON
object as the last line of stdout: per agent, the share of its test rows routed to it, rejected
as out of scope, or marked ambiguous; `top1` counts the best candidate even when rejected.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

from swarm.agents import AgentRegistry  # noqa: E402
from swarm.paths import DEFAULT_MODELS_DIR  # noqa: E402
from swarm.router import TrainingData, ensure_router  # noqa: E402
from swarm_examples.bank import PACK  # noqa: E402
from swarm_examples.bank.intents import INTENT_TO_AGENT, banking77_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--models", default=f"{DEFAULT_MODELS_DIR}/{PACK.name}", help="bank router folder"
    )
    args = parser.parse_args()
    from rich.console import Console

    err = Console(stderr=True)
    registry = AgentRegistry()
    registry.add_pack(PACK)
    training = TrainingData()
    training.add_pairs(PACK.training_rows(), f"{PACK.name} training data")
    router = ensure_router(registry, args.models, training=training, console=err)
    rows = banking77_rows("test")
    texts = [t for t, _ in rows]
    expected = [INTENT_TO_AGENT[i] for _, i in rows]
    start = time.perf_counter()
    decisions = []
    for i in range(0, len(texts), 256):
        decisions += router.route(texts[i : i + 256])
    seconds = time.perf_counter() - start
    total: Counter[str] = Counter(expected)
    right: Counter[str] = Counter()
    top1: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    ambiguous: Counter[str] = Counter()
    for d, want in zip(decisions, expected, strict=True):
        best = d.candidates[0][0] if d.candidates else d.agent
        top1[want] += best == want
        if d.status == "out_of_scope":
            rejected[want] += 1
        elif d.status == "ambiguous":
            ambiguous[want] += 1
        elif d.agent == want:
            right[want] += 1
    per_agent = {
        a: {
            "rows": total[a],
            "accuracy": round(right[a] / total[a], 4),
            "top1_accuracy": round(top1[a] / total[a], 4),
            "rejected": round(rejected[a] / total[a], 4),
            "ambiguous": round(ambiguous[a] / total[a], 4),
        }
        for a in sorted(total)
    }
    n = len(texts)
    result = {
        "router": getattr(router, "version", "?"),
        "rows": n,
        "accuracy": round(sum(right.values()) / n, 4),
        "top1_accuracy": round(sum(top1.values()) / n, 4),
        "rejected": round(sum(rejected.values()) / n, 4),
        "ambiguous": round(sum(ambiguous.values()) / n, 4),
        "per_agent": per_agent,
        "route_s": round(seconds, 1),
        "date": dt.date.today().isoformat(),
    }
    from rich.table import Table

    table = Table(title="bank router on BANKING77 test rows (routed to the right agent)")
    for col in ("agent", "rows", "accuracy", "top-1", "rejected", "ambiguous"):
        table.add_column(col, justify="left" if col == "agent" else "right")
    for a, m in per_agent.items():
        table.add_row(
            a,
            str(m["rows"]),
            f"{m['accuracy']:.1%}",
            f"{m['top1_accuracy']:.1%}",
            f"{m['rejected']:.1%}",
            f"{m['ambiguous']:.1%}",
        )
    table.add_row(
        "all",
        str(n),
        f"{result['accuracy']:.1%}",
        f"{result['top1_accuracy']:.1%}",
        f"{result['rejected']:.1%}",
        f"{result['ambiguous']:.1%}",
    )
    err.print(table)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
