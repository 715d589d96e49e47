"""Record and replay: a stable hash of each request, and a backend that answers from recordings
(trace-store spans or a plain mapping), offline and deterministically, never falling back to live.
"""

from __future__ import annotations

import copy
import hashlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from swarm.errors import ReplayMissing
from swarm.failure import exception_record, rebuild_exception
from swarm.llm.backend import Backend, assemble_stream, canonical_json, chunks_from_response
from swarm.llm.types import ChatChunk, ChatRequest, ChatResponse

__all__ = ["RecordingBackend", "ReplayBackend", "ResumeBackend", "request_hash"]

# Transport and delivery settings are left out of the hash: the same question asked with another
# timeout, streamed or not, or of another endpoint, has the same recorded answer.
_NOT_HASHED = frozenset({"stream", "stream_options", "timeout", "user"})


def request_hash(request: ChatRequest | Mapping[str, Any]) -> str:
    """sha256 of the request's canonical JSON (sorted keys, unset fields left out)."""
    body = request.body() if isinstance(request, ChatRequest) else dict(request)
    body = {k: v for k, v in body.items() if k not in _NOT_HASHED and v is not None}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass
class _Tape:
    """What was recorded for one hash, in call order: each outcome is a response, the chunks a
    stream gave, an error (`swarm.errors.exception_record`), or chunks then an error. The last
    outcome repeats once they run out."""

    outcomes: list[dict[str, Any]] = field(default_factory=list)
    served: int = 0

    def next(self) -> dict[str, Any]:
        index = min(self.served, len(self.outcomes) - 1)
        self.served += 1
        return self.outcomes[index]


class ReplayBackend(Backend):
    """Answers each request with what was recorded for its `request_hash`, as the agent saw it
    the first time: the same response, the same chunks, the same error (its own class, see
    `swarm.failure.rebuild_exception`), in the order the calls were made.

    `recordings` maps a hash to a recorded response body, or to a list of them when the same
    request was made several times (served in order; the last repeats). `streams` maps a hash
    to the recorded chunk lists of streamed calls, replayed chunk for chunk (the n-th goes with
    the n-th response). `models`: the model names the recorded requests used; with one, it is
    the default for calls that name none. `from_spans` reads all of it, errors too, from a store.
    """

    name = "replay"

    def __init__(
        self,
        recordings: Mapping[str, dict[str, Any] | Sequence[dict[str, Any]]],
        *,
        streams: Mapping[str, Sequence[Sequence[dict[str, Any]]]] | None = None,
        models: Iterable[str] = (),
        outcomes: Mapping[str, Sequence[dict[str, Any]]] | None = None,
    ) -> None:
        self.models = sorted(set(models))
        if len(self.models) == 1:
            self.default_model = self.models[0]
        tapes: dict[str, _Tape] = defaultdict(_Tape)
        for key, value in recordings.items():
            responses = [value] if isinstance(value, Mapping) else list(value)
            tapes[key].outcomes.extend({"response": dict(r)} for r in responses)
        for key, runs in (streams or {}).items():
            tape = tapes[key]
            for i, run in enumerate(runs):
                chunks = [dict(c) for c in run]
                if i < len(tape.outcomes):
                    tape.outcomes[i]["chunks"] = chunks
                else:
                    tape.outcomes.append({"chunks": chunks})
        for key, recorded in (outcomes or {}).items():
            tapes[key].outcomes.extend(dict(o) for o in recorded)
        self._tapes = dict(tapes)

    @classmethod
    def from_spans(cls, spans: Iterable[Any]) -> ReplayBackend:
        """From span-like records (`kind`, `status`, `attributes`; objects or dicts), in
        recorded order: answered calls, streams (cut or whole) and failed calls alike.

        Spans of other kinds, cancelled calls, and failures recorded without their exception
        are skipped.
        """
        outcomes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        models: set[str] = set()
        for span in spans:
            kind, status, attrs = (
                (span.get("kind"), span.get("status"), span.get("attributes"))
                if isinstance(span, Mapping)
                else (
                    getattr(span, "kind", None),
                    getattr(span, "status", None),
                    getattr(span, "attributes", None),
                )
            )
            if kind != "llm" or not isinstance(attrs, Mapping) or not attrs.get("request_hash"):
                continue
            outcome: dict[str, Any] = {}
            if isinstance(attrs.get("response"), Mapping):
                outcome["response"] = dict(attrs["response"])
            if isinstance(attrs.get("chunks"), list):
                outcome["chunks"] = list(attrs["chunks"])
            if status == "error" and isinstance(attrs.get("exception"), Mapping):
                outcome["error"] = dict(attrs["exception"])
            if not ("response" in outcome or "error" in outcome):
                continue  # cancelled, or failed before exceptions were recorded
            outcomes[attrs["request_hash"]].append(outcome)
            request = attrs.get("request")
            if isinstance(request, Mapping) and isinstance(request.get("model"), str):
                models.add(request["model"])
        return cls({}, outcomes=outcomes, models=models)

    def __len__(self) -> int:
        return len(self._tapes)

    def _next(self, request: ChatRequest) -> dict[str, Any]:
        key = request_hash(request)
        tape = self._tapes.get(key)
        if tape is None or not tape.outcomes:
            hint = ""
            if self.models and request.model not in self.models:
                hint = f"; the recorded requests used model(s) {', '.join(self.models)}"
            raise ReplayMissing(
                f"no recorded LLM response for this request (model {request.model!r}, "
                f"first message {_first_message(request)!r}, request_hash {key}){hint}; replay "
                f"never calls a live endpoint: record the run again with a live LLM",
                request_hash=key,
            )
        return _copy(tape.next())

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        outcome = self._next(request)
        if "error" in outcome:
            raise rebuild_exception(outcome["error"])
        if "response" in outcome:
            return ChatResponse.from_raw(outcome["response"])
        return ChatResponse.from_raw(assemble_stream(outcome.get("chunks") or []))

    async def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        outcome = self._next(request)
        chunks = outcome.get("chunks")
        if chunks is None and "response" in outcome:
            chunks = chunks_from_response(outcome["response"])
        for raw in chunks or []:
            yield ChatChunk.model_validate(raw)
        if "error" in outcome:
            raise rebuild_exception(outcome["error"])


class RecordingBackend(Backend):
    """Wraps a live backend and keeps what it answered, for a `ReplayBackend` without a store.

    `recordings()` and `streams()` give the mappings `ReplayBackend(...)` takes; both are JSON.
    `replay()` also serves the errors the calls raised, in order.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.default_model = inner.default_model
        self._outcomes: dict[str, list[dict[str, Any]]] = defaultdict(list)

    @property
    def secrets(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.inner.secrets

    def endpoint(self, request: ChatRequest) -> str:
        return self.inner.endpoint(request)

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        key = request_hash(request)
        try:
            response = await self.inner.complete(request, attempt_timeout=attempt_timeout)
        except Exception as exc:
            self._outcomes[key].append({"error": exception_record(exc)})
            raise
        self._outcomes[key].append({"response": _copy(response.raw)})
        return response

    async def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        seen: list[dict[str, Any]] = []
        outcome: dict[str, Any] = {"chunks": seen}
        chunks = self.inner.stream(request, attempt_timeout=attempt_timeout)
        try:
            async for chunk in chunks:
                seen.append(_copy(chunk.model_dump(mode="json", exclude_none=True)))
                yield chunk
            outcome["response"] = assemble_stream(seen)
        except Exception as exc:
            outcome["error"] = exception_record(exc)
            raise
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
            if "response" in outcome or "error" in outcome:
                self._outcomes[request_hash(request)].append(outcome)

    def recordings(self) -> dict[str, list[dict[str, Any]]]:
        """Hash -> the responses of the calls that were answered, in order."""
        out = {k: [o["response"] for o in v if "response" in o] for k, v in self._outcomes.items()}
        return {k: v for k, v in out.items() if v}

    def streams(self) -> dict[str, list[list[dict[str, Any]]]]:
        """Hash -> the chunk lists of the streamed calls that ended, in order."""
        out = {
            k: [o["chunks"] for o in v if "chunks" in o and "response" in o]
            for k, v in self._outcomes.items()
        }
        return {k: v for k, v in out.items() if v}

    def replay(self) -> ReplayBackend:
        return ReplayBackend({}, outcomes=_copy(dict(self._outcomes)), models=[self.default_model])

    async def aclose(self) -> None:
        await self.inner.aclose()


def _first_message(request: ChatRequest) -> str:
    for message in request.messages:
        if message.role in ("user", "system") and isinstance(message.content, str):
            text = " ".join(message.content.split())
            return text if len(text) <= 60 else text[:57] + "..."
    return ""


def _copy(raw: Any) -> Any:
    # Callers may mutate what they get; recordings must stay as recorded.
    return copy.deepcopy(raw)


class ResumeBackend(Backend):
    """For a task resumed after an approval (`ctx.replay`): each LLM call its earlier run made is
    answered from that run's recording (as `ReplayBackend` would), once and in order per request;
    a call with no recording left goes to the `live` backend.

    The client's `bind` uses it when the context carries recorded `llm` spans. Closing it leaves
    the live backend to its owner.
    """

    def __init__(self, spans: Iterable[Any], live: Any) -> None:
        self._recorded = ReplayBackend.from_spans(spans)
        self._left = {key: len(tape.outcomes) for key, tape in self._recorded._tapes.items()}
        self.live = live
        self.name = live.name
        self.default_model = getattr(live, "default_model", "default")
        self.secrets = tuple(getattr(live, "secrets", ()))
        self.served = 0

    def _from_recording(self, request: ChatRequest) -> bool:
        key = request_hash(request)
        left = self._left.get(key, 0)
        if left:
            self._left[key] = left - 1
            self.served += 1
        return bool(left)

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        source = self._recorded if self._from_recording(request) else self.live
        return await source.complete(request, attempt_timeout=attempt_timeout)  # type: ignore[no-any-return]

    async def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        source = self._recorded if self._from_recording(request) else self.live
        chunks = source.stream(request, attempt_timeout=attempt_timeout)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[union-attr]

    def endpoint(self, request: ChatRequest) -> str:
        where = getattr(self.live, "endpoint", None)
        return where(request) if callable(where) else self.name
