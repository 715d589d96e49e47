"""LLM-as-router baseline: the model is asked to pick the label, as LLM handoff frameworks do,
through swarm's own client, on a sample of the same test rows the learned router is scored on.

    python benchmarks/llm_router_baseline.py --url http://127.0.0.1:8089/v1 --sample 100
    (benchmarks/router.py --llm-url URL runs it beside the learned router)

The answer is constrained to the label set with a JSON schema (`--style llama.cpp` for
llama-cpp-python's spelling, `openai` for OpenAI, vLLM and most hosted APIs), so every reply is a
valid label and the figure measures the choice, not the formatting. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from swarm.llm import LLM, EndpointConfig, json_format

DATA = Path(__file__).resolve().parents[1] / "examples" / "swarm_examples" / "bank" / "banking77"


def read_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def prompt(labels: list[str]) -> str:
    return (
        "You route customer requests to the team that handles them. Answer with the one label "
        "from this list that fits the request best:\n" + "\n".join(labels)
    )


async def llm_route(
    rows: list[tuple[str, str]],
    labels: list[str],
    *,
    url: str,
    model: str = "default",
    style: str = "llama.cpp",
    concurrency: int = 1,
) -> dict[str, Any]:
    """Accuracy and per-request latency of the model choosing among `labels` for `rows`."""
    llm = LLM.from_config(EndpointConfig(base_url=url, model=model, max_concurrency=concurrency))
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}},
        "required": ["label"],
    }
    fmt = json_format(schema, style=style)  # type: ignore[arg-type]
    system = prompt(labels)
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    right = 0

    async def one(text: str, gold: str) -> None:
        nonlocal right
        async with sem:
            start = time.perf_counter()
            reply = await llm.chat(
                [{"role": "system", "content": system}, {"role": "user", "content": text}],
                response_format=fmt,
                temperature=0,
                max_tokens=32,
            )
            latencies.append((time.perf_counter() - start) * 1000)
        try:
            label = json.loads(reply.message.content or "{}").get("label")
        except json.JSONDecodeError:
            label = None
        right += label == gold

    try:
        await asyncio.gather(*(one(t, g) for t, g in rows))
    finally:
        await llm.aclose()
    latencies.sort()
    return {
        "llm_rows": len(rows),
        "llm_accuracy": round(right / len(rows), 4),
        "llm_route_p50_ms": round(statistics.median(latencies), 1),
        "llm_route_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", required=True, help="OpenAI-compatible base URL, e.g. http://h:p/v1")
    ap.add_argument("--model", default="default")
    ap.add_argument("--style", choices=["llama.cpp", "openai"], default="llama.cpp")
    ap.add_argument("--sample", type=int, default=100, help="test rows (a fixed random sample)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = read_rows(DATA / "test.csv")
    labels = json.loads((DATA / "categories.json").read_text())
    sample = random.Random(args.seed).sample(rows, min(args.sample, len(rows)))
    result = asyncio.run(
        llm_route(sample, labels, url=args.url, model=args.model, style=args.style)
    )
    print(json.dumps({"model": args.model, "url": args.url, **result}))


if __name__ == "__main__":
    main()
