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
from swarm.llm.backend import Backend, assemble_stream, canonical_json, chunks_from_response
from swarm.llm.types import ChatChunk, ChatRequest, ChatResponse

__all__ = ["RecordingBackend", "ReplayBackend", "request_hash"]

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
    """The answers recorded for one hash, in call order; the last repeats once they run out."""

    responses: list[dict[str, Any]] = field(default_factory=list)
    streams: list[list[dict[str, Any]]] = field(default_factory=list)
    served: int = 0
    streamed: int = 0

    def next_response(self) -> dict[str, Any]:
        index = min(self.served, len(self.responses) - 1)
        self.served += 1
        return self.responses[index]

    def next_stream(self) -> list[dict[str, Any]] | None:
        if not self.streams:
            return None
        index = min(self.streamed, len(self.streams) - 1)
        self.streamed += 1
        return self.streams[index]


class ReplayBackend(Backend):
    """Answers each request with the response recorded for its `request_hash`.

    `recordings` maps a hash to a recorded response body, or to a list of them when the same
    request was made several times (served in order; the last repeats). `streams` maps a hash
    to the recorded chunk lists of streamed calls, replayed chunk for chunk. `models`: the model
    names the recorded requests used; with one, it is the default for calls that name none.
    """

    name = "replay"

    def __init__(
        self,
        recordings: Mapping[str, dict[str, Any] | Sequence[dict[str, Any]]],
        *,
        streams: Mapping[str, Sequence[Sequence[dict[str, Any]]]] | None = None,
        models: Iterable[str] = (),
    ) -> None:
        self.models = sorted(set(models))
        if len(self.models) == 1:
            self.default_model = self.models[0]
        self._tapes: dict[str, _Tape] = defaultdict(_Tape)
        for key, value in recordings.items():
            responses = [value] if isinstance(value, Mapping) else list(value)
            self._tapes[key].responses.extend(dict(r) for r in responses)
        for key, runs in (streams or {}).items():
            self._tapes[key].streams.extend([dict(c) for c in run] for run in runs)
        self._tapes = dict(self._tapes)

    @classmethod
    def from_spans(cls, spans: Iterable[Any]) -> ReplayBackend:
        """From span-like records (`kind`, `attributes`; objects or dicts), in recorded order.

        Spans of other kinds, failed calls and calls that recorded no response are skipped.
        """
        recordings: dict[str, list[dict[str, Any]]] = defaultdict(list)
        streams: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
        models: set[str] = set()
        for span in spans:
            kind = span.get("kind") if isinstance(span, Mapping) else getattr(span, "kind", None)
            attrs = span.get("attributes") if isinstance(span, Mapping) else getattr(
                span, "attributes", None
            )
            if kind != "llm" or not isinstance(attrs, Mapping):
                continue
            key, response = attrs.get("request_hash"), attrs.get("response")
            if not key or not isinstance(response, Mapping):
                continue
            recordings[key].append(dict(response))
            if isinstance(attrs.get("chunks"), list):
                streams[key].append(list(attrs["chunks"]))
            request = attrs.get("request")
            if isinstance(request, Mapping) and isinstance(request.get("model"), str):
                models.add(request["model"])
        return cls(recordings, streams=streams, models=models)

    def __len__(self) -> int:
        return len(self._tapes)

    def _tape(self, request: ChatRequest) -> _Tape:
        key = request_hash(request)
        tape = self._tapes.get(key)
        if tape is None or not (tape.responses or tape.streams):
            hint = ""
            if self.models and request.model not in self.models:
                hint = f"; the recorded requests used model(s) {', '.join(self.models)}"
            raise ReplayMissing(
                f"no recorded LLM response for this request (model {request.model!r}, "
                f"first message {_first_message(request)!r}, request_hash {key}){hint}; replay "
                f"never calls a live endpoint: record the run again with a live LLM",
                request_hash=key,
            )
        return tape

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        tape = self._tape(request)
        if not tape.responses:
            return ChatResponse.from_raw(assemble_stream(tape.next_stream() or []))
        return ChatResponse.from_raw(_copy(tape.next_response()))

    async def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        tape = self._tape(request)
        chunks = tape.next_stream()
        if chunks is None:
            chunks = chunks_from_response(tape.next_response())
        for raw in chunks:
            yield ChatChunk.model_validate(_copy(raw))


class RecordingBackend(Backend):
    """Wraps a live backend and keeps what it answered, for a `ReplayBackend` without a store.

    `recordings()` and `streams()` give the mappings `ReplayBackend(...)` takes; both are JSON.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.default_model = inner.default_model
        self._responses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._streams: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)

    @property
    def secrets(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.inner.secrets

    def endpoint(self, request: ChatRequest) -> str:
        return self.inner.endpoint(request)

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        response = await self.inner.complete(request, attempt_timeout=attempt_timeout)
        self._responses[request_hash(request)].append(_copy(response.raw))
        return response

    async def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        seen: list[dict[str, Any]] = []
        chunks = self.inner.stream(request, attempt_timeout=attempt_timeout)
        try:
            async for chunk in chunks:
                seen.append(_copy(chunk.model_dump(mode="json", exclude_none=True)))
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        key = request_hash(request)
        self._streams[key].append(seen)
        self._responses[key].append(assemble_stream(seen))

    def recordings(self) -> dict[str, list[dict[str, Any]]]:
        return {k: list(v) for k, v in self._responses.items()}

    def streams(self) -> dict[str, list[list[dict[str, Any]]]]:
        return {k: list(v) for k, v in self._streams.items()}

    def replay(self) -> ReplayBackend:
        return ReplayBackend(
            self.recordings(), streams=self.streams(), models=[self.default_model]
        )

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
