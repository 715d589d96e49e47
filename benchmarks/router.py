"""Router quality and speed on BANKING77 (77 intents; 10,003 train / 3,080 test texts).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/router.py [--quick] [--finetune]

Prints progress to stderr and one JSON object as the last line of stdout: accuracy (full data and
10-shot, mean of 5 seeds), ECE, single-query latency, batched throughput, cold start, and two
baselines on the same frozen embeddings (1-nearest-neighbour, as semantic-router does, and
logistic regression). Embeddings are cached on disk, so a second run skips most encoding.
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
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from swarm.router import CachedEncoder, Router, TrainingData, load_encoder  # noqa: E402
from swarm.router.calibration import softmax  # noqa: E402
from swarm.router.metrics import score_decisions  # noqa: E402
from swarm.router.train import TrainConfig, train_router  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "examples" / "swarm_examples" / "bank" / "banking77"
SEEDS = (0, 1, 2, 3, 4)


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


def accuracy_on_embeddings(router: Router, x: np.ndarray, labels: list[str]) -> tuple[float, float]:
    """The router's decisions from precomputed embeddings (same head, calibration and rules as
    `route`, minus the encoder call): (accuracy, ECE)."""
    probs = softmax(router.logits(x), router.policy.temperature)
    report = score_decisions([router.decide(p) for p in probs], labels)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--cache", default="storage/cache/embeddings", help="embedding cache folder"
    )
    parser.add_argument("--quick", action="store_true", help="one 10-shot seed, fewer latency runs")
    parser.add_argument("--finetune", action="store_true", help="fine-tune the encoder (slow)")
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

    # BANKING77 has no out-of-scope rows: the threshold is set to 0 by hand, so accuracy measures
    # classification (the default would reject the least confident ~2%, counted as errors here).
    config = TrainConfig(threshold=0.0, finetune=args.finetune)
    results: dict[str, object] = {}

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
        report = score_decisions(decisions, test_labels)
        results["accuracy_full"] = round(report.accuracy, 4)
        results["macro_f1_full"] = round(report.macro_f1, 4)
        results["ece"] = round(report.ece, 4)
        results["ambiguous_rate"] = round(report.ambiguous_rate, 4)

        # Speed in fresh processes, so the thread setting is the process's own (BLAS reads it once).
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
            r = train(texts, labels, config, args.cache)
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
        "encoder": router.encoder.name,
        "head": config.head.to_dict(),
        "finetune": args.finetune,
        "threshold": 0.0,
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
