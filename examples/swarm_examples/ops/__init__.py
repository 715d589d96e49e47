"""The engineering-operations desk: log triage, a guarded script runner and a runbook writer (the
LLM when the swarm has one, a template otherwise). Usable alone: `--agents swarm_examples.ops`.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarm.agents import Agent, Pack
from swarm.errors import ToolError
from swarm.models import Task
from swarm.tools import FileTool, ScriptTool
from swarm_examples.ops.logs import triage, write_sample_log

if TYPE_CHECKING:
    from swarm.context import Context

__all__ = [
    "ENGINEERING_DESK",
    "PACK",
    "LogTriage",
    "Runbook",
    "SCRIPTS_DIR",
    "ScriptRunner",
    "allowed_scripts",
    "ops_root",
]

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
"""The allow-listed folder: the script runner runs the `*.py` files here and nothing else."""

LOGS_SERVICE = "ops_logs"
TIMEOUT_SERVICE = "ops_script_timeout"
DEFAULT_LOGS = Path("storage/ops/logs")


def ops_root(services: dict[str, Any]) -> Path:
    """The folder the log triage agent may read: the suite's sandbox, else storage/ops/logs (with
    a sample log written on first use so the console has something to triage)."""
    root = services.get(LOGS_SERVICE)
    if root is not None:
        return Path(root)
    if not (DEFAULT_LOGS / "core-banking.log").exists():
        write_sample_log(DEFAULT_LOGS / "core-banking.log")
        write_sample_log(DEFAULT_LOGS / "payments.log", burst_at=None, seed=11)
    return DEFAULT_LOGS


def allowed_scripts() -> dict[str, list[str]]:
    """Script name -> argv: every `*.py` in SCRIPTS_DIR but the package's own `__init__`."""
    return {
        p.stem: [sys.executable, str(p)]
        for p in sorted(SCRIPTS_DIR.glob("*.py"))
        if not p.stem.startswith("_")
    }


class LogTriage(Agent):
    name = "log_triage"
    description = "Engineering: triage a log file, find error bursts and their likely cause."
    examples = [
        "triage core-banking.log",
        "find the error burst in the card processor logs",
        "why did errors spike in core-banking.log at 10:42",
        "look through the service logs for the cause of the outage",
        "analyse the log file for error spikes",
        "what caused the burst of timeouts in the logs",
        "scan payments.log for errors",
        "check the application logs for anomalies",
        "summarise the errors in yesterday's log",
        "there was an incident at 10:42, check the logs",
        "grep the logs for exceptions and tell me the root cause",
        "were there any error bursts in the gateway log",
        "read the server log and find what went wrong",
        "investigate the spike of 500 errors in the logs",
        "which service logged the most errors during the incident",
    ]
    timeout = 20.0

    async def run(self, task: Task, ctx: Context) -> Any:
        root = ops_root(ctx.services)
        name = task.payload.get("log") or _log_name(task.text)
        if not name:
            logs = sorted(p.name for p in root.glob("*.log"))
            return {
                "done": False,
                "refused": f"which log? Available: {', '.join(logs) or 'none'}",
                "reply": f"Which log should I triage? Available: {', '.join(logs) or 'none'}.",
            }
        reader = FileTool(root, max_bytes=2_000_000)
        try:
            read = await ctx.tool(reader, path=str(name))
        except ToolError as exc:
            return {"done": False, "refused": str(exc), "reply": f"Sorry: {exc}."}
        async with ctx.span("tool", "triage_log", log=str(name)) as span:
            report = triage(read["content"])
            span.set(bursts=len(report["bursts"]), errors=report["errors"])
        return {"log": str(name), "reply": report["summary"], **report}


def _log_name(text: str) -> str | None:
    m = re.search(r"([\w./-]+\.log)\b", text)
    return m.group(1) if m else None


class ScriptRunner(Agent):
    name = "script_runner"
    description = (
        "Engineering: run an allow-listed maintenance script (health check, disk usage, key "
        "rotation, ledger reindex)."
    )
    examples = [
        "run the health check",
        "run health_check",
        "execute the disk usage script",
        "check free disk space on the server",
        "rotate the API keys of the payments gateway",
        "run rotate_keys for card-processor",
        "start the ledger reindex job",
        "run reindex_ledger",
        "run the maintenance script",
        "execute the script that checks the services are up",
        "run rm -rf / on the server",
        "please run the deploy script",
        "kick off the nightly job script",
        "are all services healthy? run the check",
    ]
    timeout = 30.0

    async def run(self, task: Task, ctx: Context) -> Any:
        scripts = allowed_scripts()
        name = task.payload.get("script") or _script_name(task.text, scripts)
        if name not in scripts:
            asked = f" {name!r}" if name else ""
            return {
                "done": False,
                "refused": f"script{asked} is not in the allow-list",
                "reply": f"I only run allow-listed scripts: {', '.join(scripts)}.",
            }
        args = [str(a) for a in task.payload.get("args", [])]
        timeout = float(ctx.services.get(TIMEOUT_SERVICE, 10.0))
        runner = ScriptTool(scripts, timeout=timeout, cwd=tempfile.gettempdir())
        try:
            out = await ctx.tool(runner, script=name, args=args)
        except ToolError as exc:
            return {"script": name, "ok": False, "error": str(exc), "reply": f"Failed: {exc}."}
        ok = out["exit_code"] == 0
        return {
            "script": name,
            "ok": ok,
            "exit_code": out["exit_code"],
            "stdout": out["stdout"],
            "stderr": out["stderr"],
            "reply": (out["stdout"].strip().splitlines() or ["(no output)"])[-1]
            if ok
            else f"{name} exited with {out['exit_code']}: {out['stderr'].strip()}",
        }


def _script_name(text: str, scripts: dict[str, list[str]]) -> str | None:
    low = text.lower().replace("-", "_")
    for name in scripts:
        if name in low or name.replace("_", " ") in low:
            return name
    aliases = {
        "healthy": "health_check",
        "disk": "disk_usage",
        "key": "rotate_keys",
        "reindex": "reindex_ledger",
    }
    for word, name in aliases.items():
        if word in low:
            return name
    m = re.search(r"\brun (?:the )?([\w-]+)", low)
    return m.group(1) if m else None


RUNBOOKS = {
    ("pool", "database", "connection"): (
        "Database connection pool exhausted",
        [
            "Confirm: core-banking logs `connection pool exhausted`; card authorisations time out.",
            "Mitigate: raise the pool to 80 for the incident and restart the slowest consumers.",
            "Find the holder: list long transactions; kill those older than 60 s.",
            "Verify: timeouts stop within 2 minutes; health_check reports all services ok.",
            "Follow up: add an alert at 80% pool use.",
        ],
    ),
    ("card", "authoris", "authoriz"): (
        "Card authorisations failing",
        [
            "Confirm the error rate in card-processor logs (log_triage).",
            "Check core-banking latency; if high, follow the connection-pool runbook.",
            "If the processor itself fails, switch to the stand-in authoriser (up to 50.00).",
            "Tell customer operations, so declined-payment calls get the right answer.",
        ],
    ),
    ("key", "rotate", "secret"): (
        "Rotating a service's API key",
        [
            "Run `rotate_keys SERVICE` from the script runner.",
            "Deploy the new key to the callers; keep the old one valid for 24 hours.",
            "Revoke the old key and check no caller still uses it.",
        ],
    ),
    ("deploy", "release", "rollback"): (
        "Rolling back a bad release",
        [
            "Stop the rollout; note the version and the first error.",
            "Roll back to the previous version; run health_check.",
            "Open an incident note with the log triage summary.",
        ],
    ),
}


class Runbook(Agent):
    name = "runbook"
    description = (
        "Engineering: write a runbook or documentation for an operational procedure or incident."
    )
    examples = [
        "write a runbook for the database connection pool incident",
        "document how to rotate API keys",
        "draft a runbook for card authorisation failures",
        "how do we roll back a bad release? write it up",
        "create documentation for the on-call engineer",
        "write the incident procedure for an outage",
        "document the steps to restart the payments gateway",
        "produce a playbook for a disk full alert",
        "write docs for the ledger reindex job",
        "turn this incident into a runbook",
        "I need an operations runbook for the core banking service",
    ]
    timeout = 60.0

    async def run(self, task: Task, ctx: Context) -> Any:
        if ctx.llm is not None:
            from swarm.llm.types import Message

            response = await ctx.llm.chat(
                [
                    Message.system(
                        "You write short operational runbooks for a bank's engineering team: a "
                        "title, then numbered steps (confirm, mitigate, verify, follow up)."
                    ),
                    Message.user(task.text),
                ]
            )
            text = getattr(response, "content", None) or str(response)
            return {"source": "llm", "markdown": text, "reply": text}
        title, steps = _template(task.text)
        markdown = f"# Runbook: {title}\n\n" + "\n".join(
            f"{i}. {s}" for i, s in enumerate(steps, start=1)
        )
        return {"source": "template", "title": title, "markdown": markdown, "reply": markdown}


def _template(text: str) -> tuple[str, list[str]]:
    low = text.lower()
    for words, (title, steps) in RUNBOOKS.items():
        if any(w in low for w in words):
            return title, steps
    subject = (
        re.sub(
            r"^(please )?(write|draft|create|document|produce)( a| the)?( runbook| docs?"
            r"| documentation| playbook)?( for| on| about)?\s*",
            "",
            low,
        ).strip(" ?.")
        or text
    )
    return subject[:1].upper() + subject[1:], [
        "Confirm the problem: what users see, since when, which service (log_triage helps).",
        "Mitigate: the smallest change that stops the harm (roll back, fail over, scale up).",
        "Verify: run health_check and watch the error rate for 10 minutes.",
        "Follow up: write down the cause and the fix; add an alert if one was missing.",
    ]


ENGINEERING_DESK: list[Agent] = [LogTriage(), ScriptRunner(), Runbook()]


def ops_sandbox(services: dict[str, Any], script_timeout: float = 2.0) -> dict[str, Any]:
    """A fresh folder of logs (core-banking.log with a burst, payments.log without one)."""
    root = Path(tempfile.mkdtemp(prefix="bank_ops_"))
    write_sample_log(root / "core-banking.log")
    write_sample_log(root / "payments.log", burst_at=None, seed=11)
    return {LOGS_SERVICE: str(root), TIMEOUT_SERVICE: script_timeout, "ops_owned_root": str(root)}


def teardown(services: dict[str, Any]) -> None:
    import shutil

    owned = services.get("ops_owned_root")
    if owned:
        shutil.rmtree(owned, ignore_errors=True)


PACK = Pack(
    name="ops",
    agents=ENGINEERING_DESK,
    description="The engineering-operations desk: log triage, a guarded script runner, runbooks.",
    out_of_scope=[
        "what is the capital of France",
        "tell me a joke",
        "write me a poem about the sea",
        "fix my home wifi router",
    ],
    fixtures={"ops_sandbox": ops_sandbox},
    teardown=teardown,
)
