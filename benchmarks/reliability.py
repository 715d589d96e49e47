"""The full reliability runs behind RELIABILITY.md (tests/reliability runs short forms in CI).

    python benchmarks/reliability.py                 # everything: 10,000 faulty tasks, 100 kills
    python benchmarks/reliability.py --tasks 2000 --kills 10   # a quicker look

1. Faults at scale: `--tasks` tasks, 10 % of them faulty (raise, hang past the timeout, swallow
   the timeout, return garbage, return text the store cannot encode, return 1 MB), on a real SQLite
   file, with another connection holding the write lock for 3 s mid-run (a slow store). Every task
   must end in a terminal state and be stored; reports tasks/s and peak memory.
2. SIGKILL and resume: a real `swarm run` of the bank (60 requests, 70 % top-ups) killed at a
   random point, then `swarm resume`, `--kills` times: tasks lost, top-ups applied twice, and
   `PRAGMA integrity_check` of both databases.

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reliability"))

from harness import kill_and_resume, run_faults  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {sys.platform}".strip(),
    }
    with tempfile.TemporaryDirectory(prefix="swarm-reliability-") as tmp:
        root = Path(tmp)
        if args.tasks:
            faults = asyncio.run(
                run_faults(
                    root / "faults.db", args.tasks, fault_rate=0.1, seed=args.seed,
                    slow_store_s=3.0, limit_s=1800,
                )
            )  # fmt: skip
            print(f"faults: {json.dumps(faults)}", flush=True)
            out["faults"] = faults
        kills = []
        rng = random.Random(args.seed)
        for i in range(args.kills):
            report = kill_and_resume(
                root / f"kill{i}", requests=60, kill_at_s=rng.uniform(0.0, 1.5), seed=i
            )
            print(
                f"kill {i + 1}/{args.kills} at +{report['kill_at_s']:.2f}s: "
                f"lost {report['lost']}, repeated {report['repeated_side_effects']}, "
                f"integrity {report['integrity']}/{report['bank_integrity']}, "
                f"resume exit {report['resume_exit']}",
                flush=True,
            )
            kills.append(report)
        if kills:
            out["kills"] = {
                "runs": len(kills),
                "killed_mid_run": sum(not k["finished_before_kill"] for k in kills),
                "tasks_lost": sum(int(k["lost"]) for k in kills),
                "side_effects_repeated": sum(int(k["repeated_side_effects"]) for k in kills),
                "integrity_ok": sum(
                    k["integrity"] == "ok" and k["bank_integrity"] in ("ok", "no bank yet")
                    for k in kills
                ),
                "resume_failed": sum(k["resume_exit"] not in (0, 1) for k in kills),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
