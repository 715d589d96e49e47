"""TEMPORARY: a stand-in for swarm.serve's app (same JSON shapes) until that room's app lands."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sse_starlette.sse import EventSourceResponse

from swarm import Swarm
from swarm.router import current_version, list_versions, set_current
from swarm.router.artifacts import read_manifest

STATIC = Path(__file__).resolve().parents[3] / "swarm" / "serve" / "static"


def create_app(make_swarm: Any, models_dir: Path) -> FastAPI:
    holder: dict[str, Swarm] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        async with make_swarm() as s:
            holder["s"] = s
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def sw() -> Swarm:
        return holder["s"]

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/v1/auth")
    async def auth() -> dict[str, Any]:
        return {"required": False}

    @app.get("/v1/agents")
    async def agents() -> dict[str, Any]:
        reg = sw().registry
        return {"agents": [{"name": a.name, "description": a.description,
                            "max_concurrency": a.max_concurrency} for a in reg]}

    @app.post("/v1/tasks", status_code=202)
    async def submit(body: dict[str, Any]) -> dict[str, Any]:
        handle = await sw().submit(body["text"], agent=body.get("agent"))
        return {"id": handle.id, "status": "queued"}

    @app.get("/v1/tasks")
    async def tasks(run_id: str | None = None, limit: int = 50) -> dict[str, Any]:
        await sw().store.flush()
        return {"tasks": sw().store.tasks(run_id=run_id, limit=limit)}

    @app.get("/v1/tasks/{task_id}")
    async def task(task_id: str) -> dict[str, Any]:
        await sw().store.flush()
        try:
            row = sw().store.task(task_id)
        except Exception as exc:
            raise HTTPException(404, str(exc)) from exc
        row["decision"] = sw().store.decision(row["id"])
        if row["decision"]:
            row["decision"]["neighbours"] = [{"text": "my card has not arrived", "agent": "cards", "similarity": 0.91}]
        return row

    @app.get("/v1/traces/{task_id}")
    async def trace(task_id: str) -> dict[str, Any]:
        await sw().store.flush()
        return sw().store.task_tree(task_id)

    @app.get("/v1/runs")
    async def runs() -> dict[str, Any]:
        return {"runs": sw().store.runs()}

    @app.post("/v1/tasks/{task_id}/feedback")
    async def feedback(task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        rec = await sw().feedback(task_id, body.get("verdict"), agent=body.get("agent"))
        return rec.__dict__

    @app.get("/v1/approvals")
    async def approvals(status: str = "waiting") -> dict[str, Any]:
        return {"approvals": []}

    @app.get("/v1/router/versions")
    async def versions() -> dict[str, Any]:
        serving = current_version(models_dir)
        vs = [read_manifest(models_dir / v) for v in list_versions(models_dir)]
        return {"serving": serving, "routing": "keyword", "models_dir": str(models_dir),
                "versions": [{"version": m["version"], "serving": m["version"] == serving,
                              "created_at": m.get("created_at"), "metrics": m.get("metrics", {})} for m in vs]}

    @app.post("/v1/router/versions/{version}/use")
    async def use(version: str) -> dict[str, Any]:
        prev = current_version(models_dir)
        set_current(models_dir, version)
        return {"serving": version, "previous": prev, "routing": "keyword"}

    @app.get("/v1/router/metrics")
    async def metrics() -> dict[str, Any]:
        fb = sw().store.feedback()
        labels = sorted(sw().registry.names)
        conf = [[0] * len(labels) for _ in labels]
        right = 0
        for r in fb:
            truth = r["agent"] if r["kind"] == "correction" else r["routed_agent"]
            if truth in labels and r["routed_agent"] in labels:
                conf[labels.index(truth)][labels.index(r["routed_agent"])] += 1
                right += truth == r["routed_agent"]
        n = len(fb)
        return {"accuracy": right / n if n else None, "n": n, "labelled": n, "labels": labels,
                "confusion": conf, "source": "feedback"}

    @app.get("/v1/events")
    async def events(request: Request) -> EventSourceResponse:
        sub = sw().scheduler.events.subscribe()

        async def gen():  # type: ignore[no-untyped-def]
            async with sub:
                async for e in sub:
                    yield {"event": e.kind, "data": json.dumps(e.as_dict()), "id": str(e.seq)}

        return EventSourceResponse(gen(), ping=5)

    return app
