"""The default encoder four ways, in one run: numpy BERT, ONNX Runtime fp32 and int8, and
sentence-transformers' `encode`, on BANKING77 texts.

    .venv/bin/python benchmarks/encoders.py [--queries 300] [--batched 640] [--cold-runs 3]
                                            [--skip-accuracy] [--only onnx-int8,onnx-fp32]

For each encoder: one query at a time on one thread (p50/p95 of `--queries` test texts after a
warm-up), batched throughput on two threads (batches of 64, `--batched` texts), and cold start (a
fresh process: interpreter start, imports, loading, first embedding; median of `--cold-runs`).
Then the accuracy that matters for choosing int8: logistic regression (scikit-learn, C = 10) on
frozen embeddings, BANKING77 train -> test, for ONNX fp32 and int8 (embeddings cached on disk
under `--cache`). Progress on stderr; one JSON object as the last line of stdout.
"""

from __future__ import annotations

import os

# Thread counts are set explicitly per measurement below; this is the floor for anything else.
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
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "swarm_examples" / "bank" / "banking77"
NAMES = ("numpy-bert", "onnx-fp32", "onnx-int8", "sentence-transformers")

# What each encoder is, as code a fresh process runs for the cold start: `enc.encode([text])`.
LOADERS = {
    "numpy-bert": (
        "from swarm.router.bert import NumpyBert\n"
        "from swarm.router.encoders import resolve_encoder_folder\n"
        "enc = NumpyBert(resolve_encoder_folder('all-MiniLM-L6-v2'))"
    ),
    "onnx-fp32": (
        "from swarm.router.encoders import load_encoder\n"
        "enc = load_encoder('all-MiniLM-L6-v2@onnx-fp32')"
    ),
    "onnx-int8": (
        "from swarm.router.encoders import load_encoder\n"
        "enc = load_encoder('all-MiniLM-L6-v2@onnx-int8')"
    ),
    "sentence-transformers": (
        "from swarm.router.encoders import load_encoder\n"
        "enc = load_encoder('all-MiniLM-L6-v2@sentence-transformers')"
    ),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read(split: str) -> tuple[list[str], list[str]]:
    with (DATA / f"{split}.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def build(name: str) -> Any:
    scope: dict[str, Any] = {}
    exec(LOADERS[name], scope)  # the same code the cold-start process runs
    return scope["enc"]


def set_threads(name: str, threads: int) -> Callable[[], None]:
    """Limit the encoder's compute threads; returns a function that undoes it.

    numpy BERT: BLAS threads (threadpoolctl); sentence-transformers: torch.set_num_threads; ONNX
    Runtime: fixed by the encoder itself (one thread for one text, two for a batch)."""
    if name == "numpy-bert":
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=threads, user_api="blas")
        return limits.restore_original_limits
    if name == "sentence-transformers":
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        return lambda: torch.set_num_threads(before)
    return lambda: None


def one_query_ms(enc: Any, queries: Sequence[str]) -> list[float]:
    for text in queries[:20]:  # warm-up: first calls allocate and pick kernels
        enc.encode([text])
    times = []
    for text in queries:
        start = time.perf_counter()
        enc.encode([text])
        times.append((time.perf_counter() - start) * 1000)
    return times


def batched_qps(enc: Any, texts: Sequence[str]) -> float:
    enc.encode(list(texts[:64]), batch_size=64)
    start = time.perf_counter()
    enc.encode(list(texts), batch_size=64)
    return len(texts) / (time.perf_counter() - start)


def cold_start_s(name: str, runs: int) -> list[float]:
    """Seconds from spawning `python` to its first embedding, in fresh processes, one thread."""
    code = (
        "import os\nos.environ.setdefault('HF_HUB_OFFLINE', '1')\n"
        + LOADERS[name]
        + "\nenc.encode(['I lost my card yesterday'])\nprint('ready', flush=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - start
        proc.wait()
        if line.strip() != "ready":
            raise RuntimeError(f"cold start of {name} failed (exit {proc.returncode})")
        seconds.append(elapsed)
    return seconds


def lr_accuracy(name: str, cache: Path) -> tuple[float, float | None]:
    """Logistic regression on frozen embeddings, BANKING77 train -> test, in percent; for int8
    also with each test text encoded alone, as a served query is (dynamic int8 quantises each
    batch's activations with one scale, so a vector depends a little on its batch-mates)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from swarm.router.encoders import CachedEncoder

    base = build(name)
    enc = CachedEncoder(base, cache)
    train_x, train_y = read("train")
    test_x, test_y = read("test")
    started = time.perf_counter()
    train_e, test_e = enc.encode(train_x), enc.encode(test_x)
    log(f"  {name}: embeddings in {time.perf_counter() - started:.0f} s (cached after the first)")
    alone = np.concatenate([base.encode([t]) for t in test_x]) if name == "onnx-int8" else None
    with threadpool_limits(limits=1):  # one BLAS thread: the same fit on every run
        model = LogisticRegression(C=10.0, max_iter=2000).fit(train_e, train_y)
        accuracy = float(np.mean(model.predict(test_e) == np.array(test_y)) * 100)
        if alone is None:
            return accuracy, None
        return accuracy, float(np.mean(model.predict(alone) == np.array(test_y)) * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=300, help="single queries timed")
    parser.add_argument("--batched", type=int, default=640, help="texts in the batched run")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--only", default=",".join(NAMES), help="comma-separated subset")
    parser.add_argument("--cache", type=Path, default=ROOT / "storage" / "cache" / "embeddings")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(NAMES)
    if unknown:
        parser.error(f"unknown encoders {sorted(unknown)}; expected some of {NAMES}")

    test_texts, _ = read("test")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(test_texts))
    queries = [test_texts[i] for i in order[: args.queries]]
    batch_texts = [test_texts[i] for i in order[-args.batched :]]
    load_before = os.getloadavg()[0]

    results: dict[str, dict[str, Any]] = {}
    for name in names:
        log(f"{name}: loading")
        enc = build(name)
        undo = set_threads(name, 1)
        times = one_query_ms(enc, queries)
        undo()
        undo = set_threads(name, 2)
        qps = batched_qps(enc, batch_texts)
        undo()
        del enc
        cold = cold_start_s(name, args.cold_runs)
        results[name] = {
            "p50_ms": round(float(np.percentile(times, 50)), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2),
            "batch_queries_per_s": round(qps, 1),
            "cold_start_s": round(statistics.median(cold), 2),
        }
        log(f"{name}: {results[name]}")

    if not args.skip_accuracy:
        for name in ("onnx-fp32", "onnx-int8"):
            if name in names:
                accuracy, alone = lr_accuracy(name, args.cache)
                results[name]["lr_accuracy"] = round(accuracy, 2)
                if alone is not None:
                    results[name]["lr_accuracy_test_one_at_a_time"] = round(alone, 2)
                log(f"{name}: logistic regression {accuracy:.2f} % (one at a time: {alone})")

    summary: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "threads": {"one_query": 1, "batched": 2},
        "encoders": results,
    }
    if "lr_accuracy" in results.get("onnx-int8", {}) and "lr_accuracy" in results.get(
        "onnx-fp32", {}
    ):
        drop = results["onnx-fp32"]["lr_accuracy"] - results["onnx-int8"]["lr_accuracy"]
        summary["int8_accuracy_drop_points"] = round(drop, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
