"""An LLM only when unsure: a router wrapper that asks a language model to choose among the top
candidates (or none) for the decisions the learned router is not sure of, and records both
opinions on the decision.

Frameworks that route with an LLM call it for every request; here the learned router decides in
milliseconds and the LLM is asked only for ambiguous or low-confidence decisions. Off unless
configured: `SWARM_ROUTER_LLM=1` with an endpoint in `SWARM_LLM_BASE_URL` (the CLI's
`second_opinion_from_env`), or `SecondOpinionRouter(router, llm)` from Python. The router room
does not import `swarm.llm` (it sits below): `llm` is anything with `swarm.llm.LLM`'s `chat`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from swarm.models import Decision

__all__ = ["NONE_CHOICE", "SecondOpinionRouter", "SecondOpinionStats", "response_format"]

NONE_CHOICE = "none"
"""What the LLM answers when no candidate should take the request."""

T = TypeVar("T")

SYSTEM = (
    "You route a customer's request to the one agent that should handle it. Answer with JSON "
    '{"agent": NAME}, NAME being one of the agents listed, or "none" when none of them should '
    "take the request (it is about something else)."
)


@dataclass
class SecondOpinionStats:
    """How often the LLM was asked, and how often its answer changed the decision."""

    decisions: int = 0
    asked: int = 0
    changed: int = 0
    """The final (agent, status) differs from the router's (a different agent, an ambiguous one
    resolved, one rejected)."""
    failed: int = 0
    """Asked, but no usable answer (error, timeout, a name not offered): the router's stands."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dataclasses.asdict(self)
        out["asked_share"] = round(self.asked / self.decisions, 4) if self.decisions else 0.0
        out["changed_share_of_asked"] = round(self.changed / self.asked, 4) if self.asked else 0.0
        return out


class SecondOpinionRouter:
    """Routes with `router`; asks `llm` (a `swarm.llm.LLM`) about the decisions it is unsure of.

    Unsure: ambiguous, or routed with a confidence below `below`, or rejected by the threshold
    (not far off: the best agent's confidence at least `floor`). The LLM sees the request and the
    top `candidates` agents (with their descriptions, else a few of their training examples) and
    must answer JSON whose `agent` is one of those names or "none" (a JSON schema with the names
    as an enum; `style` "llama.cpp" for servers that spell `response_format` that way). Its
    answer becomes the decision (status "routed", or "out_of_scope" for none); the decision's
    `second_opinion` keeps both opinions. An error, a timeout (`timeout` seconds for the whole
    batch of questions) or an answer outside the choices leaves the router's decision as it was,
    with the error recorded. Thread-safe like the router it wraps; everything else (`explain`,
    `labels`, `save` …) is the wrapped router's.
    """

    blocking = True

    def __init__(
        self,
        router: Any,
        llm: Any,
        *,
        below: float = 0.6,
        floor: float = 0.2,
        candidates: int = 3,
        descriptions: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        style: Literal["openai", "llama.cpp"] = "openai",
        max_tokens: int = 32,
    ) -> None:
        self.router = router
        self.llm = llm
        self.below, self.floor, self.candidates = below, floor, candidates
        self.descriptions = dict(descriptions or {})
        self.timeout, self.style, self.max_tokens = timeout, style, max_tokens
        self.stats = SecondOpinionStats()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this class lacks: the wrapped router's (labels, explain, save…).
        if name == "router":
            raise AttributeError(name)
        return getattr(self.router, name)

    def __repr__(self) -> str:
        return f"<SecondOpinionRouter over {self.router!r}, LLM {getattr(self.llm, 'model', '?')}>"

    # ---- routing ---------------------------------------------------------------------------

    def unsure(self, d: Decision) -> bool:
        if d.status == "ambiguous":
            return True
        if d.status == "routed":
            return d.confidence < self.below
        return d.status == "out_of_scope" and d.confidence >= self.floor

    def route(self, texts: Sequence[str]) -> list[Decision]:
        decisions = list(self.router.route(list(texts)))
        asks = [i for i, d in enumerate(decisions) if self.unsure(d) and self._choices(d)]
        answers: list[dict[str, Any]] = []
        if asks:
            questions = [self._ask(texts[i], decisions[i]) for i in asks]
            try:
                answers = self._run(_gather(questions), self.timeout)
            except Exception as exc:  # the LLM is a helper: the router's decisions stand
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                answers = [{"error": error} for _ in asks]
        for i, answer in zip(asks, answers, strict=True):
            decisions[i] = self._decide(decisions[i], answer)
        opinions = [decisions[i].second_opinion or {} for i in asks]
        with self._lock:
            self.stats.decisions += len(decisions)
            self.stats.asked += len(asks)
            self.stats.failed += sum("error" in o for o in opinions)
            self.stats.changed += sum(bool(o.get("changed")) for o in opinions)
        return decisions

    def _choices(self, d: Decision) -> list[str]:
        agents = set(getattr(self.router, "labels", ()) or ())
        return [a for a, _ in d.candidates if not agents or a in agents][: self.candidates]

    async def _ask(self, text: str, d: Decision) -> dict[str, Any]:
        choices = self._choices(d)
        schema = {
            "type": "object",
            "properties": {"agent": {"type": "string", "enum": [*choices, NONE_CHOICE]}},
            "required": ["agent"],
            "additionalProperties": False,
        }
        listed = "\n".join(f"- {name}: {self._describe(name)}" for name in choices)
        started = time.perf_counter()
        try:
            reply = await self.llm.chat(
                [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Agents:\n{listed}\n\nRequest: {text}"},
                ],
                response_format=response_format(schema, self.style),
                temperature=0.0,
                max_tokens=self.max_tokens,
            )
            raw = reply.content
            choice = json.loads(raw).get("agent") if raw else None
        except Exception as exc:  # an unusable answer is recorded, never raised
            return {"error": f"{type(exc).__name__}: {exc}", "choices": choices}
        finally:
            latency = (time.perf_counter() - started) * 1000
        answer: dict[str, Any] = {"choices": choices, "latency_ms": round(latency, 1)}
        if choice not in (*choices, NONE_CHOICE):
            answer["error"] = f"answered {str(raw)[:80]!r}, not one of {[*choices, NONE_CHOICE]}"
        else:
            answer["choice"] = choice
        return answer

    def _describe(self, name: str) -> str:
        if self.descriptions.get(name):
            return self.descriptions[name]
        bank = getattr(self.router, "examples", None)
        if bank is None:
            return name
        examples = [t for t, label in zip(bank.texts, bank.labels, strict=True) if label == name]
        return "; ".join(f'"{t}"' for t in examples[:3]) or name

    def _decide(self, d: Decision, answer: dict[str, Any]) -> Decision:
        opinion: dict[str, Any] = {
            "router": {"agent": d.agent, "status": d.status, "confidence": d.confidence},
            "model": str(getattr(self.llm, "model", "")),
            "choices": answer.get("choices", []),
            "latency_ms": answer.get("latency_ms"),
        }
        if "error" in answer:
            return dataclasses.replace(
                d, second_opinion={**opinion, "error": answer["error"], "changed": False}
            )
        choice = answer["choice"]
        agent = None if choice == NONE_CHOICE else choice
        status: Literal["routed", "out_of_scope"] = "out_of_scope" if agent is None else "routed"
        opinion.update(llm=choice, changed=(agent, status) != (d.agent, d.status))
        confidence = dict(d.candidates).get(agent, d.confidence) if agent else d.confidence
        return dataclasses.replace(
            d, agent=agent, status=status, confidence=confidence, second_opinion=opinion
        )

    # ---- the LLM's event loop --------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on this router's own event loop (the LLM client's connections belong to
        one loop; `route` is called from worker threads)."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="second-opinion", daemon=True
                )
                self._thread.start()
            loop = self._loop
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from the LLM within {timeout:g} s") from None

    def close(self) -> None:
        """Close the LLM client and stop the loop (idempotent)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        closing = getattr(self.llm, "aclose", None)
        if closing is not None:
            asyncio.run_coroutine_threadsafe(closing(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(10)
        loop.close()


def response_format(
    schema: dict[str, Any], style: Literal["openai", "llama.cpp"] = "openai"
) -> dict[str, Any]:
    """Ask for JSON fitting `schema`, as `swarm.llm.json_format` spells it for each kind of
    server (OpenAI and vLLM: `json_schema`; llama-cpp-python: `json_object` with a schema)."""
    if style == "llama.cpp":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "route", "schema": schema}}


async def _gather(questions: list[Coroutine[Any, Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*questions))
