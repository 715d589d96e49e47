"""Router quality and speed on BANKING77 (77 intents; 10,003 train / 3,080 test texts).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/router.py [--quick] [--finetune]

Prints progress to stderr and one JSON object as the last line of stdout: accuracy (full data and
10-shot, mean of 5 seeds), ECE, single-query latency, batched throughput, cold start, and two
baselines on the same frozen embeddings (1-nearest-neighbour, as semantic-router does, and
logistic regression); the open-intent protocol of Zhang, Xu and Lin (AAAI 2021, "Deep Open Intent
Classification with Adaptive Decision Boundary"): 25/50/75 % of the intents known, chosen at random
per seed, the other test texts labelled open, accuracy and macro-F1 over the known intents plus
open; and two README-sized agent sets with fixed off-topic, in-scope and two-agent probes.
Embeddings are cached on disk, so a second run skips most encoding.
`--llm-url URL` adds a third baseline: an LLM picking the label (`llm_router_baseline.py`).
"""

from __future__ import annotations

import os

# Before numpy loads: one BLAS thread. A second thread spin-waits on shared 2-core machines and
# makes single queries several times slower under load (see BENCHMARKS.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from swarm.router import CachedEncoder, Router, TrainingData, load_encoder  # noqa: E402
from swarm.router.calibration import softmax  # noqa: E402
from swarm.router.metrics import macro_f1, score_decisions  # noqa: E402
from swarm.router.train import TrainConfig, train_router  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "examples" / "swarm_examples" / "bank" / "banking77"
SEEDS = (0, 1, 2, 3, 4)
OPEN_SEEDS = (0, 1, 2)
KNOWN_RATIOS = (25, 50, 75)

# README-sized agent sets: two or three examples and a one-line description per agent, as a new
# user writes them, and fixed probes written before any rule was chosen. The second set is in
# another domain, to check the rules are not fitted to banking.
SMALL_SETS: dict[str, dict[str, object]] = {
    "small_set": {
        "agents": {
            "cards": (
                "Card orders, deliveries and blocks.",
                ["my card has not arrived", "block my card", "order a new card"],
            ),
            "disputes": (
                "Disputed payments.",
                ["I don't recognise this payment", "dispute a transaction"],
            ),
            "transfers": (
                "Money transfers.",
                ["send money to a friend", "my transfer is late", "cancel a transfer"],
            ),
        },
        "off_topic": [
            "what is the weather",
            "hello",
            "tell me a joke",
            "what time is it",
            "who won the football last night",
            "recommend a good film",
            "how do I bake bread",
            "translate this sentence into French",
            "what is the capital of Australia",
            "play some music",
        ],
        "in_scope": [
            ("I lost my card", "cards"),
            ("my new card still hasn't come", "cards"),
            ("freeze my card please", "cards"),
            ("I need a replacement card", "cards"),
            ("there is a payment on my account I did not make", "disputes"),
            ("I want to challenge a charge on my statement", "disputes"),
            ("I was charged for something I never bought", "disputes"),
            ("how do I send money to my brother", "transfers"),
            ("why hasn't my transfer arrived yet", "transfers"),
            ("stop the transfer I just made", "transfers"),
        ],
        "two_agent": [
            "my card hasn't arrived and my transfer is late",
            "block my card and dispute this payment",
        ],
    },
    "small_set2": {
        "agents": {
            "it_support": (
                "Laptops, passwords and software.",
                ["my laptop will not start", "reset my password", "install a program"],
            ),
            "payroll": (
                "Salaries and payslips.",
                ["where is my payslip", "my salary is wrong"],
            ),
            "travel": (
                "Business trips: flights and hotels.",
                ["book a flight to Berlin", "I need a hotel for the conference", "change my train"],
            ),
        },
        "off_topic": [
            "what is the weather",
            "hi there",
            "tell me a joke",
            "how tall is Mount Everest",
            "what should I cook tonight",
            "recommend a podcast",
            "who wrote Hamlet",
            "what is two plus two",
            "how do I grow tomatoes",
            "sing me a song",
        ],
        "in_scope": [
            ("I forgot my login details", "it_support"),
            ("the screen of my computer is broken", "it_support"),
            ("can you set up Excel on my machine", "it_support"),
            ("my account is locked", "it_support"),
            ("I was paid less than usual this month", "payroll"),
            ("when do we get paid", "payroll"),
            ("I need a copy of my pay slip for the bank", "payroll"),
            ("reserve a plane ticket to Madrid", "travel"),
            ("find me accommodation in Paris next week", "travel"),
            ("my flight was cancelled, rebook me", "travel"),
        ],
        "two_agent": [
            "book a flight and reset my password",
            "my laptop broke on my business trip, I need a hotel and a new laptop",
        ],
    },
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read(split: str) -> tuple[list[str], list[str]]:
    with (DATA / f"{split}.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def few_shot(texts: list[str], labels: list[str], k: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    chosen = sorted(
        i for label in sorted(by_label) for i in rng.choice(by_label[label], k, replace=False)
    )
    return [texts[i] for i in chosen], [labels[i] for i in chosen]


def head_only(router: Router) -> Router:
    """The same router with the rejecting rules off (threshold 0, no far-from-examples cut): what
    accuracy on a data set without out-of-scope rows measures."""
    router.policy = replace(router.policy, threshold=0.0, far_similarity=None)
    return router


def accuracy_on_embeddings(router: Router, x: np.ndarray, labels: list[str]) -> tuple[float, float]:
    """The router's decisions from precomputed embeddings (same head, calibration and rules as
    `route`, minus the encoder call), rejecting rules off: (accuracy, ECE)."""
    router = head_only(router)
    probs = softmax(router.logits(x), router.policy.temperature)
    report = score_decisions(router.decide_many(probs, router.similarities(x)), labels)
    return report.accuracy, report.ece


def knn_accuracy(
    x_train: np.ndarray, y_train: list[str], x_test: np.ndarray, y_test: list[str]
) -> float:
    nearest = (x_test @ x_train.T).argmax(axis=1)
    return float(np.mean([y_train[i] == t for i, t in zip(nearest, y_test, strict=True)]))


def logreg_accuracy(
    x_train: np.ndarray, y_train: list[str], x_test: np.ndarray, y_test: list[str]
) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=10.0, max_iter=3000)
    model.fit(x_train, y_train)
    return float(np.mean(model.predict(x_test) == np.array(y_test)))


def train(texts: list[str], labels: list[str], config: TrainConfig, cache: str) -> Router:
    data = TrainingData()
    data.add_pairs(zip(texts, labels, strict=True), "banking77")
    router, _ = train_router(data, config, cache_dir=cache)
    return router


def cold_start(models_dir: Path, runs: int = 3) -> float:
    """New process to first decision: interpreter start, imports, artifact load, one route."""
    code = (
        "from swarm.router import Router\n"
        f"r = Router.load({str(models_dir)!r})\n"
        "print(r.route(['I still have not received my new card'])[0].agent)\n"
    )
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        times.append(time.perf_counter() - start)
        assert out.stdout.strip(), out.stderr
    return statistics.median(times)


def measure_speed_in_process(models_dir: Path, threads: int, *, quick: bool) -> dict[str, float]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--speed", str(models_dir)] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(models_dir: str, quick: bool) -> None:
    """Warm single-query latency and batched throughput of a saved router, in this process."""
    router = Router.load(models_dir)
    texts, _ = read("test")
    router.route(texts[:20])
    latencies = []
    for text in texts[: 100 if quick else 300]:
        start = time.perf_counter()
        router.route([text])
        latencies.append((time.perf_counter() - start) * 1000)
    batch = texts[: 512 if quick else 1536]
    start = time.perf_counter()
    for i in range(0, len(batch), 256):
        router.route(batch[i : i + 256])
    per_s = len(batch) / (time.perf_counter() - start)
    print(
        json.dumps(
            {
                "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                "p95_ms": round(float(np.percentile(latencies, 95)), 2),
                "batch_queries_per_s": round(per_s, 1),
            }
        )
    )


def open_intent(
    train_texts: list[str],
    train_labels: list[str],
    test_texts: list[str],
    test_labels: list[str],
    x_test: np.ndarray,
    percent: int,
    seed: int,
    cache: str,
) -> tuple[float, float, float, float]:
    """One run of the open-intent protocol: (accuracy, macro-F1 over known + open, known-intent
    accuracy, open recall). The router trains with its defaults on the known intents' texts only;
    nothing open is shown to it."""
    intents = sorted(set(train_labels))
    rng = np.random.default_rng(seed)
    known = set(rng.choice(intents, round(len(intents) * percent / 100), replace=False).tolist())
    pairs = [
        (t, label) for t, label in zip(train_texts, train_labels, strict=True) if label in known
    ]
    router = train([t for t, _ in pairs], [label for _, label in pairs], TrainConfig(), cache)
    probs = softmax(router.logits(x_test), router.policy.temperature)
    decisions = router.decide_many(probs, router.similarities(x_test))
    truth = np.array([label if label in known else "open" for label in test_labels])
    predicted = np.array([d.agent if d.agent is not None else "open" for d in decisions])
    is_open = truth == "open"
    return (
        float(np.mean(predicted == truth)),
        macro_f1(truth.tolist(), predicted.tolist()),
        float(np.mean(predicted[~is_open] == truth[~is_open])),
        float(np.mean(predicted[is_open] == "open")),
    )


def small_set(spec: dict[str, object], cache: str) -> dict[str, float]:
    """Train on a README-sized agent set (examples and descriptions, as `add_agents` does) and
    route its probes: the share of off-topic probes rejected, in-scope probes sent to the right
    agent (routed or ambiguous with it first), two-agent probes flagged ambiguous."""
    agents = spec["agents"]
    assert isinstance(agents, dict)
    data = TrainingData()
    for name, (description, examples) in agents.items():
        data.add_pairs([(e, name) for e in examples], "agent examples")
        data.add_pairs([(description, name)], "agent descriptions")
    router, report = train_router(data, TrainConfig(), cache_dir=cache)
    off = router.route(list(spec["off_topic"]))  # type: ignore[call-overload]
    in_scope = list(spec["in_scope"])  # type: ignore[call-overload]
    inside = router.route([t for t, _ in in_scope])
    two = router.route(list(spec["two_agent"]))  # type: ignore[call-overload]
    return {
        "off_topic_rejected": float(np.mean([d.agent is None for d in off])),
        "in_scope_right": float(
            np.mean([d.agent == a for d, (_, a) in zip(inside, in_scope, strict=True)])
        ),
        "two_agent_ambiguous": float(np.mean([d.status == "ambiguous" for d in two])),
        "ece_claimed": float("heldout_ece" in report.metrics),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--cache", default="storage/cache/embeddings", help="embedding cache folder"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one 10-shot seed, one open-intent seed per ratio, fewer latency runs",
    )
    parser.add_argument("--finetune", action="store_true", help="fine-tune the encoder (slow)")
    parser.add_argument(
        "--only", help="comma-separated parts to run: banking, open, small (default: all)"
    )
    parser.add_argument("--speed", metavar="MODELS_DIR", help=argparse.SUPPRESS)
    parser.add_argument(
        "--llm-url",
        help="also run the LLM-as-router baseline against this OpenAI-compatible base URL",
    )
    parser.add_argument("--llm-model", default="default")
    parser.add_argument("--llm-style", choices=["llama.cpp", "openai"], default="llama.cpp")
    parser.add_argument("--llm-sample", type=int, default=100, help="test rows the LLM routes")
    args = parser.parse_args()
    if args.speed:
        speed(args.speed, args.quick)
        return

    train_texts, train_labels = read("train")
    test_texts, test_labels = read("test")
    encoder = CachedEncoder(load_encoder(), args.cache)
    log("encoding train and test (cached after the first run)")
    x_train = encoder.encode(train_texts)
    x_test = encoder.encode(test_texts)

    # The router trains with its defaults. BANKING77 has no out-of-scope rows, so accuracy is read
    # with the rejecting rules off (the default rejects the least confident and the farthest few
    # per cent, counted as errors here); `accuracy_full_rules_on` is the same test set with them.
    config = TrainConfig(finetune=args.finetune)
    results: dict[str, object] = {}
    parts = set(args.only.split(",")) if args.only else {"banking", "open", "small"}

    if "banking" in parts:
        log("full data: training the default router")
        start = time.perf_counter()
        router = train(train_texts, train_labels, config, args.cache)
        results["train_full_s"] = round(time.perf_counter() - start, 1)

        with tempfile.TemporaryDirectory() as tmp:
            models = Path(tmp) / "models"
            router.save(models)
            served = Router.load(models)

            log("full data: routing the test set in batches of 256 (accuracy, ECE)")
            decisions = []
            for i in range(0, len(test_texts), 256):
                decisions += served.route(test_texts[i : i + 256])
            rules_on = score_decisions(decisions, test_labels)
            results["accuracy_full_rules_on"] = round(rules_on.accuracy, 4)
            results["rejected_full_rules_on"] = round(rules_on.rejected_rate, 4)
            results["ambiguous_rate"] = round(rules_on.ambiguous_rate, 4)
            report = score_decisions(head_only(served).route(test_texts), test_labels)
            results["accuracy_full"] = round(report.accuracy, 4)
            results["macro_f1_full"] = round(report.macro_f1, 4)
            results["ece"] = round(report.ece, 4)

            # Speed in fresh processes: each sets its own thread count (BLAS reads it once).
            for threads in (1, 2):
                log(f"speed with {threads} BLAS thread(s): single queries warm, then batches")
                measured = measure_speed_in_process(models, threads, quick=args.quick)
                suffix = "" if threads == 1 else "_2threads"
                results["route_p50_ms" + suffix] = measured["p50_ms"]
                results["route_p95_ms" + suffix] = measured["p95_ms"]
                results["batch_queries_per_s" + suffix] = measured["batch_queries_per_s"]

            log("cold start: new process to first decision")
            results["cold_start_s"] = round(cold_start(models, runs=2 if args.quick else 3), 2)

        log("baselines on the full data")
        results["knn_accuracy_full"] = round(
            knn_accuracy(x_train, train_labels, x_test, test_labels), 4
        )
        results["logreg_accuracy_full"] = round(
            logreg_accuracy(x_train, train_labels, x_test, test_labels), 4
        )

        seeds = SEEDS[:1] if args.quick else SEEDS
        shot_router, shot_knn, shot_logreg, shot_ece = [], [], [], []
        index = {t: i for i, t in enumerate(train_texts)}
        for seed in seeds:
            log(f"10-shot, seed {seed}")
            texts, labels = few_shot(train_texts, train_labels, 10, seed)
            xs = x_train[[index[t] for t in texts]]
            if args.finetune:
                r = head_only(train(texts, labels, config, args.cache))
                rep = score_decisions(r.route(test_texts), test_labels)
                acc, ece = rep.accuracy, rep.ece
            else:
                acc, ece = accuracy_on_embeddings(
                    train(texts, labels, config, args.cache), x_test, test_labels
                )
            shot_router.append(acc)
            shot_ece.append(ece)
            shot_knn.append(knn_accuracy(xs, labels, x_test, test_labels))
            shot_logreg.append(logreg_accuracy(xs, labels, x_test, test_labels))
        results["accuracy_10shot"] = round(float(np.mean(shot_router)), 4)
        results["accuracy_10shot_seeds"] = [round(a, 4) for a in shot_router]
        results["ece_10shot"] = round(float(np.mean(shot_ece)), 4)
        results["knn_accuracy_10shot"] = round(float(np.mean(shot_knn)), 4)
        results["logreg_accuracy_10shot"] = round(float(np.mean(shot_logreg)), 4)

    if "open" in parts:
        for percent in KNOWN_RATIOS:
            runs = []
            for seed in OPEN_SEEDS[:1] if args.quick else OPEN_SEEDS:
                log(f"open intent: {percent} % known, seed {seed}")
                runs.append(
                    open_intent(
                        train_texts, train_labels, test_texts, test_labels, x_test, percent, seed,
                        args.cache,
                    )
                )  # fmt: skip
            acc, f1, known_acc, open_recall = np.mean(runs, axis=0)
            results[f"open_intent_{percent}_accuracy"] = round(float(acc), 4)
            results[f"open_intent_{percent}_f1"] = round(float(f1), 4)
            results[f"open_intent_{percent}_known_accuracy"] = round(float(known_acc), 4)
            results[f"open_intent_{percent}_open_recall"] = round(float(open_recall), 4)
            results[f"open_intent_{percent}_accuracy_seeds"] = [round(r[0], 4) for r in runs]

    if "small" in parts:
        for name, spec in SMALL_SETS.items():
            log(f"README-sized agents: {name}")
            for key, value in small_set(spec, args.cache).items():
                results[f"{name}_{key}"] = round(value, 4)

    if args.llm_url:
        import asyncio
        import random

        from llm_router_baseline import llm_route  # beside this script

        log(f"LLM-as-router baseline on {args.llm_sample} test rows via {args.llm_url}")
        rows = random.Random(0).sample(
            list(zip(test_texts, test_labels, strict=True)), args.llm_sample
        )
        labels = sorted(set(train_labels))
        results.update(
            asyncio.run(
                llm_route(
                    rows, labels, url=args.llm_url, model=args.llm_model, style=args.llm_style
                )
            )
        )

    results["config"] = {
        "encoder": encoder.name,
        "head": config.head.to_dict(),
        "finetune": args.finetune,
        "accuracy_read_with": "threshold 0, no far-from-examples cut (no out-of-scope rows)",
    }
    results["machine"] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "torch_threads_for_training": 1,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    results["date"] = dt.date.today().isoformat()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
