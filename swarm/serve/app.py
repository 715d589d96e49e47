"""The FastAPI app of `swarm serve`: a started `Swarm` behind JSON routes and server-sent events.

Reads go to the swarm's trace store (in a thread: its reads are synchronous), after a flush so a
task submitted a moment ago is there; events come from the scheduler's `EventBus`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sse_starlette import EventSourceResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swarm.errors import (
    ApprovalDecided,
    ArtifactError,
    ConfigError,
    QueueFull,
    SchedulerClosed,
    StoreError,
    SwarmError,
    TaskNotFound,
    UserError,
)
from swarm.events import Event, Subscription
from swarm.models import OUT_OF_SCOPE, Decision, TaskStatus
from swarm.serve import schemas as s
from swarm.serve.history import replay_then_live, task_history
from swarm.serve.security import (
    DEFAULT_MAX_BODY,
    BearerToken,
    BodyLimit,
    LoopbackHosts,
    token_from_env,
)
from swarm.swarm import Swarm
from swarm.trace import TraceStore

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger("swarm.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The web page's files (index.html, scripts, styles), shipped in the package."""

_ERRORS: dict[type[SwarmError], int] = {
    ApprovalDecided: 409,
    TaskNotFound: 404,
    QueueFull: 503,
    SchedulerClosed: 503,
    StoreError: 503,
    UserError: 422,
}
"""The HTTP status of each of swarm's errors (the most specific class that matches wins)."""

_NEIGHBOURS = 5
_NEIGHBOUR_CACHE = 2048


@runtime_checkable
class Explains(Protocol):
    """A router that can show the training examples nearest to a text (`swarm.router.Router`)."""

    version: str

    def explain(self, text: str, *, k: int = 3) -> Any: ...


def create_app(
    swarm: Swarm,
    *,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    models_dir: str | Path | None = None,
) -> FastAPI:
    """The API (and the page) for `swarm`, which the app starts and closes with its lifespan
    (`async with swarm`) unless it is running already.

    - `token`: the bearer token every /v1 route asks for; None reads `$SWARM_API_TOKEN`; "" turns
      auth off. `/`, `/static/...`, `/v1/auth` and `/openapi.json` need none. Without a token the
      app answers only requests addressed to a loopback name (`LoopbackHosts`: 421 otherwise).
    - `max_body`: bytes a request body may hold (413 beyond).
    - `models_dir`: where the router's versions live (default: `swarm.models_dir`).

    Raises `ConfigError` at start-up for a swarm without a trace store (db=None): the API reads
    tasks back from it.
    """
    token = token_from_env() if token is None else (token or None)
    service = _Service(swarm, Path(models_dir) if models_dir is not None else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started_here = not service.started()
        if started_here:
            await swarm.start()
        try:
            if swarm.store is None:
                raise ConfigError("swarm serve needs a trace store: give the Swarm a db URL")
            yield
        finally:
            if started_here:
                await swarm.close()

    app = FastAPI(
        title="swarm",
        summary="Submit tasks to a swarm of agents, watch them run, teach its router.",
        version="1",
        lifespan=lifespan,
        responses={
            401: {"model": s.ErrorBody, "description": "No or wrong bearer token"},
            413: {"model": s.ErrorBody, "description": "Request body too large"},
            422: {"model": s.ErrorBody, "description": "A field is missing or wrong"},
        },
    )
    app.add_middleware(_Unexpected)
    app.add_middleware(BodyLimit, max_body=max_body)
    if token is None:
        app.add_middleware(LoopbackHosts)
    _error_handlers(app)
    auth = [Depends(BearerToken(token))]
    stream_auth = [Depends(BearerToken(token, query=True))]

    # ---- the page and auth (open) -------------------------------------------------------

    @app.get("/", include_in_schema=False, response_model=None)
    async def page() -> FileResponse | HTMLResponse:
        index = STATIC_DIR / "index.html"
        if index.is_file():
            return FileResponse(index)
        return HTMLResponse(
            "<!doctype html><title>swarm</title><p>swarm serve is running; the web page is not "
            'installed. The API: <a href="/openapi.json">/openapi.json</a>.</p>'
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    @app.get("/v1/auth", tags=["auth"])
    async def auth_info() -> s.AuthInfo:
        """Whether the other /v1 routes need a bearer token (the page asks for one if so)."""
        return s.AuthInfo(required=token is not None)

    # ---- tasks --------------------------------------------------------------------------

    @app.post("/v1/tasks", status_code=202, dependencies=auth, tags=["tasks"])
    async def submit(body: s.SubmitRequest) -> s.Submitted:
        """Queue a task; it is routed (unless `agent` names one) and run. Poll
        `GET /v1/tasks/{id}` or stream `GET /v1/tasks/{id}/events`. 503 while the queue is full
        or the server shuts down."""
        if body.agent is not None and body.agent not in swarm.registry.names:
            known = ", ".join(sorted(swarm.registry.names))
            raise _FieldError("agent", f"no agent named {body.agent!r} (agents: {known})")
        handle = swarm.scheduler.submit_nowait(
            body.text,
            agent=body.agent,
            payload=body.payload,
            session=body.session,
            priority=body.priority,
        )
        return s.Submitted(id=handle.id, status=TaskStatus.QUEUED.value)

    @app.get("/v1/tasks", dependencies=auth, tags=["tasks"])
    async def tasks(
        run_id: str | None = None,
        status: TaskStatus | None = None,
        roots: bool = Query(False, description="Only tasks no other task delegated."),
        limit: int = Query(50, ge=1, le=1000),
    ) -> s.TaskList:
        """Recent tasks, newest first (`run_id`: a part of the run's id will do)."""
        store = await service.fresh_store()

        def read() -> list[dict[str, Any]]:
            run = str(store.find_run(run_id)["id"]) if run_id else None
            return store.tasks(
                run_id=run,
                status=status.value if status is not None else None,
                roots_only=roots,
                limit=limit,
            )

        rows = await asyncio.to_thread(read)
        return s.TaskList(tasks=[s.TaskRow.model_validate(r) for r in rows])

    @app.get(
        "/v1/tasks/{task_id}",
        dependencies=auth,
        tags=["tasks"],
        responses={404: {"model": s.ErrorBody}},
    )
    async def task(task_id: str) -> s.TaskDetail:
        """A task: its status, routing decision (with the nearest training examples) and result.
        The id may be its end (the short id) or its start."""
        store = await service.fresh_store()
        row, decision = await asyncio.to_thread(_task_and_decision, store, task_id)
        return s.TaskDetail(
            **row, decision=await service.decision_info(row, decision) if decision else None
        )

    @app.get(
        "/v1/tasks/{task_id}/events",
        dependencies=stream_auth,
        tags=["events"],
        response_class=EventSourceResponse,
        responses={404: {"model": s.ErrorBody}},
    )
    async def task_events(task_id: str) -> EventSourceResponse:
        """Server-sent events of the task and the tasks it delegates, until its `done`: `event:`
        is the kind (`swarm.events`), `data:` the event as JSON, `id:` its sequence number.
        First its history so far, rebuilt from the trace store (`queued`, `routed`, `started`,
        spans, delegated tasks with theirs, approvals asked and decided, `done`): those have
        `"replayed": true` and no `id:`; then the live events, none that the history already
        sent. A finished task's stream ends after its history. The token may be given as
        `?access_token=` (browsers' EventSource cannot send headers)."""
        # Subscribed first, then read: whatever was published before the subscription was
        # written to the store before it too, so the flushed store holds it; whatever comes
        # after is in the subscription (a step may be in both: `_sse` skips the copy). A full id
        # (what POST returned) needs one read; a part of one is resolved, then read again.
        events = swarm.scheduler.events
        sub = events.subscribe(task_id)
        try:
            store = await service.fresh_store()
            row = await asyncio.to_thread(store.task, task_id)
            if row["id"] != task_id:
                sub.close()
                sub = events.subscribe(row["id"])
                await store.flush()
            tree, history = await asyncio.to_thread(task_history, store, row["id"])
        except BaseException:
            sub.close()
            raise
        if TaskStatus(tree["status"]).finished:
            sub.close()
            return EventSourceResponse(_sse(history, None))
        sub.follow(e.task_id for e in history)  # children delegated before it subscribed
        return EventSourceResponse(_sse(history, sub))

    @app.get("/v1/events", dependencies=stream_auth, tags=["events"])
    async def all_events() -> EventSourceResponse:
        """Server-sent events of every task, from now on (as `/v1/tasks/{id}/events`, without a
        history: nothing is replayed)."""
        swarm.scheduler  # noqa: B018 -- a swarm not running: 503 before the stream opens
        return EventSourceResponse(_sse([], swarm.scheduler.events.subscribe(None)))

    @app.post(
        "/v1/tasks/{task_id}/feedback",
        status_code=201,
        dependencies=auth,
        tags=["feedback"],
        responses={404: {"model": s.ErrorBody}},
    )
    async def feedback(task_id: str, body: s.FeedbackRequest) -> s.FeedbackStored:
        """Say how the task was routed: `good`, `bad`, or with `agent` where it belonged (a
        correction; `oos`: no agent should take it). The router learns from these."""
        try:
            record = await swarm.feedback(task_id, body.verdict, agent=body.agent, note=body.note)
        except ConfigError as exc:
            raise _FieldError("agent" if body.agent else "verdict", str(exc)) from None
        return s.FeedbackStored.model_validate(record, from_attributes=True)

    # ---- runs and traces ----------------------------------------------------------------

    @app.get("/v1/runs", dependencies=auth, tags=["traces"])
    async def runs(limit: int = Query(20, ge=1, le=1000)) -> s.RunList:
        """Recent runs (a process's session of the swarm), newest first, with their root tasks."""
        store = await service.fresh_store()
        rows = await asyncio.to_thread(store.runs, limit)
        return s.RunList(runs=[s.Run.model_validate(r) for r in rows])

    @app.get(
        "/v1/traces/{task_id}",
        dependencies=auth,
        tags=["traces"],
        responses={404: {"model": s.ErrorBody}},
    )
    async def trace(task_id: str) -> s.TaskTree:
        """The task's tree: its decision and spans, and its child tasks', recursively."""
        store = await service.fresh_store()
        tree = await asyncio.to_thread(store.task_tree, task_id)
        return s.TaskTree.model_validate(_tree_decisions(tree))

    # ---- the router ---------------------------------------------------------------------

    @app.get("/v1/router/versions", dependencies=auth, tags=["router"])
    async def versions() -> s.VersionList:
        """The router versions saved for these agents, oldest first; which one CURRENT names and
        which one routes now."""
        return await asyncio.to_thread(service.versions)

    @app.post(
        "/v1/router/versions/{version}/use",
        dependencies=auth,
        tags=["router"],
        responses={404: {"model": s.ErrorBody}, 409: {"model": s.ErrorBody}},
    )
    async def use_version(version: str) -> s.VersionUsed:
        """Serve `version` (or the one version whose name begins with it): CURRENT moves to it
        and the running scheduler routes with it from its next batch (promote, or roll back).
        409 when it was trained for other agents."""
        return await service.use(version)

    @app.get("/v1/router/metrics", dependencies=auth, tags=["router"])
    async def metrics() -> s.RouterMetrics:
        """Routing accuracy and the confusion matrix on the feedback people gave."""
        store = await service.fresh_store()
        rows = await asyncio.to_thread(store.feedback)
        return feedback_metrics(rows)

    @app.get("/v1/agents", dependencies=auth, tags=["router"])
    async def agents() -> s.AgentList:
        return s.AgentList(
            agents=[
                s.Agent(
                    name=a.name,
                    description=a.description or "",
                    max_concurrency=a.max_concurrency,
                )
                for a in swarm.registry
            ]
        )

    # ---- approvals ----------------------------------------------------------------------

    @app.get("/v1/approvals", dependencies=auth, tags=["approvals"])
    async def approvals(
        status: Literal["waiting", "approved", "denied", "expired", "cancelled", "all"] = "waiting",
    ) -> s.ApprovalList:
        """Questions agents put to people (`ctx.approve`), oldest first; waiting ones unless
        `status` says otherwise."""
        rows = await swarm.approvals(None if status == "all" else status)
        return s.ApprovalList(approvals=[s.Approval.model_validate(r) for r in rows])

    @app.post(
        "/v1/approvals/{approval_id}",
        dependencies=auth,
        tags=["approvals"],
        responses={404: {"model": s.ErrorBody}, 409: {"model": s.ErrorBody}},
    )
    async def decide(approval_id: str, body: s.ApprovalDecision) -> s.Approval:
        """Approve or deny a waiting approval (the id's end or start will do); its task goes on
        (or hears no). 409 when it was decided already, or its time ran out: a decision is
        final."""
        row = await swarm.approve(approval_id, body.approve, by=body.by or "api", note=body.note)
        return s.Approval.model_validate(row)

    return app


# ---- the service behind the routes -----------------------------------------------------------


class _Service:
    """What the routes share: the swarm, its models folder, and the neighbours found so far."""

    def __init__(self, swarm: Swarm, models_dir: Path | None) -> None:
        self.swarm = swarm
        self._models_dir = models_dir
        self._neighbours: OrderedDict[tuple[str, str], list[s.Neighbour]] = OrderedDict()
        self._swap = asyncio.Lock()

    def started(self) -> bool:
        try:
            self.swarm.scheduler  # noqa: B018
        except ConfigError:
            return False
        return True

    @property
    def models_dir(self) -> Path:
        return self._models_dir or Path(self.swarm.models_dir)

    async def fresh_store(self) -> TraceStore:
        """The store, with everything the swarm wrote so far committed (readable)."""
        store = self.swarm.store
        if store is None:
            raise ConfigError("this swarm keeps no trace store")
        await store.flush()
        return store

    async def decision_info(self, task: dict[str, Any], row: dict[str, Any]) -> s.DecisionInfo:
        info = _decision_fields(row)
        info["neighbours"] = await self.neighbours(task, row)
        return s.DecisionInfo(**info)

    async def neighbours(self, task: dict[str, Any], decision: dict[str, Any]) -> list[s.Neighbour]:
        """The training examples nearest to the task's text, from the router that routes now,
        when it is the version that decided (another version's examples would explain another
        decision)."""
        router = self.swarm.scheduler.router
        version = decision.get("router_version")
        if not isinstance(router, Explains) or not version or router.version != version:
            return []
        key = (task["id"], version)
        found = self._neighbours.get(key)
        if found is None:
            explanation = await asyncio.to_thread(router.explain, task["text"], k=_NEIGHBOURS)
            found = [
                s.Neighbour(text=n.text, agent=n.label, similarity=round(float(n.similarity), 4))
                for n in explanation.nearest
            ]
            self._neighbours[key] = found
            if len(self._neighbours) > _NEIGHBOUR_CACHE:
                self._neighbours.popitem(last=False)
        return found

    def versions(self) -> s.VersionList:
        from swarm.router.artifacts import (
            agent_set_fingerprint,
            current_version,
            describe_version,
            list_versions,
            read_manifest,
        )

        root = self.models_dir
        serving = current_version(root)
        mine = agent_set_fingerprint(self.swarm.registry.names)
        rows = []
        for version in list_versions(root):
            try:
                manifest = read_manifest(root / version)
            except ArtifactError:
                continue  # a corrupt version is `swarm router versions`' to report
            if manifest.get("agents_fingerprint") == mine:
                rows.append(s.Version.model_validate(describe_version(manifest, serving)))
        return s.VersionList(
            serving=serving,
            routing=str(self.swarm.scheduler.router.version),
            models_dir=str(root),
            versions=rows,
        )

    async def use(self, ref: str) -> s.VersionUsed:
        from swarm.router import Router
        from swarm.router.artifacts import current_version, find_version, set_current

        root = self.models_dir
        try:
            version = find_version(root, ref)
        except ArtifactError as exc:
            raise _NotFound(str(exc)) from None
        async with self._swap:  # one swap at a time: CURRENT and the scheduler agree
            current = self.swarm.scheduler.router
            encoder = current.encoder if isinstance(current, Router) else None
            try:
                router = await asyncio.to_thread(_load_version, root / version, encoder)
                router.check_agents(self.swarm.registry.names)
            except ArtifactError as exc:
                raise _Conflict(str(exc)) from None
            previous = current_version(root)
            await asyncio.to_thread(set_current, root, version)
            self.swarm.router = router
            self.swarm.scheduler.router = router
        return s.VersionUsed(serving=version, previous=previous, routing=router.version)


def _load_version(folder: Path, encoder: Any) -> Any:
    """The router saved in `folder`, reusing `encoder` when it is the one it was trained with
    (loading the encoder again costs seconds)."""
    from swarm.router import Router
    from swarm.router.artifacts import read_manifest

    recorded = read_manifest(folder)["encoder"].get("fingerprint")
    same = encoder is not None and recorded == encoder.fingerprint
    return Router.load(folder, encoder=encoder if same else None)


def feedback_metrics(rows: list[dict[str, Any]]) -> s.RouterMetrics:
    """Accuracy and the confusion matrix from feedback rows (`TraceStore.feedback()`), the last
    verdict of each task counting: `good` is right; `bad` and corrections are wrong; corrections
    and goods say where a task belonged, so they fill the matrix (scored by
    `swarm.router.metrics.score_decisions`)."""
    from swarm.router.metrics import score_decisions

    last = {r["task_id"]: r for r in rows}
    judged = list(last.values())
    labelled = [r for r in judged if r["kind"] in ("good", "correction")]
    decisions = [Decision(r["routed_agent"], 1.0) for r in labelled]
    truth = [
        (r["agent"] if r["kind"] == "correction" else r["routed_agent"]) or OUT_OF_SCOPE
        for r in labelled
    ]
    n_pairs = len(set(truth) | {d.agent or OUT_OF_SCOPE for d in decisions})
    report = score_decisions(decisions, truth, top_confused=n_pairs * n_pairs)
    labels = [score.label for score in report.per_label]
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for t, p, count in report.confused:
        confusion[index[t]][index[p]] = count
    for score in report.per_label:  # the diagonal: what was not confused
        i = index[score.label]
        confusion[i][i] = score.support - sum(confusion[i])
    good = sum(r["kind"] == "good" for r in judged)
    return s.RouterMetrics(
        accuracy=good / len(judged) if judged else None,
        n=len(judged),
        labelled=len(labelled),
        labels=labels,
        confusion=confusion,
        per_label={
            score.label: {
                "precision": score.precision,
                "recall": score.recall,
                "f1": score.f1,
                "support": score.support,
            }
            for score in report.per_label
        },
        source="feedback",
    )


# ---- helpers ---------------------------------------------------------------------------------


def _task_and_decision(store: TraceStore, ref: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    row = store.task(ref)
    return row, store.decision(row["id"])


def _decision_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "agent": row["agent"],
        "status": row["status"],
        "confidence": row["confidence"],
        "rule": row.get("rule"),
        "candidates": [tuple(c) for c in row.get("candidates") or ()],
        "router_version": row.get("router_version"),
        "latency_ms": row.get("latency_ms") or 0.0,
    }


def _tree_decisions(node: dict[str, Any]) -> dict[str, Any]:
    decision = node.get("decision")
    return {
        **node,
        "decision": _decision_fields(decision) if decision else None,
        "children": [_tree_decisions(c) for c in node.get("children", ())],
    }


async def _sse(history: list[Event], sub: Subscription | None) -> AsyncIterator[dict[str, str]]:
    """Events as sse-starlette's dicts: `history`, then `sub`'s live events (`replay_then_live`);
    the subscription is closed however the stream ends (the client gone, the task done, the
    server stopping)."""
    try:
        async for event in replay_then_live(history, sub):
            yield _frame(event)
    finally:
        if sub is not None:
            sub.close()


def _frame(event: Event) -> dict[str, str]:
    frame = {
        "event": event.kind,
        "data": json.dumps(event.as_dict(), default=str, ensure_ascii=False),
    }
    if not event.replayed:  # a replayed event has no place on the bus: no `id:`
        frame["id"] = str(event.seq)
    return frame


# ---- errors ----------------------------------------------------------------------------------


class _FieldError(Exception):
    """A 422 about one request field that passed validation but names something unknown."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _NotFound(Exception):
    pass


class _Conflict(Exception):
    pass


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(part) for part in e.get("loc", ())]
            where = loc[0] if loc else "body"
            field = ".".join(loc[1:]) or where
            errors.append(s.FieldError(field=field, location=where, message=str(e.get("msg"))))
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
        return _json(422, detail, errors)

    @app.exception_handler(_FieldError)
    async def bad_field(request: Request, exc: _FieldError) -> JSONResponse:
        return _json(
            422,
            f"{exc.field}: {exc}",
            [s.FieldError(field=exc.field, location="body", message=str(exc))],
        )

    @app.exception_handler(_NotFound)
    async def not_found(request: Request, exc: _NotFound) -> JSONResponse:
        return _json(404, str(exc))

    @app.exception_handler(_Conflict)
    async def conflict(request: Request, exc: _Conflict) -> JSONResponse:
        return _json(409, str(exc))

    @app.exception_handler(SwarmError)
    async def swarm_error(request: Request, exc: SwarmError) -> JSONResponse:
        status = next((code for cls, code in _ERRORS.items() if isinstance(exc, cls)), 500)
        headers = {"Retry-After": "1"} if status == 503 else None
        return _json(status, str(exc), headers=headers)


class _Unexpected:
    """ASGI middleware: an exception no handler took (a bug, a failing dependency) is logged with
    its traceback and answered as a JSON 500 without it; the connection stays usable (Starlette's
    own error middleware would raise it again to the server, which drops the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
            if started:  # half an answer is out (a stream): nothing else can be said
                raise
            detail = f"internal error ({type(exc).__name__}); the server log has the details"
            await _json(500, detail)(scope, receive, send)


def _json(
    status: int,
    detail: str,
    errors: list[s.FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = s.ErrorBody(detail=detail, errors=errors).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)
