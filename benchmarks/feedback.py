"""Learning from feedback on BANKING77: simulated users correct a 10-shot router.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/feedback.py [--events 3000] [--every 300]

A 10-shot router (770 examples) serves. Training-set requests it never saw stream through it; a
simulated user judges each routing against the true intent. Run 1 ("bandit"): the user only says
good or bad. Run 2 ("corrections"): when the router is wrong, the user names the right intent
instead of saying bad, `--correct-share` of the time; good/bad on the rest. Every `--every`
events, `swarm.router.learn.learn` learns from all the feedback so far (the replay of stored
decisions), starting from the serving router, and its gate promotes the result only if accuracy
on a held-out slice of the training set (`--held-out` rows, never streamed) is not worse by more
than `--tolerance`. Test accuracy (3,080 rows) is measured after each update.

The last stdout line is JSON: start_accuracy, final_accuracy_bandit, final_accuracy_corrections,
events, each run's curve, and the largest test-accuracy drop any promoted update caused. The
learning curve goes to benchmarks/figures/feedback_curve.png (--plot to change).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from router import accuracy_on_embeddings, few_shot, log, read  # noqa: E402  (benchmarks/router.py)

from swarm.router import CachedEncoder, Router, TrainingData, load_encoder  # noqa: E402
from swarm.router.feedback import BanditConfig  # noqa: E402
from swarm.router.learn import HeldOut, learn  # noqa: E402
from swarm.router.train import TrainConfig, train_router  # noqa: E402

FIGURE = Path(__file__).resolve().parent / "figures" / "feedback_curve.png"


def simulate(
    start: Router,
    stream: list[tuple[str, str]],
    held_out: list[tuple[str, str]],
    x_test: np.ndarray,
    test_labels: list[str],
    args: argparse.Namespace,
    *,
    correct_share: float,
) -> dict[str, Any]:
    """Stream requests through the serving router, collect feedback, learn every `every` events."""
    rng = np.random.default_rng(args.seed + 1)
    serving, rows = start, []
    curve = [(0, accuracy_on_embeddings(start, x_test, test_labels)[0])]
    promoted, rejected, worst_drop = 0, 0, 0.0
    config = BanditConfig(seed=args.seed, learning_rate=args.learning_rate, epochs=args.epochs)
    start_time = time.perf_counter()
    for begin in range(0, len(stream), args.every):
        chunk = stream[begin : begin + args.every]
        decisions = serving.route([text for text, _ in chunk])
        for (text, intent), decision in zip(chunk, decisions, strict=True):
            row = {"text": text, "routed_agent": decision.agent}
            if rng.random() < correct_share and decision.agent != intent:
                row.update(kind="correction", agent=intent)
            else:
                row["kind"] = "good" if decision.agent == intent else "bad"
            rows.append(row)
        outcome = learn(
            None,
            base=serving,
            feedback_rows=rows,
            held_out=HeldOut.of("banking77 held-out", held_out),
            tolerance=args.tolerance,
            bandit=config,
        )
        before = curve[-1][1]
        if outcome.gate.promoted:
            serving = outcome.router
            promoted += 1
        else:
            rejected += 1
        after = accuracy_on_embeddings(serving, x_test, test_labels)[0]
        worst_drop = max(worst_drop, before - after)
        curve.append((begin + len(chunk), after))
        log(
            f"  {begin + len(chunk):>5} events: test {after:.4f} "
            f"({'promoted' if outcome.gate.promoted else 'kept beside'}: {outcome.gate.reason}; "
            f"contributions {outcome.contributions})"
        )
    return {
        "start_ece": round(accuracy_on_embeddings(start, x_test, test_labels)[1], 4),
        "final_ece": round(accuracy_on_embeddings(serving, x_test, test_labels)[1], 4),
        "curve": [[n, round(a, 4)] for n, a in curve],
        "final_accuracy": round(curve[-1][1], 4),
        "updates_promoted": promoted,
        "updates_rejected": rejected,
        "largest_test_drop_points": round(worst_drop * 100, 2),
        "corrections": sum(r["kind"] == "correction" for r in rows),
        "seconds": round(time.perf_counter() - start_time, 1),
    }


def plot(start: float, runs: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, run in runs.items():
        events, acc = zip(*run["curve"], strict=True)
        ax.plot(events, [a * 100 for a in acc], marker="o", label=name)
    ax.axhline(start * 100 + 5, color="grey", linestyle="--", linewidth=1, label="goal: +5 points")
    ax.set_xlabel("feedback events")
    ax.set_ylabel("BANKING77 test accuracy (%)")
    ax.set_title("10-shot router learning from simulated users")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default="storage/cache/embeddings", help="embedding cache")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--every", type=int, default=300, help="events between updates")
    parser.add_argument("--held-out", type=int, default=1000, help="training rows for the gate")
    parser.add_argument(
        "--tolerance", type=float, default=0.005, help="gate tolerance (0.01 = 1 point)"
    )
    parser.add_argument("--correct-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=BanditConfig.learning_rate)
    parser.add_argument("--epochs", type=int, default=BanditConfig.epochs)
    parser.add_argument("--only", choices=["bandit", "corrections"], help="run one of the two")
    parser.add_argument("--plot", type=Path, default=FIGURE)
    args = parser.parse_args()

    train_texts, train_labels = read("train")
    test_texts, test_labels = read("test")
    encoder = CachedEncoder(load_encoder(), args.cache)
    log("encoding (cached after the first run)")
    encoder.encode(train_texts)
    x_test = encoder.encode(test_texts)

    shot_texts, shot_labels = few_shot(train_texts, train_labels, 10, args.seed)
    data = TrainingData()
    data.add_pairs(zip(shot_texts, shot_labels, strict=True), "banking77 10-shot")
    log("training the 10-shot router")
    # No out-of-scope rows in BANKING77: threshold 0, as in benchmarks/router.py.
    start, _ = train_router(data, TrainConfig(threshold=0.0), encoder=encoder, cache_dir="")
    start_accuracy = accuracy_on_embeddings(start, x_test, test_labels)[0]
    log(f"10-shot test accuracy {start_accuracy:.4f}")

    seen = set(shot_texts)
    rest = [(t, label) for t, label in zip(train_texts, train_labels, strict=True) if t not in seen]
    order = np.random.default_rng(args.seed).permutation(len(rest))
    held_out = [rest[i] for i in order[: args.held_out]]
    stream = [rest[i] for i in order[args.held_out : args.held_out + args.events]]

    runs, kinds = {}, {}
    for kind, name, share in (
        ("bandit", "bandit (good/bad only)", 0.0),
        (
            "corrections",
            f"{args.correct_share:.0%} of wrong routings corrected",
            args.correct_share,
        ),
    ):
        if args.only in (None, kind):
            log(f"run: {name}")
            runs[name] = kinds[kind] = simulate(
                start, stream, held_out, x_test, test_labels, args, correct_share=share
            )
    plot(start_accuracy, runs, args.plot)
    bandit, corrections = kinds.get("bandit", {}), kinds.get("corrections", {})
    result = {
        "benchmark": "feedback",
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": "OPENBLAS_NUM_THREADS=1, torch 1 thread",
        "start_accuracy": round(start_accuracy, 4),
        "final_accuracy_bandit": bandit.get("final_accuracy"),
        "final_accuracy_corrections": corrections.get("final_accuracy"),
        "events": len(stream),
        "every": args.every,
        "held_out": len(held_out),
        "tolerance": args.tolerance,
        "correct_share": args.correct_share,
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "bandit": bandit,
        "corrections": corrections,
        "plot": str(args.plot),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
