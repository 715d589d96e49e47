"""The newcomer's path with a real model server: an `LLMAgent` in a few lines, `swarm run` pointed
at the server by `SWARM_LLM_BASE_URL`, the model call in the trace, and a replay of the run with
the server out of reach that answers byte for byte the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from llm_fakes import ServerProcess

SWARM = str(Path(sys.executable).with_name("swarm"))

AGENTS = """
    from swarm import LLMAgent

    class Poet(LLMAgent):
        name = "poet"
        description = "Writes one short line about what it is asked."
        examples = ["a line about the sea", "write a line about rain"]
        system = "Answer with one short sentence."
        max_tokens = 12
"""


def swarm(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SWARM, *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_run_trace_and_offline_replay_against_a_real_server(
    tmp_path: Path, llm_server: ServerProcess
) -> None:
    (tmp_path / "poets.py").write_text(textwrap.dedent(AGENTS))
    env = {
        **os.environ,
        "SWARM_DB": f"sqlite:///{tmp_path / 'swarm.db'}",
        "SWARM_LLM_BASE_URL": llm_server.url,
        "SWARM_LLM_MODEL": "smollm2",
    }
    ran = swarm(
        tmp_path,
        env,
        "run",
        "a line about the sea",
        "--agents",
        "poets",
        "--agent",
        "poet",
        "--router",
        "keyword",
        "--json",
    )
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    (result,) = out["results"]
    assert result["status"] == "done" and isinstance(result["output"], str) and result["output"]

    shown = swarm(tmp_path, env, "traces", "show", result["task_id"], "--json")
    tree = json.loads(shown.stdout.strip().splitlines()[-1])
    (llm_span,) = [s for s in tree["spans"] if s["kind"] == "llm"]
    attrs = llm_span["attributes"]
    assert attrs["request"]["messages"][-1]["content"] == "a line about the sea"
    assert attrs["response"]["choices"][0]["message"]["content"] == result["output"]
    assert attrs["total_tokens"] > 0 and attrs["request_hash"]

    offline = {**env, "SWARM_LLM_BASE_URL": "http://127.0.0.1:9"}  # nothing listens there
    replayed = swarm(tmp_path, offline, "replay", out["run_id"], "--json")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    report = json.loads(replayed.stdout.strip().splitlines()[-1])
    assert report["compared"] == 1 and report["changes"] == [], report
